"""The loaded case: which layers are the input contrasts, are they consistent, and
their layers (and the masks drawn on them) resampled onto one grid when they are not.

Pure logic over layer descriptions (name, shape, spacing, affine) and arrays:
the dock shows the result, tests call it directly.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from napari_medseg.contrasts import BRATS_CONTRASTS, match_contrasts
from napari_medseg.io import Volume, grids_to_move, onto_grid, orientation_code, same_grid
from napari_medseg.layers import METADATA_KEY, LayerDataTuple, volume_layers
from napari_medseg.orientation import placement
from napari_medseg.progress import Progress, ProgressGenerator

SPACING_TOLERANCE_MM = 1e-3
RESAMPLE_HINT = "press 'Resample onto one grid' below"


@dataclass(frozen=True)
class ImageDescription:
    """What the case check needs to know of an Image layer."""

    name: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    affine: np.ndarray | None = None  # voxel (x, y, z) to RAS+ mm; None: not known

    @property
    def shape_text(self) -> str:
        """``'106 x 127 x 102'``."""
        return "\u2009\u00d7\u2009".join(str(n) for n in self.shape)

    @property
    def spacing_text(self) -> str:
        """``'1.5 x 1.5 x 1.5'`` (mm)."""
        return "\u2009\u00d7\u2009".join(f"{s:.3g}" for s in self.spacing)


def auto_assign(layer_names: Sequence[str], contrasts: Sequence[str] = BRATS_CONTRASTS,
                keep: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Match contrasts to layer names, keeping earlier manual choices that still exist.

    Parameters
    ----------
    layer_names : sequence of str
        Names of the Image layers, in viewer order.
    contrasts : sequence of str
        The contrasts the model needs.
    keep : mapping, optional
        ``{contrast: layer name}`` chosen by the user; kept when the layer
        exists. An empty name means the user chose no layer for it.
    """
    assignment = match_contrasts(layer_names, contrasts)
    for contrast, name in (keep or {}).items():
        if contrast in assignment and name == "":
            assignment[contrast] = None
        elif contrast in assignment and name in layer_names:
            for other, other_name in assignment.items():
                if other_name == name and other != contrast:
                    assignment[other] = None
            assignment[contrast] = name
    return assignment


def check_case(assignment: Mapping[str, ImageDescription | None]) -> list[str]:
    """Warnings about an assignment of layers to contrasts; empty when usable.

    Checks that every contrast has a layer, each layer is used once, is 3D,
    and that all share one voxel grid: shape, spacing and placement (two
    files of one shape and spacing stored RAS and LPS hold mirrored voxels).

    Parameters
    ----------
    assignment : mapping of str to ImageDescription or None
        Contrast name to the layer chosen for it (None: none chosen).
    """
    warnings = [f"No layer for {contrast}: open it, or pick a layer in the list"
                for contrast, layer in assignment.items() if layer is None]
    chosen = {contrast: layer for contrast, layer in assignment.items() if layer is not None}
    names = [layer.name for layer in chosen.values()]
    for name in sorted({n for n in names if names.count(n) > 1}):
        used = [c for c, layer in chosen.items() if layer.name == name]
        warnings.append(f"Layer '{name}' is used for {' and '.join(used)}: pick one layer each")
    for contrast, layer in chosen.items():
        if len(layer.shape) != 3:
            warnings.append(f"{contrast} ('{layer.name}') has {len(layer.shape)} dimensions: "
                            "a 3D volume is needed")
    volumes = {c: layer for c, layer in chosen.items() if len(layer.shape) == 3}
    if len({layer.shape for layer in volumes.values()}) > 1:
        detail = ", ".join(f"{c} {layer.shape_text}" for c, layer in volumes.items())
        warnings.append(f"Contrasts disagree in shape ({detail}): {RESAMPLE_HINT}")
    spacings = [np.asarray(layer.spacing[-3:], dtype=float) for layer in volumes.values()]
    if spacings and any(not np.allclose(s, spacings[0], atol=SPACING_TOLERANCE_MM, rtol=0)
                        for s in spacings):
        detail = ", ".join(f"{c} {layer.spacing_text} mm" for c, layer in volumes.items())
        warnings.append(f"Contrasts disagree in spacing ({detail}): {RESAMPLE_HINT}")
    elif len({layer.shape for layer in volumes.values()}) == 1:
        warnings += _placement_warnings(volumes)
    return warnings


def _placement_warnings(volumes: Mapping[str, ImageDescription]) -> list[str]:
    """One warning when layers of one shape and spacing are placed differently."""
    groups: list[tuple[list[str], np.ndarray]] = []  # contrasts sharing one placement
    for contrast, affine in ((c, v.affine) for c, v in volumes.items() if v.affine is not None):
        group = next((g for g in groups if np.allclose(g[1], affine, atol=SPACING_TOLERANCE_MM,
                                                       rtol=0)), None)
        if group is None:
            groups.append(([contrast], affine))
        else:
            group[0].append(contrast)
    if len(groups) < 2:
        return []
    detail = "; ".join(f"{', '.join(names)} {orientation_code(a)} at ("
                       + ", ".join(f"{v:.1f}" for v in np.asarray(a)[:3, 3]) + ") mm"
                       for names, a in groups)
    return [f"Contrasts lie on different grids ({detail}): {RESAMPLE_HINT}"]


