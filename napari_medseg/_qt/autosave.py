"""Autosave of Labels layers and the offer to restore unsaved edits on reopen.

Every edit (a paint event: clicks, brush, fixes) marks the layer dirty; a
timer saves dirty layers to their recovery file
(`napari_medseg.export.autosave`), as does closing the dock or removing
the layer. When a Labels layer appears whose case has a recovery file with
different data, the dock shows Restore / Discard.
"""
from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

AUTOSAVE_MS = 30_000


def layer_sources(layer, images: dict) -> list[str]:
    """Source files of a Labels layer's case: its own metadata, else the case's images."""
    meta = layer.metadata.get("napari_medseg", {})
    sources = list(meta.get("source_paths", []))
    for image in images.values():
        if image is not None:
            sources += image.metadata.get("napari_medseg", {}).get("source_paths", [])
    return sorted(dict.fromkeys(sources))


class AutosaveBar(QWidget):
    """A Restore/Discard bar plus the timer that keeps recovery files current."""

    def __init__(self, viewer, images_of, parent=None):
        super().__init__(parent)
        self._viewer, self._images_of = viewer, images_of
        self._dirty: set[str] = set()
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
            layer.events.paint.connect(lambda *_: self._dirty.add(layer.name))
            self.check_recovery(layer)

    def _on_inserted(self, event) -> None:
        self._watch(event.value)

    def _on_removing(self, event) -> None:
        layer = self._viewer.layers[event.index]
        if layer.name in self._dirty:
            self._save(layer)

    def save_dirty(self) -> list[str]:
        """Save every layer edited since its last save; returns their names."""
        saved = []
        for name in list(self._dirty):
            if name in self._viewer.layers:
                self._save(self._viewer.layers[name])
                saved.append(name)
        return saved

    def _save(self, layer) -> None:
        from napari_medseg.export import autosave

        history = layer.metadata.get("napari_medseg", {}).get("edit_history", [])
        autosave(np.asarray(layer.data), layer_sources(layer, self._images_of()), layer.name,
                 history)
        self._dirty.discard(layer.name)

    def check_recovery(self, layer) -> bool:
        """Offer to restore when the layer's case has unsaved edits that differ from it."""
        from napari_medseg.export import find_recovery

        recovery = find_recovery(layer_sources(layer, self._images_of()), layer.name)
        if recovery is None or tuple(recovery.record["shape"]) != tuple(layer.data.shape):
            return False
        if np.array_equal(recovery.load(), np.asarray(layer.data)):
            return False
        self._offer = (layer, recovery)
        self.message.setText(f"Unsaved edits of '{layer.name}' from {recovery.saved_at} "
                             "were found.")
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
            discard_recovery(layer_sources(layer, self._images_of()), layer.name)
        self._offer = None
        self.setVisible(False)
