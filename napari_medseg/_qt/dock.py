"""The napari-medseg dock: one scrollable panel of sections.

Sections only orchestrate: they read layers, call the Qt-free core (in
thread workers for long work) and write results back on the GUI thread.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget
from superqt import QCollapsible

from napari_medseg import __version__
from napari_medseg._qt.case_section import CaseSection
from napari_medseg._qt.explain_section import ExplainSection
from napari_medseg._qt.export_section import ExportSection
from napari_medseg._qt.fit import CHARACTERS_PROPERTY, fit_width
from napari_medseg._qt.gc_freeze import freeze_after_warm_up
from napari_medseg._qt.model_section import ModelSection
from napari_medseg._qt.orientation import AnatomicalView
from napari_medseg._qt.refine_section import RefineSection
from napari_medseg._qt.review_section import ReviewSection
from napari_medseg._qt.topology_section import TopologySection
from napari_medseg._qt.uncertainty_section import UncertaintySection
from napari_medseg._qt.warmup import warm_up
from napari_medseg.orientation import CONVENTIONS


class MedSegDock(QWidget):
    """Dock widget: case, then (as they land) model, refinement, explanation,
    uncertainty, topology and export sections."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.case_section = CaseSection(napari_viewer)
        self.sections: dict[str, QCollapsible] = {}
        body = QWidget()
        self._body_layout = QVBoxLayout(body)
        self._body_layout.setAlignment(Qt.AlignTop)
        self._body_layout.setSpacing(4)
        # the letters come in after the dock has shown, then the warm-up starts: first-use
        # imports off the GUI thread, before the first action needs them; then the devices
        # torch finds are listed and the session's long-lived objects are frozen out of
        # napari's collections
        self.anatomy = AnatomicalView(napari_viewer, then=_start_warm_up(self))
        self._body_layout.addLayout(self._header())
        self._body_layout.addStretch(1)  # sections go before it
        self.model_section = ModelSection(napari_viewer, self.case_section)
        self.add_section("Case: input contrasts", self.case_section)
        self.explain_section = ExplainSection(napari_viewer, self.case_section,
                                              self.model_section)
        self.add_section("Model: automatic segmentation", self.model_section)
        self.refine_section = RefineSection(napari_viewer, self.case_section, self.model_section)
        self.add_section("Refine: positive / negative clicks", self.refine_section)
        self.uncertainty_section = UncertaintySection(napari_viewer, self.case_section,
                                                      self.model_section)
        self.topology_section = TopologySection(napari_viewer, self.model_section)
        self.add_section("Explain: Shapley contrast attributions", self.explain_section,
                         expanded=False)
        self.add_section("Uncertainty: where the model is unsure", self.uncertainty_section,
                         expanded=False)
        self.add_section("Topology: errors and fixes", self.topology_section,
                         expanded=False)
        self.export_section = ExportSection(napari_viewer, self.case_section, self.model_section,
                                            self.refine_section)
        self.add_section("Export: corrected masks for retraining", self.export_section,
                         expanded=False)
        self.review_section = ReviewSection(napari_viewer)
        self.add_section("Review queue: cohort cases by priority", self.review_section,
                         expanded=False)
        self._body_layout.insertWidget(1, self.export_section.autosave)  # restore offer on top
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.setMinimumWidth(460)
        fit_width(body)

    def idle(self) -> bool:
        """No section is running a task, and no click is being computed."""
        runners = (self.case_section.opener.runner, self.model_section.runner,
                   self.explain_section.runner, self.uncertainty_section.runner,
                   self.topology_section.runner, self.export_section.runner,
                   self.review_section.runner)
        return not self.refine_section.busy and not any(runner.busy for runner in runners)

    def _header(self) -> QHBoxLayout:
        row = QHBoxLayout()
        title = QLabel("<b>napari-medseg</b>")
        title.setToolTip(f"napari-medseg {__version__}")  # the version, without the width
        row.addWidget(title)
        row.addWidget(self.case_section.opener.open_button)
        row.addStretch(1)
        row.addWidget(QLabel("View:"))
        self.convention_combo = QComboBox()
        self.convention_combo.addItems(CONVENTIONS)
        self.convention_combo.setProperty(CHARACTERS_PROPERTY, max(map(len, CONVENTIONS)))
        self.convention_combo.setToolTip(
            "radiological: the patient's right on the screen's left (default); "
            "neurological: mirrored. Clicks and exports are the same in both.")
        self.convention_combo.currentTextChanged.connect(self.anatomy.set_convention)
        row.addWidget(self.convention_combo)
        return row

    def add_section(self, title: str, widget: QWidget, expanded: bool = True) -> QCollapsible:
        """Append a titled section to the dock; its title folds it away (superqt).

        Parameters
        ----------
        title : str
            The section's title (its fold handle).
        widget : QWidget
            The section's content.
        expanded : bool
            Open at start.
        """
        section = QCollapsible(title)
        section.setDuration(0)  # no animation: sections open at once
        section.setCollapsedIcon("\u25b8")
        section.setExpandedIcon("\u25be")
        section.addWidget(widget)
        section.layout().setContentsMargins(0, 0, 0, 0)
        section.layout().setSpacing(0)
        section.content().layout().setContentsMargins(12, 2, 4, 6)
        if expanded:
            section.expand(animate=False)
        else:
            section.collapse(animate=False)
        self.sections[title.split(":")[0]] = section
        self._body_layout.insertWidget(self._body_layout.count() - 1, section)
        return section


def _start_warm_up(dock: MedSegDock) -> Callable[[], None]:
    """Start the warm-up; when it is done, list the devices and freeze the session's
    objects (`gc_freeze`). Holds the dock weakly (a dock closed before the warm-up ends
    is freed)."""
    dock_ref = weakref.ref(dock)

    def finish_if_open() -> None:
        alive = dock_ref()
        if alive is not None and not _deleted(alive):
            alive.model_section.list_devices()
            freeze_after_warm_up(alive)

    return lambda: warm_up(then=finish_if_open)


def _deleted(widget: QWidget) -> bool:
    """Whether Qt has deleted the widget (its viewer closed) while Python still holds it."""
    try:
        widget.objectName()
    except RuntimeError:
        return True
    return False
