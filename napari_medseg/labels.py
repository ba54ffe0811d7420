"""Label conventions: BraTS tumour labels, their colours and the regions."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BINCOUNT_MAX = 1 << 16  # label values up to this are counted, not sorted
_BINCOUNT_CHUNK = 1 << 20  # voxels per bincount pass: an 8 MB intp copy, not the whole mask


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
    """``{value: name}`` for a label table.

    Parameters
    ----------
    labels : tuple of LabelInfo
        The table (default BraTS's NCR, ED, ET).
    """
    return {info.value: info.name for info in labels}


def label_colors(labels: tuple[LabelInfo, ...] = BRATS_LABELS) -> dict[int | None, tuple]:
    """``{value: rgba}`` for napari's Labels colormap (background transparent).

    Parameters
    ----------
    labels : tuple of LabelInfo
        The table (default BraTS's NCR, ED, ET); values not in it are grey
        (napari's ``None`` key).
    """
    colors: dict[int | None, tuple] = {0: (0.0, 0.0, 0.0, 0.0), None: (0.6, 0.6, 0.6, 1.0)}
    colors.update({info.value: info.color for info in labels})
    return colors


def present_labels(mask: np.ndarray) -> list[int]:
    """The non-zero label values in ``mask``, ascending.

    Small non-negative integer labels are counted with ``np.bincount`` (one
    pass, about 20x faster than ``np.unique``'s sort on a 240x240x155 mask:
    it runs on the GUI thread whenever a Labels layer changes), a million
    voxels at a time: converting the whole mask to ``intp`` at once allocated
    71 MB, 0.14 s of page faults inside a model run's result; others fall back
    to ``np.unique``.

    Parameters
    ----------
    mask : ndarray of int
        Any label mask.
    """
    flat = np.asarray(mask).ravel()
    if flat.size == 0:
        return []
    if np.issubdtype(flat.dtype, np.integer) and flat.min() >= 0 and flat.max() < _BINCOUNT_MAX:
        counts = np.zeros(int(flat.max()) + 1, dtype=np.int64)
        for start in range(0, flat.size, _BINCOUNT_CHUNK):
            chunk = flat[start:start + _BINCOUNT_CHUNK].astype(np.intp, copy=False)
            counts += np.bincount(chunk, minlength=counts.size)
        return [int(v) for v in np.flatnonzero(counts[1:]) + 1]
    return [int(v) for v in np.unique(flat) if v]


def most_probable(probabilities) -> np.ndarray:
    """The most probable class per voxel, ``uint8`` ``[Z, Y, X]`` from ``[K, Z, Y, X]``.

    What ``argmax(0)`` gives (the first class on ties), in one comparison pass
    per class: torch's CPU ``argmax`` over the leading axis of a
    4x155x240x240 tensor took 1.4 s on a 2-core CPU, NumPy's 0.22 s, this
    0.11 s. A CPU tensor is read without a copy; a GPU tensor takes torch's
    own argmax there.

    Parameters
    ----------
    probabilities : ndarray or Tensor of shape (K, Z, Y, X)
        Class probabilities (or logits), at most 256 classes.

    Raises
    ------
    ValueError
        For more than 256 classes.
    """
    if hasattr(probabilities, "detach"):  # a torch tensor
        if probabilities.device.type != "cpu":
            return probabilities.argmax(0).cpu().numpy().astype(np.uint8)
        probabilities = probabilities.detach().numpy()
    probabilities = np.asarray(probabilities)
    if len(probabilities) > 256:
        raise ValueError(f"{len(probabilities)} classes do not fit uint8 labels")
    best = probabilities[0].copy()
    labels = np.zeros(best.shape, np.uint8)
    better = np.empty(best.shape, bool)
    for index in range(1, len(probabilities)):
        np.greater(probabilities[index], best, out=better)
        labels[better] = index
        np.maximum(best, probabilities[index], out=best)
    return labels
