"""GUI: the review queue opens batch results by priority and records reviews."""
from __future__ import annotations

import pytest

from napari_medseg.cohort import run_batch
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case, write_case

pytestmark = pytest.mark.gui


@pytest.mark.slow
def test_review_queue_opens_cases_by_priority(make_napari_viewer, qtbot, tmp_path,
                                              coarse_model_folder):
    for index in range(2):
        write_case(generate_case(60 + index, spacing=4.0), tmp_path / "in" / f"c{index}",
                   f"c{index}")
    report = run_to_end(run_batch(tmp_path / "in", tmp_path / "out",
                                  model=str(coarse_model_folder), scheduler="serial", samples=2))
    first, second = (row["case_id"] for row in report.rows)
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    section = dock.review_section
    assert section.open_table(tmp_path / "out") and section.table.rowCount() == 2
    worker = section.open_next()
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        pass
    assert section.current == first
    assert f"{first} segmentation" in viewer.layers and f"{first} epistemic" in viewer.layers
    assert {"T1", "T1ce", "T2", "FLAIR"} <= {layer.name for layer in viewer.layers}
    assert dock.case_section.warnings() == []  # ready for the model, refinement and export
    section.mark_current_reviewed()
    assert section.table.item(0, 4).text() == "yes"
    worker = section.open_next()
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        pass
    assert section.current == second and f"{first} segmentation" not in viewer.layers
    section.mark_current_reviewed()
    assert section.open_next() is None and "Every finished case" in section.status.text()
