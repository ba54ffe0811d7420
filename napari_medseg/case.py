"""The loaded case: which layers are the input contrasts, and are they consistent.

Pure logic over layer descriptions (name, shape, spacing): the dock shows
the result, tests call it directly.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from napari_medseg.contrasts import BRATS_CONTRASTS, match_contrasts

SPACING_TOLERANCE_MM = 1e-3


@dataclass(frozen=True)
class ImageDescription:
    """What the case check needs to know of an Image layer."""

    name: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...]

    @property
    def shape_text(self) -> str:
        """``'106 x 127 x 102'``."""
        return " \u00d7 ".join(str(n) for n in self.shape)

    @property
    def spacing_text(self) -> str:
        """``'1.5 x 1.5 x 1.5'`` (mm)."""
        return " \u00d7 ".join(f"{s:.3g}" for s in self.spacing)


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
    and that all share shape and spacing.

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
        warnings.append(f"Contrasts disagree in shape ({detail}): resample them to one grid")
    spacings = [np.asarray(layer.spacing[-3:], dtype=float) for layer in volumes.values()]
    if spacings and any(not np.allclose(s, spacings[0], atol=SPACING_TOLERANCE_MM, rtol=0)
                        for s in spacings):
        detail = ", ".join(f"{c} {layer.spacing_text} mm" for c, layer in volumes.items())
        warnings.append(f"Contrasts disagree in spacing ({detail}): resample them to one grid")
    return warnings
