"""Screenshot for the README: the sample case segmented by the built-in model,
with the Explain section's chart for oedema. Run under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/readme_screenshot.py docs/screenshot.png
"""
from __future__ import annotations

import sys
import time

import napari
from qtpy.QtWidgets import QApplication


def wait(section, timeout: float = 600.0) -> None:
    start = time.time()
    while section.runner.busy and time.time() - start < timeout:
        QApplication.processEvents()
        time.sleep(0.05)


def main(path: str) -> None:
    viewer = napari.Viewer(title="napari-medseg")
    viewer.open_sample("napari-medseg", "brats_like_case")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    viewer.window.resize(1600, 1000)
    viewer.window.show()
    dock.model_section.run()
    wait(dock.model_section)
    viewer.layers["reference"].visible = False
    dock.explain_section.run()
    wait(dock.explain_section)
    dock.explain_section.target_combo.setCurrentText("ED")
    scroll = dock.findChild(type(dock.layout().itemAt(0).widget()))
    scroll.verticalScrollBar().setValue(260)
    viewer.dims.set_point(0, 52 * 1.5)
    for _ in range(10):
        QApplication.processEvents()
    viewer.screenshot(path, canvas_only=False, flash=False)
    print(f"saved {path}")
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
