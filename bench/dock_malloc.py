"""The dock's model run under glibc's default allocator and one tuned to keep freed memory.

A prediction in a thread other than the main one was measured 10-17 % slower than on
the main thread, without any GUI: the thread's malloc arena hands its large
temporaries back to the kernel and faults them in again (see BENCHMARKS.md, the
dock's model run). glibc reads its settings once per process, so each setting runs
in processes of its own, in ABBA order across processes so that the machine's drift
falls on all alike. Each process opens a napari viewer with the dock, opens a
240x240x155 case's four files with the dock's Open, runs the built-in model once to
warm up and then ``--runs`` times (all folds, the CPU, auto precision), and reports
per run the seconds from the button to the section's idle, the prediction's own
seconds in the worker, the minor page faults, the GUI thread's worst stall (the
stall bench's timer probe) and the process's peak resident memory; then it opens
the sample case and runs the model on it as often, for the worst stall of each run
(with one arena, every thread's allocations share one lock).
Run under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/dock_malloc.py \
        --json bench/results/dock_malloc.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402

SETTINGS = {
    "glibc defaults": {},
    "kept memory, set by the environment": {
        "MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
        "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20)},
    "kept memory, set by the launcher": {"MEDSEG_BENCH_TUNE_ALLOCATOR": "1"},
}


def _child(files: list[str], runs: int) -> None:
    if os.environ.get("MEDSEG_BENCH_TUNE_ALLOCATOR"):
        from napari_medseg._allocator import keep_freed_memory

        keep_freed_memory()
    import napari
    from dock_explain import _timed_in_dock
    from stalls import StallProbe
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    app = QApplication.instance()
    dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")[1]
    opener, models = dock.case_section.opener, dock.model_section
    open_s = _timed_in_dock(app, lambda: opener.open_paths(files, replace=True),
                            lambda: opener.runner.busy)
    models.device_combo.setCurrentText("cpu")
    _timed_in_dock(app, models.run, lambda: models.runner.busy)  # warm-up
    probe, rows = StallProbe(), []
    for _ in range(runs):
        faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        stall_ms = probe.measure(app, models.run, lambda: not models.runner.busy, settle=0.0)
        rows.append({"open_s": open_s, "model_run_s": time.perf_counter() - start,
                     "prediction_in_worker_s": models.last_run.seconds,
                     "minor_page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                     - faults, "worst_stall_ms": stall_ms})
    opener.open_sample(replace=True)  # the small case: short runs, stalls a larger share
    while opener.runner.busy:
        app.processEvents()
    for row in rows:
        row["sample_run_worst_stall_ms"] = probe.measure(
            app, models.run, lambda: not models.runner.busy, settle=0.0)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    viewer.close()
    print("RESULT " + json.dumps({"runs": rows, "peak_rss_mib": peak_mib}))


def _run_child(files: list[str], runs: int, setting: str) -> dict:
    env = {**os.environ, **SETTINGS[setting]}
    done = subprocess.run([sys.executable, __file__, "--child", "--runs", str(runs), *files],
                          env=env, capture_output=True, text=True, check=True)
    line = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of processes, one per setting, in ABBA order")
    parser.add_argument("--runs", type=int, default=2, help="timed model runs per process")
    parser.add_argument("--json", default="bench/results/dock_malloc.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.files, args.runs)
        return
    from stalls import _brats_sized_files

    files = _brats_sized_files(Path(tempfile.mkdtemp()))
    names = list(SETTINGS)
    rows = []
    for round_ in range(args.rounds):
        for setting in names if round_ % 2 == 0 else names[::-1]:
            result = _run_child(files, args.runs, setting)
            for run in result["runs"]:
                rows.append({"setting": setting, "round": round_, **run,
                             "peak_rss_mib": result["peak_rss_mib"]})
                print(rows[-1], flush=True)
    columns = ["model_run_s", "prediction_in_worker_s", "minor_page_faults", "peak_rss_mib",
               "open_s", "worst_stall_ms", "sample_run_worst_stall_ms"]
    medians = [{"setting": name, **{c: float(np.median([r[c] for r in rows
                                                         if r["setting"] == name]))
                                    for c in columns}} for name in names]
    print_table(rows, ["setting", "round", *columns])
    print("\nmedians:")
    print_table(medians, ["setting", *columns])
    write_json(args.json, {"command": "bench/dock_malloc.py", "settings": SETTINGS,
                           "runs": rows, "medians": medians})


if __name__ == "__main__":
    main()
