"""Putting a case's contrasts on one voxel grid.

Clinical scans of one session are rarely stored on one grid: a 1 mm sagittal
T1 beside a 5 mm axial FLAIR, or the same grid stored RAS by one scanner
export and LPS by another. A model reads the contrasts voxel by voxel, so they
are resampled onto one grid first: the finest one (smallest voxel volume;
the first such in case order), through each file's own affine. A grid that
differs only by axis order, flips or a whole-voxel shift is copied exactly
(axes transposed, flipped and sliced, the stored type kept); any other is
interpolated linearly as float32 (`scipy.ndimage.affine_transform`, as
nibabel's ``resample_from_to``, in slabs side by side), labels by nearest
neighbour. Voxels outside a scan's field of view become 0.
"""
from __future__ import annotations

import os
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
              target_shape: tuple[int, int, int], labels: bool = False) -> np.ndarray:
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
    labels : bool
        ``data`` is a label map: each target voxel takes the nearest voxel's value,
        in the stored type.

    Returns
    -------
    ndarray
        The stored type when the grids share voxels (`is_exact_copy`) or ``labels``,
        else float32 interpolated linearly; 0 outside the scan's field of view.
    """
    data = np.asarray(data)
    target_shape = tuple(int(n) for n in target_shape)
    mapping = _voxel_mapping(affine, target_affine)
    if _copies_voxels(mapping):
        return _copied(data, np.round(mapping).astype(int), target_shape)
    if not labels:
        data = data.astype(np.float32, copy=False)
    return _interpolated(data, mapping, target_shape, order=0 if labels else 1)


def _interpolated(data: np.ndarray, mapping: np.ndarray, target_shape: tuple[int, ...],
                  order: int) -> np.ndarray:
    """``scipy.ndimage.affine_transform`` through ``mapping`` (0 outside the scan), in
    slabs of target slices side by side in threads: SciPy releases the GIL, so two
    cores take about half the time, with the same values."""
    from concurrent.futures import ThreadPoolExecutor

    from scipy import ndimage

    out = np.empty(target_shape, dtype=data.dtype)
    slabs = min(os.cpu_count() or 1, target_shape[0])
    bounds = np.linspace(0, target_shape[0], slabs + 1).astype(int)

    def fill(first: int, stop: int) -> None:
        offset = mapping[:3, :3] @ np.array([first, 0, 0], float) + mapping[:3, 3]
        ndimage.affine_transform(data, mapping[:3, :3], offset=offset,
                                 output_shape=(stop - first, *target_shape[1:]),
                                 output=out[first:stop], order=order, mode="constant",
                                 cval=0.0)

    with ThreadPoolExecutor(max_workers=slabs, thread_name_prefix="napari-medseg-regrid") as pool:
        list(pool.map(fill, bounds[:-1], bounds[1:]))
    return out


def _copied(data: np.ndarray, mapping: np.ndarray, target_shape: tuple[int, ...]
            ) -> np.ndarray:
    """The target grid's voxels taken from ``data`` through an integer `_voxel_mapping`
    (a signed axis permutation and a whole-voxel shift): axes transposed, flipped and
    sliced, in one copy; 0 where the target reaches past ``data``."""
    out = np.zeros(target_shape, dtype=data.dtype)
    source_axes = [int(np.flatnonzero(mapping[:3, axis])[0]) for axis in range(3)]
    source = data.transpose(source_axes)  # source axes in the target's order
    into, take = [], []
    for axis, source_axis in enumerate(source_axes):
        step, shift = int(mapping[source_axis, axis]), int(mapping[source_axis, 3])
        length = data.shape[source_axis]
        # target index k reads source index shift + step * k, kept where 0 <= that < length
        first = max(0, -shift) if step > 0 else max(0, shift - length + 1)
        stop = min(target_shape[axis], length - shift) if step > 0 else \
            min(target_shape[axis], shift + 1)
        if stop <= first:
            return out
        into.append(slice(first, stop))
        begin = shift + step * first
        end = shift + step * stop
        take.append(slice(begin, end if end >= 0 else None, step))
    out[tuple(into)] = source[tuple(take)]
    return out


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
