"""GUI: the model section runs in a worker, keeps napari responsive, cancels cleanly."""
from __future__ import annotations

import json

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_medseg.cli import main
from napari_medseg.io import read_labels
from napari_medseg.sample import SAMPLE_CASE_ID, case_files
from napari_medseg.sample._sample import SAMPLE_DIR

pytestmark = pytest.mark.gui


@pytest.fixture
def dock(sample_dock, tiny_model_folder):
    viewer, widget = sample_dock(tiny_model_folder)
    widget.model_section.device_combo.setCurrentText("auto")
    return viewer, widget


def test_run_keeps_event_loop_alive_and_matches_cli(dock, qtbot, tmp_path, tiny_model_folder):
    viewer, widget = dock
    section = widget.model_section
    section.device_combo.setCurrentText("cpu")
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    worker = section.run()
    assert worker is not None and not section.run_button.isEnabled()
    ticks_at_start = len(ticks)
    with qtbot.waitSignal(section.runner.settled, timeout=120_000):
        pass
    timer.stop()
    assert len(ticks) - ticks_at_start > 5  # the GUI thread kept processing events
    layer = viewer.layers["tiny segmentation"]
    assert layer.metadata["napari_medseg"]["model"]["name"] == "tiny"
    from napari_medseg.export import content_fingerprint

    # hashed in the worker: autosave's key for the layer, not computed on the GUI thread
    assert layer.metadata["napari_medseg"]["content"] == content_fingerprint(layer.data)
    from napari_medseg.layers import layer_probabilities

    kept = layer_probabilities(layer)  # the clicks' prior, kept as float16
    assert kept.dtype == np.float16 and kept.shape[1:] == layer.data.shape
    assert (kept.argmax(0) == layer.data).mean() > 0.999  # float16 ties aside: this run's
    assert section.run_button.isEnabled() and "done" in section.status.text()

    images, _ = case_files(SAMPLE_DIR, SAMPLE_CASE_ID)
    out = tmp_path / "cli_seg.nii.gz"
    assert main(["predict", *map(str, images), "-o", str(out), "--model",
                 str(tiny_model_folder), "--device", "cpu"]) == 0
    np.testing.assert_array_equal(layer.data, read_labels(out).data)


def test_progress_repaints_the_dock_at_most_four_times_a_second(dock, qtbot, monkeypatch):
    """Each shown report repaints the dock (and, on a software renderer, the whole window
    through OpenGL, on the cores the model runs on): the worker's many reports are shown
    at most every PROGRESS_MS, the first at once."""
    import time

    from napari_medseg._qt.worker import PROGRESS_MS

    _, widget = dock
    section = widget.model_section
    runner = section.runner
    shown, reports = [], []
    runner.progress.valueChanged.connect(  # reports shown: not the task's start or end
        lambda value: shown.append(time.perf_counter()) if runner.worker and reports else None)
    received = runner._on_progress
    monkeypatch.setattr(runner, "_on_progress", lambda progress: (
        reports.append(time.perf_counter()), received(progress)))
    assert section.run() is not None
    with qtbot.waitSignal(runner.settled, timeout=120_000):
        pass
    assert len(reports) > len(shown) >= 1  # throttled: fewer repaints than reports
    assert shown[0] - reports[0] < PROGRESS_MS / 1000  # the first at once
    gaps = np.diff(shown)
    assert (gaps >= 0.9 * PROGRESS_MS / 1000).all(), gaps
    assert "done" in section.status.text()


def test_cancel_stops_and_adds_nothing(dock, qtbot):
    viewer, widget = dock
    section = widget.model_section
    before = [layer.name for layer in viewer.layers]
    worker = section.run()
    # what napari's close dialog lists while it runs: the task, not a function's address
    statuses = viewer.window._qt_window._window._task_status_manager.get_status()
    assert any("Model run (napari-medseg)" in status for status in statuses), statuses
    assert not any("function" in status for status in statuses)
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        section.cancel_button.click()
    assert [layer.name for layer in viewer.layers] == before
    assert "cancelled" in section.status.text()
    assert section.run_button.isEnabled() and not section.cancel_button.isEnabled()


