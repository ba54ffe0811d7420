"""Dock section 'Export': corrected masks for retraining, autosave, 'Improve model'."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
    QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from napari_medseg._qt.autosave import AutosaveBar, layer_identity
from napari_medseg._qt.layer_combo import fill_labels_combo, new_target_layer
from napari_medseg._qt.worker import TaskRunner
from napari_medseg.errors import MedsegError

FORMATS = {"nnU-Net v2 dataset": "nnunet", "NIfTI file": "nifti", "zarr store": "zarr"}


class ExportSection(QWidget):
    """Layer, format, folder, dataset name; Export; Improve model (fine-tuning) in a worker."""

    def __init__(self, viewer, case_section, model_section, refine_section, parent=None):
        super().__init__(parent)
        self._viewer, self._case, self._models = viewer, case_section, model_section
        self._refine = refine_section
        self._originals: dict[str, tuple[tuple, np.ndarray]] = {}  # name: (token, mask)
        self.last_dataset: Path | None = None
        self.last_export = None  # the last ExportResult
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
        self.runner.settled.connect(lambda: self.export_button.setEnabled(True))
        self.autosave = AutosaveBar(viewer, self._case.images_for)
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
        choice (a loaded reference is exported only when picked), and so does the chosen
        mask's copy resampled onto the case's grid."""
        fill_labels_combo(self.layer_combo, self._viewer, prefer_last=True,
                          select=new_target_layer(event, self.layer_combo.currentText()))

    def _on_inserted(self, event) -> None:
        self._remember_original(event.value)
        self.refresh(event)

    def _remember_original(self, layer) -> None:
        """Keep a model's own output, as it first appears, as the 'original' mask of
        provenance. Kept with `case_token` of the layer's array: the next case's output
        under the same name is another layer (it was given the first case's original)."""
        from napari_medseg.layers import case_token

        self._originals = {name: kept for name, kept in self._originals.items()
                           if all(ref() is not None for ref in kept[0])}  # layers still held
        if layer.metadata.get("napari_medseg", {}).get("model") and \
                self._original_of(layer) is None:
            self._originals[layer.name] = (case_token({"mask": layer}),
                                           np.array(layer.data, copy=True))

    def _original_of(self, layer) -> np.ndarray | None:
        """The model's own output for ``layer`` (None when it is not a model's output)."""
        from napari_medseg.layers import is_case

        token, original = self._originals.get(layer.name, ((), None))
        return original if is_case(token, {"mask": layer}) else None

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
        """Export the chosen layer in a worker (an nnU-Net dataset of a 240x240x155 case
        takes 1.2 s); returns the worker (None when refused). The result is in
        `last_export` when the runner settles."""
        from napari_medseg.export import export_case
        from napari_medseg.layers import source_paths, volume_builder

        name = self.layer_combo.currentText()
        if self.runner.busy:
            show_info("Export is waiting: the model is being fine-tuned")
            return None
        layer = self._viewer.layers[name] if name in self._viewer.layers else None
        if layer is not None and (problem := self._case.mask_problem(name)):
            show_error(f"Cannot export: {problem}")
            self.status.setText(f"Export refused: {problem}")
            return None
        case_images = self._case.images_for(layer) if layer is not None else {}
        images = {contrast: image for contrast, image in case_images.items() if image}
        if layer is None or not images:
            show_error("Nothing to export: open a case and a Labels layer first")
            return None
        folder = self._default_folder(list(source_paths(images.values())))
        if folder is None:
            show_error("Choose an export folder (the case has no source folder)")
            return None
        try:
            arguments = self._export_arguments(layer)
        except MedsegError as error:
            show_error(f"Export failed: {error}")
            self.status.setText(f"Export failed: {error}")
            return None
        make_volume = volume_builder(images)  # built in the worker
        mask = np.array(layer.data, copy=True)  # what is exported, whatever is painted next
        kind = FORMATS[self.format_combo.currentText()]
        identity = layer_identity(layer, case_images)

        def task():
            yield from ()
            return export_case(make_volume(), mask, kind, folder, **arguments)

        self.export_button.setEnabled(False)
        worker = self.runner.start(
            task, lambda result: self._exported(layer.name, mask, result, identity), "Export")
        if worker is None:
            self.export_button.setEnabled(True)
        return worker

    def _export_arguments(self, layer) -> dict:
        """`export_case`'s keywords from the section's fields and the layer's metadata."""
        meta = layer.metadata.get("napari_medseg", {})
        return dict(
            case_id=self.case_edit.text().strip() or None,
            original=self._original_of(layer), model=self._model_of(layer),
            history=meta.get("edit_history", []),
            label_names={int(k): v for k, v in meta.get("label_names", {}).items()},
            dataset_name=self.dataset_edit.text().strip() or None,
            overwrite=self.overwrite_box.isChecked())

    def _exported(self, name: str, mask: np.ndarray, result, identity: tuple) -> str:
        """On the GUI thread: keep the result; the mask's recovery file goes unless the
        mask was edited while it was written (the export does not hold those edits).
        Returns the status line."""
        from napari_medseg.export import discard_recovery

        self.last_export = result
        if result.output.name.startswith("Dataset"):
            self.last_dataset = result.output
        layers = self._viewer.layers  # by name: the dock's viewer hands out proxies
        if name in layers and np.array_equal(np.asarray(layers[name].data), mask):
            discard_recovery(*identity)
        show_info(f"Exported '{name}' to {result.output}")
        return f"Exported to {result.output} ({len(result.files)} files)"

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
