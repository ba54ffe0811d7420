"""Boxes and balls in voxel space, shared by the click engines and click simulation."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ball_mask(shape: Sequence[int], centre: Sequence[float], radius: float) -> np.ndarray:
    """Voxels of ``shape`` within ``radius`` of ``centre`` (voxel units).

    Parameters
    ----------
    shape : sequence of int
        The grid.
    centre : sequence of float
        The ball's centre (z, y, x).
    radius : float
        In voxels.
    """
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    distance = sum((g - c) ** 2 for g, c in zip(grids, centre))
    return distance <= radius ** 2


def touches_open_face(mask: np.ndarray, box: tuple[slice, ...], shape: Sequence[int]) -> bool:
    """Does ``mask`` (the contents of ``box``) touch a face of the box that is not the
    volume's edge (so the object may go on outside the box)?

    Parameters
    ----------
    mask : ndarray of bool
        The box's contents.
    box : tuple of slice
        The box in the volume.
    shape : sequence of int
        The volume's shape.
    """
    return bool((mask & open_faces(box, shape)).any())


def open_faces(box: tuple[slice, ...], shape: Sequence[int]) -> np.ndarray:
    """The voxels of ``box`` on its faces that are not the volume's edge.

    Parameters
    ----------
    box : tuple of slice
        The box in the volume.
    shape : sequence of int
        The volume's shape.

    Returns
    -------
    ndarray of bool
        Of the box's shape.
    """
    faces = np.zeros([s.stop - s.start for s in box], bool)
    for axis, (window, size) in enumerate(zip(box, shape)):
        if window.start > 0:
            faces[(slice(None),) * axis + (0,)] = True
        if window.stop < size:
            faces[(slice(None),) * axis + (-1,)] = True
    return faces


def crop_box(centre: Sequence[int], size: Sequence[int], shape: Sequence[int]
             ) -> tuple[slice, ...]:
    """A box of ``size`` centred on ``centre``, shifted to lie inside ``shape`` if it fits.

    Parameters
    ----------
    centre : sequence of int
        Voxel (z, y, x) the box is centred on.
    size : sequence of int
        The box's shape (cut to ``shape`` where the volume is smaller).
    shape : sequence of int
        The volume's shape.
    """
    box = []
    for c, s, n in zip(centre, size, shape):
        start = int(c) - int(s) // 2
        start = min(max(start, 0), max(n - int(s), 0))
        box.append(slice(start, min(start + int(s), n)))
    return tuple(box)
