"""Autosave of Labels layers and the offer to restore unsaved edits on reopen.

Every edit (a paint event: clicks, brush, fixes) marks the layer dirty, as does
an undo or redo (napari sends no event for those: a checksum tells); a
timer saves dirty layers to their recovery file
(`napari_medseg.export.autosave`), as does closing the dock, removing
the layer, or removing any image (the recovery key reads the mask's case's
images, so a mask closed after its images would be saved under another
case's key). The mask's case is what `CaseSection.images_for` says. When a
Labels layer appears whose case has a recovery file with different data,
the dock shows Restore / Discard.
"""
from __future__ import annotations

import zlib

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

AUTOSAVE_MS = 30_000


def layer_sources(layer, images: dict) -> list[str]:
    """Source files of a Labels layer's case: its own metadata, else the case's images.

    Parameters
    ----------
    layer : napari Labels layer
        The edited layer.
    images : dict of str to napari Image layer or None
        The case's contrasts as the Case section assigns them.
    """
    from napari_medseg.layers import source_paths

    present = [image for image in images.values() if image is not None]
    return sorted(source_paths([layer, *present]))


def _fingerprint(layer) -> str:
    """The layer's data fingerprint, computed once (when it first appears)."""
    from napari_medseg.export import content_fingerprint

    meta = layer.metadata.setdefault("napari_medseg", {})
    if "content" not in meta:
        meta["content"] = content_fingerprint(np.asarray(layer.data))
    return meta["content"]


def layer_identity(layer, images: dict) -> tuple[list[str], str, str]:
    """``(sources, layer name, content)``: what keys a layer's recovery file.

    The content is the fingerprint of the case's images when there are any,
    else of the labels as they first appeared, so a recovery file is never
    offered for another case of the same shape.

    Parameters
    ----------
    layer : napari Labels layer
        The edited layer.
    images : dict of str to napari Image layer or None
        The case's contrasts.
    """
    present = [image for _, image in sorted(images.items()) if image is not None]
    content = "+".join(_fingerprint(image) for image in present) if present \
        else _fingerprint(layer)
    return layer_sources(layer, images), layer.name, content


def voxels_checksum(layer) -> int:
    """CRC-32 of a Labels layer's voxels (2 ms for 240x240x155 bytes): napari's undo and
    redo change them without a paint event, and this tells.

    Parameters
    ----------
    layer : napari Labels layer
        A watched layer.
    """
    return zlib.crc32(np.ascontiguousarray(np.asarray(layer.data)))


class AutosaveBar(QWidget):
    """A Restore/Discard bar plus the timer that keeps recovery files current.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose 3D Labels layers are watched.
    images_for : callable
        ``images_for(mask) -> {contrast: image layer or None}``: the mask's case
        (`CaseSection.images_for`), which keys its recovery file.
    """

    def __init__(self, viewer, images_for, parent=None):
        super().__init__(parent)
        self._viewer, self._images_for = viewer, images_for
        self._dirty: set[str] = set()
        self._saved: dict[str, int] = {}  # `voxels_checksum` of each layer's last save
        self._warned: set[str] = set()
        self._offer = None
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.restore_button, self.discard_button = QPushButton("Restore"), QPushButton("Discard")
        self.restore_button.clicked.connect(self.restore)
        self.discard_button.clicked.connect(self.discard)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.message, self.restore_button, self.discard_button):
            layout.addWidget(widget)
        self.setVisible(False)
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.save_dirty)
        self.timer.start()
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removing.connect(self._on_removing)
        for layer in viewer.layers:
            self._watch(layer)

    def _watch(self, layer) -> None:
        from napari.layers import Labels

        if isinstance(layer, Labels) and layer.ndim == 3:
            _fingerprint(layer)  # before any edit
            self._saved.pop(layer.name, None)  # a new layer of the name: not saved yet
            layer.events.paint.connect(lambda *_: self._dirty.add(layer.name))
            self.check_recovery(layer)

    def _on_inserted(self, event) -> None:
        self._watch(event.value)

    def _on_removing(self, event) -> None:
        from napari.layers import Image

        layer = self._viewer.layers[event.index]
        if isinstance(layer, Image):
            self.save_dirty()  # edits are keyed by their case's images: save while all are in
        elif layer.name in self._dirty or self._undone(layer):
            self._save(layer)

    def _undone(self, layer) -> bool:
        """Whether an undo or redo changed the layer since its last save (a layer never
        saved has had no edit to undo, or it is dirty)."""
        saved = self._saved.get(layer.name)
        return saved is not None and layer.name not in self._dirty and \
            saved != voxels_checksum(layer)

    def save_dirty(self) -> list[str]:
        """Save every layer edited (or undone) since its last save; returns their names."""
        from napari.layers import Labels

        self._dirty.update(layer.name for layer in self._viewer.layers
                           if isinstance(layer, Labels) and self._undone(layer))
        saved = []
        for name in list(self._dirty):
            if name in self._viewer.layers:
                self._save(self._viewer.layers[name])
                saved.append(name)
        return saved

    def _save(self, layer) -> None:
        from napari_medseg.errors import MedsegError
        from napari_medseg.export import autosave

        history = layer.metadata.get("napari_medseg", {}).get("edit_history", [])
        sources, name, content = self._identity(layer)
        try:
            autosave(np.asarray(layer.data), sources, name, history, content)
        except MedsegError as error:
            self._warn_once(f"Autosave failed, edits are not backed up: {error}")
            return
        self._dirty.discard(layer.name)
        self._saved[layer.name] = voxels_checksum(layer)

    def _identity(self, layer) -> tuple[list[str], str, str]:
        return layer_identity(layer, self._images_for(layer))

    def _warn_once(self, message: str) -> None:
        from napari.utils.notifications import show_warning

        if message not in self._warned:
            self._warned.add(message)
            show_warning(message)

    def check_recovery(self, layer) -> bool:
        """Offer to restore when the layer's case has unsaved edits that differ from it."""
        from napari_medseg.errors import MedsegError
        from napari_medseg.export import find_recovery

        try:
            recovery = find_recovery(*self._identity(layer))
        except MedsegError as error:  # damaged: moved aside; say so once and carry on
            self._warn_once(str(error))
            return False
        if recovery is None or tuple(recovery.record["shape"]) != tuple(layer.data.shape):
            return False
        saved = recovery.load()
        changed = int(np.count_nonzero(saved != np.asarray(layer.data)))
        if changed == 0:
            return False
        self._offer = (layer, recovery)
        from napari_medseg.layers import is_model_output

        what = "the model's new prediction in" if is_model_output(layer) else \
            "the current labels of"
        self.message.setText(f"Unsaved edits of '{layer.name}' from {recovery.saved_at} were "
                             f"found. Restore replaces {changed:,} voxels of {what} "
                             f"'{layer.name}' (undo with Ctrl-Z).")
        self.setVisible(True)
        return True

    def restore(self) -> None:
        """Write the recovered labels into the layer (one undoable step)."""
        if self._offer is None:
            return
        layer, recovery = self._offer
        saved = recovery.load()
        changed = np.nonzero(saved != np.asarray(layer.data))
        layer.data_setitem(changed, saved[changed])
        meta = layer.metadata.setdefault("napari_medseg", {})
        meta["edit_history"] = list(recovery.record.get("history", []))
        self._offer = None
        self.setVisible(False)

    def discard(self) -> None:
        """Forget the recovery file."""
        from napari_medseg.export import discard_recovery

        if self._offer is not None:
            layer, _ = self._offer
            discard_recovery(*self._identity(layer))
        self._offer = None
        self.setVisible(False)
