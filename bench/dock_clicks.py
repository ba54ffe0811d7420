"""Click latency in the dock, end to end, on the sample case (run under Xvfb).

Opens napari with the sample case and the dock, runs the built-in model,
then lets the robot user click (each label in turn, from the model's mask)
through the Refine section as a mouse click would: the time is from the
click until its change is in the Labels layer and the section is idle again
(worker, layer write, undo bookkeeping, Points layer). The engine is built
when clicking starts (the Refine section's *Start clicking*), as a user
does before the first click; the first click is still reported apart.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/dock_clicks.py \
        --json bench/results/dock_clicks.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402


def _wait(app, condition, timeout: float = 300.0) -> None:
    """Run Qt's event loop (idle between events, as in a user's session) until
    ``condition()`` holds; it is checked every 2 ms."""
    from qtpy.QtCore import QEventLoop, QTimer

    started, loop, timer = time.perf_counter(), QEventLoop(), QTimer()

    def check():
        if condition() or time.perf_counter() - started > timeout:
            loop.quit()

    timer.timeout.connect(check)
    timer.start(2)
    if not condition():
        loop.exec()
    timer.stop()
    if not condition():
        raise TimeoutError("the dock did not finish in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=5, help="clicks per label")
    parser.add_argument("--engine", default="auto",
                        help="the Refine section's engine entry (default auto: the model-aware "
                             "engine after a model run); e.g. 'learned click model'")
    parser.add_argument("--precision", default="auto",
                        help="the Model section's precision: the model run's and the click "
                             "network's arithmetic (default auto)")
    parser.add_argument("--json", default="bench/results/dock_clicks.json")
    args = parser.parse_args()
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_medseg.interactive import robot_click

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    viewer.open_sample("napari-medseg", "brats_like_case")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    app = QApplication.instance()
    dock.model_section.device_combo.setCurrentText("cpu")
    dock.model_section.precision_combo.setCurrentText(args.precision)
    worker = dock.model_section.run()
    _wait(app, lambda: not dock.model_section.runner.busy and worker is not None)
    section = dock.refine_section
    section.engine_combo.setCurrentText(args.engine)
    if section.engine_combo.currentText() != args.engine:
        raise SystemExit(f"no engine entry {args.engine!r}")
    section.active_button.setChecked(True)  # "Start clicking": the engine is built now
    _wait(app, lambda: section._worker is None)
    layer = viewer.layers[section.layer_combo.currentText()]
    reference = np.asarray(viewer.layers["reference"].data)
    rows, first = [], []
    for value, name in ((1, "NCR"), (2, "ED"), (3, "ET")):
        section.label_combo.setCurrentText(f"{value} {name}")
        section._drop_session_clicks()
        latencies = []
        for _ in range(args.clicks):
            click = robot_click(reference == value, np.asarray(layer.data) == value,
                                layer.scale)
            if click is None:
                break
            started = time.perf_counter()
            section.add_click(click.position, click.positive)
            _wait(app, lambda: not section.busy)
            app.processEvents()
            latencies.append(time.perf_counter() - started)
        first.append(latencies[0])
        rows.append({"label": name, "clicks": len(latencies),
                     "median_ms": round(1000 * float(np.median(latencies[1:] or latencies)), 1),
                     "p95_ms": round(1000 * float(np.percentile(latencies[1:] or latencies,
                                                                95)), 1),
                     "first_click_ms": round(1000 * latencies[0], 1)})
        section.accept()
    print(f"engine: {section.engine_label.text()}")
    print_table(rows, ["label", "clicks", "median_ms", "p95_ms", "first_click_ms"])
    write_json(args.json, {"command": " ".join(["bench/dock_clicks.py", *sys.argv[1:]]),
                           "engine":
                           section.engine_label.text(), "rows": rows})
    viewer.close()


if __name__ == "__main__":
    main()
