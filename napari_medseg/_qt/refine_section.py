"""Dock section 'Refine': positive/negative clicks fix a Labels layer, with undo.

Clicks reach the core `InteractiveSession`, which shares the Labels layer's
array; the engine runs in a thread worker, and its change is written on the
GUI thread through ``Labels.data_setitem``, so napari's own undo (Ctrl-Z)
reverts a click. Clicks made while one is computing wait in a queue.
"""
from __future__ import annotations

from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QButtonGroup, QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton,
    QRadioButton, QVBoxLayout, QWidget)

from napari_medseg._qt.click_engine import (
    ENGINES, EngineKey, build_session, propose, session_factory)
from napari_medseg._qt.click_input import ClickInput
from napari_medseg._qt.click_points import ClickPoints
from napari_medseg._qt.layer_combo import (
    fill_labels_combo, fill_object_combo, new_target_layer, object_value)
from napari_medseg.errors import MedsegError

_START = "Start clicking  (Shift-click: other sign, Ctrl-Z: undo)"

class RefineSection(QWidget):
    """Target layer and label, sign, engine; Undo click / Reset object / Accept."""

    def __init__(self, viewer, case_section, model_section, parent=None):
        super().__init__(parent)
        self._viewer, self._case, self._models = viewer, case_section, model_section
        self.points = ClickPoints(viewer, self.labels_layer)
        self.session = None
        self._engine_key: EngineKey | None = None
        self._pending: list[tuple[tuple[float, ...], bool]] = []
        self._worker = None
        self._edits: list[bool] = []  # per undoable edit of the layer: was it a click?
        self._applying = False
        self._watched = None
        self.layer_combo, self.label_combo, self.engine_combo = QComboBox(), QComboBox(), \
            QComboBox()
        self.engine_combo.addItems(list(ENGINES))
        self.engine_combo.setToolTip("auto: the learned click network if it knows the model's "
                                     "labels and the case has its contrasts; else, after a "
                                     "model run, the model-aware engine, and without one, the "
                                     "random walker")
        self.protect_box = QCheckBox("Protect other labels")
        self.protect_box.setToolTip("A positive click then takes only background voxels: "
                                    "no other label loses a voxel")
        self.positive_button = QRadioButton("positive (add)")
        self.negative_button = QRadioButton("negative (remove)")
        self.positive_button.setChecked(True)
        self._sign_group = QButtonGroup(self)
        for button in (self.positive_button, self.negative_button):
            self._sign_group.addButton(button)
        self.active_button = QPushButton(_START)
        self.active_button.setToolTip("Click in the image to add or remove; Shift-click for "
                                      "the other sign; Ctrl-Z undoes the last click")
        self.active_button.setCheckable(True)
        self.active_button.toggled.connect(self._on_active)
        self.undo_button, self.reset_button, self.accept_button = (
            QPushButton("Undo click"), QPushButton("Reset object"), QPushButton("Accept"))
        self.undo_button.clicked.connect(self.undo)
        self.reset_button.clicked.connect(self.reset)
        self.accept_button.clicked.connect(self.accept)
        self.engine_label, self.status = QLabel("Engine: chosen at the first click"), QLabel("")
        for label in (self.engine_label, self.status):
            label.setWordWrap(True)
        self.input = ClickInput(viewer, self)
        self.layer_combo.activated.connect(lambda *_: self._refresh_labels())
        self.label_combo.activated.connect(lambda *_: self._drop_session_clicks())
        self.engine_combo.activated.connect(lambda *_: self._forget_engine())
        viewer.layers.events.inserted.connect(self.refresh)
        viewer.layers.events.removed.connect(self.refresh)
        self._build_layout()
        self.refresh()

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Labels layer", self.layer_combo)
        form.addRow("Object", self.label_combo)
        form.addRow("Engine", self.engine_combo)
        signs = QHBoxLayout()
        signs.addWidget(self.positive_button)
        signs.addWidget(self.negative_button)
        form.addRow("Click", signs)
        form.addRow("", self.protect_box)
        buttons = QHBoxLayout()
        for button in (self.undo_button, self.reset_button, self.accept_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.active_button)
        layout.addLayout(buttons)
        layout.addWidget(self.engine_label)
        layout.addWidget(self.status)

    @property
    def busy(self) -> bool:
        """A click is being computed, or clicks wait for the engine."""
        return self._worker is not None or bool(self._pending)

    # -- choices ------------------------------------------------------------
    def labels_layer(self):
        """The Labels layer being edited, or None."""
        name = self.layer_combo.currentText()
        return self._viewer.layers[name] if name in self._viewer.layers else None

    def refresh(self, event=None) -> None:
        """Fill the layer list from the viewer's Labels layers; a model run's new output
        layer becomes the target (a loaded reference is edited only when picked), and so
        does the chosen mask's copy resampled onto the case's grid."""
        before = self.labels_layer()
        fill_labels_combo(self.layer_combo, self._viewer,
                          select=new_target_layer(event, self.layer_combo.currentText()))
        after = self.labels_layer()  # napari proxies: the same layer holds the same array
        if before is None or after is None or after.data is not before.data or \
                not self.label_combo.count():
            self._refresh_labels()  # only when the target changed: it counts its labels

    def _refresh_labels(self) -> None:
        fill_object_combo(self.label_combo, self.labels_layer())
        self._drop_session_clicks()

    def image_layers(self) -> dict:
        """The images clicks refine on: the case's assigned contrasts, else every 3D image."""
        from napari.layers import Image

        assigned = {c: layer for c, layer in self._case.assigned_layers().items()
                    if layer is not None}
        if assigned:
            return assigned
        images = [layer for layer in self._viewer.layers
                  if isinstance(layer, Image) and layer.ndim == 3 and not layer.rgb]
        shape = images[0].data.shape if images else None
        return {layer.name: layer for layer in images if layer.data.shape == shape}

    def current_label(self) -> int:
        """The label value clicks edit ('new object': one above the largest present)."""
        return object_value(self.label_combo, self.labels_layer())

    def _on_active(self, active: bool) -> None:
        self.active_button.setText("Stop clicking" if active else _START)
        self.input.set_active(active)
        if active:
            self.points.layer()
            self._prepare_session()

    def _prepare_session(self) -> None:
        """Build the session's engine in a worker as clicking starts, so that the first
        click does not wait for it (a click made meanwhile waits in the queue)."""
        from napari.qt.threading import create_worker

        layer = self.labels_layer()
        if self._worker is not None or layer is None or not self.image_layers():
            return
        if self._engine_fits(layer):
            return
        key = EngineKey.of(layer, self.image_layers(), self._engine_choice())
        make = self._session_factory(layer, self.current_label())
        if make is None:
            return
        self.points.clear()  # a new session: the old one's points go, as at a first click
        worker = create_worker(build_session, make, _start_thread=False)
        worker.returned.connect(lambda session: self._prepared(session, key))
        worker.errored.connect(lambda error: self._prepared(error, key))
        self._worker = worker
        self.status.setText("loading the engine...")
        worker.start()

    def _engine_fits(self, layer) -> bool:
        return self.session is not None and self._engine_key is not None and \
            self._engine_key.fits(layer, self.image_layers(), self._engine_choice())

    def _prepared(self, session, key) -> None:
        self._worker = None
        if isinstance(session, Exception):
            self._failed(session, "Refinement unavailable")
            return
        self.session, self._engine_key = session, key
        self.engine_label.setText(f"Engine: {session.engine_name}")
        self.status.setText("Ready: click in the image")
        self._next_click()

    # -- clicks ---------------------------------------------------------------
    def add_click(self, position, positive: bool) -> bool:
        """Queue a click at voxel ``position`` (z, y, x); False (and a message) if refused.

        Parameters
        ----------
        position : sequence of float
            The clicked voxel (z, y, x) of the target layer.
        positive : bool
            True adds the label, False removes it.
        """
        problem = self._refusal(position)
        if problem:
            show_error(problem)
            return False
        self._pending.append((tuple(float(p) for p in position), bool(positive)))
        self._next_click()
        return True

    def _refusal(self, position) -> str | None:
        layer = self.labels_layer()
        if layer is None:
            return "No Labels layer to edit: run a model or add an empty Labels layer first"
        images = self.image_layers()
        if not images:
            return "No image loaded: open a case first"
        if self._models.runner.busy:
            return "A model run is in progress: wait for it (or cancel it) before clicking"
        shape = next(iter(images.values())).data.shape[-3:]
        if tuple(layer.data.shape) != tuple(shape):
            return (f"Labels layer '{layer.name}' has shape {tuple(layer.data.shape)} but the "
                    f"image has {tuple(shape)}: choose the matching Labels layer")
        if any(not 0 <= round(p) < n for p, n in zip(position, shape)):
            return "The click is outside the volume: click inside the image"
        return None

    def _next_click(self) -> None:
        if self._worker is not None or not self._pending:
            return
        from napari.qt.threading import create_worker

        layer, label = self.labels_layer(), self.current_label()
        if not self._engine_fits(layer):
            self._prepare_session()  # the clicks wait in the queue for the engine
            if self._worker is None:  # refused, with a message
                self._pending.clear()
            return
        try:
            self.session.set_label(label)
        except MedsegError as error:
            self._pending.clear()
            show_error(str(error))
            return
        self.session.protect = self.protect_box.isChecked()
        position, positive = self._pending.pop(0)
        worker = create_worker(propose, self.session, position, positive,
                               _start_thread=False)
        worker.returned.connect(lambda change: self._apply(layer, change, position, positive))
        worker.errored.connect(self._failed)
        self._worker = worker
        self.status.setText("computing...")
        worker.start()

    def _session_factory(self, layer, label: int):
        """`click_engine.session_factory` with the section's choices (None, with a message,
        when the case's images cannot be read as one)."""
        from napari_medseg.layers import layer_model_folder

        problem = self._case.mask_problem(layer.name)
        if problem is not None:
            show_error(f"Refinement unavailable: {problem}")
            return None
        try:  # the model that made the mask (a run, a review case), else the dock's choice
            return session_factory(
                layer, self.image_layers(), label, self.engine_combo.currentText(),
                self._device(), self.protect_box.isChecked(),
                layer_model_folder(layer) or self._models.current_folder(),
                self._models.precision_combo.currentText())
        except MedsegError as error:
            show_error(f"Refinement unavailable: {error}")
            return None

    def _engine_choice(self) -> str:
        """The engine, device and precision chosen: another choice builds another engine."""
        return (f"{self.engine_combo.currentText()} on {self._models.device_combo.currentText()}"
                f" in {self._models.precision_combo.currentText()}")

    def _device(self) -> str | None:
        choice = self._models.device_combo.currentText()
        return None if choice == "auto" else choice

    def _watch_edits(self, layer) -> None:
        """Count the layer's undoable edits (paint events), marking those that are clicks."""
        if self._watched is None or layer != self._watched:  # napari hands out proxies:
            if self._watched is not None:  # compare layers with ==, not `is`
                self._watched.events.paint.disconnect(self._on_paint)
            layer.events.paint.connect(self._on_paint)
            self._watched, self._edits = layer, []

    def _on_paint(self, _event=None) -> None:
        self._edits.append(self._applying)

    def _apply(self, layer, change, position, positive: bool) -> None:
        if isinstance(change, Exception):
            self._failed(change)
            return
        self._worker = None
        # The point is drawn with the result: a paint while the network ran would compete
        # with it for the CPU (software OpenGL paints on the same cores).
        self.points.add(position, positive)
        self._watch_edits(layer)
        self._applying = True
        try:
            if change.n_voxels:
                layer.data_setitem(change.indices, change.after)
            else:
                self._edits.append(True)  # a click that changed nothing: nothing to undo
        finally:
            self._applying = False
        self.session.commit(change, writer=lambda *_: None)
        self._record(layer)
        self.status.setText(f"{len(self.session.clicks)} click(s); last changed "
                            f"{change.n_voxels} voxels in {1000 * change.seconds:.0f} ms")
        self._next_click()

    def _failed(self, error, what: str = "Click failed") -> None:
        self._worker = None
        self._pending.clear()
        message = str(error) if isinstance(error, MedsegError) else \
            f"{type(error).__name__}: {error}"
        show_error(f"{what}: {message}")
        self.status.setText(f"{what}: {message}")

    def _record(self, layer) -> None:
        meta = layer.metadata.setdefault("napari_medseg", {})
        meta["edit_history"] = list(self.session.history)
        meta["click_engine"] = self.session.engine_name

    # -- undo / reset / accept ----------------------------------------------
    def undo(self) -> None:
        """Undo the last click (napari's Labels undo, so Ctrl-Z and this agree)."""
        layer = self.labels_layer()
        if layer is None or self.session is None or not self.session.changes:
            show_info("No click to undo")
            return
        if self.session.changes[-1].n_voxels:
            self._undo_layer(layer)
        elif self._edits:
            self._edits.pop()
        self.forget_last_click()

    def _undo_layer(self, layer) -> bool:
        """napari's undo on the layer; True when the edit undone was a click."""
        was_click = bool(self._edits) and self._edits.pop() and layer == self._watched
        layer.undo()
        return was_click

    def forget_last_click(self) -> None:
        """Drop the newest click from the session and the Points layer."""
        if self.session is not None and self.session.changes:
            self.session.forget_last()
            self.points.remove_last()
            self._record(self.labels_layer())
            self.status.setText(f"{len(self.session.clicks)} click(s)")

    def on_layer_undo(self, layer) -> None:
        """Ctrl-Z on the Labels layer: undo, and forget the click if it was one."""
        if self._watched is None or layer != self._watched:
            layer.undo()
            return
        while self._edits and self._edits[-1] and self.session is not None and \
                self.session.changes and not self.session.changes[-1].n_voxels:
            self._edits.pop()  # clicks that changed nothing are skipped by napari's undo too
            self.forget_last_click()
        if self._undo_layer(layer):
            self.forget_last_click()

    def reset(self) -> None:
        """Revert every click on the current object."""
        while self.session is not None and self.session.changes:
            self.undo()

    def accept(self) -> None:
        """Keep the result: the object's clicks are closed (edits stay in history)."""
        if self.session is not None:
            self.session.clicks, self.session.changes = [], []
        self.points.clear()
        self.status.setText("Accepted")

    def _drop_session_clicks(self) -> None:
        if self.session is not None:
            self.session.set_label(self.current_label())
            if not self.session.clicks:
                self.points.clear()

    def _forget_engine(self) -> None:
        self.session, self._engine_key = None, None
        self.engine_label.setText("Engine: chosen at the first click")

