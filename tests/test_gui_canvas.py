"""GUI: napari's paint of a new layer comes on a later event-loop turn than its build."""
from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QCoreApplication

from napari_medseg._qt.canvas import PaintHold, viewer_canvas

pytestmark = pytest.mark.gui


def _turns(qtbot, order, until):
    qtbot.waitUntil(lambda: until in order, timeout=5_000)
    QCoreApplication.processEvents()


def test_a_held_paint_comes_after_a_timer_turn_and_then_what_follows(
        make_napari_viewer, qtbot, paint_turns):
    viewer = make_napari_viewer(show=True)
    canvas = viewer_canvas(viewer)
    assert canvas is not None and canvas.viewer is viewer
    order = paint_turns(viewer)
    qtbot.wait(50)
    with PaintHold() as hold:
        viewer.add_image(np.random.default_rng(0).random((8, 16, 16)), name="held")
        assert not canvas.native.updatesEnabled()  # napari's repaint request is ignored
    hold.then(lambda: order.append("then"))
    _turns(qtbot, order, "then")
    assert order.painted_after_a_timer_turn("held")
    after = order[order.index("+held"):]
    paint, then = after.index("paint"), after.index("then")
    assert paint < then and "timer" in after[paint:then]  # then a turn of timers and input
    assert canvas.native.updatesEnabled()


def test_a_failing_block_still_releases_the_canvas(make_napari_viewer, qtbot, paint_turns):
    viewer = make_napari_viewer(show=True)
    order = paint_turns(viewer)
    with pytest.raises(ValueError), PaintHold():
        viewer.add_image(np.ones((4, 8, 8)), name="partial")
        raise ValueError("a step failed after adding its layer")
    qtbot.waitUntil(lambda: "paint" in order[order.index("+partial"):], timeout=5_000)
    assert viewer_canvas(viewer).native.updatesEnabled()
