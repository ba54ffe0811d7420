"""What a file holds, from its header alone (``napari-medseg info``).

NIfTI and the ITK formats (NRRD, MHA/MHD) are described without reading a
voxel, so ``info`` on a header that claims more data than its file holds, or
more than this machine's memory, answers at once; zarr stores are read
lazily; DICOM series are read whole (their geometry comes from every slice).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError, describe
from napari_medseg.io._volume import orientation_code, spacing_from_affine

PathLike = str | os.PathLike


def _nifti_header(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    import nibabel as nib

    from napari_medseg.io._nifti import check_header_size

    try:
        image = nib.load(str(path))
    except Exception as error:  # nibabel raises many types for damaged files
        raise InputError(describe(path, f"cannot be read as NIfTI ({type(error).__name__}: "
                                  f"{error})", "The file may be truncated or corrupt")) from None
    check_header_size(path, image, memory=False)
    shape = tuple(int(n) for n in image.header.get_data_shape())
    while len(shape) > 4 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) == 5 and shape[3] == 1:
        shape = shape[:3] + shape[4:]
    if len(shape) not in (3, 4):
        raise InputError(describe(path, f"has {len(shape)} dimensions {shape}; napari-medseg "
                                  "reads 3D volumes or 4D stacks of 3D contrasts"))
    channels = shape[3] if len(shape) == 4 else 1
    return (channels, shape[2], shape[1], shape[0]), np.asarray(image.affine, dtype=float)


def _itk_header(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    import SimpleITK as sitk

    from napari_medseg.io._itk import affine_from_itk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputError(describe(path, f"cannot be read ({str(error).strip()[:200]})",
                                  "The file may be truncated or corrupt")) from None
    size = reader.GetSize()
    if len(size) < 3:
        raise InputError(describe(path, f"is a 2D image {size}; napari-medseg reads 3D volumes"))
    channels = reader.GetNumberOfComponents() if len(size) == 3 else size[3]
    return (channels, size[2], size[1], size[0]), affine_from_itk(reader)


def describe_file(path: PathLike, read_data: bool = False) -> dict:
    """Format, shape, spacing, orientation and channels of a file, from its header.

    Parameters
    ----------
    path : path-like
        A NIfTI, NRRD, MHA/MHD file, zarr store or DICOM series folder.
    read_data : bool
        Also read every voxel, as `read_volume` does (finds truncated data and
        NaN values).

    Raises
    ------
    InputError
        One line naming the file and the problem.
    """
    from napari_medseg.io._read import _default_channel_names, detect_format, read_volume

    path = Path(path)
    if not path.exists():
        raise InputError(describe(path, "no such file or folder", "Check the path"))
    kind = detect_format(path)
    if kind in ("nifti", "itk") and not read_data:
        shape, affine = (_nifti_header if kind == "nifti" else _itk_header)(path)
        names, lazy = _default_channel_names(path, shape[0], {}), False
    else:
        volume = read_volume(path)
        shape, affine = (volume.n_channels, *volume.shape), volume.affine
        names, lazy = volume.channel_names, volume.is_lazy
    return {"path": str(path), "format": kind, "shape_zyx": list(shape[1:]),
            "channels": list(names),
            "spacing_zyx_mm": [round(s, 4) for s in spacing_from_affine(affine)],
            "orientation": orientation_code(affine), "lazy": lazy}
