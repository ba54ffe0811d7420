"""GUI: the Topology section lists errors, overlays them, jumps to them, fixes with undo."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_check_overlay_jump_fix_and_undo(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-medseg", "brats_like_case")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    section = dock.topology_section
    layer = viewer.layers["reference"]
    planted = (5, 10, 10)
    layer.data[3:8, 8:13, 8:13] = 2  # a spurious oedema fragment far from the tumour
    assert section.layer_combo.currentText() == "reference"
    assert section.run() is not None
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=60_000)
    assert "WT" in section.results and section.results["WT"].betti.b0 > 1
    assert "topology errors" in viewer.layers
    overlay = viewer.layers["topology errors"].data
    assert overlay[planted] == 1  # fragment code
    rows = [i for i, (name, e) in enumerate(section.errors)
            if name == "WT" and e.kind == "fragment" and e.size_voxels == 125]
    assert rows, [e.detail for _, e in section.errors]
    section.error_list.setCurrentRow(rows[0])
    layer_world = viewer.layers[section.layer_combo.currentText()].data_to_world(planted)
    assert viewer.dims.point[0] == pytest.approx(layer_world[0], abs=1.5)
    before = layer.data.copy()
    section.fix_selected()  # writes through the undo history, then re-checks in a worker
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=60_000)
    assert layer.data[planted] == 0 and (layer.data != before).sum() == 125
    layer.undo()
    np.testing.assert_array_equal(layer.data, before)
    # the next case's mask under the same name: the listed errors are not its errors, and
    # their fixes must not touch it
    from napari_medseg._qt.topology_section import STALE
    from napari_medseg.layers import same_placement

    assert section.run() is not None
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=60_000)
    assert section.errors and section.layer_combo.currentText() == "reference"
    placed = same_placement(layer)
    viewer.layers.remove("reference")
    nxt = viewer.add_labels(before.copy(), name="reference", **placed)
    assert section.errors == [] and section.error_list.count() == 0  # cleared at once
    assert section.status.text() == STALE and not section.fix_button.isEnabled()
    section.fix_selected()
    np.testing.assert_array_equal(nxt.data, before)


def test_check_reads_mask_off_the_gui_thread_and_refuses_a_bad_line(make_napari_viewer, qtbot,
                                                                    monkeypatch):
    """Pressing Check only snapshots the mask on the GUI thread: counting its labels and
    reading the expectations run in the worker, and a bad expectation line is one clear
    line in the status (no traceback, no results)."""
    import threading

    import napari_medseg.labels as labels_module

    viewer = make_napari_viewer()
    viewer.open_sample("napari-medseg", "brats_like_case")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    section = dock.topology_section
    counted_on = []
    real = labels_module.present_labels
    monkeypatch.setattr(labels_module, "present_labels",
                        lambda data: counted_on.append(threading.current_thread()) or real(data))
    assert section.run() is not None  # (a refusal in the worker can finish before a
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=60_000)  # signal wait begins)
    assert section.results and counted_on and threading.main_thread() not in counted_on
    section.results, section.errors = {}, []
    section.expectations.setPlainText("1:b0=banana")
    assert section.run() is not None
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=60_000)
    assert section.status.text().startswith("Topology check failed: cannot read 'b0=banana'")
    assert "Traceback" not in section.status.text() and not section.results


def test_error_lines_wrap_at_the_docks_width_and_an_empty_list_is_hidden(make_napari_viewer,
                                                                         qtbot):
    """At 1600x1000 an error line is wider than the dock: it wraps, whole, instead of
    scrolling sideways (it did), and the list shows its first lines whole."""
    from qtpy.QtCore import QRect, Qt

    viewer = make_napari_viewer(show=True)  # a shown window: real widths
    viewer.window._qt_window.resize(1600, 1000)
    viewer.open_sample("napari-medseg", "brats_like_case")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    dock.sections["Topology"].expand(animate=False)
    section = dock.topology_section
    errors = section.error_list
    assert errors.isHidden()  # no errors yet: no empty frame
    layer = viewer.layers["reference"]
    for corner in range(6):  # spurious oedema specks far from the tumour
        layer.data[3 + 6 * corner:6 + 6 * corner, 5:8, 5:8] = 2
    assert section.run() is not None
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=60_000)
    qtbot.wait(50)  # the list's second fitting, once laid out
    assert errors.isVisible() and errors.count() >= errors.rows
    assert errors.horizontalScrollBar().maximum() == 0
    width, metrics = errors.viewport().width(), errors.fontMetrics()
    wrapped = 0
    for row in range(errors.rows):
        rect = errors.visualItemRect(errors.item(row))
        text = errors.item(row).text()
        needed = metrics.boundingRect(QRect(0, 0, rect.width(), 10_000), Qt.TextWordWrap, text)
        assert rect.right() < width and needed.height() <= rect.height(), text
        assert rect.bottom() < errors.viewport().height()  # the first lines are seen whole
        wrapped += metrics.horizontalAdvance(text) > width
    assert wrapped  # the lines were long enough to need it
    viewer.layers.remove("reference")  # its errors go, and so does the list's frame
    assert errors.count() == 0 and errors.isHidden()


def test_a_fix_listed_before_the_mask_was_edited_rechecks_instead(make_napari_viewer, qtbot,
                                                                  monkeypatch):
    """The user edits the mask after the check (a click, the brush, an undo): the listed
    fixes were computed on the mask as it was, and applied now they would change the
    user's new voxels (here: a fragment the user relabelled as enhancing tumour would be
    erased). Fix then checks the mask again and changes nothing."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-medseg", "brats_like_case")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    from napari_medseg._qt import topology_section

    told = []
    monkeypatch.setattr(topology_section, "show_info", told.append)
    section = dock.topology_section
    layer = viewer.layers["reference"]
    layer.data[3:8, 8:13, 8:13] = 2  # a spurious oedema fragment far from the tumour
    assert section.run() is not None
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=60_000)
    rows = [i for i, (name, e) in enumerate(section.errors)
            if name == "WT" and e.kind == "fragment" and e.size_voxels == 125]
    assert rows
    section.error_list.setCurrentRow(rows[0])
    for undone in (False, True):  # an edit through napari's history, then its undo
        if not undone:
            layer.data_setitem(np.nonzero(layer.data[:9, :14, :14] == 2), 3)
        else:
            layer.undo()  # napari's undo sends no paint event: the data are compared
        edited = layer.data.copy()
        assert section.errors and section.fix_button.isEnabled()
        section.fix_selected()
        np.testing.assert_array_equal(layer.data, edited)  # nothing changed
        assert "edited since the check" in told.pop()
        qtbot.waitUntil(lambda: not section.runner.busy, timeout=60_000)
        row = [i for i, (name, e) in enumerate(section.errors)
               if e.kind == "fragment" and e.size_voxels == 125]
        assert row  # the same fragment, checked again on the edited mask
        section.error_list.setCurrentRow(row[0])
    section.fix_selected()  # now up to date: fixed
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=60_000)
    assert (layer.data[3:8, 8:13, 8:13] == 0).all()
