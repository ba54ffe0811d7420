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
    for path in files:
        viewer.open(path, plugin=PLUGIN_NAME)
    dock = add_dock(viewer)
    if sample:  # read in a worker, one layer per turn: the window answers meanwhile
        dock.case_section.opener.open_sample()
    viewer.dims.ndisplay = 2
    if screenshot:
        _wait_until_idle(dock)
        return _screenshot_and_close(viewer, screenshot)
    napari.run()
    return 0


def _wait_until_idle(dock, timeout_s: float = 120.0) -> None:
    """Run the event loop until the dock's tasks (the sample opening) are over."""
    import time

    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not dock.idle() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def _screenshot_and_close(viewer, path: str) -> int:
    from qtpy.QtWidgets import QApplication

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    viewer.window.show()  # napari restores the last session's window size here
    viewer.window.resize(1600, 950)
    for _ in range(5):  # let the dock and canvas lay themselves out
        QApplication.processEvents()
    viewer.reset_view()
    QApplication.processEvents()
    viewer.screenshot(path, canvas_only=False, flash=False)
    print(f"screenshot saved to {path}")
    viewer.close()
    return 0