def grids_disagree(assignment: Mapping[str, ImageDescription | None]) -> bool:
    """Whether every contrast has its own 3D layer and only their grids disagree (what
    resampling them onto one grid fixes; see `napari_medseg.io.on_one_grid`).

    Parameters
    ----------
    assignment : mapping of str to ImageDescription or None
        As for `check_case`.
    """
    chosen = list(assignment.values())
    if any(layer is None or len(layer.shape) != 3 or layer.affine is None for layer in chosen):
        return False
    if len({layer.name for layer in chosen}) != len(chosen):
        return False
    first = chosen[0]
    return not all(same_grid(first.affine, first.shape, layer.affine, layer.shape)
                   for layer in chosen)


def misplaced_masks(masks: Mapping[str, ImageDescription], grid: ImageDescription
                    ) -> list[str]:
    """The masks stored on another grid than the case's: of its shape in other axis
    directions (LPS beside RAS scans, say: a viewer draws them aligned, but their
    voxels, read beside the case's, are mirrored), or of another shape or spacing.
    Resampling them onto the case's grid fixes it.

    Parameters
    ----------
    masks : mapping of str to ImageDescription
        Label layers by name.
    grid : ImageDescription
        A contrast of the case.
    """
    if grid.affine is None:
        return []
    return [name for name, mask in masks.items() if mask.affine is not None
            and not same_grid(mask.affine, mask.shape, grid.affine, grid.shape)]


@dataclass(frozen=True)
class Scan:
    """One contrast's or mask's voxels and geometry, read from its layer on the GUI thread.

    A mask also brings its layer's ``look``: ``colormap``, ``features``, ``opacity`` and
    its napari-medseg ``metadata`` entries, which its resampled copy keeps.
    """

    data: Any
    affine: np.ndarray
    name: str
    source_paths: tuple[str, ...] = ()
    visible: bool = True
    look: Mapping[str, Any] | None = None


class Resampled(NamedTuple):
    """What `resampled_layers` made: layer-data tuples of the contrasts moved, by contrast,
    and of the masks moved onto the case's grid, by the mask layer's name."""

    images: dict[str, LayerDataTuple]
    masks: dict[str, LayerDataTuple]


def resampled_layers(scans: Mapping[str, Scan], masks: Sequence[Scan] = ()
                     ) -> ProgressGenerator[Resampled]:
    """Image layers for the contrasts not on the finest grid among ``scans``, resampled
    onto it (`napari_medseg.io.onto_grid`), each named ``'<layer> resampled'``; the masks
    not on that grid go with them (nearest neighbour): those drawn on a moved contrast's
    grid, and those stored on another grid (`misplaced_masks`).

    Parameters
    ----------
    scans : mapping of str to Scan
        The case's contrasts.
    masks : sequence of Scan
        Label layers of the case, each with its ``look``; those not on the finest
        grid move.

    Yields
    ------
    Progress
        One report per layer resampled.

    Returns
    -------
    Resampled
        The new layers' data tuples.
    """
    names = list(scans)
    shapes = [_shape(scans[c].data) for c in names]
    index, moved = grids_to_move([scans[c].affine for c in names], shapes)
    target, shape = scans[names[index]], shapes[index]
    masks = [mask for mask in masks
             if not same_grid(mask.affine, _shape(mask.data), target.affine, shape)]
    total = len(moved) + len(masks)
    images: dict[str, LayerDataTuple] = {}
    for done, contrast in enumerate(names[i] for i in moved):
        scan = scans[contrast]
        yield Progress(done, total, f"Resampling {scan.name} onto {target.name}'s grid")
        images[contrast] = _resampled_image(scan, contrast, target.affine, shape)
    resampled_masks: dict[str, LayerDataTuple] = {}
    for done, mask in enumerate(masks, start=len(moved)):
        yield Progress(done, total, f"Resampling {mask.name} onto {target.name}'s grid")
        resampled_masks[mask.name] = _resampled_mask(mask, target.affine, shape)
    return Resampled(images, resampled_masks)


def _shape(data: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in np.shape(data))


def _resampled_image(scan: Scan, contrast: str, affine: np.ndarray, shape: tuple[int, ...]
                     ) -> LayerDataTuple:
    voxels = onto_grid(scan.data, scan.affine, affine, shape)
    volume = Volume(data=voxels[None], affine=affine, channel_names=(f"{scan.name} resampled",),
                    source_paths=scan.source_paths)
    data, kwargs, kind = volume_layers(volume)[0]
    kwargs["visible"] = scan.visible
    kwargs["metadata"][METADATA_KEY]["contrast"] = contrast
    kwargs["metadata"][METADATA_KEY]["resampled_from"] = scan.name
    return data, kwargs, kind


def _resampled_mask(mask: Scan, affine: np.ndarray, shape: tuple[int, ...]) -> LayerDataTuple:
    look = dict(mask.look or {})
    entries = dict(look.pop("metadata", {}))
    entries.update(affine=np.asarray(affine, float).tolist(), resampled_from=mask.name)
    kwargs = {**look, "name": f"{mask.name} resampled", **placement(affine, shape),
              "visible": mask.visible, "metadata": {METADATA_KEY: entries}}
    return onto_grid(mask.data, mask.affine, affine, shape, labels=True), kwargs, "labels"
