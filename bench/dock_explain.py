"""Explain in the dock against the same model's run in the dock, and both without the GUI.

Issue 16 asks for Explain in a few model runs' time "in the dock and the CLI". A
napari viewer with the dock opens a 240x240x155 case's four files (the dock's
Open), runs the built-in model (all folds, the dock's defaults: the CPU, auto
precision) and then Explain (no reference: values against the model's own
prediction, the dock's default), each timed from the button to the section's
idle. Then the same two computations run in the same process without the GUI
(`inference.predict`, `explain.explain_case`), as the CLI runs them. One row
per run, and the dock's overhead over the core (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/dock_explain.py \
        --json bench/results/dock_explain.json
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, print_table, write_json  # noqa: E402
from stalls import _brats_sized_files  # noqa: E402


def _timed_in_dock(app, action, busy) -> float:
    """Seconds from ``action()`` until ``busy()`` is false, the event loop running."""
    start = time.perf_counter()
    action()
    while busy():
        app.processEvents()
        time.sleep(0.005)
        if time.perf_counter() - start > 1800:
            raise TimeoutError("the dock did not finish in 30 minutes")
    return time.perf_counter() - start


def _in_the_dock(case_files: list[str]) -> dict[str, float]:
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    app = QApplication.instance()
    dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")[1]
    opener, models, explain = dock.case_section.opener, dock.model_section, dock.explain_section
    _timed_in_dock(app, lambda: opener.open_paths(case_files, replace=True),
                   lambda: opener.runner.busy)
    models.device_combo.setCurrentText("cpu")
    _timed_in_dock(app, models.run, lambda: models.runner.busy)  # warm-up: first-call costs
    times = {"model run": _timed_in_dock(app, models.run, lambda: models.runner.busy)}
    times["Explain"] = _timed_in_dock(app, explain.run, lambda: explain.runner.busy)
    if explain.runner.failed:
        raise RuntimeError(f"Explain failed in the dock: {explain.runner.status.text()}")
    times["model run, after"] = _timed_in_dock(app, models.run, lambda: models.runner.busy)
    viewer.close()
    return times


def _without_the_gui(case_files: list[str]) -> dict[str, float]:
    from napari_medseg.explain import explain_case
    from napari_medseg.inference import predict
    from napari_medseg.io import read_volume
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end

    volume = read_volume(case_files)
    model = load_model("brats_unet")

    def timed(run) -> float:
        start = time.perf_counter()
        run_to_end(run())
        return time.perf_counter() - start

    times = {"model run": timed(lambda: predict(model, volume, device="cpu"))}
    times["Explain"] = timed(lambda: explain_case(model, volume, device="cpu"))
    times["model run, after"] = timed(lambda: predict(model, volume, device="cpu"))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="bench/results/dock_explain.json")
    args = parser.parse_args()
    case_files = _brats_sized_files(Path(tempfile.mkdtemp()) / "brats_sized")
    results = {"in the dock": _in_the_dock(case_files),
               "without the GUI (as the CLI)": _without_the_gui(case_files)}
    rows = []
    for where, times in results.items():
        prediction = (times["model run"] + times["model run, after"]) / 2
        rows.append({"where": where, "model run (s), before / after":
                     f"{times['model run']:.1f} / {times['model run, after']:.1f}",
                     "Explain (s)": round(times["Explain"], 1),
                     "Explain over one model run": round(times["Explain"] / prediction, 2)})
    rows.append({"where": "the dock over the core", "model run (s), before / after": "",
                 "Explain (s)": round(results["in the dock"]["Explain"]
                                      / results["without the GUI (as the CLI)"]["Explain"], 2),
                 "Explain over one model run": ""})
    print_table(rows, ["where", "model run (s), before / after", "Explain (s)",
                       "Explain over one model run"])
    write_json(args.json, {"command": "bench/dock_explain.py", "machine": machine(),
                           "rows": rows, "seconds": results})


if __name__ == "__main__":
    main()