def test_missing_contrast_refused_with_message_and_layers_untouched(dock):
    viewer, widget = dock
    viewer.layers.remove("T2")
    names = [layer.name for layer in viewer.layers]
    data = viewer.layers["reference"].data.copy()
    assert widget.model_section.run() is None
    from napari.utils.notifications import notification_manager

    assert "No layer for T2" in notification_manager.records[-1].message
    assert [layer.name for layer in viewer.layers] == names
    np.testing.assert_array_equal(viewer.layers["reference"].data, data)


def test_bfloat16_on_a_cpu_that_emulates_it_is_warned_of_when_chosen(
        make_napari_viewer, monkeypatch):
    from napari.utils.notifications import notification_manager

    from napari_medseg.models import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *a: False)
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    section = widget.model_section
    section.device_combo.setCurrentText("cpu")
    section.precision_combo.setCurrentText("float32")
    assert "emulated" not in section.status.text()
    section.precision_combo.setCurrentText("bfloat16")
    assert "bfloat16 is emulated on this CPU" in section.status.text()
    assert "bfloat16 is emulated" in notification_manager.records[-1].message
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *a: True)
    records = len(notification_manager.records)
    section.precision_combo.setCurrentText("auto")
    assert section.status.text() == "Ready"  # the choice it warned of is gone
    section.precision_combo.setCurrentText("bfloat16")
    assert len(notification_manager.records) == records  # native here: nothing to say


def test_added_and_fine_tuned_models_are_listed_after_a_restart(
        sample_dock, tiny_model_folder, tmp_path):
    import shutil

    from napari_medseg.models.registry import user_models_dir

    viewer, widget = sample_dock(tiny_model_folder)  # the user adds a folder
    added = widget.model_section.model_combo.currentText()
    fine_tuned = user_models_dir() / "tiny_ft_20261123_120000"  # as Improve model writes it
    shutil.copytree(tiny_model_folder, fine_tuned)
    viewer.close()
    viewer, widget = sample_dock()  # napari restarted
    combo = widget.model_section.model_combo
    items = [combo.itemText(i) for i in range(combo.count())]
    assert added in items and "tiny 0.0.1 (tiny_ft_20261123_120000)" in items
    assert combo.currentText() == "brats_unet"  # the default stays the built-in model
    combo.setCurrentText(added)
    assert widget.model_section.current_folder() == tiny_model_folder
    shutil.rmtree(tiny_model_folder)  # a remembered folder that has gone is not listed
    viewer.close()
    viewer, widget = sample_dock()
    combo = widget.model_section.model_combo
    assert added not in [combo.itemText(i) for i in range(combo.count())]


@pytest.mark.parametrize("trusted", [False, True])
def test_torchscript_folder_asks_before_its_code_runs(sample_dock, tmp_path, monkeypatch,
                                                      trusted):
    import torch

    from napari_medseg._qt import model_section
    from napari_medseg.errors import InputError
    from napari_medseg.models import sha256_of
    from napari_medseg.models.unet import UNet3D
    from tests.conftest import make_model_folder

    folder = make_model_folder(tmp_path / "ts", n_folds=1, spacing=(6.0, 6.0, 6.0),
                               patch=(16, 16, 16))
    torch.jit.script(UNet3D(4, 4, widths=(4, 8)).eval()).save(str(folder / "mine.ts"))
    spec = json.loads((folder / "model.json").read_bytes())
    spec["folds"] = [{"file": "mine.ts", "sha256": sha256_of(folder / "mine.ts")}]
    spec["architecture"]["args"]["widths"] = [4, 8]
    (folder / "model.json").write_text(json.dumps(spec), encoding="utf-8")
    asked = []
    box = model_section.QMessageBox
    monkeypatch.setattr(box, "question", lambda parent, title, text, *rest: (
        asked.append(text), box.Yes if trusted else box.No)[1])
    _, widget = sample_dock(folder)
    section = widget.model_section
    assert section.confirm_code(folder) is trusted
    assert "code inside it runs" in asked[0]
    if trusted:
        assert section.loaded_model(folder).n_folds == 1
    else:
        with pytest.raises(InputError, match="TorchScript runs the code"):
            section.loaded_model(folder)


