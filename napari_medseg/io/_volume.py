"""The objects that travel through napari-medseg: `Volume` and `LabelMap`.

Axis convention: arrays are indexed ``[C, Z, Y, X]`` (or ``[Z, Y, X]``), which
is NIfTI's ``(i, j, k)`` voxel order reversed. ``affine`` is always the NIfTI
convention: a 4x4 matrix mapping ``(i, j, k, 1) = (x, y, z, 1)`` voxel indices
to RAS+ millimetres. Files in LPS (NRRD, MHA, DICOM) are converted on reading
and back on writing, so one matrix describes geometry everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from napari_medseg.errors import InputError


def spacing_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm, ordered ``(z, y, x)`` like the arrays.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel-to-world matrix in the NIfTI convention.

    Returns
    -------
    tuple of float
        Length of each voxel axis in world units, ``(z, y, x)``.
    """
    norms = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    return (float(norms[2]), float(norms[1]), float(norms[0]))


def orientation_code(affine: np.ndarray) -> str:
    """Three-letter orientation code of the voxel axes, e.g. ``'RAS'``.

    The letters describe where the ``x``, ``y`` and ``z`` voxel axes point, the
    same code ITK-SNAP and nibabel (``aff2axcodes``) report.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel-to-RAS affine.
    """
    import nibabel as nib

    return "".join(nib.aff2axcodes(np.asarray(affine, dtype=float)))


def _check_affine(affine: Any, where: str) -> np.ndarray:
    matrix = np.asarray(affine, dtype=float)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise InputError(f"{where}: the affine must be a finite 4x4 matrix, got {matrix.shape}")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise InputError(f"{where}: the affine is singular (a voxel axis has zero length)")
    return matrix


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D multi-contrast image with its geometry.

    Parameters
    ----------
    data : array-like of shape (C, Z, Y, X)
        float32 intensities, a NumPy array or a lazy dask array (read for display:
        also the file's own 8- or 16-bit integers, see `read_volume`).
    affine : ndarray of shape (4, 4)
        Voxel ``(x, y, z)`` to RAS+ mm, the source file's own geometry.
    channel_names : tuple of str
        One name per channel (the contrast, e.g. ``'T1ce'``).
    source_paths : tuple of str
        The files the channels came from (provenance for export).
    """

    data: Any
    affine: np.ndarray
    channel_names: tuple[str, ...]
    source_paths: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        where = ", ".join(self.source_paths) or "volume"
        if getattr(self.data, "ndim", None) != 4:
            raise InputError(f"{where}: Volume data must be [C, Z, Y, X], got shape "
                             f"{getattr(self.data, 'shape', None)}")
        if len(self.channel_names) != self.data.shape[0]:
            raise InputError(f"{where}: {self.data.shape[0]} channels but "
                             f"{len(self.channel_names)} channel names {self.channel_names}")
        object.__setattr__(self, "affine", _check_affine(self.affine, where))
        object.__setattr__(self, "channel_names", tuple(self.channel_names))
        object.__setattr__(self, "source_paths", tuple(str(p) for p in self.source_paths))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(Z, Y, X)``."""
        return tuple(int(n) for n in self.data.shape[1:])  # type: ignore[return-value]

    @property
    def n_channels(self) -> int:
        """Number of contrasts."""
        return int(self.data.shape[0])

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm ``(z, y, x)``, derived from the affine."""
        return spacing_from_affine(self.affine)

    @property
    def orientation(self) -> str:
        """Orientation code of the voxel axes (see `orientation_code`)."""
        return orientation_code(self.affine)

    @property
    def is_lazy(self) -> bool:
        """True while the data is a dask array that has not been read."""
        return not isinstance(self.data, np.ndarray)

    def channel(self, name: str) -> Any:
        """Return the ``[Z, Y, X]`` array of the contrast called ``name``.

        Parameters
        ----------
        name : str
            One of ``channel_names``.
        """
        if name not in self.channel_names:
            raise InputError(f"no contrast named {name!r}; this volume has {self.channel_names}")
        return self.data[self.channel_names.index(name)]

    def compute(self) -> "Volume":
        """Return a copy whose data is an in-memory float32 NumPy array."""
        return replace(self, data=np.asarray(self.data, dtype=np.float32))


@dataclass(frozen=True, eq=False)
class LabelMap:
    """An integer label mask ``[Z, Y, X]`` with its geometry.

    Parameters
    ----------
    data : ndarray of shape (Z, Y, X)
        Non-negative integer labels, 0 is background.
    affine : ndarray of shape (4, 4)
        Voxel ``(x, y, z)`` to RAS+ mm.
    label_names : dict of int to str
        Names of the labels, where known.
    source_path : str
        The file it was read from, if any.
    """

    data: np.ndarray
    affine: np.ndarray
    label_names: dict[int, str] = field(default_factory=dict)
    source_path: str = ""

    def __post_init__(self) -> None:
        where = self.source_path or "label map"
        if np.ndim(self.data) != 3:
            raise InputError(f"{where}: a label map must be 3D [Z, Y, X], got shape "
                             f"{np.shape(self.data)}")
        object.__setattr__(self, "affine", _check_affine(self.affine, where))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(Z, Y, X)``."""
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm ``(z, y, x)``."""
        return spacing_from_affine(self.affine)


def same_grid(affine_a: np.ndarray, shape_a: tuple[int, ...],
              affine_b: np.ndarray, shape_b: tuple[int, ...], tol_mm: float = 1e-3) -> bool:
    """True when two images share shape and voxel-to-world geometry.

    Parameters
    ----------
    affine_a, affine_b : ndarray of shape (4, 4)
        The two geometries.
    shape_a, shape_b : tuple of int
        Spatial shapes ``(Z, Y, X)``.
    tol_mm : float
        Largest allowed difference of any affine entry (mm).
    """
    return tuple(shape_a) == tuple(shape_b) and bool(
        np.allclose(affine_a, affine_b, atol=tol_mm, rtol=0))
