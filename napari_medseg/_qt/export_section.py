"""Dock section 'Export': corrected masks for retraining, autosave, 'Improve model'."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
    QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from napari_medseg._qt.autosave import AutosaveBar
from napari_medseg._qt.layer_combo import fill_labels_combo, new_model_layer
from napari_medseg._qt.worker import TaskRunner
from napari_medseg.errors import MedsegError

FORMATS = {"nnU-Net v2 dataset": "nnunet", "NIfTI file": "nifti", "zarr store": "zarr"}


class ExportSection(QWidget):
    """Layer, format, folder, dataset name; Export; Improve model (fine-tuning) in a worker."""

    def __init__(self, viewer, case_section, model_section, refine_section, parent=None):
        super().__init__(parent)
        self._viewer, self._case, self._models = viewer, case_section, model_section
        self._refine = refine_section
        self._originals: dict[str, np.ndarray] = {}
        self.last_dataset: Path | None = None
        self.layer_combo, self.format_combo = QComboBox(), QComboBox()
        self.format_combo.addItems(list(FORMATS))
        self.folder_edit, self.dataset_edit = QLineEdit(), QLineEdit("Corrected")
        self.case_edit = QLineEdit()
        self.case_edit.setPlaceholderText("from the file names")
        self.browse_button = QPushButton("...")
        self.browse_button.clicked.connect(self._browse)
        self.overwrite_box = QCheckBox("replace an existing export of this case")
        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self.export)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(20)
        self.improve_button, self.cancel_button = QPushButton("Improve model"), \
            QPushButton("Cancel")
        self.progress, self.status = QProgressBar(), QLabel("")
        self.status.setWordWrap(True)
        self.runner = TaskRunner(self.progress, self.status, self.improve_button,
                                 self.cancel_button)
        self.improve_button.clicked.connect(self.improve)
        self.autosave = AutosaveBar(viewer, lambda: self._case.assigned_layers())
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self.refresh)
        for layer in viewer.layers:
            self._remember_original(layer)
        self._build_layout()
        self.refresh()

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Labels layer", self.layer_combo)
        form.addRow("Format", self.format_combo)
        folder = QHBoxLayout()
        folder.addWidget(self.folder_edit)
        folder.addWidget(self.browse_button)
        form.addRow("Folder", folder)
        form.addRow("Dataset name", self.dataset_edit)
        form.addRow("Case id", self.case_edit)
        improve = QHBoxLayout()
        for widget in (QLabel("Epochs"), self.epochs, self.improve_button, self.cancel_button):
            improve.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.overwrite_box)
        layout.addWidget(self.export_button)
        layout.addLayout(improve)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

    def refresh(self, event=None) -> None:
        """List the viewer's 3D Labels layers; a model run's new output becomes the
        choice (a loaded reference is exported only when picked)."""
        fill_labels_combo(self.layer_combo, self._viewer, prefer_last=True,
                          select=new_model_layer(event))

    def _on_inserted(self, event) -> None:
        self._remember_original(event.value)
        self.refresh(event)

    def _remember_original(self, layer) -> None:
        """Keep a model's own output as the 'original' mask of provenance."""
        if layer.metadata.get("napari_medseg", {}).get("model") and layer.name not in \
                self._originals:
            self._originals[layer.name] = np.array(layer.data, copy=True)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder")
        if folder:
            self.folder_edit.setText(folder)

    def _default_folder(self, sources: list[str]) -> Path | None:
        text = self.folder_edit.text().strip()
        if text:
            return Path(text)
        return Path(sources[0]).parent if sources else None

    def export(self):
        """Export the chosen layer; returns the `ExportResult` (None when refused)."""
        from napari_medseg._qt.autosave import layer_identity
        from napari_medseg.export import discard_recovery, export_case
        from napari_medseg.layers import volume_from_layers

        name = self.layer_combo.currentText()
        images = {c: layer for c, layer in self._case.assigned_layers().items() if layer}
        if name not in self._viewer.layers or not images:
            show_error("Nothing to export: open a case and a Labels layer first")
            return None
        layer = self._viewer.layers[name]
        volume = volume_from_layers(images)
        folder = self._default_folder(list(volume.source_paths))
        if folder is None:
            show_error("Choose an export folder (the case has no source folder)")
            return None
        meta = layer.metadata.get("napari_medseg", {})
        try:
            model = self._model_of(layer)
            result = export_case(
                volume, np.asarray(layer.data), FORMATS[self.format_combo.currentText()], folder,
                case_id=self.case_edit.text().strip() or None,
                original=self._originals.get(name), model=model,
                history=meta.get("edit_history", []),
                label_names={int(k): v for k, v in meta.get("label_names", {}).items()},
                dataset_name=self.dataset_edit.text().strip() or None,
                overwrite=self.overwrite_box.isChecked())
        except MedsegError as error:
            show_error(f"Export failed: {error}")
            self.status.setText(f"Export failed: {error}")
            return None
        if result.output.name.startswith("Dataset"):
            self.last_dataset = result.output
        discard_recovery(*layer_identity(layer, self._case.assigned_layers()))
        self.status.setText(f"Exported to {result.output} ({len(result.files)} files)")
        show_info(f"Exported '{name}' to {result.output}")
        return result

    def _model_of(self, layer):
        from napari_medseg.layers import layer_model_folder

        folder = layer_model_folder(layer)
        return self._models.loaded_model(folder) if folder else None

    def improve(self):
        """Fine-tune the chosen model on the last exported nnU-Net dataset, in a worker."""
        dataset = self.last_dataset
        folder = self._models.current_folder()
        if dataset is None or folder is None:
            show_error("Improve model needs an nnU-Net dataset: export corrected cases with "
                       "format 'nnU-Net v2 dataset' first (and choose a model)")
            return None
        from napari_medseg.models.registry import user_models_dir

        out = user_models_dir() / f"{folder.name}_ft_{time.strftime('%Y%m%d_%H%M%S')}"
        epochs = self.epochs.value()
        device = self._models.device_combo.currentText()

        def task():
            from napari_medseg.export import finetune
            from napari_medseg.models import choose_device

            chosen = str(choose_device()) if device == "auto" else device
            return (yield from finetune(folder, dataset, out, epochs=epochs, device=chosen))

        return self.runner.start(task, self._improved, "Improve model")

    def _improved(self, result) -> None:
        self._models.add_model_folder(result.folder)
        before = ", ".join(f"{k} {v:.3f}" for k, v in result.dice_before.items())
        after = ", ".join(f"{k} {v:.3f}" for k, v in result.dice_after.items())
        self.status.setText(f"New model {result.folder.name}: validation Dice before "
                            f"[{before}] after [{after}] on {len(result.val_cases)} case(s)")
