"""NIfTI reading and writing through nibabel.

nibabel stores arrays ``(x, y, z[, c])``; we transpose to ``([c,] z, y, x)``
on reading and back on writing, keeping the file's affine, so a round trip is
exact.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError, describe

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: Path) -> bool:
    """True for ``.nii`` and ``.nii.gz`` files."""
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def read_nifti_array(path: Path, as_float: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D or 4D NIfTI file as ``[C, Z, Y, X]`` plus its affine.

    Parameters
    ----------
    path : Path
        The file.
    as_float : bool
        Return float32 scaled values (images); else the stored values in
        their own dtype (label maps).

    Returns
    -------
    data : ndarray of shape (C, Z, Y, X)
    affine : ndarray of shape (4, 4)
    """
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = (image.get_fdata(dtype=np.float32) if as_float
                else np.asanyarray(image.dataobj))
    except Exception as error:  # nibabel raises many types for damaged files
        raise InputError(describe(
            path, f"cannot be read as NIfTI ({type(error).__name__}: {error})",
            "The file may be truncated or corrupt; export it again from the source")) from error
    return to_channels_first(np.asarray(data), path), np.asarray(image.affine, dtype=float)


def to_channels_first(data_xyz: np.ndarray, path: Path) -> np.ndarray:
    """Reorder ``(x, y, z[, c])`` to ``[C, Z, Y, X]``; refuse other dimensionalities."""
    squeezed = data_xyz
    while squeezed.ndim > 4 and squeezed.shape[-1] == 1:
        squeezed = squeezed[..., 0]
    if squeezed.ndim == 5 and squeezed.shape[3] == 1:  # NIfTI stores vectors in dim 5
        squeezed = squeezed[:, :, :, 0, :]
    if squeezed.ndim == 3:
        return np.ascontiguousarray(squeezed.transpose(2, 1, 0)[None])
    if squeezed.ndim == 4:
        return np.ascontiguousarray(squeezed.transpose(3, 2, 1, 0))
    raise InputError(describe(
        path, f"has {data_xyz.ndim} dimensions {data_xyz.shape}; napari-medseg reads 3D volumes "
        "or 4D stacks of 3D contrasts", "Split the file into 3D volumes"))


def write_nifti(path: Path, data_zyx: np.ndarray, affine: np.ndarray) -> None:
    """Write a ``[Z, Y, X]`` (or ``[C, Z, Y, X]``) array as NIfTI with ``affine``.

    Parameters
    ----------
    path : Path
        Destination ``.nii`` or ``.nii.gz``.
    data_zyx : ndarray
        The array in napari-medseg axis order; channels become NIfTI's 4th axis.
    affine : ndarray of shape (4, 4)
        The geometry, usually the source image's.
    """
    import nibabel as nib

    array = np.asarray(data_zyx)
    order = (2, 1, 0) if array.ndim == 3 else (3, 2, 1, 0)
    image = nib.Nifti1Image(np.ascontiguousarray(array.transpose(order)), affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))
