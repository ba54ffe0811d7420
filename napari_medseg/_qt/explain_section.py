"""Dock section 'Explain': Shapley attribution of each contrast per label."""
from __future__ import annotations

import time
from collections.abc import Iterator

from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView, QComboBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
    QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from napari_medseg._qt.fit import fit_rows
from napari_medseg._qt.plot import BarChart
from napari_medseg._qt.worker import TaskRunner, add_layers_stepwise, remove_layers_stepwise
from napari_medseg.errors import MedsegError

NO_REFERENCE = "(none: agreement with all contrasts)"
_COLUMNS = ("Contrast", "phi", "fold sd", "rank", "clinician")


STALE = "The attributions were another case's: press Explain for this one"


class ExplainSection(QWidget):
    """Explain button, bar chart, numbers table with an editable clinician ranking, maps."""

    def __init__(self, viewer, case_section, model_section, parent=None):
        super().__init__(parent)
        from napari_medseg.explain import BASELINES, PROTOCOL_RANKINGS

        self._viewer, self._case, self._models = viewer, case_section, model_section
        self.result, self._volume, self._result_case = None, None, ()
        self._measured_ratio: dict[tuple, float] = {}  # (folder, device, precision) -> runs
        self.rankings = {t: dict(r) for t, r in PROTOCOL_RANKINGS.items()}
        self.baseline_combo = QComboBox()
        self.baseline_combo.addItems(BASELINES)
        self.reference_combo = QComboBox()
        self.target_combo = QComboBox()
        self.target_combo.currentTextChanged.connect(self._show_target)
        self.run_button, self.cancel_button = QPushButton("Explain"), QPushButton("Cancel")
        self.maps_button = QPushButton("Show voxel maps")
        self.maps_button.clicked.connect(self.add_maps)
        self.progress, self.status = QProgressBar(), QLabel("")
        self.status.setWordWrap(True)
        self.estimate = QLabel("")
        self.estimate.setWordWrap(True)
        self.estimate.setStyleSheet("color: #9e9e9e;")
        self.runner = TaskRunner(self.progress, self.status, self.run_button, self.cancel_button)
        self.run_button.clicked.connect(self.run)
        self.chart = BarChart()
        self.table = self._make_table()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self._build_layout()
        viewer.layers.events.inserted.connect(self._refresh_references)
        viewer.layers.events.inserted.connect(self.show_estimate)
        model_section.model_combo.currentTextChanged.connect(self.show_estimate)
        model_section.device_combo.currentTextChanged.connect(self.show_estimate)
        model_section.precision_combo.currentTextChanged.connect(self.show_estimate)
        model_section.folds_combo.currentTextChanged.connect(self.show_estimate)
        viewer.layers.events.removed.connect(self._refresh_references)
        case_section.assignment_changed.connect(self._forget_other_case)
        self._refresh_references()
        self._enable_results(False)
        self.show_estimate()

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(0, len(_COLUMNS))
        table.setHorizontalHeaderLabels(_COLUMNS)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        table.setSelectionMode(QAbstractItemView.NoSelection)
        table.itemChanged.connect(self._on_ranking_edited)
        fit_rows(table, 0)
        return table

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Baseline", self.baseline_combo)
        form.addRow("Reference", self.reference_combo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        show = QFormLayout()
        show.addRow("Show", self.target_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.estimate)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(show)
        layout.addWidget(self.chart)
        layout.addWidget(self.table)
        layout.addWidget(self.summary)
        layout.addWidget(self.maps_button)

    def _refresh_references(self, event=None) -> None:
        from napari.layers import Labels

        from napari_medseg._qt.layer_combo import resampled_copy

        current = self.reference_combo.currentText()
        current = resampled_copy(event, current) or current  # a reference moved to the grid
        names = [layer.name for layer in self._viewer.layers if isinstance(layer, Labels)]
        self.reference_combo.blockSignals(True)
        self.reference_combo.clear()
        self.reference_combo.addItems([NO_REFERENCE, *names])
        # a layer is a reference only when the user picks it: by default the value is
        # measured against the model's own full prediction
        self.reference_combo.setCurrentText(current if current in names else NO_REFERENCE)
        self.reference_combo.blockSignals(False)

    def _enable_results(self, enabled: bool) -> None:
        for widget in (self.target_combo, self.table, self.maps_button):
            widget.setEnabled(enabled)

    # -- running ----------------------------------------------------------
    def show_estimate(self, *_) -> str:
        """Say before a run how long it takes: one model run per non-empty subset of contrasts
        (the empty one, all baseline, runs once; an nnU-Net model runs every subset through
        its own pipeline, the empty one included), with the folds chosen in the Model
        section (a model run of other folds is scaled to them). Once this model has
        explained a case here, its measured ratio to the model run replaces the subset
        count (on the 240x240x155 bench case, 14.6 runs' time against 15 subsets; other
        cases and machines differ)."""
        spec = self._models.shown_spec
        nnunet = spec is not None and spec.architecture.get("name") == "nnunet"
        subsets = 2 ** len(self._case.contrasts) - (0 if nnunet else 1)
        run = self._models.last_run
        choice = (self._models.current_folder(), self._models.device_combo.currentText(),
                  self._models.precision_combo.currentText())
        if run is None or (run.folder, run.device, run.precision) != choice:
            text = (f"Takes about {subsets} model runs ({subsets} subsets of the contrasts); "
                    "run the model once for a time estimate.")
        else:
            folds = self._explained_folds(run)
            per_run = _run_seconds(run, folds)
            scaled = (f" for {run.folds} fold{'s' if run.folds > 1 else ''}, scaled to "
                      f"{folds}" if run.folds != folds else "")
            measured = self._measured_ratio.get(choice)
            times = f"{measured:.1f}" if measured else f"{subsets}"
            source = ", as the last Explain of this model measured" if measured else ""
            minutes = (measured or subsets) * per_run / 60
            if minutes >= 1:
                what = times if measured else f"{subsets} subsets of the contrasts"
                text = (f"Takes about {minutes:.0f} min here ({what} \u00d7 the last model "
                        f"run, {run.seconds:.0f} s{scaled}{source}).")
            else:
                text = (f"Takes under a minute here ({times} \u00d7 the last model run, "
                        f"{run.seconds:.1f} s{scaled}{source}).")
        if self._models.chosen_folds() is not None:
            text += (f" Explains {self._models.folds_combo.currentText()} alone, as chosen in "
                     "the Model section; all folds add the rank variance across folds.")
        self.estimate.setText(text)
        return text

    def _explained_folds(self, run) -> int:
        """How many folds an Explain started now runs: the Model section's choice."""
        if self._models.chosen_folds() is not None:
            return 1
        spec = self._models.shown_spec
        return len(spec.folds) if spec is not None else run.folds

    def _measure(self, choice: tuple, seconds: float, folds: int) -> None:
        """Keep how many model runs an Explain with ``choice`` (folder, device, precision) of
        ``folds`` folds took, when the last model run was made with the same choice (that
        run scaled to as many folds)."""
        run = self._models.last_run
        if run is not None and (run.folder, run.device, run.precision) == choice:
            self._measured_ratio[choice] = seconds / _run_seconds(run, folds)

    def run(self):
        """Compute attributions in a worker; returns it (None when refused)."""
        from napari_medseg.layers import case_token, volume_builder

        name = self.reference_combo.currentText()
        warnings = self._case.warnings()
        if name != NO_REFERENCE and (problem := self._case.mask_problem(name)):
            warnings.append(problem)
        if warnings:
            show_error("Cannot explain: " + warnings[0])
            return None
        if self._models.current_folder() is None:
            show_error("Cannot explain: choose a model in the Model section first")
            return None
        make_volume = volume_builder(self._case.assigned_layers(), stored_types=True)
        case = case_token(self._case.assigned_layers())
        reference = None if name == NO_REFERENCE else self._viewer.layers[name].data.copy()
        baseline = self.baseline_combo.currentText()
        device = self._models.device_combo.currentText()
        precision = self._models.precision_combo.currentText()  # as in the model's run
        folder, folds = self._models.current_folder(), self._models.chosen_folds()
        mirroring = self._models.mirroring_box.isChecked()  # nnU-Net models, as in their run
        rankings = {t: dict(r) for t, r in self.rankings.items()}

        def task():
            from napari_medseg.explain import explain_case

            volume = make_volume()
            started = time.perf_counter()  # as a model run is timed: loading, then running
            model = self._models.loaded_model(folder, folds)  # the Folds choice, as a model run
            result = yield from explain_case(model, volume, reference, baseline=baseline,
                                             clinician=rankings, device=device,
                                             precision=precision, mirroring=mirroring)
            return result, volume, time.perf_counter() - started

        choice = (folder, device, precision)
        return self.runner.start_on_case(
            self._viewer, case, task, lambda outcome: self._on_result(choice, case, outcome),
            "Explain")

    def _on_result(self, choice: tuple, case: tuple, outcome) -> str | None:
        """Show the figures; None (the status says done), or why they were dropped."""
        self.result, self._volume, seconds = outcome
        self._result_case = case
        self._measure(choice, seconds, self.result.model["folds"])
        self.show_estimate()
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        self.target_combo.addItems(list(self.result.targets))
        self.target_combo.blockSignals(False)
        self._enable_results(True)
        self._show_target(self.target_combo.currentText())
        self._forget_other_case()  # another case opened while it ran
        return self.status.text() if self.result is None else None

    # -- display ----------------------------------------------------------
    def _forget_other_case(self) -> None:
        """Drop the figures once the Case section shows another case (opened in its place
        or beside it): its numbers and voxel maps were not this case's."""
        from napari_medseg.layers import is_case

        if self.result is None or is_case(self._result_case, self._case.assigned_layers()):
            return
        self.result, self._volume = None, None
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        self.target_combo.blockSignals(False)
        fit_rows(self.table, 0)
        self.summary.setText("")
        self.chart.clear("press Explain")
        self._enable_results(False)
        self.status.setText(STALE)

    def _show_target(self, name: str) -> None:
        if self.result is None or name not in self.result.targets:
            return
        target = self.result.targets[name]
        contrasts = self.result.contrasts
        errors = target.fold_phi.std(0, ddof=1) if len(target.fold_phi) > 1 else None
        self.chart.show_bars(contrasts, target.phi, errors,
                             title=f"{name}: contribution to Dice "
                                   f"({self.result.baseline} baseline)",
                             ylabel="Shapley value")
        self.table.blockSignals(True)
        fit_rows(self.table, len(contrasts))
        ranking = self.rankings.get(name, {})
        for row, contrast in enumerate(contrasts):
            cells = [contrast, f"{target.phi[row]:+.4f}",
                     f"{errors[row]:.4f}" if errors is not None else "-",
                     f"{target.ranks[row]:g}", str(ranking.get(contrast, ""))]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column != 4:
                    item.setFlags(item.flags() & ~Qt.ItemIsEditable)
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        self._show_summary(name)

    def _show_summary(self, name: str) -> None:
        from napari_medseg.explain import normalised_footrule_similarity, validate_ranking

        target = self.result.targets[name]
        folds = len(target.fold_ranks)
        text = (f"v(all) = {target.value_all:.3f}, v(none) = {target.value_empty:.3f}; "
                + (f"rank variance across {folds} folds = {target.rank_variance:.2f}"
                   if folds > 1 else "one fold: no rank variance across folds"))
        ranking = self.rankings.get(name)
        if ranking:
            try:
                clinician = validate_ranking(ranking, self.result.contrasts, name)
                nsf = normalised_footrule_similarity(target.ranks, clinician)
                text += f"; agreement with clinician ranking (NSF) = {nsf:.2f}"
            except MedsegError as error:
                text += f"; \u26a0 {error}"
        self.summary.setText(text)

    def _on_ranking_edited(self, item: QTableWidgetItem) -> None:
        if item.column() != 4 or self.result is None:
            return
        name = self.target_combo.currentText()
        contrast = self.result.contrasts[item.row()]
        try:
            self.rankings.setdefault(name, {})[contrast] = int(item.text())
        except ValueError:
            show_error(f"rank of {contrast} must be a whole number "
                       f"1..{len(self.result.contrasts)}")
            return
        self._show_summary(name)

    def add_maps(self) -> bool:
        """Add the chosen target's voxel maps, one diverging layer per contrast: resampled
        to the case grid in a worker (the result keeps them on the model's grid), then one
        layer per event-loop turn (four at once held napari 0.66 s); False when there are
        none or a task is running."""
        if self.result is None or self.runner.busy:
            return False
        name, result = self.target_combo.currentText(), self.result

        def task():
            from napari_medseg.progress import Progress

            yield Progress(0, 1, f"voxel maps of {name}: resampling to the case")
            maps = result.targets[name].maps
            return maps, float(abs(maps).max()) or 1.0  # and their colour range, off the GUI

        self.runner.start(task, lambda shown: self._map_layers(result, name, *shown),
                          "Voxel maps")
        return True

    def _map_layers(self, result, name: str, maps, limit: float) -> Iterator[None] | str:
        """The steps that replace the shown maps of ``name`` with ``maps`` (the case grid,
        colours from ``-limit`` to ``limit``); nothing when the figures were dropped
        meanwhile (another case opened)."""
        import numpy as np

        from napari_medseg.layers import geometry_metadata, shapley_colormap
        from napari_medseg.orientation import placement

        if self.result is not result:
            return "Voxel maps: not shown, the explanation was of another case"
        target = result.targets[name]
        names = [f"shapley {name} {contrast}" for contrast in result.contrasts]
        shown = [layer for layer in self._viewer.layers if layer.name in names]
        layer_data = [(maps[index], {
            "name": names[index], "colormap": shapley_colormap(),
            "contrast_limits": (-limit, limit), "blending": "translucent",
            "visible": index == int(np.argmin(target.ranks)),
            "metadata": geometry_metadata(self._volume.affine, shapley_target=name,
                                          contrast=contrast),
            **placement(self._volume.affine, maps.shape[1:])}, "image")
            for index, contrast in enumerate(result.contrasts)]

        def steps() -> Iterator[None]:
            yield from remove_layers_stepwise(self._viewer, shown)
            yield from add_layers_stepwise(self._viewer, layer_data)

        return steps()


def _run_seconds(run, folds: int) -> float:
    """The seconds a model run of ``folds`` folds takes, from ``run`` (a `RunTime` of
    ``run.folds`` folds), the time scaling with the folds."""
    return run.seconds * folds / run.folds
