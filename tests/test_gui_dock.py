"""GUI: a real napari viewer, the plugin's sample, reader, writer and dock."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from napari_medseg.io import read_labels
from napari_medseg.sample import case_files, write_case

pytestmark = pytest.mark.gui
PLUGIN = "napari-medseg"


@pytest.fixture
def viewer_with_sample(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "brats_like_case")
    return viewer


def _dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "MedSeg")
    return widget


def test_sample_opens_as_contrast_layers_and_labels(viewer_with_sample):
    viewer = viewer_with_sample
    names = [layer.name for layer in viewer.layers]
    assert names == ["T1", "T1ce", "T2", "FLAIR", "reference"]
    for layer in viewer.layers:
        assert "affine" in layer.metadata["napari_medseg"]  # placed by it: 1.5 mm voxels
        assert np.abs(layer.affine.linear_matrix).sum(0) == pytest.approx((1.5, 1.5, 1.5))
    labels = viewer.layers["reference"]
    assert set(np.unique(labels.data)) == {0, 1, 2, 3}
    assert list(labels.features["name"]) == ["background", "NCR", "ED", "ET"]
    assert labels.get_color(3)[:3] == pytest.approx((1.0, 0.85, 0.1), abs=0.01)




def test_dock_opens_the_sample_off_the_gui_thread_one_layer_per_turn(
        make_napari_viewer, qtbot, monkeypatch, insertion_turns, paint_turns):
    import threading

    from qtpy.QtCore import QCoreApplication, QTimer

    import napari_medseg.sample as sample

    read_in = []
    original = sample.load_sample_case
    monkeypatch.setattr(sample, "load_sample_case", lambda *args, **kwargs: (
        read_in.append(threading.current_thread()), original(*args, **kwargs))[1])
    viewer = make_napari_viewer(show=True)
    dock = _dock(viewer)
    section = dock.case_section
    assert section.opener.sample_button.isVisibleTo(dock)  # an empty viewer offers the sample
    inserted, delivered = insertion_turns(viewer)
    painted = paint_turns(viewer)
    layers_after_dims_change = []  # counted on the turn after the dims' change
    viewer.dims.events.ndim.connect(lambda event: QTimer.singleShot(
        0, lambda: layers_after_dims_change.append(len(viewer.layers))))
    with qtbot.waitSignal(section.opener.runner.settled, timeout=30_000):
        section.opener.sample_button.click()
    QCoreApplication.processEvents()  # the last insertion's event
    assert layers_after_dims_change[:1] == [0]  # the sliders (a canvas resize) had a turn
    assert read_in and read_in[0] is not threading.main_thread()  # the files: in a worker
    assert inserted == ["T1", "T1ce", "T2", "FLAIR", "reference"]  # napari's sample command's
    assert delivered == [1, 2, 3, 4, 5]  # each layer in its own event-loop turn
    qtbot.waitUntil(lambda: "paint" in painted[painted.index("+reference"):], timeout=5_000)
    assert all(painted.painted_after_a_timer_turn(name) for name in inserted)  # and its paint
    assert [layer.name for layer in viewer.layers if layer.visible] == ["T1ce", "reference"]
    assert np.abs(viewer.layers["FLAIR"].affine.linear_matrix).sum(0) == pytest.approx(
        (1.5, 1.5, 1.5))  # placed from the file's affine, as napari's command does
    assert section.warnings() == [] and dock.idle()
    assert not section.opener.sample_button.isVisibleTo(dock)  # a case is open: no offer
    for name in ("T1", "T1ce", "T2", "FLAIR"):
        viewer.layers.remove(name)
    assert section.opener.sample_button.isVisibleTo(dock)


def test_dock_opens_a_cases_files_off_the_gui_thread_as_napari_reads_them(
        make_napari_viewer, qtbot, monkeypatch, small_case, tmp_path, insertion_turns):
    import threading

    from qtpy.QtWidgets import QFileDialog

    from napari_medseg import _reader

    write_case(small_case, tmp_path, "c1")
    images, reference = case_files(tmp_path, "c1")
    chosen = [str(path) for path in (*images, reference)]
    read_in = []
    original = _reader.layer_data
    monkeypatch.setattr(_reader, "layer_data", lambda paths: (
        read_in.append(threading.current_thread()), original(paths))[1])
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args: (chosen, ""))
    viewer = make_napari_viewer(show=True)
    section = _dock(viewer).case_section
    opener = section.opener
    inserted, delivered = insertion_turns(viewer)
    with qtbot.waitSignal(opener.runner.settled, timeout=30_000):
        opener.open_files_action.trigger()  # the dialog answers with the case's five files
    assert read_in and read_in[0] is not threading.main_thread()
    assert inserted == ["T1", "T1ce", "T2", "FLAIR", "c1_seg"]
    assert delivered == [1, 2, 3, 4, 5]  # one layer per event-loop turn
    napari_made = original(chosen)[0]
    for layer, (data, kwargs, kind) in zip(viewer.layers, napari_made):
        assert layer._type_string == kind and layer.visible == kwargs.get("visible", True)
        np.testing.assert_array_equal(layer.data, data)
        np.testing.assert_allclose(layer.affine.affine_matrix, kwargs["affine"])
    assert section.warnings() == [] and not opener.isVisibleTo(section)
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    with qtbot.waitSignal(opener.runner.settled, timeout=30_000):
        opener.open_paths([str(bad)], replace=True)
    assert len(viewer.layers) == 5  # the open case stays; nothing half-made
    assert opener.isVisibleTo(section)  # the reason stays in view
    status = opener.status.text()
    assert status.startswith("Opening broken.nii.gz failed: ") and "broken.nii.gz" in status[30:]
    assert "\n" not in status and "Traceback" not in status


def test_opening_a_case_over_another_asks_and_replaces_it_keeping_edits(
        make_napari_viewer, qtbot, monkeypatch, small_case, tmp_path):
    from qtpy.QtWidgets import QFileDialog

    from napari_medseg._qt.case_open import BESIDE, REPLACE, CaseOpener
    from napari_medseg.export import find_recovery

    monkeypatch.setenv("NAPARI_MEDSEG_RECOVERY_DIR", str(tmp_path / "recovery"))
    write_case(small_case, tmp_path, "c1")
    images, reference = case_files(tmp_path, "c1")
    viewer = make_napari_viewer(show=True)
    dock = _dock(viewer)
    opener, section = dock.case_section.opener, dock.case_section
    with qtbot.waitSignal(opener.runner.settled, timeout=30_000):
        opener.open_sample()
    edited = viewer.layers["reference"]
    edited.paint((50, 60, 50), 3)  # an edit not yet autosaved
    identity = dock.export_section.autosave._identity(edited)  # the sample case's key
    asked, answers = [], [None, BESIDE, REPLACE]
    monkeypatch.setattr(CaseOpener, "ask_replace", lambda self: (asked.append(1),
                                                                 answers.pop(0))[1])
    chosen = [str(path) for path in images]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args: (chosen, ""))
    assert opener.open_files_action.trigger() is None and len(asked) == 1  # cancelled
    assert len(viewer.layers) == 5 and not opener.runner.busy
    with qtbot.waitSignal(opener.runner.settled, timeout=30_000):
        opener.open_files_action.trigger()  # beside
    added = ["T1 (c1)", "T1ce (c1)", "T2 (c1)", "FLAIR (c1)"]
    assert [layer.name for layer in viewer.layers][5:] == added  # told apart by the case id
    assert list(section.assignment().values()) == added  # the case just opened, not the first
    assert section.warnings() == []
    with qtbot.waitSignal(opener.runner.settled, timeout=30_000):
        opener.open_files_action.trigger()  # replace: the new case alone, and in the table
    assert [layer.name for layer in viewer.layers] == ["T1", "T1ce", "T2", "FLAIR"]
    assert section.warnings() == [] and len(asked) == 3
    assert viewer.layers["T1"].data.shape == small_case.volume.shape
    recovered = find_recovery(*identity)  # saved as its layer closed
    assert recovered is not None and recovered.load()[50, 60, 50] == 3
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args: ([str(reference)], ""))
    with qtbot.waitSignal(opener.runner.settled, timeout=30_000):
        opener.open_files_action.trigger()  # a segmentation joins the open case: no question
    assert len(asked) == 3 and viewer.layers[-1].name == "c1_seg"


def test_a_case_opened_beside_another_is_the_cases_table_case_without_borrowing(
        make_napari_viewer, qtbot, monkeypatch, small_case, tmp_path):
    """Opened beside the sample, a case with two contrasts is what the Case table shows:
    the other two are missing, never taken from the sample (the model would run on a mix)."""
    from qtpy.QtWidgets import QFileDialog

    from napari_medseg._qt.case_open import BESIDE, CaseOpener

    write_case(small_case, tmp_path, "c1")
    images, _ = case_files(tmp_path, "c1")
    viewer = make_napari_viewer()
    section = _dock(viewer).case_section
    with qtbot.waitSignal(section.opener.runner.settled, timeout=30_000):
        section.opener.open_sample()
    monkeypatch.setattr(CaseOpener, "ask_replace", lambda self: BESIDE)
    two = [str(path) for path in images if "t1" in path.name.lower()]  # T1 and T1ce
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args: (two, ""))
    with qtbot.waitSignal(section.opener.runner.settled, timeout=30_000):
        section.opener.open_files_action.trigger()
    assert section.assignment() == {"T1": "T1 (c1)", "T1ce": "T1ce (c1)", "T2": None,
                                    "FLAIR": None}
    assert any("T2" in warning for warning in section.warnings())
    # the sample's mask still belongs to the sample: its autosave key and export take its
    # own images (on its grid), not the case the table shows
    images = section.images_for(viewer.layers["reference"])
    assert {contrast: layer.name for contrast, layer in images.items()} == {
        "T1": "T1", "T1ce": "T1ce", "T2": "T2", "FLAIR": "FLAIR"}
    section.set_layer_for("T2", "T2")  # the user may still pick across cases by hand
    assert section.assignment()["T2"] == "T2"


def test_replacing_a_case_with_points_on_top_closes_it_without_crashing(
        make_napari_viewer, qtbot, small_case, tmp_path):
    """A case closes from the top of the layer list: closed bottom-up, a Points layer
    (a review case's topology errors) was left drawn alone, and in the stall bench's
    sequence (sample, review case, replace) napari crashed in glDrawArrays (llvmpipe).
    That crash needs more state than this test builds; this checks the order."""
    from napari_medseg.layers import same_placement

    write_case(small_case, tmp_path, "c1")
    images, _ = case_files(tmp_path, "c1")
    viewer = make_napari_viewer(show=True)
    opener = _dock(viewer).case_section.opener
    with qtbot.waitSignal(opener.runner.settled, timeout=30_000):
        opener.open_sample()
    errors = np.argwhere(np.asarray(viewer.layers["reference"].data) == 1)[::50]
    viewer.add_points(errors.astype(float), **same_placement(viewer.layers["T1"]), size=6,
                      face_color="magenta", symbol="ring", name="errors")
    qtbot.wait(300)
    removed = []
    viewer.layers.events.removed.connect(lambda event: removed.append(event.value.name))
    with qtbot.waitSignal(opener.runner.settled, timeout=30_000):
        opener.open_paths([str(path) for path in images], replace=True)
    qtbot.wait(300)  # the paints after the last removal
    assert removed == ["errors", "reference", "FLAIR", "T2", "T1ce", "T1"]  # top first
    assert [layer.name for layer in viewer.layers] == ["T1", "T1ce", "T2", "FLAIR"]


def test_dock_follows_renames_and_manual_picks(viewer_with_sample):
    viewer = viewer_with_sample
    section = _dock(viewer).case_section
    viewer.layers["T2"].name = "mystery volume"
    assert section.assignment()["T2"] is None
    assert any("No layer for T2" in w for w in section.warnings())
    section.set_layer_for("T2", "mystery volume")
    assert section.assignment()["T2"] == "mystery volume"
    assert section.warnings() == []
    table_text = section._table.cellWidget(2, 1).currentText()
    assert table_text == "mystery volume"


def test_case_table_follows_image_data_but_not_a_clicks_points_or_labels(viewer_with_sample):
    """The case table is rebuilt when an image layer gets new data (its shape may change),
    not when a click adds a point or paints labels (that rebuild cost every click about
    17 ms on this CPU, two table rebuilds per Points update)."""
    viewer = viewer_with_sample
    section = _dock(viewer).case_section
    rebuilds = []
    section.assignment_changed.connect(lambda: rebuilds.append(1))
    points = viewer.add_points(np.zeros((0, 3)), name="clicks")
    added = len(rebuilds)  # a new layer: the table is matched again
    points.data = np.array([[10.0, 20.0, 30.0]])
    viewer.layers["reference"].data_setitem((np.array([5]), np.array([5]), np.array([5])), 2)
    viewer.layers["reference"].refresh()
    assert len(rebuilds) == added
    viewer.layers["T2"].data = np.zeros((20, 30, 40), np.float32)
    assert len(rebuilds) > added
    assert any("disagree in shape" in w for w in section.warnings())


def test_dock_warns_when_contrasts_disagree(viewer_with_sample):
    viewer = viewer_with_sample
    section = _dock(viewer).case_section
    viewer.add_image(np.zeros((20, 30, 40), np.float32), name="other_flair", scale=(2, 1, 1))
    section.set_layer_for("FLAIR", "other_flair")
    warnings = section.warnings()
    assert any("disagree in shape" in w for w in warnings)
    assert any("disagree in spacing" in w for w in warnings)
    assert "disagree in shape" in section._status.text()
    viewer.layers.remove("other_flair")
    assert section.assignment()["FLAIR"] == "FLAIR"
    assert section.warnings() == []


def test_files_open_through_plugin_and_bad_file_adds_nothing(make_napari_viewer, tmp_path,
                                                               small_case):
    viewer = make_napari_viewer()
    write_case(small_case, tmp_path, "c2")
    images, reference = case_files(tmp_path, "c2")
    for path in (*images, reference):
        viewer.open(str(path), plugin=PLUGIN)
    assert [layer.name for layer in viewer.layers] == ["T1", "T1ce", "T2", "FLAIR", "c2_seg"]
    assert viewer.layers["c2_seg"].__class__.__name__ == "Labels"
    bad = tmp_path / "damaged_t1.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08 definitely not a volume")
    from napari.utils.notifications import notification_manager

    viewer.open(str(bad), plugin=PLUGIN)
    assert len(viewer.layers) == 5
    last = notification_manager.records[-1]
    assert "damaged_t1.nii.gz" in last.message and "cannot be read" in last.message


def test_labels_writer_round_trip_keeps_geometry(viewer_with_sample, tmp_path):
    viewer = viewer_with_sample
    layer = viewer.layers["reference"]
    layer.data[10, 10, 10] = 2
    out = tmp_path / "edited_seg.nii.gz"
    viewer.layers.selection = {layer}
    written = viewer.layers.save(str(out), selected=True, plugin=PLUGIN)
    assert written == [str(out)]
    labels = read_labels(out)
    np.testing.assert_array_equal(labels.data, layer.data)
    np.testing.assert_allclose(labels.affine, np.asarray(
        layer.metadata["napari_medseg"]["affine"]))


def test_a_model_run_becomes_the_target_of_every_editing_section(sample_dock, qtbot,
                                                                  tiny_model_folder):
    viewer, dock = sample_dock(tiny_model_folder)
    for combo in (dock.refine_section.layer_combo, dock.export_section.layer_combo,
                  dock.topology_section.layer_combo):
        combo.setCurrentText("reference")
    assert dock.model_section.run() is not None
    with qtbot.waitSignal(dock.model_section.runner.settled, timeout=120_000):
        pass
    for combo in (dock.refine_section.layer_combo, dock.export_section.layer_combo,
                  dock.topology_section.layer_combo):
        assert combo.currentText() == "tiny segmentation"
    assert dock.explain_section.reference_combo.currentText().startswith("(none")


def _clipped_cells(table) -> list[str]:
    """Header and cell texts wider than their column (what a user sees cut off)."""
    metrics, clipped = table.fontMetrics(), []
    for column in range(table.columnCount()):
        width = table.columnWidth(column)
        header = table.horizontalHeaderItem(column)
        texts = [header.text()] if header is not None else []
        texts += [table.item(row, column).text() for row in range(table.rowCount())
                  if table.item(row, column) is not None  # a cut text whole in its tooltip
                  and table.item(row, column).toolTip() != table.item(row, column).text()]
        clipped += [text for text in texts if metrics.horizontalAdvance(text) + 6 > width]
    return clipped


def _triage_table(folder, cases: int = 8) -> None:
    """A batch's ranked table (``triage.json``) of ``cases`` finished cases and one that
    failed with a long message, written as ``napari-medseg batch`` writes it."""
    from napari_medseg.cohort._priority import priority_rows, write_table

    rng = np.random.default_rng(0)
    summaries = [{"case_id": f"BraTS-GLI-{index:05d}-000",
                  "epistemic_foreground": float(rng.uniform(1e-4, 1e-3)),
                  "volumes_ml": {"NCR": float(rng.uniform(5, 30)),
                                 "ED": float(rng.uniform(50, 150)),
                                 "ET": float(rng.uniform(5, 20))},
                  "topology_errors": {"WT": int(rng.integers(0, 6))}, "topology_mismatch": []}
                 for index in range(cases)]
    failed = [{"case_id": "BraTS-GLI-99999-000", "error": "t1.nii.gz: has 2 dimensions (10, 10); "
               "napari-medseg reads 3D volumes or 4D stacks of 3D contrasts"}]
    folder.mkdir()
    write_table(folder, priority_rows(summaries, failed), {})


def test_dock_matches_contrasts_fits_1600x1000_and_clips_no_text(make_napari_viewer, qtbot,
                                                                 tmp_path):
    from qtpy.QtWidgets import QScrollArea, QTableWidget

    viewer = make_napari_viewer(show=True)  # a shown window: real layout sizes
    viewer.open_sample(PLUGIN, "brats_like_case")
    dock = _dock(viewer)
    section = dock.case_section
    assert section.assignment() == {"T1": "T1", "T1ce": "T1ce", "T2": "T2", "FLAIR": "FLAIR"}
    assert section.warnings() == []
    assert "ready" in section._status.text()
    viewer.window._qt_window.resize(1600, 1000)
    qtbot.wait(100)
    scroll = dock.findChild(QScrollArea)
    assert scroll.horizontalScrollBar().maximum() == 0
    qtbot.wait(300)  # the settled layout: 100 ms after the resize hid a 2 px overflow
    assert scroll.verticalScrollBar().maximum() == 0  # Case, Model and Refine open: all seen
    _triage_table(tmp_path / "batch")
    assert dock.review_section.open_table(tmp_path / "batch")  # a cohort's table: it scrolls
    for section in dock.sections.values():
        section.expand(animate=False)
    qtbot.wait(100)
    assert scroll.horizontalScrollBar().maximum() == 0
    for table in dock.findChildren(QTableWidget):
        assert table.horizontalScrollBar().maximum() == 0, table.horizontalHeaderItem(0).text()
        assert _clipped_cells(table) == [], table.horizontalHeaderItem(0).text()
    for section in dock.sections.values():
        section.collapse(animate=False)
    qtbot.wait(50)
    assert all(section.content().height() == 0 for section in dock.sections.values())


def test_long_model_names_and_paths_do_not_widen_the_dock(make_napari_viewer, qtbot,
                                                          tmp_path):
    """An nnU-Net folder's name (``Dataset..._Name__Trainer__Plans__3d_fullres``) in the
    model list and its description, or a long export path in a status line, must not
    push the dock wider than the window (it did: the whole dock scrolled sideways)."""
    import shutil

    from qtpy.QtWidgets import QScrollArea

    from napari_medseg.models import builtin_models

    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "brats_like_case")
    dock = _dock(viewer)
    viewer.window._qt_window.resize(1600, 1000)
    long_name = "Dataset991_AVeryLongDatasetNameForTesting__nnUNetTrainer__nnUNetPlans__3d_fullres"
    folder = tmp_path / long_name
    shutil.copytree(builtin_models()["brats_unet"], folder)
    dock.model_section.add_model_folder(folder)
    dock.export_section.status.setText(f"Exported to {tmp_path / long_name / long_name}")
    for section in dock.sections.values():
        section.expand(animate=False)
    qtbot.wait(100)
    scroll = dock.findChild(QScrollArea)
    assert long_name in dock.model_section.model_combo.currentText()
    assert scroll.horizontalScrollBar().maximum() == 0
    assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()
    assert dock.width() < 600  # the dock did not grow to hold them either


def test_dock_warms_first_use_costs_off_the_gui_thread(make_napari_viewer, qtbot):
    import gc

    import pint
    from pint.registry import LazyRegistry

    from napari_medseg._qt import warmup

    viewer = make_napari_viewer()
    viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    qtbot.waitUntil(lambda: "thread" in warmup._state, timeout=10000)  # after the letters
    thread = warmup._state["thread"]
    assert thread.name == "napari-medseg warm-up"
    qtbot.waitUntil(lambda: not thread.is_alive() and warmup._state["done"], timeout=120_000)
    assert set(warmup.MODULES) <= set(sys.modules)
    assert gc.isenabled()  # off while the thread imported (no full collection in it), back on
    registry = pint.get_application_registry()
    assert not isinstance(registry.get(), LazyRegistry)  # built: the first layer skips it
    layer = viewer.add_image(np.zeros((4, 5, 6), np.float32), scale=(2.0, 1.0, 1.0))
    assert all(unit == registry.pixel for unit in layer.units)  # napari's units work with it
    from vispy.visuals.line.dash_atlas import DashAtlas, _make_pattern

    before = _make_pattern.cache_info()
    DashAtlas()  # what the first Labels layer's line visuals build: all cached already
    assert _make_pattern.cache_info().misses == before.misses


def test_a_task_starts_its_work_after_the_warm_up_imports(qtbot, monkeypatch, tmp_path):
    """Explain pressed while the warm-up imported SciPy failed on a fresh install with
    "cannot import name 'euclidean' from partially initialized module
    'scipy.spatial.distance'": two threads importing one package's circle of modules."""
    from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton

    from napari_medseg._qt import warmup
    from napari_medseg._qt.worker import TaskRunner

    (tmp_path / "medseg_slow_import.py").write_text("import time\ntime.sleep(1.0)\n",
                                                     encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(warmup, "_state", {"done": False, "callbacks": []})
    monkeypatch.setattr(warmup, "MODULES", ("medseg_slow_import",))
    for step in ("_build_registry", "_dash_patterns", "_load_torch_library"):
        monkeypatch.setattr(warmup, step, lambda: None)
    warmup.warm_up()
    thread, started, finished = warmup._state["thread"], [], []

    def work():
        started.append(thread.is_alive())
        yield from ()
        return "done"

    runner = TaskRunner(QProgressBar(), QLabel(), QPushButton())
    assert runner.start(work, finished.append, "A task") is not None
    qtbot.waitUntil(lambda: bool(finished) and warmup._state["done"], timeout=20_000)
    assert started == [False] and finished == ["done"]


_OPEN_THE_DOCK = """
import sys
import napari
viewer = napari.Viewer(show=False)
viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
print(sorted(name for name in ("torch", "scipy.stats", "matplotlib") if name in sys.modules))
viewer.close()
"""


@pytest.mark.gui
def test_opening_the_dock_imports_no_torch_scipy_stats_or_matplotlib():
    """The dock opens on the GUI thread in one call: its sections read their choices
    (devices, baselines, rankings, uncertainty methods) and build the Explain chart's
    place without importing torch, SciPy's statistics or matplotlib (3-5 s there); the
    warm-up imports them in a thread afterwards. A fresh process, so nothing is loaded."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", _OPEN_THE_DOCK], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.gui
def test_devices_torch_finds_join_the_device_list_after_the_warm_up(make_napari_viewer, qtbot,
                                                                     monkeypatch):
    from napari_medseg import models

    monkeypatch.setattr(models, "available_devices", lambda: ["cuda", "mps", "cpu"])
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    combo = dock.model_section.device_combo

    def listed() -> list[str]:
        return [combo.itemText(index) for index in range(combo.count())]

    assert listed() == ["auto", "cpu"]  # at once, without asking torch
    qtbot.waitUntil(lambda: combo.count() == 4, timeout=120_000)
    dock.model_section.list_devices()  # again: each is listed once
    assert listed() == ["auto", "cuda", "mps", "cpu"]


_LOAD_THE_LIBRARY = """
import sys
from napari_medseg._qt import warmup
warmup._load_torch_library()
with open("/proc/self/maps") as maps:
    print("torch" in sys.modules, warmup.torch_library().name in maps.read())
import torch
print(float(torch.ones(3).sum()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_the_warm_up_loads_torchs_library_before_torch_and_torch_then_works():
    """The warm-up maps torch's C++ library with a GIL-free dlopen before importing torch
    (BENCHMARKS: the GUI thread's worst gap while torch imports); torch's import then
    uses that library."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", _LOAD_THE_LIBRARY], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "True", "3.0"]



_EXIT_DURING_THE_WARM_UP = """
import atexit
import sys
import time
from qtpy.QtWidgets import QApplication
app = QApplication([])
from napari_medseg._qt import warmup
atexit.register(lambda: print("alive at exit:", warmup._state["thread"].is_alive(), flush=True))
warmup.warm_up()  # its exit handler registers after the probe, so it runs first
time.sleep(float(sys.argv[1]))
sys.exit(0)
"""


@pytest.mark.gui
@pytest.mark.parametrize("seconds", [0.0, 1.0])  # before torch's import; during it (2-core CPU)
def test_a_process_that_exits_during_the_warm_up_exits_cleanly(seconds):
    """napari closed within a second of opening the dock: the process exits while the
    warm-up thread imports. Tearing modules down under torch's import crashed the
    interpreter now and then (status 139); an import that finished during the exit left
    torch's finalizers to run without their module ('Exception ignored in ...') or failed
    to start a thread pool. The exit now stops the warm-up, waits for it, and is silent."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", _EXIT_DURING_THE_WARM_UP, str(seconds)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["alive", "at", "exit:", "False"]
    assert result.stderr == ""


_CLOSE_DURING_EXPLAIN = """
import time
import napari
from qtpy.QtWidgets import QApplication
viewer = napari.Viewer(show=False)
app = QApplication.instance()
dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")[1]
opener = dock.case_section.opener
opener.open_sample()
while opener.runner.busy:
    app.processEvents()
    time.sleep(0.01)
dock.model_section.device_combo.setCurrentText("cpu")
dock.model_section.folds_combo.setCurrentIndex(1)  # one fold: the stop comes sooner
assert dock.explain_section.run() is not None
started = time.perf_counter()
while time.perf_counter() - started < 1.0:
    app.processEvents()
    time.sleep(0.01)
print("running at close:", dock.explain_section.runner.busy, flush=True)
viewer.close()
"""


@pytest.mark.gui
def test_closing_napari_while_a_task_runs_exits_cleanly():
    """napari closed while Explain runs: napari asks the worker to stop but does not wait,
    and Python's teardown deleted the worker's signals under it ('RuntimeError in aborted
    thread' on the terminal). The exit now waits for the task to stop."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", _CLOSE_DURING_EXPLAIN],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["running", "at", "close:", "True"]
    assert "RuntimeError" not in result.stderr and "Traceback" not in result.stderr, \
        result.stderr[-2000:]


def test_a_mask_on_a_moved_contrasts_grid_is_resampled_with_it_and_targeted(
        make_napari_viewer, qtbot, small_case, tmp_path):
    """A reference drawn on a coarser T1 beside finer T1ce, T2 and FLAIR: *Resample onto
    one grid* put the T1 on the T1ce's grid but left the mask on the old one, where
    clicks, topology and export could not use it with the case. Now the mask goes
    with it (nearest neighbour, as nibabel resamples labels), its original hidden, and
    every section that edits, exports or explains against it targets the copy."""
    import nibabel as nib
    from nibabel.processing import resample_from_to

    from napari_medseg.layers import on_same_grid

    write_case(small_case, tmp_path, "c")
    images, seg = case_files(tmp_path, "c")
    for path in (images[0], seg):  # the T1 and its mask at twice the voxel size
        image = nib.load(str(path))
        coarse = nib.Nifti1Image(np.asarray(image.dataobj)[::2, ::2, ::2],
                                 image.affine @ np.diag([2.0, 2.0, 2.0, 1.0]), image.header)
        nib.save(coarse, str(path))
    viewer, dock = _opened_in_dock(make_napari_viewer, qtbot, [*images, seg])
    section = dock.case_section
    mask = next(layer for layer in viewer.layers if layer.__class__.__name__ == "Labels")
    assert "lies on another grid" in section.mask_problem(mask.name)  # clicks refuse it
    assert "Mask" not in section._status.text()  # the status: the contrasts' warning alone
    combos = (dock.refine_section.layer_combo, dock.topology_section.layer_combo,
              dock.export_section.layer_combo, dock.explain_section.reference_combo)
    for combo in combos:
        combo.setCurrentText(mask.name)  # the user picks the reference to correct
    with qtbot.waitSignal(section.opener.runner.settled, timeout=30_000):
        section.resample_button.click()
    moved = viewer.layers[f"{mask.name} resampled"]
    t1ce = viewer.layers[section.assignment()["T1ce"]]
    assert on_same_grid(moved, t1ce) and not mask.visible and moved.visible
    target = nib.load(str(images[1]))
    expected = resample_from_to(nib.load(str(seg)), target, order=0)
    np.testing.assert_array_equal(moved.data, np.asarray(expected.dataobj).transpose(2, 1, 0))
    assert set(np.unique(moved.data)) == set(np.unique(small_case.labels.data))
    assert moved.metadata["napari_medseg"]["resampled_from"] == mask.name
    np.testing.assert_allclose(moved.metadata["napari_medseg"]["affine"], target.affine)
    assert [combo.currentText() for combo in combos] == [moved.name] * 4
    assert list(dock.export_section._case.images_for(moved).values()) == \
        [viewer.layers[name] for name in section.assignment().values()]
    dock.export_section.layer_combo.setCurrentText(mask.name)  # the original picked again:
    dock.export_section.folder_edit.setText(str(tmp_path / "out"))  # it would pair with T1
    assert dock.export_section.export() is None and not (tmp_path / "out").exists()
    assert f"its copy on the case's grid is '{moved.name}'" in dock.export_section.status.text()


def test_a_mask_of_the_cases_shape_stored_lps_is_refused_until_resampled(
        make_napari_viewer, qtbot, small_case, tmp_path):
    """A reference stored LPS beside RAS contrasts of its shape is drawn aligned, but its
    voxels are mirrored against theirs: clicks and Explain read it silently beside the
    images. Now the Case section says so and offers *Resample onto one grid*; clicks
    and Explain refuse it until then, and the resampled copy holds the RAS voxels."""
    import nibabel as nib

    from tests.test_regrid import _stored_lps

    write_case(small_case, tmp_path, "c")
    images, seg = case_files(tmp_path, "c")
    lps = _stored_lps(seg, tmp_path / "c_seg_lps.nii.gz")
    viewer, dock = _opened_in_dock(make_napari_viewer, qtbot, [*images, lps])
    section = dock.case_section
    mask = viewer.layers["c_seg_lps"]
    assert section.warnings() == []  # the contrasts agree: a model may run
    problem = section.mask_problem(mask.name)
    assert problem is not None and "mirrored" in problem and "Resample" in problem
    assert problem in section._status.text() and section.resample_button.isVisibleTo(section)
    dock.refine_section.layer_combo.setCurrentText(mask.name)
    assert dock.refine_section._session_factory(mask, 2) is None
    dock.explain_section.reference_combo.setCurrentText(mask.name)
    assert dock.explain_section.run() is None
    with qtbot.waitSignal(section.opener.runner.settled, timeout=30_000):
        section.resample_button.click()
    moved = viewer.layers[f"{mask.name} resampled"]
    np.testing.assert_array_equal(moved.data,
                                  np.asarray(nib.load(str(seg)).dataobj).transpose(2, 1, 0))
    assert section.mask_problem(moved.name) is None
    assert section.mask_problem(mask.name) is not None  # the original, if picked again
    assert "Mask" not in section._status.text()  # but it has its copy: no warning
    assert not section.resample_button.isVisibleTo(section) and not mask.visible
    assert dock.refine_section.layer_combo.currentText() == moved.name
    assert dock.explain_section.reference_combo.currentText() == moved.name
    assert [layer.name for layer in viewer.layers if "resampled" in layer.name] == [moved.name]


def test_a_reference_cropped_to_a_box_is_offered_resampling_into_the_cases_grid(
        make_napari_viewer, qtbot, small_case, tmp_path):
    """A reference saved cropped to a box around the tumour (another shape, on no
    contrast's grid) was refused by clicks for its shape, with no way on in the dock.
    Now the Case section names it and *Resample onto one grid* puts it into the case's
    grid, as nibabel resamples it, background around the box."""
    import nibabel as nib
    from nibabel.processing import resample_from_to

    from napari_medseg.layers import same_placement

    write_case(small_case, tmp_path, "c")
    images, seg = case_files(tmp_path, "c")
    cropped = tmp_path / "c_seg_box.nii.gz"
    nib.save(nib.load(str(seg)).slicer[4:-3, 5:-2, 2:-4], str(cropped))
    viewer, dock = _opened_in_dock(make_napari_viewer, qtbot, [*images, cropped])
    section = dock.case_section
    mask = viewer.layers["c_seg_box"]
    problem = section.mask_problem(mask.name)
    assert problem is not None and "lies on another grid than the contrasts" in problem
    t1 = viewer.layers[section.assignment()["T1"]]  # a script's mask over the case, with
    drawn = np.zeros(t1.data.shape, np.uint8)  # no file affine (drawn on: not adopted as
    drawn[1, 1, 1] = 1  # an empty new layer is): it stays as it is
    script = viewer.add_labels(drawn, name="by a script", **same_placement(t1))
    assert section.mask_problem(script.name) is None
    assert problem in section._status.text() and section.resample_button.isVisibleTo(section)
    assert dock.refine_section._session_factory(mask, 2) is None
    with qtbot.waitSignal(section.opener.runner.settled, timeout=30_000):
        section.resample_button.click()
    moved = viewer.layers[f"{mask.name} resampled"]
    expected = resample_from_to(nib.load(str(cropped)), nib.load(str(images[0])), order=0)
    np.testing.assert_array_equal(moved.data, np.asarray(expected.dataobj).transpose(2, 1, 0))
    assert moved.data.any() and section.mask_problem(moved.name) is None
    assert "Mask" not in section._status.text() and not mask.visible
    assert "by a script resampled" not in viewer.layers and script.visible


def test_contrasts_stored_lps_and_ras_are_refused_until_resampled_onto_one_grid(
        make_napari_viewer, qtbot, small_case, tmp_path):
    """A FLAIR stored LPS beside RAS scans of one shape and spacing showed as ready: the
    model would have read mirrored voxels. Now the table says so, and the button puts
    it on the others' grid (exactly: the grids share voxels)."""
    import nibabel as nib

    from tests.test_regrid import _stored_lps

    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    mixed = [*images[:3], _stored_lps(images[3], tmp_path / "c_flair_lps.nii.gz")]
    viewer = make_napari_viewer()
    section = _dock(viewer).case_section
    with qtbot.waitSignal(section.opener.runner.settled, timeout=30_000):
        section.opener.open_paths([str(p) for p in mixed])
    warnings = section.warnings()
    assert len(warnings) == 1 and "lie on different grids" in warnings[0]
    assert "T1, T1ce, T2 RAS at" in warnings[0] and "; FLAIR LPS at" in warnings[0]
    assert section.resample_button.isVisibleTo(section)
    original = viewer.layers[section.assignment()["FLAIR"]]
    with qtbot.waitSignal(section.opener.runner.settled, timeout=30_000):
        section.resample_button.click()
    assert section.warnings() == [] and not section.resample_button.isVisibleTo(section)
    resampled = viewer.layers[section.assignment()["FLAIR"]]
    assert resampled.name == f"{original.name} resampled" and not original.visible
    row = section.contrasts.index("FLAIR")
    assert section._table.cellWidget(row, 1).toolTip() == resampled.name  # if it is elided
    ras_flair = np.asarray(nib.load(str(images[3])).dataobj).transpose(2, 1, 0)
    np.testing.assert_array_equal(resampled.data, ras_flair)
    t1 = viewer.layers[section.assignment()["T1"]]
    np.testing.assert_allclose(resampled.affine.affine_matrix, t1.affine.affine_matrix)


def _opened_in_dock(make_napari_viewer, qtbot, files: list) -> tuple:
    """A viewer and its dock, with ``files`` opened by the dock's Open menu."""
    viewer = make_napari_viewer()
    dock = _dock(viewer)
    with qtbot.waitSignal(dock.case_section.opener.runner.settled, timeout=30_000):
        dock.case_section.opener.open_paths([str(path) for path in files])
    return viewer, dock
