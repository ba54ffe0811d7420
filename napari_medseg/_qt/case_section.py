"""Dock section 'Case': which Image layers are the input contrasts."""
from __future__ import annotations

from collections.abc import Sequence

from napari.utils.notifications import show_info
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView, QHeaderView, QLabel, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget)

from napari_medseg._qt.case_open import CaseOpener
from napari_medseg._qt.fit import ElidingComboBox, fit_rows
from napari_medseg.case import (
    RESAMPLE_HINT, ImageDescription, auto_assign, check_case, grids_disagree)
from napari_medseg.contrasts import BRATS_CONTRASTS, match_contrasts
from napari_medseg.io import spacing_from_affine
from napari_medseg.layers import affine_of_layer

NO_LAYER = "(none)"
_COLUMNS = ("Contrast", "Layer", "Shape (z, y, x)", "Spacing (mm)")
_ROW_HEIGHT = 27


def describe_layer(layer) -> ImageDescription:
    """Name, shape, spacing and affine of a napari Image layer."""
    affine = affine_of_layer(layer.metadata, tuple(layer.scale))
    return ImageDescription(layer.name, tuple(int(n) for n in layer.data.shape),
                            spacing_from_affine(affine), affine)


class CaseSection(QWidget):
    """Table of the contrasts a model needs, each with its Image layer.

    Layers are matched by name when they appear (``*_t1ce*`` -> T1ce); a
    layer the user picks for a contrast stays picked while it exists.
    Warnings say when a contrast is missing or the contrasts lie on different
    grids; then *Resample onto one grid* adds them resampled onto the finest
    grid among them (the originals stay, hidden) and picks those; masks drawn on a
    moved contrast's grid go with it.
    """

    assignment_changed = Signal()

    def __init__(self, viewer, contrasts: Sequence[str] = BRATS_CONTRASTS, parent=None):
        super().__init__(parent)
        self._viewer = viewer
        self._contrasts = tuple(contrasts)
        self._manual: dict[str, str] = {}
        self._assignment: dict[str, str | None] = {}
        self._table = QTableWidget(0, len(_COLUMNS))
        self._table.setHorizontalHeaderLabels(_COLUMNS)
        self._table.verticalHeader().setVisible(False)
        self._table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self._table.setSelectionMode(QAbstractItemView.NoSelection)
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self._table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self._table.verticalHeader().setDefaultSectionSize(_ROW_HEIGHT)
        self._table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self._table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self._status = QLabel()
        self._status.setWordWrap(True)
        self.resample_button = QPushButton("Resample onto one grid")
        self.resample_button.setToolTip(
            "Put the contrasts on the finest grid among them, through each file's affine "
            "(exact when only axis order or flips differ, else linear; a mask drawn on a "
            "moved contrast goes with it, by nearest neighbour): new layers, the "
            "originals kept, hidden")
        self.resample_button.clicked.connect(lambda: self.resample_onto_one_grid())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._table)
        layout.addWidget(self._status)
        layout.addWidget(self.resample_button)
        self.opener = CaseOpener(viewer, self._image_layers)
        self.opener.images_added.connect(self.show_case)
        layout.addWidget(self.opener)
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self.refresh)
        for layer in viewer.layers:
            self._watch(layer)
        self.refresh()

    # -- public API -------------------------------------------------------
    @property
    def contrasts(self) -> tuple[str, ...]:
        """The contrasts listed, in model order."""
        return self._contrasts

    def set_contrasts(self, contrasts: Sequence[str]) -> None:
        """List other contrasts (for a model with other inputs)."""
        self._contrasts = tuple(contrasts)
        self.refresh()

    def assignment(self) -> dict[str, str | None]:
        """``{contrast: layer name or None}`` as shown."""
        return dict(self._assignment)

    def assigned_layers(self) -> dict:
        """``{contrast: napari layer or None}``."""
        names = {layer.name: layer for layer in self._image_layers()}
        return {c: names.get(name) if name else None for c, name in self._assignment.items()}

    def images_for(self, mask) -> dict:
        """``{contrast: napari layer or None}`` of the case ``mask`` belongs to: the images
        the table shows when they share its grid, else the viewer's images on its grid
        (a case opened beside the one shown), matched to the contrasts by name.

        Parameters
        ----------
        mask : napari Labels layer
            A mask to autosave or export.
        """
        from napari_medseg.layers import on_same_grid

        assigned = self.assigned_layers()
        if all(image is None or on_same_grid(mask, image) for image in assigned.values()):
            return assigned
        on_grid = {layer.name: layer for layer in self._image_layers()
                   if on_same_grid(mask, layer)}
        return {contrast: on_grid.get(name) if name else None
                for contrast, name in match_contrasts(list(on_grid), self._contrasts).items()}

    def warnings(self) -> list[str]:
        """What is wrong with the current assignment (empty when usable)."""
        return check_case(self._descriptions())

    def mask_problem(self, name: str) -> str | None:
        """Why the mask ``name`` cannot be read beside the case's contrasts, or None.

        Parameters
        ----------
        name : str
            A Labels layer's name.
        """
        copies = self._resampled_copies()
        if name in copies:
            return (f"Mask '{name}' lies on a grid the case no longer uses: its copy on the "
                    f"case's grid is '{copies[name]}'; pick that one")
        return self._misplaced_masks().get(name)

    def _misplaced_masks(self, unresolved: bool = False) -> dict[str, str]:
        """`napari_medseg.case.misplaced_masks` among the case's masks that carry their
        file's affine and do not lie over the case's grid in the viewer, each with its
        warning; ``unresolved``: only those without a copy resampled onto the case's
        grid."""
        from napari_medseg.case import misplaced_masks

        grid_layer = self._grid_layer()
        if grid_layer is None:
            return {}
        grid = describe_layer(grid_layer)
        masks = {mask.name: describe_layer(mask) for mask in self._masks_off(grid_layer)}
        copied = self._resampled_copies() if unresolved else {}
        return {name: _misplaced_warning(masks[name], grid)
                for name in misplaced_masks(masks, grid) if name not in copied}

    def _masks_off(self, grid_layer) -> list:
        """The case's masks that carry their file's affine (without it, where they lie in
        the file is not known) and do not lie over ``grid_layer`` in the viewer."""
        from napari_medseg.layers import on_same_grid, stored_affine

        return [mask for mask in self._case_masks() if stored_affine(mask.metadata) is not None
                and not on_same_grid(mask, grid_layer)]

    def _grid_layer(self):
        """The contrast's layer whose grid the case is on, or is put on by resampling: the
        finest (`napari_medseg.io.finest_grid`); None before any contrast is assigned."""
        from napari_medseg.io import finest_grid

        placed = [layer for layer in self.assigned_layers().values() if layer is not None]
        if not placed:
            return None
        return placed[finest_grid([describe_layer(layer).affine for layer in placed])]

    def _resampled_copies(self) -> dict[str, str]:
        """The layers in the viewer resampled from another, by that layer's name."""
        from napari_medseg.layers import METADATA_KEY

        return {source: layer.name for layer in self._viewer.layers
                if (source := layer.metadata.get(METADATA_KEY, {}).get("resampled_from"))}

    def _case_masks(self) -> list:
        """The 3D Labels layers, less those on the grid of an image that is not one of the
        case's contrasts (another case's, or a contrast's original kept after resampling)."""
        from napari.layers import Image, Labels

        from napari_medseg.layers import on_same_grid

        assigned = [layer for layer in self.assigned_layers().values() if layer is not None]
        others = [layer for layer in self._viewer.layers if isinstance(layer, Image)
                  and not any(layer is image for image in assigned)]
        return [layer for layer in self._viewer.layers
                if isinstance(layer, Labels) and layer.ndim == 3
                and not any(on_same_grid(layer, image) for image in others)]

    def resample_onto_one_grid(self):
        """Resample the contrasts not on the finest grid among them in a worker, with the
        masks drawn on their grids, add them as layers and pick them
        (`napari_medseg.case.resampled_layers`); returns the worker (None when the grids
        agree or a task runs)."""
        from napari_medseg.case import Scan, resampled_layers
        from napari_medseg.layers import case_token, source_paths

        descriptions = self._descriptions()
        if not grids_disagree(descriptions) and not self._misplaced_masks(unresolved=True):
            return None
        layers = {c: layer for c, layer in self.assigned_layers().items() if layer is not None}
        scans = {c: Scan(layer.data, descriptions[c].affine, layer.name,
                         source_paths([layer]), layer.visible) for c, layer in layers.items()}
        copied = self._resampled_copies()
        masks = {layer.name: layer for layer in self._masks_off(self._grid_layer())
                 if layer.name not in copied}
        mask_scans = [_mask_scan(layer) for layer in masks.values()]
        case = case_token(layers)
        worker = self.opener.runner.start_on_case(
            self._viewer, case, lambda: resampled_layers(scans, mask_scans),
            lambda new: self._add_resampled(new, layers, masks, case),
            "Resampling onto one grid")
        self.opener.refresh()
        return worker

    def _add_resampled(self, new, images: dict, masks: dict, case: tuple):
        """Add each resampled layer (`napari_medseg.case.Resampled`), one per turn, pick
        each contrast's and hide the originals (nothing when the case was closed
        meanwhile)."""
        from napari_medseg._qt.worker import CASE_CLOSED, add_layers_stepwise
        from napari_medseg.layers import case_open

        if not case_open(case, self._viewer.layers):
            return f"Resampling: {CASE_CLOSED}, nothing added"
        contrasts = [*new.images, *(None for _ in new.masks)]  # a mask has no contrast
        originals = [*(images[c] for c in new.images), *(masks[n] for n in new.masks)]
        added = add_layers_stepwise(self._viewer, [*new.images.values(), *new.masks.values()])
        for contrast, original, layer in zip(contrasts, originals, added):
            if contrast is not None:
                self._manual[contrast] = layer.name
            original.visible = False
            yield layer
        self.refresh()
        message = (f"Resampled {', '.join([*new.images, *new.masks])} onto one grid "
                   "(the originals are kept, hidden)")
        show_info(message)
        return message

    def _descriptions(self) -> dict[str, ImageDescription | None]:
        return {c: describe_layer(layer) if layer is not None else None
                for c, layer in self.assigned_layers().items()}

    def set_layer_for(self, contrast: str, layer_name: str | None) -> None:
        """Pick a layer for a contrast, as the user does in the table.

        Parameters
        ----------
        contrast : str
            A row of the table.
        layer_name : str or None
            The layer (None: no layer).
        """
        row = self._contrasts.index(contrast)
        combo = self._table.cellWidget(row, 1)
        combo.setCurrentText(layer_name or NO_LAYER)

    def show_case(self, names: Sequence[str]) -> None:
        """Pick the contrasts among ``names`` (a case just opened, perhaps beside another
        one whose layers napari listed first): the sections then work on that case, and
        a contrast it lacks shows as missing (never taken from the other case).

        Parameters
        ----------
        names : sequence of str
            The case's image layers.
        """
        for contrast, name in match_contrasts(names, self._contrasts).items():
            self._manual[contrast] = name or ""
        self.refresh()

    # -- internals --------------------------------------------------------
    def _image_layers(self) -> list:
        from napari.layers import Image

        return [layer for layer in self._viewer.layers if isinstance(layer, Image)]

    def _watch(self, layer) -> None:
        """Re-match when an image layer is renamed or gets new data (only images are
        listed: a click's Points or Labels update must not rebuild the table)."""
        from napari.layers import Image

        layer.events.name.connect(self.refresh)
        if isinstance(layer, Image):
            layer.events.data.connect(self.refresh)

    def _on_inserted(self, event) -> None:
        self._watch(event.value)
        self.refresh()

    def refresh(self, *_) -> None:
        """Re-match layers and redraw the table and warnings."""
        layers = self._image_layers()
        names = [layer.name for layer in layers]
        self._manual = {c: n for c, n in self._manual.items() if n == "" or n in names}
        self._assignment = auto_assign(names, self._contrasts, keep=self._manual)
        by_name = {layer.name: layer for layer in layers}
        fit_rows(self._table, len(self._contrasts))
        for row, contrast in enumerate(self._contrasts):
            self._fill_row(row, contrast, names, by_name.get(self._assignment[contrast] or ""))
        self._show_status()
        self.opener.refresh()
        self.assignment_changed.emit()

    def _fill_row(self, row: int, contrast: str, names: list[str], layer) -> None:
        self._table.setItem(row, 0, QTableWidgetItem(contrast))
        combo = self._table.cellWidget(row, 1)
        if combo is None:  # one combo per row, reused: replacing them left stale widgets
            combo = ElidingComboBox()
            combo.currentTextChanged.connect(lambda text, r=row: self._on_pick(
                self._contrasts[r], text))
            self._table.setCellWidget(row, 1, combo)
        combo.blockSignals(True)
        combo.clear()
        combo.addItems([NO_LAYER, *names])
        combo.setCurrentText(layer.name if layer is not None else NO_LAYER)
        combo.setToolTip(combo.currentText())
        combo.blockSignals(False)
        description = describe_layer(layer) if layer is not None else None
        shape, spacing = (description.shape_text, description.spacing_text) if description \
            else ("-", "-")
        self._table.setItem(row, 2, QTableWidgetItem(shape))
        self._table.setItem(row, 3, QTableWidgetItem(spacing))

    def _on_pick(self, contrast: str, text: str) -> None:
        self._manual[contrast] = "" if text == NO_LAYER else text
        self.refresh()

    def _show_status(self) -> None:
        """The warnings, or ready; while the contrasts disagree, the masks off the case's
        grid are not listed too: the same button moves them with the contrasts."""
        disagree = grids_disagree(self._descriptions())
        misplaced = {} if disagree else self._misplaced_masks(unresolved=True)
        self.resample_button.setVisible(disagree or bool(misplaced))
        warnings = self.warnings() + list(misplaced.values())
        if warnings:
            self._status.setStyleSheet("color: #ff8a65;")
            self._status.setText("\n".join(f"\u26a0 {w}" for w in warnings))
        else:
            self._status.setStyleSheet("color: #81c784;")
            self._status.setText(f"\u2713 {len(self._contrasts)} contrasts on one grid: ready")


def _misplaced_warning(mask: ImageDescription, grid: ImageDescription) -> str:
    """The Case section's line for a mask on another grid than the case's."""
    if mask.shape == grid.shape:
        where = ("has the case's shape but lies on another grid (stored in other axis "
                 "directions or shifted): its voxels would be read mirrored or shifted "
                 "against the contrasts")
    else:
        where = (f"lies on another grid than the contrasts ({mask.shape_text} voxels, not "
                 f"{grid.shape_text}): its voxels cannot be read beside theirs")
    return f"Mask '{mask.name}' {where}; {RESAMPLE_HINT}"


def _mask_scan(layer):
    """A Labels layer as a `napari_medseg.case.Scan` that keeps its look."""
    from napari_medseg.case import Scan
    from napari_medseg.layers import METADATA_KEY, affine_of_layer, source_paths

    look = {"colormap": layer.colormap, "features": layer.features.copy(),
            "opacity": layer.opacity,
            "metadata": dict(layer.metadata.get(METADATA_KEY, {}))}
    return Scan(layer.data, affine_of_layer(layer.metadata, layer.scale), layer.name,
                source_paths([layer]), layer.visible, look)
