"""GUI: export corrected masks (two cases into one nnU-Net dataset); autosave and restore."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _correct(layer):
    """An annotator's edit through napari's undoable path (a paint event)."""
    index = np.nonzero(np.asarray(layer.data) == 2)
    chosen = tuple(axis[:500] for axis in index)
    layer.data_setitem(chosen, 0)
    return np.asarray(layer.data).copy()


def _export(section, qtbot):
    """Press Export and wait for its worker; the ExportResult, or None when it failed."""
    with qtbot.waitSignal(section.runner.settled, timeout=60_000):
        assert section.export() is not None
        assert section.runner.busy  # written in a worker, not inside the click
    return None if section.runner.failed else section.last_export


def test_export_two_cases_to_nnunet_dataset(sample_dock, tmp_path, qtbot):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    viewer, dock = sample_dock()
    section = dock.export_section
    corrected = _correct(viewer.layers["reference"])
    section.layer_combo.setCurrentText("reference")
    section.format_combo.setCurrentText("nnU-Net v2 dataset")
    section.folder_edit.setText(str(tmp_path))
    section.dataset_edit.setText("GuiCorrected")
    first = _export(section, qtbot)
    assert first is not None and first.output.name == "Dataset501_GuiCorrected"
    assert section.status.text().startswith(f"Exported to {first.output}")
    section.case_edit.setText("second_case")
    second = _export(section, qtbot)
    assert second.output == first.output and section.last_dataset == first.output
    folder = first.output
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == [
        "medseg_sample_000.nii.gz", "second_case.nii.gz"]
    assert json.loads((folder / "dataset.json").read_bytes())["numTraining"] == 2
    verify_dataset_integrity(str(folder), 1)
    from napari_medseg.io import read_labels

    np.testing.assert_array_equal(read_labels(folder / "labelsTr" / "second_case.nii.gz").data,
                                  corrected)
    section.case_edit.setText("second_case")
    assert _export(section, qtbot) is None  # exists, and 'replace' is not ticked
    assert "already exists" in section.status.text()


def test_an_export_keeps_the_recovery_of_edits_made_while_it_wrote(sample_dock, tmp_path,
                                                                    qtbot):
    """The export writes a copy of the mask taken at the press; an edit made while it
    writes is not in it, so its recovery file stays (an export without one drops it)."""
    from napari_medseg.export import find_recovery

    viewer, dock = sample_dock()
    section = dock.export_section
    layer = viewer.layers["reference"]
    section.layer_combo.setCurrentText("reference")
    section.format_combo.setCurrentText("NIfTI file")
    section.folder_edit.setText(str(tmp_path))
    identity = section.autosave._identity(layer)
    before = np.asarray(layer.data).copy()
    with qtbot.waitSignal(section.runner.settled, timeout=60_000):
        section.export()
        edited = _correct(layer)  # while the worker writes: its result is not in yet
        section.autosave.save_dirty()  # the autosave timer's save
    exported = section.last_export.files[0]
    from napari_medseg.io import read_labels

    assert exported.name.endswith(".nii.gz")
    np.testing.assert_array_equal(read_labels(exported).data, before)  # the press's copy
    assert not np.array_equal(before, edited)
    recovered = find_recovery(*identity)
    assert recovered is not None and np.array_equal(recovered.load(), edited)
    section.overwrite_box.setChecked(True)
    _export(section, qtbot)  # nothing painted meanwhile: the export holds every edit
    assert find_recovery(*identity) is None


def test_autosave_and_restore_after_reopening(sample_dock):
    viewer, dock = sample_dock()
    edited = _correct(viewer.layers["reference"])
    viewer.close()  # closing saves unsaved edits (the timer would, every 30 s)
    viewer2, dock2 = sample_dock()  # "napari was closed": the case opens again
    bar = dock2.export_section.autosave
    assert bar.isVisibleTo(dock2) and "Unsaved edits of 'reference'" in bar.message.text()
    assert "Restore replaces" in bar.message.text()  # it says what it replaces
    assert "voxels of the current labels of 'reference'" in bar.message.text()
    layer = viewer2.layers["reference"]
    assert not np.array_equal(layer.data, edited)
    bar.restore()
    np.testing.assert_array_equal(layer.data, edited)
    layer.undo()  # the restore is one undoable step
    assert not np.array_equal(layer.data, edited)


def test_an_undo_after_the_autosave_is_saved_too(sample_dock):
    """napari's undo and redo change a mask without a paint event: the recovery file kept
    the undone edit, and reopening offered it back as the user's unsaved work."""
    from napari_medseg.export import find_recovery

    viewer, dock = sample_dock()
    bar, layer = dock.export_section.autosave, viewer.layers["reference"]
    original = np.asarray(layer.data).copy()
    edited = _correct(layer)
    identity = bar._identity(layer)
    assert bar.save_dirty() == ["reference"]  # the timer's save
    np.testing.assert_array_equal(find_recovery(*identity).load(), edited)
    assert bar.save_dirty() == []  # nothing new
    layer.undo()
    assert bar.save_dirty() == ["reference"]
    np.testing.assert_array_equal(find_recovery(*identity).load(), original)
    layer.redo()
    viewer.layers.remove("reference")  # closing the mask saves it as it is
    np.testing.assert_array_equal(find_recovery(*identity).load(), edited)


