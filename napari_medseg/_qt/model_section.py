"""Dock section 'Model': choose a model and device, run it without freezing napari."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QMessageBox,
    QProgressBar, QPushButton, QVBoxLayout, QWidget)

from napari_medseg.errors import MedsegError
from napari_medseg.layers import METADATA_KEY
from napari_medseg._qt.autosave import voxels_checksum
from napari_medseg._qt.fit import CHARACTERS_PROPERTY, wrappable
from napari_medseg._qt.worker import CASE_CLOSED, TaskRunner

OPEN_FOLDER = "Open model folder..."
MIRRORING_TIP = ("nnU-Net models: nnU-Net's mirroring test-time augmentation (on by default, "
                 "as in nnU-Net; up to 8x slower)")


class RunTime(NamedTuple):
    """How long the last model run took, for time estimates of the other sections."""

    folder: Path
    device: str
    seconds: float
    folds: int = 1  # how many of the model's folds it ran
    precision: str = "auto"  # the dock's choice it ran with


class RunLayers(NamedTuple):
    """What one model run added, to replace it when the next run gives the same. The
    layers are found by the ``run`` key of their metadata: the dock's viewer hands out
    proxies of them, not the layers themselves."""

    case: tuple  # `case_token` of the images it read
    name: str  # its segmentation layer's, as napari named it
    folder: str  # of the model
    predicted: int  # `voxels_checksum` of the segmentation as the run gave it

    def unedited(self, layers: list) -> list:
        """This run's segmentation and probability layers among ``layers`` (those carrying
        its run id; a napari duplicate of the segmentation does too) when the segmentation
        is unedited under its name; else none (edited, renamed or closed: the user's)."""
        from napari.layers import Labels

        segmentation = [layer for layer in layers if isinstance(layer, Labels)
                        and layer.name == self.name]
        if len(segmentation) != 1 or voxels_checksum(segmentation[0]) != self.predicted:
            return []
        return segmentation + [layer for layer in layers
                               if layer.metadata[METADATA_KEY].get("probability_of")]


class ModelSection(QWidget):
    """Model and device pickers, Run/Cancel, progress; results become layers."""

    spec_shown = Signal(object)  # the chosen model's ModelSpec, after every change

    def __init__(self, viewer, case_section, parent=None):
        super().__init__(parent)
        from napari_medseg.models import builtin_models
        from napari_medseg.models.device import DEVICE_CHOICES, PRECISIONS

        self._viewer = viewer
        self._case = case_section
        self._folders: dict[str, Path] = dict(builtin_models())
        self._loaded: dict[tuple, object] = {}  # (folder, folds) -> loaded model
        self._trusted: set[Path] = set()  # folders whose TorchScript the user allowed
        self.last_run: RunTime | None = None
        self._runs: dict[str, RunLayers] = {}  # what each model run added, by run id
        self._bf16_warning = ""  # the status line last shown for an emulated bf16 choice
        self.shown_spec = None  # the chosen model's ModelSpec (None: none or unreadable)
        self.model_combo = QComboBox()
        self.model_combo.addItems([*self._folders, OPEN_FOLDER])
        self.model_combo.activated.connect(self._on_model_activated)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu"])  # CUDA, MPS: list_devices, torch loaded
        self.precision_combo = QComboBox()
        self.precision_combo.addItems(list(PRECISIONS))
        self.precision_combo.setToolTip("auto: bfloat16 where the CPU computes it natively "
                                        "(AVX-512 BF16, AMX) and on CUDA, else float32")
        self.probabilities_box = QCheckBox("add probability layers")
        self.folds_combo = QComboBox()
        self.folds_combo.setToolTip("Run every fold and average them, or one fold")
        self.mirroring_box = QCheckBox("mirroring")
        self.mirroring_box.setChecked(True)
        self.mirroring_box.setToolTip(MIRRORING_TIP)
        self.spec_label = QLabel()
        self.spec_label.setWordWrap(True)
        self.run_button, self.cancel_button = QPushButton("Run"), QPushButton("Cancel")
        self.progress, self.status = QProgressBar(), QLabel("Ready")
        self.status.setWordWrap(True)
        self.runner = TaskRunner(self.progress, self.status, self.run_button, self.cancel_button)
        self.run_button.clicked.connect(self.run)
        for combo in (self.device_combo, self.precision_combo):
            combo.currentTextChanged.connect(self._warn_of_emulated_bf16)
        form = QFormLayout()
        form.addRow("Model", self.model_combo)
        for short, choices in ((self.device_combo, DEVICE_CHOICES),
                               (self.precision_combo, PRECISIONS)):  # short, fixed names
            short.setProperty(CHARACTERS_PROPERTY, max(map(len, choices)))
        device_row = QHBoxLayout()  # one row: the dock's default view fits 1000 px screens
        device_row.addWidget(self.device_combo, 1)
        device_row.addWidget(QLabel("Precision"))
        device_row.addWidget(self.precision_combo, 1)
        form.addRow("Device", device_row)
        folds_row = QHBoxLayout()
        folds_row.addWidget(self.folds_combo, 1)
        folds_row.addWidget(self.mirroring_box)
        form.addRow("Folds", folds_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for item in (form, self.spec_label, self.probabilities_box, buttons, self.progress,
                     self.status):
            layout.addLayout(item) if isinstance(item, (QFormLayout, QHBoxLayout)) \
                else layout.addWidget(item)
        self._add_users_models()
        self._show_spec()

    def list_devices(self) -> None:
        """Add the accelerators torch finds here (CUDA, Apple MPS) above 'cpu'.

        The dock calls this after its warm-up has imported torch (1.6 s on the GUI thread
        when the dock opened).
        """
        from napari_medseg.models import available_devices

        listed = [self.device_combo.itemText(index) for index in range(self.device_combo.count())]
        for position, device in enumerate(available_devices(), start=1):
            if device not in listed:
                self.device_combo.insertItem(position, device)

    def _warn_of_emulated_bf16(self) -> None:
        """Say so at once when the choice is bfloat16 on a CPU that only emulates it.
        ``auto`` runs on the first device listed after it: an accelerator, else the CPU."""
        from napari_medseg.models.device import emulated_bf16_warning

        device = self.device_combo.currentText()
        if device == "auto":
            device = self.device_combo.itemText(1)
        warning = emulated_bf16_warning(self.precision_combo.currentText(), device)
        if warning is None:
            if self.status.text() == self._bf16_warning:
                self.status.setText("Ready")  # the choice it warned of is gone
            return
        show_warning(warning)
        self._bf16_warning = f"\u26a0 {warning}"
        if not self.runner.busy:
            self.status.setText(self._bf16_warning)

    # -- model choice -----------------------------------------------------
    def current_folder(self) -> Path | None:
        """Folder of the chosen model."""
        return self._folders.get(self.model_combo.currentText())

    def _add_users_models(self) -> None:
        """List fine-tuned models and remembered folders (silently skip broken ones)."""
        from napari_medseg.models.registry import remembered_folders, user_models

        for folder in [*user_models().values(), *remembered_folders()]:
            try:
                self._list_folder(Path(folder))
            except MedsegError:
                continue

    def _list_folder(self, folder: Path) -> str:
        """Put a model folder in the list (its spec validated); returns its entry."""
        from napari_medseg.models import read_spec

        spec = read_spec(folder)
        key = f"{spec.name} {spec.version} ({folder.name})"
        if key not in self._folders:
            self.model_combo.insertItem(self.model_combo.count() - 1, key)
        self._folders[key] = folder
        return key

    def add_model_folder(self, folder: str | Path) -> None:
        """Add a model folder to the list and select it (validated first); folders
        outside the user's models folder are remembered for the next napari start."""
        from napari_medseg.models.registry import remember_folder, user_models_dir

        folder = Path(folder)
        self.model_combo.setCurrentText(self._list_folder(folder))
        if folder.resolve().parent != user_models_dir().resolve():
            remember_folder(folder)
        self._show_spec()

    def _on_model_activated(self, index: int) -> None:
        if self.model_combo.itemText(index) == OPEN_FOLDER:
            folder = QFileDialog.getExistingDirectory(self, "Open model folder")
            self.model_combo.setCurrentIndex(0)
            if folder:
                try:
                    self.add_model_folder(folder)
                    self.confirm_code(Path(folder))
                except MedsegError as error:
                    show_error(str(error))
        self._show_spec()

    def _show_spec(self) -> None:
        from napari_medseg.models import read_spec

        folder, self.shown_spec = self.current_folder(), None
        self.model_combo.setToolTip(self.model_combo.currentText())  # whole, when cut short
        if folder is None:
            self.spec_label.setText("No model installed: open a model folder.")
            return
        try:
            spec = read_spec(folder)
        except MedsegError as error:
            self.spec_label.setText(f"\u26a0 {error}")
            return
        self.shown_spec = spec
        labels = ", ".join(info.name for info in spec.labels)
        self._show_folds(spec)
        self.spec_shown.emit(spec)
        self.spec_label.setText(wrappable(
            f"{spec.name} {spec.version}: inputs {', '.join(spec.input_names)}; labels {labels}; "
            f"{len(spec.folds)} folds; patch {'x'.join(map(str, spec.patch_size))} at "
            f"{'x'.join(f'{s:g}' for s in spec.spacing)} mm"))
        self._case.set_contrasts(spec.input_names)

    def _show_folds(self, spec) -> None:
        """Folds list ("all N folds", then each); the mirroring choice only for nnU-Net."""
        names = [Path(fold.file).parent.name or Path(fold.file).stem for fold in spec.folds]
        self.folds_combo.clear()
        self.folds_combo.addItems([f"all {len(names)} folds", *names])
        self.mirroring_box.setVisible(spec.architecture.get("name") == "nnunet")

    def confirm_code(self, folder: Path) -> bool:
        """Ask before trusting a folder whose weights are TorchScript (code that runs).

        Returns whether the folder is trusted; a refusal leaves it listed but
        unloadable, with the reason in the model's description.
        """
        from napari_medseg.models import read_spec
        from napari_medseg.models.loading import TORCHSCRIPT_SUFFIXES

        if not any(Path(f.file).suffix in TORCHSCRIPT_SUFFIXES for f in read_spec(folder).folds):
            return True
        answer = QMessageBox.question(
            self, "Model folder contains code",
            f"The model in {folder} is TorchScript: the code inside it runs on this computer "
            "when it is loaded and when it predicts, with your permissions.\n\nTrust it only "
            "if you know who made it. Trust this folder?",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer == QMessageBox.Yes:
            self._trusted.add(folder)
            return True
        show_info(f"{folder.name}: not trusted; its TorchScript weights will not be loaded")
        return False

    # -- running ----------------------------------------------------------
    def chosen_folds(self) -> list[int] | None:
        """The fold chosen in the Folds list (None: all of them). Read on the GUI thread."""
        index = self.folds_combo.currentIndex()
        return None if index <= 0 else [index - 1]

    def loaded_model(self, folder: Path, folds: list[int] | None = None):
        """The model in ``folder`` (these folds), loaded once (checksums verified). Safe in
        a worker: it touches no widget, so callers read ``current_folder()`` on the GUI
        thread.

        Parameters
        ----------
        folder : Path
            The model folder.
        folds : list of int, optional
            The folds to load (default all).
        """
        from napari_medseg.models import load_model

        key = (folder, tuple(folds) if folds is not None else None)
        if key not in self._loaded:
            self._loaded[key] = load_model(folder, folds=folds,
                                           trust_code=folder in self._trusted)
        return self._loaded[key]

    def run(self):
        """Start the prediction in a worker; returns it (None when refused)."""
        from napari_medseg.layers import case_token, volume_builder

        if self.current_folder() is None:
            show_error("No model chosen: open a model folder first")
            return None
        warnings = self._case.warnings()
        if warnings:
            show_error("Cannot run the model: " + warnings[0])
            return None
        images = self._case.assigned_layers()
        make_volume, case = volume_builder(images, stored_types=True), case_token(images)
        device = self.device_combo.currentText()
        precision = self.precision_combo.currentText()
        folder, folds = self.current_folder(), self.chosen_folds()
        mirroring = self.mirroring_box.isChecked()

        def task():  # probabilities are always kept: click refinement uses them
            from napari_medseg.export import content_fingerprint
            from napari_medseg.inference import predict
            from napari_medseg.layers import kept_probabilities

            volume = make_volume()
            started = time.perf_counter()
            model = self.loaded_model(folder, folds)
            prediction = yield from predict(model, volume, device=device, precision=precision,
                                            mirroring=mirroring)
            kept = kept_probabilities(prediction.probabilities)  # for clicks, in the worker
            run_time = RunTime(folder, device, time.perf_counter() - started,
                               len(model.networks), precision)
            content = content_fingerprint(prediction.labels)  # autosave's key, hashed here
            return model, volume, prediction, kept, run_time, content

        return self.runner.start_on_case(self._viewer, case, task,
                                         lambda result: self._add_result(result, case),
                                         "Model run")

    def _add_result(self, result, case: tuple) -> Iterator[None] | str:
        """The segmentation, then each probability layer, one per event-loop turn; nothing
        when the images it read are no longer in the viewer (another case replaced them)."""
        from napari_medseg.layers import (
            PROBABILITIES_KEY, case_open, labels_layer, probability_layers)

        if not case_open(case, self._viewer.layers):
            return f"Model run: {CASE_CLOSED}, nothing added"
        model, volume, prediction, kept, self.last_run, content = result
        spec = model.spec
        data, kwargs, _ = labels_layer(prediction.labels, volume.affine,
                                       name=f"{spec.name} segmentation", table=spec.labels,
                                       model={"name": spec.name, "version": spec.version,
                                              "folder": str(model.folder)},
                                       source_paths=list(volume.source_paths), content=content)
        kwargs["metadata"][PROBABILITIES_KEY] = kept
        for note in prediction.notes:
            show_info(note)
        self._replace_earlier(str(model.folder), case)
        run = uuid.uuid4().hex
        kwargs["metadata"][METADATA_KEY]["run"] = run
        segmentation = self._viewer.add_labels(data, **kwargs)
        self._runs[run] = RunLayers(case, segmentation.name, str(model.folder),
                                    voxels_checksum(segmentation))
        if self.probabilities_box.isChecked():
            for array, layer_kwargs, _ in probability_layers(prediction.probabilities,
                                                             volume.affine, spec.labels):
                yield
                layer_kwargs["metadata"][METADATA_KEY]["run"] = run
                self._viewer.add_image(array, **layer_kwargs)

    def _replace_earlier(self, folder: str, case: tuple) -> None:
        """Remove the results of earlier runs of the same model on the same case that are
        unedited and still under the name napari gave them, with their probability
        layers: re-runs do not pile up copies, each holding its probabilities (edit or
        rename a result to keep it beside the next)."""
        from napari_medseg.layers import same_case

        by_run: dict[str, list] = {}
        for layer in self._viewer.layers:
            by_run.setdefault(layer.metadata.get(METADATA_KEY, {}).get("run"), []).append(layer)
        self._runs = {run: made for run, made in self._runs.items() if run in by_run}
        for run, made in list(self._runs.items()):
            earlier = made.unedited(by_run[run]) if made.folder == folder \
                and same_case(made.case, case) else []
            if earlier:
                del self._runs[run]
                for layer in earlier:
                    self._viewer.layers.remove(layer)
                show_info(f"Replaced the earlier, unedited '{made.name}' by this run's; "
                          "edit or rename a result to keep it beside the next run")
