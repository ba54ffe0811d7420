"""napari's canvases, found without the window's private attributes, and their
repaint held while layers come and go.

napari repaints its canvas as soon as a layer is added or removed. Qt sends
that paint (a posted event) before any timer is due, so the layer's build and
its paint (shaders compiled, the slice drawn) ran as one block without an
answer: on a software OpenGL renderer, 300-450 ms for one Points layer. Under
`PaintHold` the canvas ignores repaint requests; a 1 ms timer then releases it
and asks for the paint, and callbacks given to `PaintHold.then` run after that
paint and after the timers that came due during it. The GUI thread returns to
its event loop (input, timers) between the build and the paint, and between
the paint and what follows.
"""
from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QTimer

_RELEASE_MS = 1  # a real timer: Qt sends zero-delay calls with posted events, before timers


def napari_canvases() -> list:
    """Every live napari canvas (``VispyCanvas``); empty where napari's internals differ."""
    try:  # napari internals: not reached through the window's private ``_qt_viewer``
        from napari._vispy.canvas import VispyCanvas

        return list(VispyCanvas._instances)
    except (ImportError, AttributeError):
        return []


def viewer_canvas(viewer):
    """The napari canvas that draws ``viewer``, or None where napari's internals differ."""
    model = getattr(viewer, "__wrapped__", viewer)  # the dock holds a public-only proxy
    return next((canvas for canvas in napari_canvases()
                 if getattr(canvas, "viewer", None) is model), None)


def _native(canvas):
    try:
        return canvas.native
    except (AttributeError, RuntimeError):
        return None


class PaintHold:
    """Within ``with PaintHold():`` napari's canvases do not repaint; the held paint
    comes on a later event-loop turn, after the timers due by then.

    Nested holds leave the release to the outermost. A canvas deleted
    meanwhile is skipped.
    """

    def __init__(self):
        self._widgets: list = []
        self._then: list[Callable[[], None]] = []
        self._released = False

    def __enter__(self) -> PaintHold:
        for canvas in napari_canvases():
            widget = _native(canvas)
            try:
                if widget is not None and widget.updatesEnabled():
                    widget.setUpdatesEnabled(False)
                    self._widgets.append(widget)
            except RuntimeError:  # its Qt widget was deleted (the viewer closed)
                continue
        return self

    def __exit__(self, *_exc) -> bool:
        # a lambda: PyQt holds bound methods weakly, and nothing else keeps the hold alive
        QTimer.singleShot(_RELEASE_MS, lambda: self._release())
        return False

    def then(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the event-loop turn after the held paint."""
        if self._released:
            QTimer.singleShot(_RELEASE_MS, callback)
        else:
            self._then.append(callback)

    def _release(self) -> None:
        self._released = True
        for widget in self._widgets:
            try:
                widget.setUpdatesEnabled(True)
                widget.update()
            except RuntimeError:
                continue
        for callback in self._then:
            QTimer.singleShot(_RELEASE_MS, lambda callback=callback: _after_due_timers(callback))
        self._then.clear()


def _after_due_timers(callback: Callable[[], None]) -> None:
    """Run ``callback`` on the next turn: the timers due now (the held paint went before
    this timer, as posted events go first; input and the GUI's own timers were due
    meanwhile) run before it."""
    QTimer.singleShot(_RELEASE_MS, callback)
