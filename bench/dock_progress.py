"""The dock's model run with its progress shown at every report and at most every 250 ms.

Each progress report the dock shows repaints it, and napari's window (it holds
an OpenGL canvas) is then composed through OpenGL: under a software renderer
(llvmpipe: Xvfb, VMs, remote desktops) that is CPU time on the cores the model
runs on. A napari viewer with the dock opens a 240x240x155 case's four files
and runs the built-in model (all folds, the CPU, auto precision) from the dock,
alternating the progress runner's interval between 0 (every report shown, as
before) and `PROGRESS_MS` in ABBA order in one process, so the machine's drift
falls on both alike. Per run: seconds from the button to the section's idle,
the prediction's own seconds in the worker, the CPU time of the renderer's
threads and of the GUI thread (from /proc), and Qt paint events. Run under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/dock_progress.py \
        --json bench/results/dock_progress.json
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402
from dock_explain import _timed_in_dock  # noqa: E402
from stalls import _brats_sized_files  # noqa: E402


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds of each of this process's threads, by thread id and name."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            text = Path(f"/proc/self/task/{tid}/stat").read_text(encoding="utf-8")
        except FileNotFoundError:  # ended meanwhile
            continue
        name = text.split("(", 1)[1].rsplit(")", 1)[0]
        fields = text.rsplit(")", 1)[1].split()
        seconds[f"{tid}:{name}"] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


def _paint_counter(app):
    from qtpy.QtCore import QEvent, QObject

    class Paints(QObject):
        count = 0

        def eventFilter(self, watched, event):  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Type.Paint:
                Paints.count += 1
            return False

    counter = Paints()
    app.installEventFilter(counter)
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="ABBA pairs of runs")
    parser.add_argument("--json", default="bench/results/dock_progress.json")
    args = parser.parse_args()
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_medseg._qt.worker import PROGRESS_MS

    files = _brats_sized_files(Path(tempfile.mkdtemp()))
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    app = QApplication.instance()
    dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")[1]
    opener, models = dock.case_section.opener, dock.model_section
    _timed_in_dock(app, lambda: opener.open_paths(files, replace=True),
                   lambda: opener.runner.busy)
    models.device_combo.setCurrentText("cpu")
    _timed_in_dock(app, models.run, lambda: models.runner.busy)  # warm-up
    paints, gui = _paint_counter(app), f"{threading.get_native_id()}:"
    rows = []
    for run in range(2 * args.pairs):
        interval = PROGRESS_MS if run % 4 in (1, 2) else 0
        models.runner._progress_timer.setInterval(interval)
        before, painted = _cpu_seconds(), paints.count
        seconds = _timed_in_dock(app, models.run, lambda: models.runner.busy)
        used = {key: value - before.get(key, 0.0) for key, value in _cpu_seconds().items()}
        rows.append({"progress_interval_ms": interval, "model_run_s": seconds,
                     "prediction_in_worker_s": models.last_run.seconds,
                     "renderer_cpu_s": sum(v for k, v in used.items() if "llvmpipe" in k),
                     "gui_thread_cpu_s": sum(v for k, v in used.items() if k.startswith(gui)),
                     "paint_events": paints.count - painted})
    viewer.close()
    columns = ["model_run_s", "prediction_in_worker_s", "renderer_cpu_s", "gui_thread_cpu_s",
               "paint_events"]
    medians = [{"progress_interval_ms": interval,
                **{c: float(np.median([r[c] for r in rows
                                       if r["progress_interval_ms"] == interval]))
                   for c in columns}} for interval in (0, PROGRESS_MS)]
    print_table(rows, ["progress_interval_ms", *columns])
    print("\nmedians:")
    print_table(medians, ["progress_interval_ms", *columns])
    write_json(args.json, {"command": "bench/dock_progress.py", "runs": rows,
                           "medians": medians})


if __name__ == "__main__":
    main()
