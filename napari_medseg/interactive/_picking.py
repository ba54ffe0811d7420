"""Turning a cursor position into the voxel a click means (2D slice or 3D ray)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def voxel_on_ray(start: Sequence[float], end: Sequence[float], labels: np.ndarray,
                 image: np.ndarray | None, positive: bool) -> tuple[int, int, int] | None:
    """The voxel a 3D-view click means, along the camera ray from ``start`` to ``end``.

    The first labelled voxel on the ray when there is one (what the user sees
    in front); otherwise, for positive clicks, the brightest image voxel on the
    ray (what a maximum-intensity rendering shows there). None when the ray
    misses everything.

    Parameters
    ----------
    start, end : sequence of float
        Ray ends in data coordinates (z, y, x), nearest to the camera first.
    labels : ndarray
        The label layer's data.
    image : ndarray, optional
        The visible image channel.
    positive : bool
        Sign of the click.
    """
    start, end = np.asarray(start, float), np.asarray(end, float)
    steps = max(int(np.ceil(np.linalg.norm(end - start) * 2)), 1)
    points = np.rint(start + np.linspace(0, 1, steps + 1)[:, None] * (end - start)).astype(int)
    inside = np.all((points >= 0) & (points < np.asarray(labels.shape)), axis=1)
    points = points[inside]
    if len(points) == 0:
        return None
    hits = np.flatnonzero(labels[tuple(points.T)] != 0)
    if len(hits):
        return tuple(int(v) for v in points[hits[0]])  # type: ignore[return-value]
    if not positive or image is None:
        return None
    values = image[tuple(points.T)]
    return tuple(int(v) for v in points[int(np.argmax(values))])  # type: ignore[return-value]
