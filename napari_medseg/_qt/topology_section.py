"""Dock section 'Topology': Betti numbers, located errors, overlay, one-click fixes."""
from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QComboBox, QFormLayout, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
    QPushButton, QVBoxLayout, QWidget)

from napari_medseg._qt.fit import WrappingList
from napari_medseg._qt.layer_combo import new_target_layer
from napari_medseg._qt.orientation import viewer_camera
from napari_medseg._qt.worker import TaskRunner
from napari_medseg.errors import MedsegError
from napari_medseg.layers import same_placement

OVERLAY_NAME = "topology errors"
FALLBACK_EXPECTATIONS = "WT:b0=1,b1=0,b2=0"


def expectations_text(expected_topology: dict) -> str:
    """``{"WT": {"b0": 1, "b2": 0}}`` -> ``'WT:b0=1,b2=0'`` (one line per structure)."""
    lines = []
    for name, entry in expected_topology.items():
        parts = [f"{k}={entry[k]}" for k in ("b0", "b1", "b2") if k in entry]
        parts += ["tubular"] if entry.get("tubular") else []
        lines.append(f"{name}:{','.join(parts)}")
    return "\n".join(lines)


def _error_line(name: str, error) -> str:
    """The error list's line: kind, structure, what, where (voxel) and its fix."""
    z, y, x = (int(round(v)) for v in error.centroid_voxel)
    return f"[{error.kind}] {name}: {error.detail} at z={z} y={y} x={x} \u2192 {error.fix}"


STALE = "The errors listed were another mask's: press Check for this one"


