"""Putting a case's contrasts on one voxel grid.

Clinical scans of one session are rarely stored on one grid: a 1 mm sagittal
T1 beside a 5 mm axial FLAIR, or the same grid stored RAS by one scanner
export and LPS by another. A model reads the contrasts voxel by voxel, so they
are resampled onto one grid first: the finest one (smallest voxel volume;
the first such in case order), through each file's own affine. A grid that
differs only by axis order, flips or a whole-voxel shift is copied exactly
(`scipy.ndimage.affine_transform` with nearest neighbour on integer
coordinates, the stored type kept); any other is interpolated linearly as
float32. Voxels outside a scan's field of view become 0.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_medseg.io._volume import Volume, same_grid

#: ``(x, y, z)`` affine columns against ``[Z, Y, X]`` array axes
_XYZ_TO_ZYX = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
_WHOLE_VOXEL = 1e-3  # voxels: a mapping this close to integers is copied, not interpolated


def finest_grid(affines: Sequence[np.ndarray]) -> int:
    """Index of the grid with the smallest voxel volume (the first of equals).

    Parameters
    ----------
    affines : sequence of ndarray of shape (4, 4)
        Voxel ``(x, y, z)`` to RAS+ mm affines.
    """
    volumes = [abs(float(np.linalg.det(np.asarray(a, float)[:3, :3]))) for a in affines]
    smallest = min(volumes)
    return next(i for i, v in enumerate(volumes) if v <= smallest * (1 + 1e-6))


def grids_to_move(affines: Sequence[np.ndarray], shapes: Sequence[tuple[int, ...]]
                  ) -> tuple[int, list[int]]:
    """The finest grid (`finest_grid`) and the grids that are not it: what `on_one_grid`
    resamples.

    Parameters
    ----------
    affines : sequence of ndarray of shape (4, 4)
        Voxel ``(x, y, z)`` to RAS+ mm affines.
    shapes : sequence of tuple of int
        The grids' ``(Z, Y, X)``, in the same order.

    Returns
    -------
    tuple
        The target's index, and the indices of the others not on its grid.
    """
    target = finest_grid(affines)
    return target, [i for i, (affine, shape) in enumerate(zip(affines, shapes))
                    if not same_grid(affine, shape, affines[target], shapes[target])]


def _voxel_mapping(affine: np.ndarray, target_affine: np.ndarray) -> np.ndarray:
    """Target ``[z, y, x]`` voxel to source ``[z, y, x]`` voxel, homogeneous 4x4."""
    source_from_world = np.linalg.inv(np.asarray(affine, float))
    return _XYZ_TO_ZYX @ source_from_world @ np.asarray(target_affine, float) @ _XYZ_TO_ZYX


def is_exact_copy(affine: np.ndarray, target_affine: np.ndarray) -> bool:
    """Whether the target grid's voxels are source voxels: the grids differ only by
    axis order, flips and whole-voxel shifts (so resampling copies, exactly).

    Parameters
    ----------
    affine, target_affine : ndarray of shape (4, 4)
        The source and target geometries.
    """
    return _copies_voxels(_voxel_mapping(affine, target_affine))


def _copies_voxels(mapping: np.ndarray) -> bool:
    """Whether a `_voxel_mapping` is a signed axis permutation with a whole-voxel shift."""
    rounded = np.round(mapping[:3])
    if not np.allclose(mapping[:3], rounded, atol=_WHOLE_VOXEL, rtol=0):
        return False
    linear = np.abs(rounded[:, :3])
    return bool((linear.sum(axis=0) == 1).all() and (linear.sum(axis=1) == 1).all())


def onto_grid(data: np.ndarray, affine: np.ndarray, target_affine: np.ndarray,
              target_shape: tuple[int, int, int]) -> np.ndarray:
    """``data`` (``[Z, Y, X]`` on ``affine``) resampled onto the target grid.

    Parameters
    ----------
    data : array-like of shape (Z, Y, X)
        One scan.
    affine : ndarray of shape (4, 4)
        Its voxel ``(x, y, z)`` to RAS+ mm affine.
    target_affine : ndarray of shape (4, 4)
        The grid to put it on.
    target_shape : tuple of int
        That grid's ``(Z, Y, X)``.

    Returns
    -------
    ndarray
        The stored type when the grids share voxels (`is_exact_copy`), else
        float32 interpolated linearly; 0 outside the scan's field of view.
    """
    from scipy import ndimage

    data = np.asarray(data)
    mapping = _voxel_mapping(affine, target_affine)
    exact = _copies_voxels(mapping)
    if exact:
        mapping = np.round(mapping)
    return ndimage.affine_transform(
        data if exact else data.astype(np.float32, copy=False), mapping[:3, :3],
        offset=mapping[:3, 3], output_shape=tuple(int(n) for n in target_shape),
        output=data.dtype if exact else np.float32, order=0 if exact else 1,
        mode="constant", cval=0.0)


def on_one_grid(volumes: Sequence[Volume]) -> tuple[Volume, ...]:
    """The volumes, those not on the finest grid resampled onto it (see `onto_grid`).

    Parameters
    ----------
    volumes : sequence of Volume
        One case's contrasts, each file read alone.
    """
    index, moved = grids_to_move([v.affine for v in volumes], [v.shape for v in volumes])
    target = volumes[index]
    return tuple(
        Volume(data=np.stack([onto_grid(channel, volume.affine, target.affine, target.shape)
                              for channel in volume.data]),
               affine=target.affine, channel_names=volume.channel_names,
               source_paths=volume.source_paths) if i in moved else volume
        for i, volume in enumerate(volumes))