def test_a_cancel_after_the_last_report_still_ends_the_run(dock, qtbot, hold_after_last_report):
    """Cancel pressed while the run finishes its work (after its last progress report):
    napari's worker then emits neither ``returned`` nor ``aborted``. The section must
    still end the task (it stayed "Cancelling..." with Run disabled for good)."""
    from napari_medseg import inference

    viewer, widget = dock
    section = widget.model_section
    before = [layer.name for layer in viewer.layers]
    release = hold_after_last_report(inference, "predict")
    assert section.run() is not None
    qtbot.waitUntil(hold_after_last_report.reported.is_set, timeout=120_000)
    section.cancel_button.click()
    with qtbot.waitSignal(section.runner.settled, timeout=60_000):
        release.set()
    assert section.status.text() == "Model run: cancelled, nothing changed"
    assert [layer.name for layer in viewer.layers] == before and not section.runner.busy
    assert section.run_button.isEnabled() and not section.cancel_button.isEnabled()


@pytest.mark.parametrize("when", ["reporting", "after its last report", "too late to stop"])
def test_a_run_whose_case_is_replaced_adds_nothing_to_the_next_case(
        dock, qtbot, small_case, hold_after_last_report, replace_case_while, monkeypatch, when):
    """A case replaced while its model run works (the dock's Open, the review queue's
    next case): the run stops; a run whose result was already on its way when the case
    closed has it dropped. Its labels must not land on the case opened in its place,
    whose sections would take them as the model's output (BraTS cases share one grid,
    so nothing would look wrong)."""
    from napari.layers import Labels

    from napari_medseg import inference
    from napari_medseg._qt import worker

    viewer, widget = dock
    section = widget.model_section
    if when != "reporting":
        hold_after_last_report(inference, "predict")
    if when == "too late to stop":  # as if the result had been sent as the case closed
        monkeypatch.setattr(worker, "stop_when_case_closes", lambda *args: None)
    replace_case_while(widget, section.runner, section.run, held=when != "reporting")
    assert [layer.name for layer in viewer.layers] == ["T1", "T1ce", "T2", "FLAIR"]
    assert viewer.layers["T1"].data.shape == small_case.volume.shape
    expected = {"too late to stop": "its case was closed while it ran, nothing added"}.get(
        when, "Model run: stopped, its case was closed while it ran, nothing changed")
    assert section.status.text().endswith(expected)
    if when != "after its last report":
        return
    with qtbot.waitSignal(section.runner.settled, timeout=120_000):
        assert section.run() is not None  # the section works on: the case now open's labels
    added = [layer for layer in viewer.layers if isinstance(layer, Labels)]
    assert len(added) == 1 and added[0].data.shape == small_case.volume.shape


def test_a_rerun_replaces_only_an_unedited_result_under_its_name(dock, qtbot):
    """Re-running the model does not pile up copies of its result, each holding its
    probabilities; an edited or renamed result is the user's and stays."""
    viewer, widget = dock
    section = widget.model_section
    section.probabilities_box.setChecked(True)

    def run():
        assert section.run() is not None
        with qtbot.waitSignal(section.runner.settled, timeout=120_000):
            pass
        return [layer.name for layer in viewer.layers if layer.name.startswith(("tiny", "p("))]

    first = run()
    first_layer = viewer.layers["tiny segmentation"]
    assert run() == first  # the same names: the earlier run's layers were removed
    assert viewer.layers["tiny segmentation"] is not first_layer
    edited = viewer.layers["tiny segmentation"]
    edited.data_setitem((np.array([1]), np.array([3]), np.array([5])),  # one odd voxel
                        np.array([(int(edited.data[1, 3, 5]) + 1) % 4], edited.data.dtype))
    names = run()
    assert edited in viewer.layers and "tiny segmentation [1]" in names
    assert sum(name.startswith("p(") for name in names) == 2 * sum(
        name.startswith("p(") for name in first)  # the edited result's probabilities stay
    viewer.layers["tiny segmentation [1]"].name = "kept by the user"
    run()
    assert "kept by the user" in viewer.layers and edited in viewer.layers
    assert "tiny segmentation [1]" in viewer.layers  # the new run's, beside the edited one
