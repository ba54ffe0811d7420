"""GUI: clicks through the viewer's mouse callbacks refine a Labels layer; Ctrl-Z undoes."""
from __future__ import annotations

import numpy as np
import pytest
from napari.utils._proxies import ReadOnlyWrapper
from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

from napari_medseg.interactive import robot_click

pytestmark = pytest.mark.gui


class _Event:
    """What napari's canvas hands mouse callbacks, for a click at one screen pixel."""

    def __init__(self, kind, position, modifiers=()):
        self.type, self.position, self.modifiers = kind, tuple(position), list(modifiers)
        self.pos, self.button, self.handled = (100.0, 100.0), 1, False
        self.view_direction, self.dims_displayed, self.is_dragging = None, [1, 2], False


def _mouse_click(viewer, voxel, layer, modifiers=()):
    """A click on ``voxel`` of ``layer``, wherever its affine places it in the world."""
    world = np.asarray(layer.data_to_world(voxel), float)
    viewer.dims.set_point(0, world[0])
    mouse_press_callbacks(viewer, ReadOnlyWrapper(_Event("mouse_press", world, modifiers),
                                                  exceptions=("handled",)))
    mouse_release_callbacks(viewer, _Event("mouse_release", world, modifiers))


def _wait(qtbot, section):
    qtbot.waitUntil(lambda: not section.busy, timeout=60_000)


def _undo_key(layer):
    from app_model.types import KeyBinding, KeyCode, KeyMod

    return layer.keymap[KeyBinding.from_int(KeyMod.CtrlCmd | KeyCode.KeyZ)]


def test_clicks_refine_undo_reset(sample_dock, qtbot):
    viewer, dock = sample_dock()
    section = dock.refine_section
    reference = np.asarray(viewer.layers["reference"].data)
    edit = viewer.add_labels(np.zeros_like(reference, dtype=np.uint8), name="edit")
    # an empty, unplaced layer takes the images' grid and anatomical placement
    assert edit.metadata["napari_medseg"]["affine"] == viewer.layers["T1"].metadata[
        "napari_medseg"]["affine"]
    section.layer_combo.setCurrentText("edit")
    section.label_combo.setCurrentText("2 ED")
    section.active_button.setChecked(True)
    target = reference == 2  # oedema, the label clicked
    first = robot_click(target, edit.data == 2)
    _mouse_click(viewer, first.position, edit)
    _wait(qtbot, section)
    assert edit.data[first.position] == 2
    # 'auto' with no model run on a case with the click network's contrasts (make_engine)
    assert "learned (click_unet" in section.engine_label.text()
    after_first = edit.data.copy()
    grown = after_first == 2
    assert grown.sum() > 20 and (grown & target).sum() / grown.sum() > 0.5  # mostly oedema
    points = viewer.layers["clicks"]
    assert len(points.data) == 1 and np.allclose(points.face_color[0], (0.1, 0.9, 0.2, 1.0))
    second = robot_click(target, grown)
    _mouse_click(viewer, second.position, edit, modifiers=() if second.positive else
                 ("Shift",))  # Shift-click inverts the (positive) sign chosen in the dock
    _wait(qtbot, section)
    assert len(section.session.clicks) == 2 and (edit.data != after_first).any()
    assert (edit.data[second.position] == 2) == second.positive
    _undo_key(edit)(edit)  # Ctrl-Z: napari's Labels undo, and the click is forgotten
    np.testing.assert_array_equal(edit.data, after_first)
    assert len(section.session.clicks) == 1 and len(points.data) == 1
    assert edit.metadata["napari_medseg"]["edit_history"][-1]["undo"]
    section.reset()
    assert not edit.data.any() and len(points.data) == 0