class TopologySection(QWidget):
    """Check a Labels layer, list its errors, jump to one, fix it (Ctrl-Z undoes)."""

    def __init__(self, viewer, model_section=None, parent=None):
        super().__init__(parent)
        self._viewer = viewer
        self.results: dict = {}
        self.errors: list = []
        self._checked: tuple = ()  # `case_token` of the mask the errors were found in
        self._checked_data: np.ndarray | None = None  # its voxels then, for `fix_selected`
        self.layer_combo = QComboBox()
        self.expectations = QPlainTextEdit(self._spec_expectations(model_section))
        self.expectations.setFixedHeight(56)
        self.expectations.setToolTip(
            "One per line: LABEL:b0=1,b1=0,b2=0 (add ',tubular' for vessels). LABEL is a name "
            "(ED), a value (2) or a region (WT)")
        self.run_button, self.cancel_button = QPushButton("Check"), QPushButton("Cancel")
        self.fix_button = QPushButton("Fix selected")
        self.progress, self.status = QProgressBar(), QLabel("")
        self.status.setWordWrap(True)
        self.runner = TaskRunner(self.progress, self.status, self.run_button, self.cancel_button)
        self.run_button.clicked.connect(self.run)
        self.fix_button.clicked.connect(self.fix_selected)
        self.betti_label = QLabel("")
        self.betti_label.setWordWrap(True)
        self.error_list = WrappingList()
        self.error_list.currentRowChanged.connect(self.go_to)
        self.layer_combo.currentTextChanged.connect(lambda _: self._current_mask())
        form = QFormLayout()
        form.addRow("Labels", self.layer_combo)
        form.addRow("Expected", self.expectations)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.cancel_button, self.fix_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addLayout(buttons)
        for widget in (self.progress, self.status, self.betti_label, self.error_list):
            layout.addWidget(widget)
        viewer.layers.events.inserted.connect(self._refresh_layers)
        viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()
        self.fix_button.setEnabled(False)

    @staticmethod
    def _spec_expectations(model_section) -> str:
        """Expected topology from the chosen model's spec (editable), else a default."""
        from napari_medseg.models import read_spec

        folder = model_section.current_folder() if model_section is not None else None
        try:
            text = expectations_text(read_spec(folder).expected_topology) if folder else ""
        except MedsegError:
            text = ""
        return text or FALLBACK_EXPECTATIONS

    def _refresh_layers(self, event=None) -> None:
        from napari.layers import Labels

        current = self.layer_combo.currentText()
        current = new_target_layer(event, current) or current
        names = [layer.name for layer in self._viewer.layers
                 if isinstance(layer, Labels) and layer.name != OVERLAY_NAME]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)
        self._current_mask()  # the listed errors' mask may be gone

    def _layer(self):
        name = self.layer_combo.currentText()
        if not name or name not in self._viewer.layers:
            raise MedsegError("no Labels layer to check: open or create a segmentation first")
        return self._viewer.layers[name]

    def run(self):
        """Check the chosen layer in a worker; returns it (None when refused).

        Only the snapshot of the mask is taken on the GUI thread (the user may paint
        while it runs); counting its labels and reading the expectations run in the
        worker, whose refusal of a bad expectation line is one notification."""
        from napari_medseg.labels import present_labels
        from napari_medseg.layers import affine_of_layer, case_token
        from napari_medseg.progress import Progress
        from napari_medseg.topology import check_setup, check_topology, overlay

        try:
            layer = self._layer()
        except MedsegError as error:
            show_error(str(error))
            return None
        data = np.asarray(layer.data).copy()
        names = {int(k): v for k, v in layer.metadata.get("napari_medseg", {}).get(
            "label_names", {}).items()}
        expect = self.expectations.toPlainText().splitlines()
        affine = affine_of_layer(layer.metadata, tuple(layer.scale))
        checked = case_token({"mask": layer})

        def task():
            yield Progress(0, 1, "computing Betti numbers and locating errors")
            setup = check_setup(names, expect=expect, present=present_labels(data),
                                strict=False, model_expectations=False)
            results = check_topology(data, affine, setup.names, setup.regions,
                                     setup.expectations)
            return results, overlay(data.shape, results)  # the overlay layer's voxels too

        return self.runner.start(task, lambda outcome: self._show(outcome, checked, data),
                                 "Topology check")

    def _current_mask(self):
        """The mask the listed errors were found in, while the Labels choice still shows
        it; else None, and the list is cleared (its fixes belong to another mask: applied
        to this one they would change the wrong voxels)."""
        from napari_medseg.layers import is_case

        name = self.layer_combo.currentText()
        layer = self._viewer.layers[name] if name in self._viewer.layers else None
        if layer is not None and is_case(self._checked, {"mask": layer}):
            return layer
        if self.errors or self.results:
            self.results, self.errors, self._checked, self._checked_data = {}, [], (), None
            self.error_list.show_lines([])
            self.betti_label.setText("")
            self.fix_button.setEnabled(False)
            self.status.setText(STALE)
        return None

    def _show(self, outcome, checked: tuple, data: np.ndarray) -> str | None:
        from napari_medseg.layers import on_same_grid
        from napari_medseg.topology import OVERLAY_COLORS

        self.results, codes = outcome
        self._checked, self._checked_data = checked, data
        lines = []
        for name, target in self.results.items():
            expected = {k: getattr(target.expected, k) for k in ("b0", "b1", "b2")
                        if getattr(target.expected, k) is not None}
            met = all(getattr(target.betti, k) == v for k, v in expected.items())
            mark = "" if met else " \u26a0"
            wanted = " ".join(f"{k}={v}" for k, v in expected.items())
            lines.append(f"<b>{name}</b>: b0={target.betti.b0} b1={target.betti.b1} "
                         f"b2={target.betti.b2}" + (f" (expected {wanted}){mark}"
                                                    if expected else ""))
        self.betti_label.setText("<br>".join(lines) or "empty mask: nothing to check")
        self.errors = [(name, error) for name, target in self.results.items()
                       for error in target.errors]
        self.error_list.show_lines([_error_line(name, error) for name, error in self.errors])
        layer = self._current_mask()
        if layer is None:  # another mask chosen while it ran
            return STALE
        overlay = self._viewer.layers[OVERLAY_NAME] if OVERLAY_NAME in self._viewer.layers \
            else None
        if overlay is not None and not on_same_grid(overlay, layer):  # another case's
            self._viewer.layers.remove(overlay)
            overlay = None
        if overlay is not None:
            overlay.data = codes
        else:
            self._viewer.add_labels(codes, name=OVERLAY_NAME, **same_placement(layer), opacity=0.8,
                                    colormap={0: (0, 0, 0, 0), None: (1, 1, 1, 1),
                                              **OVERLAY_COLORS})
        self.fix_button.setEnabled(bool(self.errors))
        return f"{len(self.errors)} topology error(s)"

    def go_to(self, row: int) -> None:
        """Move the view to the error in ``row`` (slice and centre)."""
        if not 0 <= row < len(self.errors) or (layer := self._current_mask()) is None:
            return
        centre = np.asarray(layer.data_to_world(self.errors[row][1].centroid_voxel))
        self._viewer.dims.set_point(range(3), tuple(centre))
        viewer_camera(self._viewer).center = tuple(centre)

    def fix_selected(self) -> None:
        """Apply the selected error's fix through the layer's undo history, then re-check."""
        from napari_medseg.topology import fix_changes

        row = self.error_list.currentRow()
        if not 0 <= row < len(self.errors):
            show_info("Select an error in the list first")
            return
        name, error = self.errors[row]
        if error.fix == "none":
            show_info(f"{error.kind} errors have no automatic fix: edit them by hand")
            return
        layer = self._current_mask()
        if layer is None:
            return
        if not np.array_equal(layer.data, self._checked_data):  # napari's undo sends no event
            show_info("The mask was edited since the check: checking it again, then choose "
                      "the error again (the old fix would change the new voxels)")
            self.run()
            return
        indices, values = fix_changes(np.asarray(layer.data), error)
        if len(values) == 0:
            show_info("The fix would change nothing here")
            return
        layer.data_setitem(indices, values)
        self.status.setText(f"fixed {error.kind} of {name} ({len(values)} voxels); Ctrl-Z undoes")
        self.run()
