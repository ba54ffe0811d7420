"""Boxes and balls in voxel space, shared by the click engines and click simulation,
and the voxel correspondence between a case's grid and a network's (`NetworkGrid`)."""
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


class NetworkGrid:
    """Nearest-voxel correspondence between the case grid and the network's grid.

    The network's grid is the case resampled to the network's spacing (as
    `prepare_input` resamples it): network voxel ``i`` samples case voxel
    ``floor((i + 0.5) / zoom)``, ``zoom`` = network shape / case shape per axis.
    """

    def __init__(self, shape: Sequence[int], network_shape: Sequence[int]):
        self.shape = tuple(int(s) for s in shape)
        self.network_shape = tuple(int(s) for s in network_shape)
        self.same = self.shape == self.network_shape
        self.zoom = np.asarray(self.network_shape, float) / np.asarray(self.shape, float)

    def to_network(self, position: Sequence[int]) -> tuple[int, ...]:
        """The network voxel holding case voxel ``position``."""
        return tuple(min(int((p + 0.5) * z), n - 1) for p, z, n in
                     zip(position, self.zoom, self.network_shape))

    def sampled(self, box: tuple[slice, ...]) -> tuple[np.ndarray, ...]:
        """Case indices (open mesh) that the network voxels of ``box`` sample."""
        axes = [np.minimum(((np.arange(s.start, s.stop) + 0.5) / z).astype(int), n - 1)
                for s, z, n in zip(box, self.zoom, self.shape)]
        return np.ix_(*axes)

    def case_box(self, box: tuple[slice, ...]) -> tuple[tuple[slice, ...], tuple[np.ndarray, ...]]:
        """The case voxels inside network ``box``, and, for each, its network voxel
        (open mesh, relative to the box)."""
        slices, axes = [], []
        for s, z, n in zip(box, self.zoom, self.shape):
            start, stop = int(np.ceil(s.start / z - 0.5)), int(np.ceil(s.stop / z - 0.5))
            start, stop = max(start, 0), min(max(stop, start + 1), n)
            slices.append(slice(start, stop))
            axes.append(np.clip(((np.arange(start, stop) + 0.5) * z).astype(int) - s.start,
                                0, s.stop - s.start - 1))
        return tuple(slices), np.ix_(*axes)