def test_refused_clicks_leave_the_mask_alone(sample_dock, qtbot, monkeypatch):
    viewer, dock = sample_dock()
    section = dock.refine_section
    reference = viewer.layers["reference"]
    section.layer_combo.setCurrentText("reference")
    before = np.asarray(reference.data).copy()
    errors = []
    monkeypatch.setattr("napari_medseg._qt.refine_section.show_error", errors.append)
    assert not section.add_click((-3, 5, 5), True)
    assert "outside the volume" in errors[-1]
    monkeypatch.setattr(type(dock.model_section.runner), "busy", property(lambda self: True))
    assert not section.add_click((10, 10, 10), True)
    assert "model run is in progress" in errors[-1]
    monkeypatch.undo()
    monkeypatch.setattr("napari_medseg._qt.refine_section.show_error", errors.append)
    viewer.add_labels(np.ones((5, 5, 5), np.uint8), name="other shape")
    section.layer_combo.setCurrentText("other shape")
    assert not section.add_click((1, 1, 1), True)
    assert "has shape" in errors[-1]
    np.testing.assert_array_equal(reference.data, before)
    assert section._worker is None


def test_click_in_3d_view_lands_on_the_ray(sample_dock, qtbot):
    viewer, dock = sample_dock()
    section = dock.refine_section
    reference = viewer.layers["reference"]
    edit = viewer.add_labels(np.zeros(reference.data.shape, np.uint8), name="edit")
    section.layer_combo.setCurrentText("edit")
    section.engine_combo.setCurrentText("random walker (no model)")
    viewer.dims.ndisplay = 3
    y, x = 60, 50
    world = np.asarray(edit.data_to_world((0, y, x)))  # a ray along the data's z axis
    direction = np.asarray(edit.data_to_world((1, y, x))) - world
    assert section.input.click_at(world, view_direction=direction / np.linalg.norm(direction),
                                  dims_displayed=[0, 1, 2])
    _wait(qtbot, section)
    visible = next(layer for layer in section.image_layers().values() if layer.visible)
    expected_z = int(np.argmax(np.asarray(visible.data)[:, y, x]))
    assert section.session.clicks[0].position == (expected_z, y, x)
    assert edit.data[expected_z, y, x] == section.current_label()
    assert "random walker" in section.engine_label.text()


@pytest.mark.slow
def test_after_a_model_run_clicks_edit_the_models_layer_locally(sample_dock, qtbot):
    from scipy import ndimage as ndi

    viewer, dock = sample_dock()  # the built-in model
    dock.model_section.device_combo.setCurrentText("cpu")
    dock.model_section.folds_combo.setCurrentIndex(1)  # its first fold: a third of the time
    section = dock.refine_section
    section.layer_combo.setCurrentText("reference")  # the user looked at the reference first
    assert dock.model_section.run() is not None
    with qtbot.waitSignal(dock.model_section.runner.settled, timeout=180_000):
        pass
    layer = viewer.layers["brats_unet segmentation"]
    assert section.layer_combo.currentText() == layer.name  # never the reference
    reference = np.asarray(viewer.layers["reference"].data)
    before = np.asarray(layer.data).copy()
    section.label_combo.setCurrentText("2 ED")
    section.active_button.setChecked(True)
    click = robot_click(reference == 2, before == 2)
    _mouse_click(viewer, click.position, layer, () if click.positive else ("Shift",))
    _wait(qtbot, section)
    assert "learned" in section.engine_label.text()  # 'auto' after the built-in model's run
    changed = np.asarray(layer.data) != before
    assert changed[click.position]
    # only the clicked object changes (a positive click: its voxels, reached from the click
    # through ED; a negative one: one region); the rest is bit for bit as it was
    edited = np.asarray(layer.data) == 2 if click.positive else changed
    labelled, _ = ndi.label(edited, structure=np.ones((3, 3, 3)))
    assert (labelled[changed] == labelled[click.position]).all()
    assert (np.asarray(layer.data)[changed] == 2).all() == click.positive
    _undo_key(layer)(layer)
    np.testing.assert_array_equal(layer.data, before)
    assert not section.session.clicks



