"""Segmentation metrics: Dice and the 95th-percentile Hausdorff distance.

Definitions follow MONAI's ``compute_dice`` and ``compute_hausdorff_distance``
(edges = mask minus its erosion, Euclidean distances in mm, the larger of the
two directed 95th percentiles); `tests/test_metrics.py` checks them against
MONAI. Empty masks follow the BraTS convention: both empty gives Dice 1 and
HD95 0, one empty gives Dice 0 and HD95 ``inf``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice overlap of two boolean masks (1.0 when both are empty).

    Parameters
    ----------
    prediction, reference : ndarray
        Masks of the same shape (non-zero is inside).
    """
    prediction, reference = prediction.astype(bool), reference.astype(bool)
    return float(dice_from_counts(prediction.sum(), reference.sum(),
                                  np.logical_and(prediction, reference).sum()))


def dice_from_counts(predicted, reference, overlap) -> np.ndarray:
    """Dice from voxel counts (arrays broadcast): ``2 overlap / (predicted + reference)``,
    1.0 where both are empty.

    Parameters
    ----------
    predicted, reference : array_like of int
        Voxels in each mask.
    overlap : array_like of int
        Voxels in both.
    """
    total = np.asarray(predicted, np.int64) + np.asarray(reference, np.int64)
    return np.where(total == 0, 1.0, 2.0 * np.asarray(overlap) / np.maximum(total, 1))


def _edges(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask)


def hd95(prediction: np.ndarray, reference: np.ndarray,
         spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> float:
    """Symmetric 95th-percentile Hausdorff distance between mask surfaces, in mm.

    Parameters
    ----------
    prediction, reference : ndarray
        Masks of the same shape.
    spacing : sequence of float
        Voxel size (z, y, x) in mm.

    Returns
    -------
    float
        0 when both masks are empty, inf when only one is.
    """
    prediction, reference = prediction.astype(bool), reference.astype(bool)
    if not prediction.any() and not reference.any():
        return 0.0
    if not prediction.any() or not reference.any():
        return float("inf")
    edges_p, edges_r = _edges(prediction), _edges(reference)
    to_reference = ndi.distance_transform_edt(~edges_r, sampling=spacing)[edges_p]
    to_prediction = ndi.distance_transform_edt(~edges_p, sampling=spacing)[edges_r]
    return float(max(np.percentile(to_reference, 95), np.percentile(to_prediction, 95)))


def region_scores(prediction: np.ndarray, reference: np.ndarray,
                  regions: Mapping[str, Sequence[int]],
                  spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, dict[str, float]]:
    """Dice and HD95 per region (a region is a set of labels, e.g. WT = 1, 2, 3).

    Parameters
    ----------
    prediction, reference : ndarray of int
        Label maps of the same shape.
    regions : mapping of str to sequence of int
        Region name to the label values it joins.
    spacing : sequence of float
        Voxel size (z, y, x) in mm.
    """
    scores = {}
    for name, values in regions.items():
        p, r = np.isin(prediction, values), np.isin(reference, values)
        scores[name] = {"dice": dice(p, r), "hd95": hd95(p, r, spacing)}
    return scores