def test_edits_are_offered_back_when_the_case_was_closed_images_first(sample_dock):
    viewer, dock = sample_dock()
    edited = _correct(viewer.layers["reference"])
    while len(viewer.layers):  # napari's layer-list order: the images go before the mask
        viewer.layers.remove(viewer.layers[0])
    viewer2, dock2 = sample_dock()
    bar = dock2.export_section.autosave
    assert bar.isVisibleTo(dock2) and "Unsaved edits of 'reference'" in bar.message.text()
    bar.restore()
    np.testing.assert_array_equal(viewer2.layers["reference"].data, edited)


def test_recovery_is_not_offered_for_another_case_and_damage_only_warns(
        sample_dock, make_napari_viewer):
    from napari_medseg.export import recovery_dir

    viewer, dock = sample_dock()
    edited = _correct(viewer.layers["reference"])
    viewer.close()
    viewer2, dock2 = sample_dock()
    other = viewer2.layers["reference"]
    anatomy = [layer for layer in viewer2.layers if layer._type_string == "image"]
    for layer in anatomy:  # another case of the same shape: the same names, other voxels
        layer.data = np.flip(layer.data, axis=-1).copy()
        layer.metadata.get("napari_medseg", {}).pop("content", None)
    dock2.export_section.autosave.setVisible(False)
    other.metadata["napari_medseg"].pop("content", None)
    assert not dock2.export_section.autosave.check_recovery(other)
    for path in recovery_dir().glob("*.npz"):
        path.write_bytes(b"not a zip")  # damaged on disk
    viewer2.close()
    viewer3, dock3 = sample_dock()  # opens without raising; the file is set aside
    assert not dock3.export_section.autosave.isVisibleTo(dock3)
    assert list(recovery_dir().glob("*.damaged-*"))
    assert not np.array_equal(viewer3.layers["reference"].data, edited)



def test_the_models_original_in_an_export_is_that_layers_not_an_earlier_one_of_its_name(
        sample_dock, tmp_path, qtbot):
    """The next case's model output has the same name as the last one's: its export must
    carry its own model mask as the 'original' of provenance, not the last case's."""
    from napari_medseg.io import read_labels
    from napari_medseg.layers import same_placement

    viewer, dock = sample_dock()
    section = dock.export_section
    reference = viewer.layers["reference"]
    model_meta = {"napari_medseg": {"model": {"name": "brats_unet"}}}
    first = viewer.add_labels(np.array(reference.data), name="brats_unet segmentation",
                              metadata=model_meta, **same_placement(reference))
    viewer.layers.remove(first)  # its case closed; the next case's run comes
    second_model = np.zeros_like(np.asarray(reference.data))
    second_model[40:60, 50:70, 40:60] = 2
    second = viewer.add_labels(second_model.copy(), name="brats_unet segmentation",
                               metadata=model_meta, **same_placement(reference))
    _correct(second)
    section.layer_combo.setCurrentText(second.name)
    section.format_combo.setCurrentText("NIfTI file")
    section.folder_edit.setText(str(tmp_path))
    section.case_edit.setText("next_case")
    result = _export(section, qtbot)
    original = read_labels(tmp_path / "next_case_model_seg.nii.gz").data
    np.testing.assert_array_equal(original, second_model)
    assert result is not None
