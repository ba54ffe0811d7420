"""Opening a case from the dock: image files, a DICOM/zarr folder or the sample.

Files are read in a worker with napari's own reader contribution
(`napari_medseg._reader.layer_data`) and their layers are added one per
event-loop turn; napari's File > Open and File > Open Sample read and build
every layer in one call. Opening a case while another is open asks whether
to replace it (its layers close one per turn, edited masks autosaved) or to
add the new layers beside it (the Case section then shows the new case).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QFileDialog, QHBoxLayout, QLabel, QMenu, QMessageBox, QProgressBar, QPushButton, QWidget)

from napari_medseg._qt.worker import TaskRunner, add_layers_stepwise, remove_layers_stepwise

OPEN_HINT = "or your own case with Open \u25be above"
_IMAGE_FILES = "Medical images (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.dcm);;All files (*)"
REPLACE, BESIDE = "replace", "beside"


class CaseOpener(QWidget):
    """The 'Open' menu button (the dock shows it in its header) and a row with 'Open
    sample case', progress and status: the row shows while the viewer has no image,
    while a case opens, and after an opening failed (its one-line reason)."""

    images_added = Signal(list)  # the names of the image layers an opening added

    def __init__(self, viewer, image_layers: Callable[[], list], parent=None):
        super().__init__(parent)
        self._viewer, self._image_layers = viewer, image_layers
        self._last_folder = str(Path.home())
        self.open_button = self._open_menu()
        self.sample_button = QPushButton("Open sample case")
        self.sample_button.setToolTip("The BraTS-like sample: T1, T1ce, T2, FLAIR and "
                                      "reference labels, read in the background")
        self.sample_button.clicked.connect(lambda: self.open_sample())
        progress, self.status = QProgressBar(), QLabel(OPEN_HINT)
        self.status.setWordWrap(True)  # a long status wraps, never widens the dock
        progress.setMaximumWidth(90)
        self.runner = TaskRunner(progress, self.status, self.sample_button)
        self.runner.settled.connect(self.refresh)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (self.sample_button, progress):
            row.addWidget(widget)
        row.addWidget(self.status, 1)

    def open_sample(self, replace: bool = False):
        """Read the sample case in a worker and add its layers one per event-loop turn;
        returns the worker (None when busy).

        Parameters
        ----------
        replace : bool
            Close every open layer first (once the files are read).
        """
        def task():
            from napari_medseg._sample_data import sample_case

            yield from ()
            return sample_case(), []

        return self._open(task, "Opening the sample case", replace, case="sample")

    def open_paths(self, paths: Sequence[str], replace: bool = False):
        """Read image files, or a folder (DICOM series, zarr), in a worker and add their
        layers one per event-loop turn, as napari's reader makes them; returns the
        worker (None when busy or given nothing).

        Parameters
        ----------
        paths : sequence of str
            What the user chose.
        replace : bool
            Close every open layer first (once the files are read: a file that
            cannot be read leaves the open case as it was).
        """
        paths = [str(path) for path in paths]
        if not paths:
            return None
        self._last_folder = str(Path(paths[0]).parent)

        def task():
            from napari_medseg._reader import layer_data

            yield from ()
            return layer_data(paths)

        from napari_medseg.io._names import case_id_from_paths

        more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
        return self._open(task, f"Opening {Path(paths[0]).name}{more}", replace,
                          case=case_id_from_paths(paths))

    def choose_files(self):
        """Ask for image files (one per contrast, a segmentation) and open them."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Open a case's images", self._last_folder,
                                                _IMAGE_FILES)
        return self._open_asking(paths, lambda replace: self.open_paths(paths, replace)) \
            if paths else None

    def choose_folder(self):
        """Ask for a DICOM series folder or a zarr store and open it."""
        path = QFileDialog.getExistingDirectory(self, "Open a DICOM series or zarr folder",
                                                self._last_folder)
        return self._open_asking([path], lambda replace: self.open_paths([path], replace)) \
            if path else None

    def choose_sample(self):
        """Open the sample case (asking first when a case is open)."""
        return self._open_asking([], self.open_sample)

    def ask_replace(self) -> str | None:
        """Ask whether the chosen case replaces the open one: `REPLACE`, `BESIDE` or None."""
        box = QMessageBox(QMessageBox.Icon.Question, "Open a case",
                          f"Close the {len(self._viewer.layers)} layers now open? Edited masks "
                          "are autosaved and offered back when their case is opened again.",
                          parent=self)
        replace = box.addButton("Replace the open case", QMessageBox.ButtonRole.AcceptRole)
        beside = box.addButton("Add beside it", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return {replace: REPLACE, beside: BESIDE}.get(box.clickedButton())

    def refresh(self) -> None:
        """Show the row and the sample button as the viewer's layers and the runner say."""
        busy, empty = self.runner.busy, not self._image_layers()
        self.open_button.setEnabled(not busy)
        self.sample_button.setVisible(busy or empty)
        self.setVisible(busy or self.runner.failed or empty)
        if not busy and not self.runner.failed:
            self.status.setText(OPEN_HINT)

    # -- internals --------------------------------------------------------
    def _open_menu(self) -> QPushButton:
        button = QPushButton("Open \u25be")
        button.setStyleSheet("QPushButton::menu-indicator { image: none; width: 0; }")
        button.setToolTip("Open a case: read in the background, one layer at a time "
                          "(napari's File menu reads and builds in one go)")
        menu = QMenu(button)
        self.open_files_action = menu.addAction(
            "Image files (one per contrast, a segmentation)...", self.choose_files)
        self.open_folder_action = menu.addAction("DICOM series or zarr folder...",
                                                 self.choose_folder)
        self.open_sample_action = menu.addAction("Sample case", self.choose_sample)
        button.setMenu(menu)
        return button

    def _open_asking(self, paths: list[str], open_them: Callable):
        """``open_them(replace)``; with a case open, ask first whether to replace it (not
        for segmentations alone, which join the open case)."""
        from napari_medseg._reader import named_like_labels

        answer = BESIDE
        if self._image_layers() and not (paths and all(map(named_like_labels, paths))):
            answer = self.ask_replace()
        return None if answer is None else open_them(answer == REPLACE)

    def _open(self, task, label: str, replace: bool, case: str):
        def show(result):
            from napari.utils.notifications import show_info

            layers, notes = result
            for note in notes:
                show_info(note)
            if replace:
                return self._announced(self._replace_with(layers))
            taken = {layer.name for layer in self._viewer.layers}
            return self._announced(add_layers_stepwise(self._viewer, named_beside(
                layers, taken, case)))

        worker = self.runner.start(task, show, label)
        self.refresh()
        return worker

    def _announced(self, steps):
        """``steps``, then `images_added` with the names of the image layers they added."""
        from napari.layers import Image

        added = []
        for layer in steps:
            if isinstance(layer, Image):
                added.append(layer.name)
            yield layer
        if added:
            self.images_added.emit(added)

    def _replace_with(self, layer_data: list[tuple]):
        yield from remove_layers_stepwise(self._viewer, list(self._viewer.layers))
        yield from add_layers_stepwise(self._viewer, layer_data)


def named_beside(layer_data: list[tuple], taken: set[str], case: str) -> list[tuple]:
    """``layer_data`` with each name already ``taken`` in the viewer followed by the
    case's id (``T1 (BraTS-002)``), so that a case opened beside another is told apart
    (napari would name it ``T1 [1]``).

    Parameters
    ----------
    layer_data : list of tuple
        ``(data, kwargs, layer type)`` as the reader makes them.
    taken : set of str
        The names of the layers open now.
    case : str
        The new case's id.
    """
    return [(data, {**kwargs, "name": f"{kwargs['name']} ({case})"}
             if kwargs.get("name") in taken else kwargs, kind)
            for data, kwargs, kind in layer_data]
