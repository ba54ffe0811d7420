"""GUI: the review queue opens batch results by priority and records reviews."""
from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QCoreApplication

from napari_medseg.cohort import run_batch
from napari_medseg.export import find_recovery
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case, write_case

pytestmark = pytest.mark.gui


@pytest.mark.slow
def test_review_queue_opens_cases_by_priority(make_napari_viewer, qtbot, tmp_path,
                                              coarse_model_folder, insertion_turns,
                                              monkeypatch):
    import threading

    from napari_medseg import layers

    built_in = []  # the threads that make the layers' data (display limits, fingerprints)
    original = layers.volume_layers
    monkeypatch.setattr(layers, "volume_layers", lambda volume, **kw: (
        built_in.append(threading.current_thread()), original(volume, **kw))[1])
    for index in range(2):
        write_case(generate_case(60 + index, spacing=4.0), tmp_path / "in" / f"c{index}",
                   f"c{index}")
    report = run_to_end(run_batch(tmp_path / "in", tmp_path / "out",
                                  model=str(coarse_model_folder), scheduler="serial", samples=2))
    first, second = (row["case_id"] for row in report.rows)
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((4, 4, 4)), name="open before the queue")  # stays throughout
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    section = dock.review_section
    assert section.table.isHidden()  # no table loaded: no empty frame
    assert not section.next_button.isEnabled() and not section.reviewed_button.isEnabled()
    assert section.open_table(tmp_path / "out") and section.table.rowCount() == 2
    assert not section.table.isHidden() and section.next_button.isEnabled()
    assert not section.reviewed_button.isEnabled()  # no case of the queue open yet
    inserted, delivered = insertion_turns(viewer)  # each insertion's event: before the next?
    assert section.open_next() is not None
    with qtbot.waitSignal(section.runner.settled, timeout=30_000):
        pass
    QCoreApplication.processEvents()  # the last insertion's event
    assert section.current == first and section.reviewed_button.isEnabled()
    assert built_in and threading.main_thread() not in built_in
    # each layer in its own event-loop turn: napari answered input and painted in between
    assert len(inserted) >= 6 and delivered == list(range(1, len(inserted) + 1)), inserted
    assert dock.case_section.warnings() == []  # ready for the model, refinement and export
    # Refine's auto on the case's mask: the click network, as the mask's model has its labels
    refine, segmentation = dock.refine_section, viewer.layers[f"{first} segmentation"]
    assert refine.layer_combo.currentText() == segmentation.name
    session = refine._session_factory(segmentation, 2)()
    assert session.engine_name.startswith("learned")
    segmentation.paint((1, 1, 1), 3)  # an edit the timer has not saved yet
    identity = dock.export_section.autosave._identity(segmentation)
    # what the review of this case made goes with it: a model run's output, click points
    before_run = {layer.name for layer in viewer.layers}
    dock.model_section.add_model_folder(coarse_model_folder)
    dock.model_section.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(dock.model_section.runner.settled, timeout=60_000):
        assert dock.model_section.run() is not None
    made = {layer.name for layer in viewer.layers} - before_run
    assert any("segmentation" in name for name in made), made
    made.add(viewer.add_points(np.zeros((1, 3)), name="clicks").name)
    section.mark_current_reviewed()
    assert section.table.item(0, 4).text() == "yes"
    # the old case's layers go one per turn too (napari collects garbage on each removal)
    removed, removals_seen = insertion_turns(viewer, "removed")
    assert section.open_next() is not None
    with qtbot.waitSignal(section.runner.settled, timeout=30_000):
        pass
    QCoreApplication.processEvents()
    assert section.current == second and f"{first} segmentation" not in viewer.layers
    assert not made & {layer.name for layer in viewer.layers}  # nothing of the first case
    assert "open before the queue" in viewer.layers
    assert len(removed) >= 6 and removals_seen == list(range(1, len(removed) + 1)), removed
    recovered = find_recovery(*identity)  # offered again when that case reopens
    assert recovered is not None and recovered.load()[1, 1, 1] == 3
    section.mark_current_reviewed()
    assert section.open_next() is None and "Every finished case" in section.status.text()
