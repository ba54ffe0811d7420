"""Writing label masks aligned with their source image."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_medseg.errors import InputError, describe
from napari_medseg.io._atomic import atomic_path
from napari_medseg.io._itk import is_itk_file, write_itk
from napari_medseg.io._nifti import is_nifti, write_nifti
from napari_medseg.io._volume import LabelMap, Volume
from napari_medseg.io._mask import as_label_mask
from napari_medseg.io._zarr import write_zarr_labels


def _geometry(reference: Volume | LabelMap | np.ndarray) -> tuple[np.ndarray, tuple | None]:
    if isinstance(reference, (Volume, LabelMap)):
        return reference.affine, tuple(reference.shape)
    return np.asarray(reference, dtype=float), None


def check_output_format(path: str | os.PathLike, channels: int = 0) -> None:
    """Refuse, before any work, a file name that no writer takes (naming the path).

    Parameters
    ----------
    path : str or PathLike
        The file about to be written.
    channels : int
        0: a label mask (NIfTI, NRRD, MHA or zarr); 1: an image (NIfTI, NRRD or MHA);
        more: a multi-channel image (NIfTI only).

    Raises
    ------
    InputError
        Naming the path and the formats to use.

    Examples
    --------
    >>> check_output_format("seg.nii.gz"), check_output_format("maps.nrrd", channels=1)
    (None, None)
    """
    path = Path(path)
    if channels > 1 and not is_nifti(path):
        raise InputError(describe(path, "multi-channel images are written as NIfTI only",
                                  "Use a .nii.gz file name"))
    if not (is_nifti(path) or is_itk_file(path)
            or (channels == 0 and path.name.lower().endswith(".zarr"))):
        raise InputError(describe(path, "unknown output format",
                                  "Use .nii.gz, .nii, .nrrd, .mha or .zarr" if channels == 0
                                  else "Use .nii.gz, .nrrd or .mha"))


def write_labels(path: str | os.PathLike, mask: np.ndarray,
                 reference: Volume | LabelMap | np.ndarray,
                 label_names: dict[int, str] | None = None, overwrite: bool = False,
                 attrs: dict[str, Any] | None = None) -> Path:
    """Write a ``[Z, Y, X]`` label mask in the geometry of ``reference``.

    The format follows the extension: ``.nii``/``.nii.gz`` (nibabel),
    ``.nrrd``/``.mha``/``.mhd`` (SimpleITK), ``.zarr`` (an OME-Zarr label
    image, NGFF 0.4, with the full affine, label names and ``attrs`` as
    attributes; see ``io._zarr``). The write is atomic: the file appears
    complete or not at all.

    Parameters
    ----------
    path : path-like
        Destination.
    mask : ndarray of shape (Z, Y, X)
        Integer labels.
    reference : Volume, LabelMap or ndarray of shape (4, 4)
        The image the mask belongs to (its affine is written and its shape
        checked), or just the affine.
    label_names : dict of int to str, optional
        Stored in zarr attributes.
    overwrite : bool
        Replace an existing file.
    attrs : dict, optional
        Extra zarr attributes (provenance).

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)
    check_output_format(path)
    affine, shape = _geometry(reference)
    mask = as_label_mask(mask, path, shape)
    with atomic_path(path, overwrite=overwrite, needed=int(mask.nbytes)) as temporary:
        if is_nifti(path):
            write_nifti(temporary, mask, affine)
        elif is_itk_file(path):
            write_itk(temporary, mask, affine)
        else:
            metadata = {"label_names": {str(k): v for k, v in (label_names or {}).items()},
                        "source_paths": list(getattr(reference, "source_paths", ()) or ()),
                        **(attrs or {})}
            write_zarr_labels(temporary, mask, affine, metadata)
    return path


def write_image(path: str | os.PathLike, data_zyx: np.ndarray, reference: Volume | LabelMap,
                overwrite: bool = False) -> Path:
    """Write an image ``[Z, Y, X]`` (NIfTI or ITK formats) or ``[C, Z, Y, X]`` (NIfTI 4D),
    atomically.

    Parameters
    ----------
    path : str or PathLike
        ``.nii.gz``/``.nii``, ``.nrrd`` or ``.mha``/``.mhd``.
    data_zyx : ndarray
        Voxels in the package's (z, y, x) order, channels first for 4D.
    reference : Volume or LabelMap
        Whose affine (orientation, spacing, origin) the file gets.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InputError
        For an unknown format, 4D data to a non-NIfTI file, an existing file
        without ``overwrite``, or a full disk.
    """
    path = Path(path)
    check_output_format(path, channels=2 if np.ndim(data_zyx) == 4 else 1)
    data_zyx = np.asarray(data_zyx)
    with atomic_path(path, overwrite=overwrite, needed=int(data_zyx.nbytes)) as temporary:
        if is_nifti(path):
            write_nifti(temporary, data_zyx, reference.affine)
        else:
            write_itk(temporary, data_zyx, reference.affine)
    return path
