"""Label conventions: BraTS tumour labels, their colours and the regions."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabelInfo:
    """One segmentation label: its value, short name, long name and RGBA colour."""

    value: int
    name: str
    description: str
    color: tuple[float, float, float, float]


#: BraTS convention used throughout (label 3 for enhancing tumour, as in BraTS 2023+).
BRATS_LABELS: tuple[LabelInfo, ...] = (
    LabelInfo(1, "NCR", "necrotic tumour core", (0.90, 0.20, 0.20, 1.0)),
    LabelInfo(2, "ED", "peritumoural oedema", (0.25, 0.80, 0.30, 1.0)),
    LabelInfo(3, "ET", "enhancing tumour", (1.00, 0.85, 0.10, 1.0)),
)

#: Evaluation regions: whole tumour, tumour core, enhancing tumour.
BRATS_REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}


def label_names(labels: tuple[LabelInfo, ...] = BRATS_LABELS) -> dict[int, str]:
    """``{value: name}`` for a label table."""
    return {info.value: info.name for info in labels}


def label_colors(labels: tuple[LabelInfo, ...] = BRATS_LABELS) -> dict[int | None, tuple]:
    """``{value: rgba}`` for napari's Labels colormap (background transparent)."""
    colors: dict[int | None, tuple] = {0: (0.0, 0.0, 0.0, 0.0), None: (0.6, 0.6, 0.6, 1.0)}
    colors.update({info.value: info.color for info in labels})
    return colors
