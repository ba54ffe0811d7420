"""Dock section 'Uncertainty': maps, per-structure table and click suggestions."""
from __future__ import annotations

from collections.abc import Generator

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QAbstractItemView, QCheckBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel,
    QProgressBar, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from napari_medseg._qt.fit import WrappingList, fit_rows
from napari_medseg._qt.worker import CASE_CLOSED, TaskRunner
from napari_medseg.layers import same_placement

MAP_COLORMAPS = {"total": "inferno", "aleatoric": "viridis", "epistemic": "magma"}
SUGGESTIONS_NAME = "suggested clicks"
_COLUMNS = ("Structure", "Volume (ml)", "CV", "Unc. in", "Unc. edge")
STALE = "The maps were another case's: Run again for this one"
STALE_SUGGESTIONS = "The suggestions were another case's: Suggest again for this one"


class UncertaintySection(QWidget):
    """Method checkboxes, samples, Run; maps as layers, a table, suggestions to jump to."""

    def __init__(self, viewer, case_section, model_section, parent=None):
        super().__init__(parent)
        self._viewer, self._case, self._models = viewer, case_section, model_section
        self.result, self.suggestions, self._result_case = None, [], ()
        self.method_boxes = {name: QCheckBox(label) for name, label in
                             (("mc", "MC dropout"), ("tta", "flip TTA"), ("ensemble", "folds"))}
        self.method_boxes["mc"].setChecked(True)
        self.samples = QSpinBox()
        self.samples.setRange(2, 64)
        self.samples.setValue(8)
        self.run_button, self.cancel_button = QPushButton("Run"), QPushButton("Cancel")
        self.suggest_button = QPushButton("Suggest clicks")
        self.suggest_button.clicked.connect(self.suggest)
        self.progress, self.status = QProgressBar(), QLabel("")
        self.status.setWordWrap(True)
        self.runner = TaskRunner(self.progress, self.status, self.run_button, self.cancel_button)
        self.run_button.clicked.connect(self.run)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        fit_rows(self.table, 0)  # hidden until there are figures to show
        self.suggestion_list = WrappingList()
        self.suggestion_list.currentRowChanged.connect(self.go_to)
        self.suggest_button.setToolTip(
            "Where a click would fix the most: after a run of a model whose labels the click "
            "network knows, its second opinion on the mask; otherwise the uncertainty maps")
        self._build_layout()
        model_section.spec_shown.connect(self.offer_methods)
        case_section.assignment_changed.connect(self._forget_other_case)
        if model_section.shown_spec is not None:  # shown before this section existed
            self.offer_methods(model_section.shown_spec)

    def offer_methods(self, spec) -> None:
        """MC dropout only for networks with dropout (nnU-Net's have none): otherwise it is
        greyed out with the reason, and the folds (or flips) are ticked instead."""
        from napari_medseg.uncertainty import default_method

        method = default_method(spec)
        box = self.method_boxes["mc"]
        box.setEnabled(method == "mc")
        box.setToolTip("" if method == "mc" else f"{spec.name}: the network has no dropout "
                       "layers, so Monte Carlo dropout cannot sample it; use folds or flip TTA")
        if method != "mc" and box.isChecked():
            box.setChecked(False)
            self.method_boxes[method].setChecked(True)

    def _build_layout(self) -> None:
        methods = QHBoxLayout()
        for box in self.method_boxes.values():
            methods.addWidget(box)
        form = QFormLayout()
        form.addRow("Method", methods)
        self.samples.setToolTip("MC dropout: passes with dropout on; flip TTA: flips, of the "
                                "fold chosen in the Model section (else the first); with "
                                "folds ticked: per fold, every fold")
        form.addRow("Samples", self.samples)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.cancel_button, self.suggest_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addLayout(buttons)
        for widget in (self.progress, self.status, self.table, self.suggestion_list):
            layout.addWidget(widget)

    def methods(self) -> tuple[str, ...]:
        """The ticked methods."""
        return tuple(name for name, box in self.method_boxes.items() if box.isChecked())

    def run(self):
        """Sample the model in a worker; returns it (None when refused)."""
        from napari_medseg.layers import case_token, volume_builder

        warnings = self._case.warnings()
        if warnings or self._models.current_folder() is None:
            show_error("Cannot estimate uncertainty: " + (warnings[0] if warnings else
                                                         "choose a model first"))
            return None
        if not self.methods():
            show_error("Tick at least one method (MC dropout, flip TTA or folds)")
            return None
        make_volume = volume_builder(self._case.assigned_layers(), stored_types=True)
        case = case_token(self._case.assigned_layers())
        methods, samples = self.methods(), self.samples.value()
        device = self._models.device_combo.currentText()
        precision = self._models.precision_combo.currentText()
        folder = self._models.current_folder()
        # dropout and flips sample the fold the Model section runs (its prediction is the
        # one on screen); the folds method needs every fold
        folds = None if "ensemble" in methods else self._models.chosen_folds()

        def task():
            from napari_medseg.uncertainty import estimate_uncertainty

            volume = make_volume()
            model = self._models.loaded_model(folder, folds)
            result = yield from estimate_uncertainty(model, volume, methods, samples,
                                                     device=device, precision=precision)
            tops = {name: max(float(values.max()), 1e-3)  # colour ranges, not read on the GUI
                    for name, values in result.maps.items()}
            return result, volume, tops

        return self.runner.start_on_case(self._viewer, case, task,
                                         lambda outcome: self._show(outcome, case), "Uncertainty")

    def _show(self, outcome, case: tuple) -> Generator[None, None, str]:
        """Each map as a layer, one per event-loop turn, then the table (none when another
        case opened while it ran; no layer either once its images are closed). A map layer
        left from an earlier run takes the new values when it lies on this case's grid,
        else the new one replaces it."""
        from napari_medseg.layers import case_open, geometry_metadata
        from napari_medseg.orientation import placement

        if not case_open(case, self._viewer.layers):  # its maps would lie on another case
            return f"Uncertainty: {CASE_CLOSED}, nothing added"
        self.result, volume, tops = outcome
        self._result_case = case
        for name, values in self.result.maps.items():
            layer_name = f"uncertainty {name}"
            where = placement(volume.affine, values.shape)
            if layer_name in self._viewer.layers:
                old = self._viewer.layers[layer_name]
                if old.data.shape == values.shape and np.allclose(old.affine.affine_matrix,
                                                                  where["affine"]):
                    old.data = values
                    continue
                self._viewer.layers.remove(layer_name)
                yield
            self._viewer.add_image(values, name=layer_name, colormap=MAP_COLORMAPS[name],
                                   contrast_limits=(0.0, tops[name]),
                                   **where, blending="additive",
                                   visible=name == "total", opacity=0.7,
                                   metadata=geometry_metadata(volume.affine, uncertainty=name,
                                                              method=self.result.method))
            yield
        self._fill_table()
        self._forget_other_case()  # another case opened while it ran
        if self.result is None:
            return STALE
        return (f"{self.result.method}, {self.result.n_samples} samples, "
                f"{self.result.seconds:.1f} s")

    def _forget_other_case(self) -> None:
        """Drop the figures and suggestions once the Case section shows another case (opened
        in its place or beside it): suggestions would otherwise read its maps."""
        from napari_medseg.layers import is_case

        if self.result is None or is_case(self._result_case, self._case.assigned_layers()):
            return
        self.result, self.suggestions = None, []
        fit_rows(self.table, 0)
        self.suggestion_list.show_lines([])
        self.status.setText(STALE)

    def _fill_table(self) -> None:
        rows = self.result.structures
        fit_rows(self.table, len(rows))
        for row, (name, figures) in enumerate(rows.items()):
            cells = [name, f"{figures['volume_mean_mm3'] / 1000:.1f}\u00b1"
                     f"{figures['volume_sd_mm3'] / 1000:.1f}", f"{figures['volume_cv']:.3f}",
                     f"{figures['uncertainty_inside']:.3f}",
                     f"{figures['uncertainty_boundary']:.3f}"]
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))

    def _clicked_points(self) -> list:
        from napari.layers import Points

        grid = self._grid_layer()  # voxel coordinates of the case grid, via world coordinates
        points = []
        for layer in self._viewer.layers:
            if isinstance(layer, Points) and layer.name != SUGGESTIONS_NAME and len(layer.data):
                points += [tuple(grid.world_to_data(layer.data_to_world(row))[-3:])
                           for row in np.asarray(layer.data)]
        return points

    def _grid_layer(self):
        """A layer on the case grid: the total-uncertainty map, else the suggestions' mask."""
        if "uncertainty total" in self._viewer.layers:
            return self._viewer.layers["uncertainty total"]
        return self.target_labels()

    def target_labels(self):
        """The mask suggestions are for: the newest model output (with the user's
        edits) of the case's shape, else None (the mean's argmax stands in); a
        loaded reference is never taken."""
        from napari.layers import Labels

        from napari_medseg.layers import is_model_output

        images = [layer for layer in self._case.assigned_layers().values() if layer is not None]
        shape = self.result.mean.shape[1:] if self.result is not None else \
            images[0].data.shape[-3:] if images else None
        fitting = [layer for layer in self._viewer.layers
                   if isinstance(layer, Labels) and tuple(layer.data.shape) == tuple(shape)]
        models = [layer for layer in fitting if is_model_output(layer)]
        return (models or [None])[-1]

    def suggest(self):
        """Find the regions most likely wrong near the objects (skipping clicked ones) in a
        worker; returns it (None, with a message, when there is nothing to go on).

        After a run of a model whose labels the click network knows, the error map is
        the network's second opinion (its answer with no click); otherwise the
        uncertainty maps' mean (`interactive.suggestion_map`). The list fills when the
        worker is done.
        """
        from napari_medseg.interactive._session import click_network_fits
        from napari_medseg.layers import case_token, volume_builder

        layer = self.target_labels()  # copied: the user may paint on while the worker runs
        images = self._case.assigned_layers()
        folder = self._models.current_folder()
        ready = not self._case.warnings()
        network = ready and click_network_fits(list(images), folder)
        if not ready or self.result is None and (layer is None or not network):
            show_error("Suggestions need a model's output (run the model) or uncertainty maps "
                       "(Run above)")
            return None
        make_volume = volume_builder(images)  # stacked in the worker: 40-460 ms for 240^2x155
        labels = np.array(layer.data) if layer is not None else None
        mean = None if self.result is None else self.result.mean
        clicked, device = self._clicked_points(), self._models.device_combo.currentText()
        precision = self._models.precision_combo.currentText()
        source = "click network" if network else "uncertainty maps"

        def task():
            from napari_medseg.interactive import suggestion_map
            from napari_medseg.labels import most_probable
            from napari_medseg.uncertainty import suggest_clicks

            volume = make_volume()
            mask = most_probable(mean) if labels is None else labels
            error_map, _ = yield from suggestion_map(volume, mask, mean, folder, device,
                                                     precision)
            return suggest_clicks(error_map, mask, clicked, spacing=volume.spacing)

        case = case_token(images)
        return self.runner.start_on_case(
            self._viewer, case, task, lambda found: self._show_suggestions(found, layer, case),
            f"Suggestions ({source})")

    def _show_suggestions(self, suggestions: list[dict], layer, case: tuple) -> str | None:
        """The points and the list; nothing when the Case section shows another case now
        (the points would be placed on its grid)."""
        from napari_medseg.layers import is_case

        if not is_case(case, self._case.assigned_layers()):
            return STALE_SUGGESTIONS
        self.suggestions = suggestions
        coordinates = np.array([s["point"] for s in self.suggestions], float).reshape(-1, 3)
        if SUGGESTIONS_NAME in self._viewer.layers:
            self._viewer.layers[SUGGESTIONS_NAME].data = coordinates
        else:
            self._viewer.add_points(coordinates, name=SUGGESTIONS_NAME, size=4,
                                    face_color="cyan", symbol="cross",
                                    **same_placement(self._grid_layer()))
        names = (layer.metadata.get("napari_medseg", {}).get("label_names", {})
                 if layer is not None else {})
        lines = []
        for index, item in enumerate(self.suggestions, 1):
            z, y, x = item["point"]
            name = names.get(item["label"], names.get(str(item["label"]), item["label"]))
            lines.append(f"{index}. {'+' if item['positive'] else '-'} {name} at z={z} y={y} "
                         f"x={x}: ~{item['score']:.0f} voxels likely wrong")
        self.suggestion_list.show_lines(lines)
        return None

    def go_to(self, row: int) -> None:
        """Move the view to suggestion ``row``."""
        if not 0 <= row < len(self.suggestions):
            return
        centre = self._grid_layer().data_to_world(self.suggestions[row]["point"])
        self._viewer.dims.set_point(range(3), tuple(centre))
