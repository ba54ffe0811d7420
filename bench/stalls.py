"""Worst GUI stall per dock action, measured by a timer-tick probe (run under Xvfb).

A QTimer ticks every 5 ms on the GUI thread; the longest gap between two
ticks while an action runs (from the button press until its result is in
the layers and the section is idle) is the longest the user saw napari
frozen. Actions, in the order a user takes them on the sample case: open
the sample, run the built-in model, *Start clicking* and one refinement click,
a topology check and a one-click fix, MC-dropout uncertainty and suggestions,
Explain and its voxel maps, the view convention switched, NIfTI and nnU-Net
exports, and
the review queue's "Open next" on a two-case batch output, twice (the second
replaces the first case's layers), and a 240x240x155 case's four files opened
with the dock's Open menu (replacing the open case, as for the next case to
annotate), its model run, clicks and suggested clicks, the case again with its
FLAIR stored LPS and *Resample onto one grid*, then with napari's File > Open
(one call, beside them). First of
all, the dock itself opens (Plugins > MedSeg), measured until its letters are
in and its warm-up (imports in a thread) is done. The
sample opens with the dock's button (``--sample-from napari``: napari's
File > Open Sample, which builds its layers in one call).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/stalls.py \
        --json bench/results/stalls.json
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# a pip-installed package has its .pyc files (main() compiles them as pip does): compiling
# napari-medseg's modules on first import (PYTHONDONTWRITEBYTECODE=1 here, or a module just
# edited) would add 40-90 ms to the first action using them
sys.dont_write_bytecode = False

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, stored_lps, write_json  # noqa: E402

GOAL_MS = 200.0


class StallProbe:
    """Longest gap between ticks of a 5 ms timer on the GUI thread."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.last, self.worst = 0.0, 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst, self.last = max(self.worst, now - self.last), now

    def measure(self, app, action, done, settle: float = 0.3) -> float:
        """Run ``action()``, pump events until ``done()``, then ``settle`` s more: worst gap."""
        self.last, self.worst = time.perf_counter(), 0.0
        self.timer.start()
        action()
        started = time.perf_counter()
        while not done():
            app.processEvents()
            time.sleep(0.001)
            if time.perf_counter() - started > 600:
                raise TimeoutError("the dock did not finish in time")
        ended = time.perf_counter()
        while time.perf_counter() - ended < settle:
            app.processEvents()
            time.sleep(0.001)
        self._tick()
        self.timer.stop()
        return self.worst * 1000.0


def _brats_sized_files(folder: Path) -> list[str]:
    """A 240x240x155 case's four contrasts as int16 NIfTI files (what an annotator opens)."""
    from _common import brats_sized_case

    from napari_medseg.io._nifti import write_nifti

    volume = brats_sized_case(9100)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, name in enumerate(volume.channel_names):
        paths.append(str(folder / f"case9100_{name.lower()}.nii.gz"))
        write_nifti(Path(paths[-1]), np.round(volume.data[index]).astype(np.int16),
                    volume.affine)
    return paths


def _stored_lps(path: str) -> str:
    """The file of the same scan with its voxels stored LPS (`_common.stored_lps`)."""
    import nibabel as nib

    out = path.replace("_flair.nii.gz", "_lps_flair.nii.gz")
    nib.save(stored_lps(nib.load(path)), out)
    return out


def _batch_output(folder: Path) -> Path:
    from napari_medseg.cohort import run_batch
    from napari_medseg.progress import run_to_end
    from napari_medseg.sample import generate_case, write_case

    for index in range(2):
        write_case(generate_case(70 + index, spacing=1.5), folder / "in" / f"c{index}",
                   f"c{index}")
    run_to_end(run_batch(folder / "in", folder / "out", scheduler="serial", samples=2))
    return folder / "out"


