"""Keep napari's collection on every layer removal short: freeze what lives for the session.

napari's canvas runs a full ``gc.collect()`` whenever a layer is removed (to
free the layer's GL objects). With napari, torch and SciPy loaded, a full
collection walks about 390,000 container objects: 200-300 ms on the GUI
thread of a 2-core CPU for each removed layer, and the review queue replaces
five or six layers per case. Those objects are modules, classes and
functions that live as long as the process. Once the dock's warm-up has
imported them, they are moved to the permanent generation (`gc.freeze`),
which collections skip (`freeze_after_warm_up`). Everything created later
is collected as before.

An object alive at the freeze that later becomes garbage inside a reference
cycle is not collected while the freeze holds. Layers are the large ones, so
removing a layer that existed at the freeze unfreezes first (that one
removal walks everything, as before). Closing the dock unfreezes and
collects. ``NAPARI_MEDSEG_GC_FREEZE=0`` turns the freeze off; the test suite
does so, because napari's viewer fixture checks with a young-generation
collection that each test's viewer was freed.
"""
from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterable

SWITCH = "NAPARI_MEDSEG_GC_FREEZE"
_alive_at_freeze: weakref.WeakSet = weakref.WeakSet()
_state = {"frozen": False}


def enabled() -> bool:
    """Whether the freeze is allowed (``NAPARI_MEDSEG_GC_FREEZE`` is not ``0``)."""
    return os.environ.get(SWITCH, "1") != "0"


def is_frozen() -> bool:
    """Whether the session's objects are frozen now."""
    return _state["frozen"]


def freeze(layers: Iterable) -> None:
    """Move every live object to the permanent generation; remember ``layers`` as alive
    at the freeze (nothing when already frozen or switched off)."""
    if _state["frozen"] or not enabled():
        return
    _alive_at_freeze.update(layers)
    gc.freeze()
    _state["frozen"] = True


def thaw(collect: bool = False) -> None:
    """Undo the freeze (and, with ``collect``, collect everything once)."""
    if _state["frozen"]:
        gc.unfreeze()
        _state["frozen"] = False
        _alive_at_freeze.clear()
    if collect:
        gc.collect()


def _on_removing(event) -> None:
    if _state["frozen"] and event.source[event.index] in _alive_at_freeze:
        thaw()  # napari's collection right after the removal then finds the layer's cycles


def _on_dock_destroyed(*_) -> None:
    thaw(collect=True)


def freeze_after_warm_up(dock) -> None:
    """Freeze now (called when the warm-up's imports are done), and watch the dock viewer's
    removals and the dock's end as the module docstring says.

    The freeze does not wait for the dock to be idle. A task started during the warm-up
    waits for it before its own work (`warmup.wait_for_imports`), so at this moment it
    holds only its start; and while the freeze waited, the collector, off during the
    warm-up, walked its 400,000 young objects and then the whole session, unfrozen:
    stalls of 170-350 ms in the first model run of a user who opened a case at once.

    Parameters
    ----------
    dock : MedSegDock
        The dock: its ``viewer``, and its destruction, which unfreezes.
    """
    if not enabled():
        return
    dock.viewer.layers.events.removing.connect(_on_removing)
    dock.destroyed.connect(_on_dock_destroyed)
    freeze(dock.viewer.layers)
