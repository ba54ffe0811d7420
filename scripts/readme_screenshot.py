"""Screenshot for the README: the sample case segmented by the built-in model,
then corrected with two clicks in the Refine section (a positive click on a
cut-away lobe, shown green). Run under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/readme_screenshot.py \
        docs/screenshot.png
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_medseg.interactive import robot_click


def wait(section, timeout: float = 600.0) -> None:
    start = time.time()
    while section.runner.busy and time.time() - start < timeout:
        QApplication.processEvents()
        time.sleep(0.05)


def main(path: str) -> None:
    os.environ["NAPARI_MEDSEG_RECOVERY_DIR"] = tempfile.mkdtemp()  # no offers from earlier runs
    viewer = napari.Viewer(title="napari-medseg")
    viewer.open_sample("napari-medseg", "brats_like_case")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    viewer.window.show()  # napari restores the last session's window size here
    viewer.window.resize(1600, 1000)
    dock.model_section.run()
    wait(dock.model_section)
    viewer.layers["reference"].visible = False
    segmentation = viewer.layers["brats_unet segmentation"]
    damaged = np.asarray(segmentation.data)
    damaged[52:, 60:] = np.where(damaged[52:, 60:] == 2, 0, damaged[52:, 60:])  # a lost lobe
    segmentation.refresh()
    refine = dock.refine_section
    refine.layer_combo.setCurrentText(segmentation.name)
    refine.label_combo.setCurrentText("2 ED")
    refine.active_button.setChecked(True)
    target = np.asarray(viewer.layers["reference"].data) == 2
    for _ in range(2):
        click = robot_click(target, np.asarray(segmentation.data) == 2)
        refine.add_click(click.position, click.positive)
        while refine._worker is not None or refine._pending:
            QApplication.processEvents()
            time.sleep(0.02)
    first = refine.session.clicks[0].position
    viewer.dims.set_point(0, segmentation.data_to_world(first)[0])
    for _ in range(10):
        QApplication.processEvents()
    viewer.reset_view()  # framed for the final canvas size, the same on every run
    for _ in range(10):
        QApplication.processEvents()
    viewer.screenshot(path, canvas_only=False, flash=False)
    print(f"saved {path}")
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
