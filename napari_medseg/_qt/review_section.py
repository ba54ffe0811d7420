"""Dock section 'Review queue': the batch table, open the next case, mark it reviewed."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QProgressBar,
    QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from napari_medseg._qt.fit import fit_rows
from napari_medseg._qt.worker import TaskRunner, add_layers_stepwise, remove_layers_stepwise
from napari_medseg.errors import MedsegError

_COLUMNS = ("#", "Case", "Priority", "Why", "Reviewed")
_ROWS_SHOWN = 6  # a cohort's longer table scrolls


class ReviewSection(QWidget):
    """Open a batch output folder; Open next (by priority) loads the case with its overlays."""

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self._viewer = viewer
        self.output_dir: Path | None = None
        self.rows: list[dict] = []
        self.current: str | None = None
        self._kept: set = set()  # unique ids of the layers open before the current case
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("batch output folder (triage.json)")
        self.browse_button, self.load_button = QPushButton("..."), QPushButton("Load table")
        self.browse_button.clicked.connect(self._browse)
        self.load_button.clicked.connect(lambda: self.open_table(self.folder_edit.text()))
        self.next_button, self.cancel_button = QPushButton("Open next"), QPushButton("Cancel")
        self.reviewed_button = QPushButton("Mark reviewed")
        self.reviewed_button.clicked.connect(self.mark_current_reviewed)
        self.progress, self.status = QProgressBar(), QLabel("")
        self.status.setWordWrap(True)
        self.runner = TaskRunner(self.progress, self.status, self.next_button, self.cancel_button)
        self.next_button.clicked.connect(self.open_next)
        self.next_button.setEnabled(False)  # until a table is loaded
        self.reviewed_button.setEnabled(False)  # until a case of the queue is open
        self.next_button.setToolTip("Open the highest-priority case not reviewed yet, in "
                                    "place of the open one and what was made on it")
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(_COLUMNS.index("Why"), QHeaderView.Stretch)  # the dock's rest
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        fit_rows(self.table, 0)  # hidden until a table is loaded
        folder = QHBoxLayout()
        for widget in (self.folder_edit, self.browse_button, self.load_button):
            folder.addWidget(widget)
        buttons = QHBoxLayout()
        for widget in (self.next_button, self.reviewed_button, self.cancel_button):
            buttons.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(folder)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Batch output folder")
        if folder:
            self.open_table(folder)

    def open_table(self, folder: str | Path) -> bool:
        """Read ``triage.json`` (and ``review.json``) from a batch output folder."""
        from napari_medseg.cohort._review import read_queue

        try:
            self.rows = read_queue(folder)
        except MedsegError as error:
            show_error(str(error))
            return False
        self.output_dir = Path(folder)
        self.folder_edit.setText(str(folder))
        self._fill()
        self.next_button.setEnabled(not self.runner.busy)
        done = sum(r["status"] == "done" for r in self.rows)
        self.status.setText(f"{done} case(s) ranked, {sum(r['reviewed'] for r in self.rows)} "
                            "reviewed")
        return True

    def _fill(self) -> None:
        fit_rows(self.table, len(self.rows), most=_ROWS_SHOWN)
        for index, row in enumerate(self.rows):
            priority = "" if row.get("priority") is None else f"{row['priority']:.3f}"
            cells = (str(row["rank"]), row["case_id"], priority,
                     row.get("reasons") or ("failed" if row["status"] == "failed" else ""),
                     "yes" if row["reviewed"] else "")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if _COLUMNS[column] == "Why":  # a failure's message is cut at the dock's width
                    item.setToolTip(text)
                self.table.setItem(index, column, item)

    def open_next(self):
        """Load the highest-priority unreviewed case in a worker; returns it (or None)."""
        from napari_medseg.cohort._review import next_case

        if self.output_dir is None:
            show_error("Load a batch output folder first (napari-medseg batch INPUT OUTPUT)")
            return None
        row = next_case(self.rows)
        if row is None:
            self.status.setText("Every finished case is reviewed")
            return None
        output_dir, case_id = self.output_dir, row["case_id"]

        def task():
            from napari_medseg.cohort._review import load_review_case

            yield from ()
            case = load_review_case(output_dir, case_id)
            return case, *_layer_data(case)  # display limits, fingerprints: not on the GUI

        return self.runner.start(task, lambda loaded: self._show_case(*loaded),
                                 f"Opening {case_id}")

    def _layers_of_open_case(self) -> list:
        """The layers the queue's open case brought and every layer added while it was
        open (a model run's output, click points, maps): all but those open before it."""
        if self.current is None:
            return []
        return [layer for layer in self._viewer.layers if layer.unique_id not in self._kept]

    def _show_case(self, case, images: list, segmentation: tuple) -> Iterator[None]:
        """Replace the previous case's layers, and what was made on it, with this one's,
        one layer removed or added per event-loop turn (edited masks are autosaved)."""
        from napari_medseg.layers import same_placement
        from napari_medseg.orientation import placement

        yield from remove_layers_stepwise(self._viewer, self._layers_of_open_case())
        self._kept = {layer.unique_id for layer in self._viewer.layers}
        added = []
        for layer in add_layers_stepwise(self._viewer, images):
            if layer is not None:
                added.append(layer)
            yield
        data, kwargs, _ = segmentation
        added.append(self._viewer.add_labels(data, **kwargs))
        yield
        added.append(self._viewer.add_image(
            case.epistemic, name=f"{case.case_id} epistemic", colormap="magma",
            blending="additive", opacity=0.6, visible=False,
            **placement(case.volume.affine, case.epistemic.shape)))
        if len(case.error_points):
            yield
            added.append(self._viewer.add_points(
                case.error_points, name=f"{case.case_id} topology errors",
                **same_placement(added[-1]), size=6, face_color="magenta", symbol="ring",
                features={"kind": case.error_kinds}))
        self.current = case.case_id
        self.reviewed_button.setEnabled(True)
        priority = next(r["priority"] for r in self.rows if r["case_id"] == case.case_id)
        self.status.setText(f"{case.case_id}: priority {priority:.3f}, "
                            f"{len(case.error_points)} topology error(s). Refine, export, "
                            "then Mark reviewed.")

    def mark_current_reviewed(self) -> None:
        """Record the open case as reviewed and update the table."""
        from napari_medseg.cohort._review import mark_reviewed

        if self.output_dir is None or self.current is None:
            show_error("Open a case from the queue first")
            return
        mark_reviewed(self.output_dir, self.current)
        self.open_table(self.output_dir)


def _layer_data(case) -> tuple[list, tuple]:
    """A review case's image layers and its segmentation's layer, as layer-data tuples."""
    from napari_medseg.layers import labels_layer, volume_layers
    from napari_medseg.models.registry import builtin_models

    model = dict(case.summary["model"])
    folder = builtin_models(task=None).get(model["name"])
    model["folder"] = str(folder) if folder else ""
    segmentation = labels_layer(case.segmentation, name=f"{case.case_id} segmentation",
                                model=model, source_paths=list(case.volume.source_paths))
    return volume_layers(case.volume), segmentation