def test_start_clicking_adds_the_clicks_layer_and_paints_it_on_a_later_turn(
        sample_dock, qtbot, paint_turns):
    viewer, dock = sample_dock(show=True)
    section = dock.refine_section
    order = paint_turns(viewer)
    section.active_button.setChecked(True)
    assert "clicks" in viewer.layers and viewer.layers.selection.active.name == "reference"
    qtbot.waitUntil(lambda: "paint" in order[order.index("+clicks"):], timeout=5_000)
    assert order.painted_after_a_timer_turn("clicks")
    _wait(qtbot, section)


@pytest.mark.slow
def test_start_clicking_builds_the_engine_so_the_first_click_does_not_wait(sample_dock, qtbot):
    viewer, dock = sample_dock()
    dock.model_section.device_combo.setCurrentText("cpu")
    dock.model_section.folds_combo.setCurrentIndex(1)  # its first fold: a third of the time
    assert dock.model_section.run() is not None
    with qtbot.waitSignal(dock.model_section.runner.settled, timeout=180_000):
        pass
    section = dock.refine_section
    section.label_combo.setCurrentText("2 ED")
    section.active_button.setChecked(True)  # the engine is built now, in a worker
    layer = viewer.layers[section.layer_combo.currentText()]
    before = np.asarray(layer.data).copy()
    click = robot_click(np.asarray(viewer.layers["reference"].data) == 2, before == 2)
    assert section.add_click(click.position, click.positive)  # queued behind the build
    _wait(qtbot, section)
    assert "learned" in section.engine_label.text() and len(section.session.clicks) == 1
    assert (np.asarray(layer.data)[click.position] == 2) == click.positive
    engine = section.session.engine
    section.active_button.setChecked(False)
    section.active_button.setChecked(True)  # the same target and engine: nothing rebuilt
    assert section._worker is None and section.session.engine is engine
    # the case's T1 replaced by other voxels (as the next case under the same names):
    # the engine read the old ones, so clicking again builds a new one
    viewer.layers["T1"].data = np.asarray(viewer.layers["T1"].data).copy()
    section.active_button.setChecked(False)
    section.active_button.setChecked(True)
    assert section._worker is not None  # rebuilding
    _wait(qtbot, section)
    assert section.session.engine is not engine
    # the click network runs in the Model section's precision; another choice, another engine
    from napari_medseg.models.device import autocast_dtype

    engine = section.session.engine
    assert engine.autocast == autocast_dtype("auto", engine.device)
    dock.model_section.precision_combo.setCurrentText("float32")
    section.active_button.setChecked(False)
    section.active_button.setChecked(True)
    _wait(qtbot, section)
    assert section.session.engine is not engine and section.session.engine.autocast is None
    assert "float32" in section.engine_label.text()


def test_a_layer_added_beside_the_target_does_not_recount_its_labels(
        sample_dock, monkeypatch):
    """Counting a mask's labels reads every voxel (10 ms on 240x240x155): it happens when
    the target changes, not in every layer's insertion turn."""
    from napari_medseg import labels

    viewer, dock = sample_dock()
    section = dock.refine_section
    section.layer_combo.setCurrentText("reference")
    section.refresh()
    section.label_combo.setCurrentText("2 ED")
    counted = []
    original = labels.present_labels
    monkeypatch.setattr(labels, "present_labels", lambda data: (counted.append(1),
                                                                original(data))[1])
    viewer.add_image(np.zeros((4, 4, 4), np.float32), name="unrelated")
    viewer.add_points(np.zeros((1, 3)), name="clicks")
    assert counted == [] and section.label_combo.currentText() == "2 ED"
    viewer.add_labels(np.zeros_like(viewer.layers["reference"].data), name="mask 2")
    section.layer_combo.setCurrentText("mask 2")
    section.layer_combo.activated.emit(section.layer_combo.currentIndex())  # the user picks it
    assert counted  # a new target: its labels are listed
