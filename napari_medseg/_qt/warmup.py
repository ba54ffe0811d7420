"""Pay napari's and the core's first-use costs in a background thread.

The first layer a napari session builds imports pandas (a Labels layer's
feature table), builds pint's unit registry (layer units) and vispy's
line-dash patterns; the first
Labels layer the dock watches imports the export package (autosave); the first
model run imports torch and SciPy. On a 2-core CPU that is over a second on
the GUI thread, inside whichever action comes first. The dock starts this
warm-up once per process: the imports run in a daemon thread (Python's
import locks make that safe), and the unit registry, built in the thread,
is installed as pint's application registry on the GUI thread, only if
nothing has used the lazy one yet. Callbacks passed to `warm_up` run on the
GUI thread once the imports are done (the dock freezes the session's
objects then, see ``gc_freeze``).
"""
from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from qtpy.QtCore import QTimer

MODULES = ("pandas", "scipy.ndimage", "skimage.measure", "torch", "napari_medseg.export",
           "napari_medseg.inference", "napari_medseg.interactive", "napari_medseg.topology")
_POLL_MS = 100
_state: dict = {"done": False, "callbacks": []}


def _import_and_build() -> None:
    import pint  # first: the first layer needs the registry, torch only the first run

    _state["registry"] = pint.UnitRegistry()
    _dash_patterns()
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # optional or broken: the action that needs it says so
            continue


def _dash_patterns() -> None:
    """vispy computes its 13 line-dash patterns (lru-cached) when a napari session builds
    its first line visual, inside the first Labels layer: about 0.1 s, paid here."""
    try:
        from vispy.visuals.line.dash_atlas import DashAtlas
    except ImportError:
        return
    DashAtlas()


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
        for callback in callbacks:
            callback()


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
    _poll(thread)
