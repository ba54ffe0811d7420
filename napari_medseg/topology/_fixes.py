"""One-click fixes as pure functions: a label map in, the changed voxels out.

`fix_changes` returns the indices and new values (so the dock can write them
through napari's Labels undo history); `apply_fix` returns a fixed copy.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import ball

from napari_medseg.topology._betti import betti_numbers
from napari_medseg.topology._errors import TopologyError, dilate_path

Changes = tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _as_changes(mask: np.ndarray, values) -> Changes:
    indices = np.nonzero(mask)
    return indices, np.broadcast_to(np.asarray(values), indices[0].shape).copy()


def _close_handle(labels: np.ndarray, error: TopologyError, connectivity: int) -> np.ndarray:
    mask = np.isin(labels, error.target_values)
    before = betti_numbers(mask, connectivity).b1
    lo = np.maximum(error.voxels.min(0) - 6, 0)
    hi = np.minimum(error.voxels.max(0) + 7, labels.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    for radius in range(1, 7):
        closed = ndi.binary_closing(np.pad(mask[box], radius + 1), ball(radius))
        closed = closed[tuple(slice(radius + 1, -radius - 1) for _ in range(3))]
        added = np.zeros_like(mask)
        added[box] = closed & ~mask[box] & (labels[box] == 0)
        if added.any() and betti_numbers(mask | added, connectivity).b1 < before:
            return added
    return np.zeros_like(mask)


def _bridge(labels: np.ndarray, error: TopologyError) -> np.ndarray:
    """A cylinder along the gap, as thick as the tube near its two ends."""
    mask = np.isin(labels, error.target_values)
    depth = ndi.distance_transform_edt(mask)
    radii = []
    for end in error.extra.get("ends", []):
        lo = np.maximum(np.asarray(end) - 4, 0)
        radii.append(float(depth[tuple(slice(a, b + 5) for a, b in zip(lo, end))].max()))
    radius = float(np.mean(radii)) if radii else 1.0
    return dilate_path(error.voxels, radius, labels.shape) & (labels == 0)


def fix_changes(labels: np.ndarray, error: TopologyError, connectivity: int = 26) -> Changes:
    """Indices and new values that fix ``error`` (nothing for errors with no fix).

    Parameters
    ----------
    labels : ndarray of int
        The mask.
    error : TopologyError
        One error of a check of this mask.
    connectivity : int
        6, 18 or 26, as the check used.
    """
    where = np.zeros(labels.shape, bool)
    if error.fix == "remove":
        where[tuple(error.voxels.T)] = True
        return _as_changes(where & np.isin(labels, error.target_values), 0)
    if error.fix == "fill":
        where[tuple(error.voxels.T)] = True
        return _as_changes(where, error.label)
    if error.fix == "close":
        return _as_changes(_close_handle(labels, error, connectivity), error.label)
    if error.fix == "bridge":
        return _as_changes(_bridge(labels, error), error.label)
    return _as_changes(where, 0)


def apply_fix(labels: np.ndarray, error: TopologyError, connectivity: int = 26) -> np.ndarray:
    """A copy of ``labels`` with ``error`` fixed.

    Parameters
    ----------
    labels : ndarray of int
        The mask.
    error : TopologyError
        One error of a check of this mask.
    connectivity : int
        6, 18 or 26, as the check used.
    """
    fixed = labels.copy()
    indices, values = fix_changes(labels, error, connectivity)
    fixed[indices] = values
    return fixed
