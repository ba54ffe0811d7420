"""Pay napari's and the core's first-use costs in a background thread.

The first layer a napari session builds imports pandas (a Labels layer's
feature table), builds pint's unit registry (layer units) and vispy's
line-dash patterns; the first
Labels layer the dock watches imports the export package (autosave); the first
model run imports torch and SciPy. On a 2-core CPU that is over a second on
the GUI thread, inside whichever action comes first. The dock starts this
warm-up once per process: the imports run in a daemon thread (the dock's
tasks wait for it before their own imports: `wait_for_imports`), and the unit
registry, built in the thread, is installed as pint's application registry on
the GUI thread, only if nothing has used the lazy one yet. Callbacks passed to
`warm_up` run on the GUI thread once the imports are done (the dock lists
torch's devices and freezes the session's objects then, see ``gc_freeze``).

A thread's import holds the GIL while a C library loads: torch's C++ library
(``libtorch_cpu``, 0.2 s to map and initialise) held the GUI thread that long.
The warm-up loads that library first with ``dlopen`` called through ctypes,
which releases the GIL around foreign calls; torch's import then finds it
loaded. Python's full garbage collections, run in whichever thread allocates,
also hold the GIL (0.1-0.2 s each with napari loaded, four per warm-up): the
collector is off while the thread imports and back on after the callbacks
(after the dock's freeze).

A process that exits while the thread is still importing (napari closed within a
second or two of opening the dock) tears modules down under a half-done import of
torch's C++ library, which can crash the interpreter (a segmentation fault, status
139). An ``atexit`` handler asks the thread to stop after the import it is in and
waits for it. Python refuses thread-pool imports once its shutdown has begun (dask,
through pint, imports ``concurrent.futures.thread``), so that module is imported with
this one, on the GUI thread (a few milliseconds).
"""
from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  (see the module's docstring: the exit)
import ctypes
import gc
import importlib
import importlib.util
import os
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

from qtpy.QtCore import QTimer

MODULES = ("pandas", "scipy.ndimage", "skimage.measure", "torch", "napari_medseg.export",
           "napari_medseg.inference", "napari_medseg.interactive", "napari_medseg.topology",
           "napari_medseg.uncertainty._estimate", "napari_medseg.uncertainty._suggest",
           "napari_medseg.explain._explain", "matplotlib.figure",
           "matplotlib.backends.backend_qtagg")
_POLL_MS = 100
_EXIT_WAIT_S = 60.0  # the warm-up takes 1-3 s; a hung import must not hold the exit forever
_state: dict = {"done": False, "callbacks": []}


def _import_and_build() -> None:
    _state["collecting"] = gc.isenabled()
    gc.disable()  # enabled again on the GUI thread, after the dock's freeze
    try:  # the registry first: the first layer needs it, torch only the first run
        for step in (_build_registry, _dash_patterns, _load_torch_library,
                     *map(_importer, MODULES)):
            if _state.get("exiting"):
                return
            step()
    except Exception:  # noqa: BLE001  (only while the process exits; else it is raised)
        if not _state.get("exiting"):
            raise


def _build_registry() -> None:
    import pint

    _state["registry"] = pint.UnitRegistry()


def _importer(name: str) -> Callable[[], None]:
    def import_it() -> None:
        try:
            importlib.import_module(name)
        except ImportError:  # optional or broken: the action that needs it says so
            pass
    return import_it


class _ExitOrder:
    """A finalizer on an object that lives as long as the process makes ``weakref`` register
    its exit hook before ``_wait_at_exit``: finalizers that modules imported during the wait
    create (torch's operator libraries) then still run at exit, while their module globals
    exist ('Exception ignored in: <finalize object>' otherwise)."""


_EXIT_ORDER = _ExitOrder()


def _wait_at_exit(thread: threading.Thread) -> None:
    """Registered with ``atexit``: the thread stops after its current import; wait for it."""
    _state["exiting"] = True
    thread.join(_EXIT_WAIT_S)


def _dash_patterns() -> None:
    """vispy computes its 13 line-dash patterns (lru-cached) when a napari session builds
    its first line visual, inside the first Labels layer: about 0.1 s, paid here."""
    try:
        from vispy.visuals.line.dash_atlas import DashAtlas
    except ImportError:
        return
    DashAtlas()


def torch_library() -> Path | None:
    """torch's C++ library (``libtorch_cpu``) where a Linux or macOS wheel puts it, else None."""
    spec = importlib.util.find_spec("torch")
    if sys.platform == "win32" or spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "lib"
    return next(iter(sorted(folder.glob("libtorch_cpu.*"))), None)


def _load_torch_library() -> None:
    """``dlopen`` torch's C++ library without the GIL (ctypes releases it around the call);
    never closed, it stays mapped for torch's import to find."""
    library = torch_library()
    if library is None or "torch" in sys.modules:
        return
    loader = ctypes.CDLL(None)  # the process's own symbols, dlopen among them
    loader.dlopen.restype = ctypes.c_void_p
    loader.dlopen.argtypes = (ctypes.c_char_p, ctypes.c_int)
    loader.dlopen(os.fsencode(library), os.RTLD_NOW)


def _install_registry() -> None:
    """On the GUI thread: hand the built registry to pint if the lazy one is untouched."""
    import pint
    from pint.registry import LazyRegistry

    registry = _state.pop("registry", None)
    if registry is not None and isinstance(pint.get_application_registry().get(), LazyRegistry):
        pint.set_application_registry(registry)


def _poll(thread: threading.Thread) -> None:
    if thread.is_alive():
        QTimer.singleShot(_POLL_MS, lambda: _poll(thread))
    else:
        _install_registry()
        _state["done"] = True
        callbacks, _state["callbacks"] = _state["callbacks"], []
        try:
            for callback in callbacks:
                callback()
        finally:
            if _state.pop("collecting", False):
                gc.enable()


def wait_for_imports(timeout: float = _EXIT_WAIT_S) -> None:
    """In a worker thread: wait until the warm-up's imports are done (at once if none runs).

    Python's import locks serialise one module's import, not a package's circle of
    them: a task importing SciPy's statistics while the warm-up imported its spatial
    package found ``scipy.spatial.distance`` half-initialised (``ImportError: cannot
    import name 'euclidean' from partially initialized module``). Tasks therefore
    start their work after the warm-up, which takes 1-3 s after the dock opens.

    Parameters
    ----------
    timeout : float
        The longest wait, in seconds.
    """
    thread = _state.get("thread")
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)


def warm_up(then: Callable[[], None] | None = None) -> None:
    """Start the background warm-up (once per process; later calls only add ``then``).

    Parameters
    ----------
    then : callable, optional
        Called on the GUI thread when the warm-up is done (at once if it is).
    """
    if then is not None:
        if _state["done"]:
            then()
        else:
            _state["callbacks"].append(then)
    if "thread" in _state:
        return
    thread = threading.Thread(target=_import_and_build, name="napari-medseg warm-up",
                              daemon=True)
    _state["thread"] = thread
    thread.start()
    weakref.finalize(_EXIT_ORDER, lambda: None)
    atexit.register(_wait_at_exit, thread)
    _poll(thread)
