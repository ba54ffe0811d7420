"""GUI: the Uncertainty section adds maps, fills the table and suggests clicks."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_uncertainty_section_end_to_end(sample_dock, qtbot, coarse_model_of_other_labels,
                                       monkeypatch):
    import threading

    from napari_medseg import layers as layer_module

    built_in = []  # the threads that stack the case (a 240x240x155 case: 40-460 ms)
    original = layer_module.volume_builder
    monkeypatch.setattr(layer_module, "volume_builder", lambda images, **options: (
        lambda build: lambda: (built_in.append(threading.current_thread()), build())[1])(
            original(images, **options)))
    viewer, dock = sample_dock(coarse_model_of_other_labels)
    section = dock.uncertainty_section
    section.method_boxes["tta"].setChecked(True)
    section.samples.setValue(2)
    assert section.run() is not None
    with qtbot.waitSignal(section.runner.settled, timeout=180_000):
        pass
    for name in ("total", "aleatoric", "epistemic"):
        layer = viewer.layers[f"uncertainty {name}"]
        assert layer.data.shape == viewer.layers["T1"].data.shape
    assert section.result.method == "mc+tta" and section.result.n_samples == 2
    assert section.table.rowCount() == 5 and section.table.item(3, 0).text() == "WT"
    runs = len(built_in)
    assert section.suggestion_list.isHidden()  # no suggestions yet: no empty frame
    with qtbot.waitSignal(section.runner.settled, timeout=60_000):
        assert section.suggest() is not None  # in a worker: the GUI stays live
    assert len(built_in) > runs and threading.main_thread() not in built_in
    assert "(uncertainty maps)" in section.status.text()  # labels the click network lacks
    suggestions = section.suggestions
    points = viewer.layers["suggested clicks"]
    assert len(points.data) == len(suggestions) == section.suggestion_list.count() > 0
    assert not section.suggestion_list.isHidden()
    section.suggestion_list.setCurrentRow(0)
    world = viewer.layers["uncertainty total"].data_to_world(suggestions[0]["point"])
    assert viewer.dims.point[0] == pytest.approx(world[0], abs=1.5)
    # a click placed in the first region: the next suggestions skip it
    viewer.add_points(np.array([world], float), name="clicks")  # in world coordinates
    with qtbot.waitSignal(section.runner.settled, timeout=60_000):
        section.suggest()
    assert section.suggestions[0]["point"] != suggestions[0]["point"]


@pytest.mark.slow
def test_after_a_model_run_suggestions_come_from_the_click_networks_second_opinion(
        sample_dock, qtbot):
    """No uncertainty run needed: the click network, shown the model's mask without a
    click, marks where it would change it; the suggestions point at model errors."""
    viewer, dock = sample_dock()  # the built-in model, whose labels the click network knows
    dock.model_section.device_combo.setCurrentText("cpu")
    dock.model_section.folds_combo.setCurrentIndex(1)  # its first fold: a third of the time
    assert dock.model_section.run() is not None
    with qtbot.waitSignal(dock.model_section.runner.settled, timeout=180_000):
        pass
    section = dock.uncertainty_section
    assert section.result is None
    with qtbot.waitSignal(section.runner.settled, timeout=120_000):
        assert section.suggest() is not None
    assert "click network" in section.status.text()
    mask = np.asarray(viewer.layers["brats_unet segmentation"].data)
    reference = np.asarray(viewer.layers["reference"].data)
    first = section.suggestions[:5]
    assert len(first) == 5 and len(viewer.layers["suggested clicks"].data) >= 5
    wrong = [mask[s["point"]] != reference[s["point"]] for s in first]
    assert sum(wrong) >= 3, first  # most point at a voxel the model got wrong
    for item, is_wrong in zip(first, wrong):  # and the sign is the fix's sign there
        if is_wrong:
            assert item["positive"] == (reference[item["point"]] == item["label"])


def test_one_cases_figures_are_dropped_when_another_case_opens(
        sample_dock, qtbot, coarse_model_folder, small_case, tmp_path):
    """Uncertainty maps and Shapley values belong to the case they were computed on: the
    next case opened in its place must not get its suggestions from them, nor its maps."""
    from napari_medseg._qt.explain_section import STALE as EXPLAIN_STALE
    from napari_medseg._qt.uncertainty_section import STALE
    from napari_medseg.sample import case_files, write_case

    viewer, dock = sample_dock(coarse_model_folder)
    dock.model_section.folds_combo.setCurrentIndex(1)  # one fold: half the coalition runs
    uncertainty, explain = dock.uncertainty_section, dock.explain_section
    uncertainty.method_boxes["tta"].setChecked(True)
    uncertainty.method_boxes["mc"].setChecked(False)
    uncertainty.samples.setValue(2)
    with qtbot.waitSignal(uncertainty.runner.settled, timeout=180_000):
        assert uncertainty.run() is not None
    with qtbot.waitSignal(explain.runner.settled, timeout=180_000):
        assert explain.run() is not None
    viewer.add_points(np.zeros((1, 3)), name="clicks")  # the same case: figures kept
    assert uncertainty.result is not None and explain.result is not None
    assert uncertainty.table.isVisibleTo(uncertainty) and explain.maps_button.isEnabled()
    explained, maps = explain.result, explain.result.targets["ED"].maps
    write_case(small_case, tmp_path, "c1")
    images, _ = case_files(tmp_path, "c1")
    opener = dock.case_section.opener
    with qtbot.waitSignal(opener.runner.settled, timeout=60_000):
        opener.open_paths([str(path) for path in images], replace=True)  # the next case
    assert viewer.layers["T1"].data.shape == small_case.volume.shape
    assert uncertainty.result is None and uncertainty.suggestions == []
    assert not uncertainty.table.isVisibleTo(uncertainty) and uncertainty.status.text() == STALE
    assert explain.result is None and explain.status.text() == EXPLAIN_STALE
    assert not explain.maps_button.isEnabled() and explain.add_maps() is False
    # maps resampled in a worker that ends after the next case opened: not shown
    assert "another case" in explain._map_layers(explained, "ED", maps, 1.0)
    assert not any(layer.name.startswith("shapley") for layer in viewer.layers)
    assert explain.table.rowCount() == 0 and explain.chart.hint.isVisibleTo(explain)
    assert not explain.table.isVisibleTo(explain)  # no empty frame left four rows high
    assert uncertainty.suggest() is None  # no model output, no maps: nothing to go on
    with qtbot.waitSignal(explain.runner.settled, timeout=180_000):
        assert explain.run() is not None  # this case's figures, in the chart's place again
    assert explain.result is not None and not explain.chart.hint.isVisibleTo(explain)
    assert explain.table.isVisibleTo(explain) and explain.table.rowCount() == 4
    assert len(explain.chart.axes.patches) == len(explain.result.contrasts)


def test_flips_sample_the_fold_the_model_section_runs(sample_dock, qtbot, coarse_model_folder):
    """With one fold chosen in the Model section, flip TTA samples that fold (the model
    whose prediction is on screen), as the library does for that fold alone."""
    from napari_medseg.layers import volume_builder
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end
    from napari_medseg.uncertainty import estimate_uncertainty

    viewer, dock = sample_dock(coarse_model_folder)
    dock.model_section.folds_combo.setCurrentIndex(2)  # the second fold alone
    section = dock.uncertainty_section
    section.method_boxes["mc"].setChecked(False)
    section.method_boxes["tta"].setChecked(True)
    section.samples.setValue(2)
    assert section.run() is not None
    with qtbot.waitSignal(section.runner.settled, timeout=180_000):
        pass
    volume = volume_builder(dock.case_section.assigned_layers(), stored_types=True)()
    shown = np.asarray(viewer.layers["uncertainty total"].data)
    for fold, same in ((1, True), (0, False)):
        total = run_to_end(estimate_uncertainty(load_model(coarse_model_folder, folds=[fold]),
                                                volume, "tta", 2, device="cpu")).maps["total"]
        assert np.allclose(shown, total, atol=1e-6) == same, fold


@pytest.mark.parametrize("name", ["uncertainty", "explain"])
def test_a_run_whose_case_is_replaced_leaves_no_maps_on_the_next_case(
        sample_dock, coarse_model_folder, monkeypatch, hold_after_last_report,
        replace_case_while, name):
    """The case replaced while its uncertainty or Explain run works: the run stops (Explain
    would hold both cores for minutes), and maps already on their way are not added over
    the case opened in its place (they lay there in the old case's place, looking like
    its own)."""
    import napari_medseg.uncertainty
    from napari_medseg._qt import worker

    viewer, dock = sample_dock(coarse_model_folder)
    section = getattr(dock, f"{name}_section")
    held = name == "uncertainty"
    if held:  # its result already sent as the case closes: dropped
        section.method_boxes["tta"].setChecked(True)
        section.samples.setValue(2)
        hold_after_last_report(napari_medseg.uncertainty, "estimate_uncertainty")
        monkeypatch.setattr(worker, "stop_when_case_closes", lambda *args: None)
        expected = "Uncertainty: its case was closed while it ran, nothing added"
    else:  # stopped at its next report
        expected = "Explain: stopped, its case was closed while it ran, nothing changed"
    replace_case_while(dock, section.runner, section.run, held)
    assert [layer.name for layer in viewer.layers] == ["T1", "T1ce", "T2", "FLAIR"]
    assert section.status.text() == expected and section.result is None


def test_suggestions_found_for_a_case_replaced_meanwhile_are_not_shown(
        sample_dock, qtbot, coarse_model_of_other_labels, monkeypatch, hold_after_last_report,
        replace_case_while):
    """Suggested clicks arriving after the next case opened in their case's place (too late
    to stop them) are dropped: their points would sit on the new case's grid."""
    import napari_medseg.interactive
    from napari_medseg._qt import uncertainty_section as module
    from napari_medseg._qt import worker

    viewer, dock = sample_dock(coarse_model_of_other_labels)
    section = dock.uncertainty_section
    section.method_boxes["tta"].setChecked(True)
    section.method_boxes["mc"].setChecked(False)
    section.samples.setValue(2)
    with qtbot.waitSignal(section.runner.settled, timeout=180_000):
        assert section.run() is not None
    hold_after_last_report(napari_medseg.interactive, "suggestion_map")
    monkeypatch.setattr(worker, "stop_when_case_closes", lambda *args: None)
    replace_case_while(dock, section.runner, section.suggest, held=True)
    assert section.status.text() == module.STALE_SUGGESTIONS and section.suggestions == []
    assert module.SUGGESTIONS_NAME not in viewer.layers