def _idle(app, seconds: float) -> None:
    """Let the event loop run ``seconds`` with no action (the user looking)."""
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="bench/results/stalls.json")
    parser.add_argument("--sample-from", choices=("dock", "napari"), default="dock",
                        help="open the sample with the dock's button (read in a worker, one "
                             "layer per turn) or napari's File > Open Sample (one call)")
    args = parser.parse_args()
    import compileall
    import os

    import napari_medseg

    compileall.compile_dir(Path(napari_medseg.__file__).parent, quiet=1)

    os.environ["NAPARI_MEDSEG_RECOVERY_DIR"] = tempfile.mkdtemp()
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_medseg.interactive import robot_click

    scratch = Path(tempfile.mkdtemp())
    queue = _batch_output(scratch)  # before the viewer: not part of any measured action
    case_files = _brats_sized_files(scratch / "brats_sized")
    mixed_files = [*case_files[:3], _stored_lps(case_files[3])]
    from napari_medseg._qt import warmup

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    app, probe, stalls, opened = QApplication.instance(), StallProbe(), {}, {}
    _idle(app, 3.0)  # napari settles; the user finds the Plugins menu
    stalls["open the dock (Plugins > MedSeg), its letters and warm-up"] = probe.measure(
        app, lambda: opened.update(dock=viewer.window.add_plugin_dock_widget(
            "napari-medseg", "MedSeg")[1]), lambda: warmup._state["done"])
    dock = opened["dock"]
    _idle(app, 2.0)  # the user finds the sample button
    opener = dock.case_section.opener
    if args.sample_from == "dock":
        stalls["open the sample case (dock button)"] = probe.measure(
            app, opener.open_sample, lambda: not opener.runner.busy)
    else:
        stalls["open the sample case (napari's File > Open Sample)"] = probe.measure(
            app, lambda: viewer.open_sample("napari-medseg", "brats_like_case"), lambda: True)
    models = dock.model_section
    models.device_combo.setCurrentText("cpu")
    stalls["model run (built-in, 3 folds)"] = probe.measure(
        app, models.run, lambda: not models.runner.busy)
    refine = dock.refine_section
    layer = viewer.layers[refine.layer_combo.currentText()]
    refine.label_combo.setCurrentText("2 ED")
    click = robot_click(np.asarray(viewer.layers["reference"].data) == 2,
                        np.asarray(layer.data) == 2)
    stalls["start clicking (engine in a worker, the clicks layer)"] = probe.measure(
        app, lambda: refine.active_button.setChecked(True), lambda: not refine.busy)
    stalls["refinement click (auto: the click network)"] = probe.measure(
        app, lambda: refine.add_click(click.position, click.positive),
        lambda: not refine.busy)
    topology = dock.topology_section
    stalls["topology check"] = probe.measure(app, topology.run,
                                             lambda: not topology.runner.busy)
    if topology.errors:
        topology.error_list.setCurrentRow(0)
        stalls["topology: one-click fix of the first error, then the re-check"] = probe.measure(
            app, topology.fix_selected, lambda: not topology.runner.busy)
    uncertainty = dock.uncertainty_section
    uncertainty.samples.setValue(2)
    stalls["uncertainty (MC dropout, 2 samples)"] = probe.measure(
        app, uncertainty.run, lambda: not uncertainty.runner.busy)
    stalls["suggest clicks (click network)"] = probe.measure(app, uncertainty.suggest,
                                             lambda: not uncertainty.runner.busy)
    explain = dock.explain_section
    stalls["explain (built-in model, 3 folds)"] = probe.measure(
        app, explain.run, lambda: not explain.runner.busy)
    stalls["explain: show voxel maps (4 layers)"] = probe.measure(
        app, explain.add_maps, lambda: not explain.runner.busy)
    stalls["view: neurological, then radiological"] = probe.measure(
        app, lambda: [dock.convention_combo.setCurrentText(name)
                      for name in ("neurological", "radiological")], lambda: True)
    export = dock.export_section
    export.format_combo.setCurrentText("NIfTI file")
    export.folder_edit.setText(str(scratch / "export"))
    stalls["export (NIfTI)"] = probe.measure(app, export.export, lambda: not export.runner.busy)
    export.format_combo.setCurrentText("nnU-Net v2 dataset")
    stalls["export (nnU-Net v2 dataset)"] = probe.measure(app, export.export,
                                                          lambda: not export.runner.busy)
    review = dock.review_section
    review.open_table(queue)
    stalls["review queue: open next"] = probe.measure(app, review.open_next,
                                                      lambda: not review.runner.busy)
    review.mark_current_reviewed()  # the next one replaces this case's layers
    stalls["review queue: open next again (replaces the case)"] = probe.measure(
        app, review.open_next, lambda: not review.runner.busy)
    stalls["open a 240x240x155 case's 4 files: the dock's Open, replacing the case"] = \
        probe.measure(app, lambda: opener.open_paths(case_files, replace=True),
                      lambda: not opener.runner.busy)
    stalls["model run on the 240x240x155 case (3 folds)"] = probe.measure(
        app, models.run, lambda: not models.runner.busy)
    big_mask = viewer.layers[refine.layer_combo.currentText()]  # its output, the target now
    refine.active_button.setChecked(False)
    refine.label_combo.setCurrentText("2 ED")
    stalls["start clicking on the 240x240x155 case"] = probe.measure(
        app, lambda: refine.active_button.setChecked(True), lambda: not refine.busy)
    oedema = np.argwhere(np.asarray(big_mask.data) == 2)
    stalls["a negative click on the 240x240x155 case"] = probe.measure(
        app, lambda: refine.add_click(oedema[len(oedema) // 2], False), lambda: not refine.busy)
    refine.active_button.setChecked(False)
    stalls["suggest clicks on the 240x240x155 case (click network)"] = probe.measure(
        app, uncertainty.suggest, lambda: not uncertainty.runner.busy)
    from napari_medseg.layers import same_placement

    image = viewer.layers["T1"]
    viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="big case mask",
                      **same_placement(image))
    export.layer_combo.setCurrentText("big case mask")
    export.case_edit.setText("case9100")
    stalls["export the 240x240x155 case (nnU-Net v2 dataset: its 4 images and mask)"] = \
        probe.measure(app, export.export, lambda: not export.runner.busy)
    stalls["open the case with its FLAIR stored LPS (the dock's Open, replacing)"] = \
        probe.measure(app, lambda: opener.open_paths(mixed_files, replace=True),
                      lambda: not opener.runner.busy)
    stalls["resample onto one grid (the FLAIR stored LPS)"] = probe.measure(
        app, dock.case_section.resample_onto_one_grid, lambda: not opener.runner.busy)
    assert not dock.case_section.warnings(), dock.case_section.warnings()
    stalls["the same files: napari's File > Open"] = probe.measure(
        app, lambda: viewer.open(case_files, plugin="napari-medseg"), lambda: True)
    rows = [{"action": action, "worst stall (ms)": round(ms),
             "goal": "met" if ms <= GOAL_MS else f"missed ({ms / GOAL_MS:.1f}x)"}
            for action, ms in stalls.items()]
    print_table(rows, ["action", "worst stall (ms)", "goal"])
    write_json(args.json, {"command": "bench/stalls.py", "goal_ms": GOAL_MS, "rows": rows})
    viewer.close()


if __name__ == "__main__":
    main()
