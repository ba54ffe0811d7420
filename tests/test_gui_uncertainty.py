"""GUI: the Uncertainty section adds maps, fills the table and suggests clicks."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_uncertainty_section_end_to_end(sample_dock, qtbot, coarse_model_folder):
    viewer, dock = sample_dock(coarse_model_folder)
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
    with qtbot.waitSignal(section.runner.settled, timeout=60_000):
        assert section.suggest() is not None  # in a worker: the GUI stays live
    suggestions = section.suggestions
    points = viewer.layers["suggested clicks"]
    assert len(points.data) == len(suggestions) > 0
    section.suggestion_list.setCurrentRow(0)
    world = viewer.layers["uncertainty total"].data_to_world(suggestions[0]["point"])
    assert viewer.dims.point[0] == pytest.approx(world[0], abs=1.5)
    # a click placed in the first region: the next suggestions skip it
    viewer.add_points(np.array([world], float), name="clicks")  # in world coordinates
    with qtbot.waitSignal(section.runner.settled, timeout=60_000):
        section.suggest()
    assert section.suggestions[0]["point"] != suggestions[0]["point"]
