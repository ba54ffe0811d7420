"""Opening a napari viewer with the plugin's dock (``napari-medseg view``, ``make run``)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

DOCK_NAME = "MedSeg"
PLUGIN_NAME = "napari-medseg"


def add_dock(viewer):
    """Add the napari-medseg dock to ``viewer``; returns the widget."""
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN_NAME, DOCK_NAME)
    return widget


def open_viewer(files: Sequence[str] = (), sample: bool = False,
                screenshot: str | None = None) -> int:
    """Open napari with ``files`` (and/or the sample case) and the dock.

    With ``screenshot``, save a picture of the whole window once it is drawn
    and close, instead of running the event loop.

    Parameters
    ----------
    files : sequence of str
        Image files to open.
    sample : bool
        Also open the sample case.
    screenshot : str, optional
        Save the window to this PNG and close.
    """
    import napari

    viewer = napari.Viewer(title="napari-medseg")
    if sample:
        viewer.open_sample(PLUGIN_NAME, "brats_like_case")
    for path in files:
        viewer.open(path, plugin=PLUGIN_NAME)
    add_dock(viewer)
    viewer.dims.ndisplay = 2
    if screenshot:
        return _screenshot_and_close(viewer, screenshot)
    napari.run()
    return 0


def _screenshot_and_close(viewer, path: str) -> int:
    from qtpy.QtWidgets import QApplication

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    viewer.window.resize(1600, 950)
    viewer.window.show()
    for _ in range(5):  # let the dock and canvas lay themselves out
        QApplication.processEvents()
    viewer.reset_view()
    QApplication.processEvents()
    viewer.screenshot(path, canvas_only=False, flash=False)
    print(f"screenshot saved to {path}")
    viewer.close()
    return 0
