"""GUI: the Explain section shows chart, table, agreement and voxel maps."""
from __future__ import annotations

import numpy as np
import pytest

from napari_medseg.labels import BRATS_LABELS

pytestmark = pytest.mark.gui


@pytest.mark.slow
def test_explain_section_end_to_end(sample_dock, qtbot, coarse_model_folder, insertion_turns):
    viewer, dock = sample_dock(coarse_model_folder)
    section = dock.explain_section
    assert section.reference_combo.currentText().startswith("(none")  # never a name guess
    assert "run the model once" in section.estimate.text()
    assert section.chart.axes is None and section.chart.hint.isVisibleTo(section)  # no plot yet
    assert dock.model_section.run() is not None
    with qtbot.waitSignal(dock.model_section.runner.settled, timeout=180_000):
        pass
    seconds = dock.model_section.last_run.seconds
    assert f"{seconds:.1f} s" in section.estimate.text()  # 15 x a short run: under a minute
    other = "float32" if dock.model_section.last_run.precision != "float32" else "bfloat16"
    dock.model_section.precision_combo.setCurrentText(other)  # that run says nothing of it
    assert "run the model once" in section.estimate.text()
    dock.model_section.precision_combo.setCurrentText("auto")
    assert f"{seconds:.1f} s" in section.estimate.text()
    section.reference_combo.setCurrentText("reference")
    worker = section.run()
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    result = section.result
    assert result is not None and result.value == "dice_vs_reference"
    # the next estimate uses what this Explain measured, in model runs of this model
    ratio = section._measured_ratio[(coarse_model_folder, "cpu", "auto")]
    assert 1 < ratio < 60
    assert f"{ratio:.1f} \u00d7 the last model run, {seconds:.1f} s" in section.estimate.text()
    assert "as the last Explain of this model measured" in section.estimate.text()
    section.target_combo.setCurrentText("ED")
    target = result.targets["ED"]
    bars = [patch.get_height() for patch in section.chart.axes.patches]
    np.testing.assert_allclose(bars, target.phi, atol=1e-12)
    assert section.table.item(3, 0).text() == "FLAIR"
    assert float(section.table.item(3, 1).text()) == pytest.approx(target.phi[3], abs=1e-4)
    assert "NSF" in section.summary.text()
    # the user edits the clinician ranking: a duplicate rank is flagged, a fix recomputes NSF
    section.table.item(0, 4).setText("1")
    assert "not a permutation" in section.summary.text()
    section.table.item(0, 4).setText("3")
    assert "NSF" in section.summary.text() and "\u26a0" not in section.summary.text()
    names = [f"shapley ED {c}" for c in result.contrasts]
    inserted, delivered = insertion_turns(viewer)
    assert section.add_maps()  # resampled to the case grid in a worker, then added
    assert names[0] not in viewer.layers and section.runner.busy
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=10_000)
    assert inserted == names and delivered == [1, 2, 3, 4]  # one layer per turn
    assert section.add_maps()  # again: the maps are replaced, not doubled
    qtbot.waitUntil(lambda: not section.runner.busy, timeout=10_000)
    assert [layer.name for layer in viewer.layers if layer.name.startswith("shapley")] == names
    layers = [viewer.layers[name] for name in names]
    low, high = layers[0].contrast_limits
    assert low == pytest.approx(-high) and high == pytest.approx(np.abs(target.maps).max())
    assert layers[0].data.shape == viewer.layers["T1"].data.shape
    # diverging and clear at zero: the anatomy shows wherever a contrast does not matter
    colours = layers[0].colormap.map(np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert colours[2, 3] == 0 and colours[0, 3] == colours[4, 3] == 1
    assert colours[0, 2] > colours[0, 0] and colours[4, 0] > colours[4, 1]  # blue -, magenta +
    # no end of the map looks like a label drawn over the same anatomy
    labels = np.array([info.color[:3] for info in BRATS_LABELS])
    for colour in colours[[0, 1, 3, 4], :3]:
        assert np.linalg.norm(labels - colour, axis=1).min() > 0.4


@pytest.mark.slow
def test_explain_explains_the_folds_the_model_ran(sample_dock, qtbot, coarse_model_folder):
    """With one fold chosen in the Model section, Explain explains that fold's prediction
    (the layer on screen), says so before it runs, and has no rank variance to show."""
    viewer, dock = sample_dock(coarse_model_folder)
    models, section = dock.model_section, dock.explain_section
    models.folds_combo.setCurrentIndex(2)  # the second fold alone
    fold_name = models.folds_combo.currentText()
    assert f"Explains {fold_name} alone" in section.estimate.text()
    assert models.run() is not None
    with qtbot.waitSignal(models.runner.settled, timeout=180_000):
        pass
    shown = [layer.name for layer in viewer.layers if layer.name.endswith("segmentation")][-1]
    section.reference_combo.setCurrentText(shown)  # values: Dice against the fold's output

    def explain():
        worker = section.run()
        with qtbot.waitSignal(worker.finished, timeout=180_000):
            pass
        return section.result

    result = explain()
    assert result.model["folds"] == 1
    assert f"{models.last_run.seconds:.1f} s" in section.estimate.text()  # not scaled
    present = set(np.unique(viewer.layers[shown].data)) - {0}
    explained = [t for t in result.targets.values() if set(t.labels) & present]
    assert explained and all(t.value_all == pytest.approx(1.0) for t in explained)
    section.target_combo.setCurrentText(explained[0].name)
    assert "one fold: no rank variance" in section.summary.text()
    models.folds_combo.setCurrentIndex(0)  # every fold: a different prediction is explained
    assert "scaled to 2" in section.estimate.text()
    ensemble = explain()
    assert ensemble.model["folds"] == 2
    assert min(ensemble.targets[t.name].value_all for t in explained) < 0.999
    assert "rank variance across 2 folds" in section.summary.text()
