"""NRRD, MetaImage (MHA/MHD) and DICOM series through SimpleITK.

ITK describes geometry in LPS with origin, spacing and a direction matrix; we
convert to the NIfTI-style RAS affine on reading and back on writing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError, describe

ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_itk_file(path: Path) -> bool:
    """True for the single-file formats read through SimpleITK."""
    return path.name.lower().endswith(ITK_SUFFIXES)


def affine_from_itk(image) -> np.ndarray:
    """RAS affine of a 3D SimpleITK image (voxel ``(x, y, z)`` to mm)."""
    spacing = np.asarray(image.GetSpacing()[:3], dtype=float)
    direction = np.asarray(image.GetDirection(), dtype=float)
    dim = int(round(np.sqrt(direction.size)))
    direction = direction.reshape(dim, dim)[:3, :3]
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing[None, :]
    lps[:3, 3] = np.asarray(image.GetOrigin()[:3], dtype=float)
    return _LPS_TO_RAS @ lps


def itk_geometry(affine: np.ndarray) -> tuple[tuple, tuple, tuple]:
    """Origin, spacing and direction (LPS) for a RAS ``affine``."""
    lps = _LPS_TO_RAS @ np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing[None, :]
    return tuple(lps[:3, 3]), tuple(spacing), tuple(direction.ravel())


def _image_to_channels_first(image, path: Path, as_float: bool) -> np.ndarray:
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(image)  # (z, y, x) or (z, y, x, c) or (t, z, y, x)
    if image.GetNumberOfComponentsPerPixel() > 1 and array.ndim == 4:
        array = np.moveaxis(array, -1, 0)
    elif array.ndim == 3:
        array = array[None]
    elif array.ndim != 4:
        raise InputError(describe(
            path, f"has {image.GetDimension()} dimensions {image.GetSize()}; napari-medseg reads "
            "3D volumes", "Convert it to a 3D volume"))
    return array.astype(np.float32) if as_float else array


def read_itk_file(path: Path, as_float: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read an NRRD/MHA/MHD file as ``[C, Z, Y, X]`` and a RAS affine.

    Parameters
    ----------
    path : Path
        The file.
    as_float : bool
        Read voxels as float32 (images) or keep their type (labels).
    """
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except Exception as error:
        raise InputError(describe(
            path, f"cannot be read ({error.__class__.__name__}: {str(error).strip()[:200]})",
            "The file may be truncated or corrupt")) from error
    if image.GetDimension() == 2:
        raise InputError(describe(path, f"is a 2D image {image.GetSize()}; napari-medseg reads "
                                  "3D volumes", "Use a 3D image"))
    return _image_to_channels_first(image, path, as_float), affine_from_itk(image)


def looks_like_dicom_folder(folder: Path, probe: int = 20) -> bool:
    """True when a folder holds files that look like DICOM (cheap: reads a few headers).

    Parameters
    ----------
    folder : Path
        The folder.
    probe : int
        Files whose headers are read at most.
    """
    if not folder.is_dir():
        return False
    for count, entry in enumerate(sorted(folder.iterdir())):
        if count >= probe:
            break
        if entry.is_file():
            if entry.suffix.lower() == ".dcm":
                return True
            with open(entry, "rb") as handle:
                if handle.read(132)[128:132] == b"DICM":
                    return True
    return False


def _not_dicom(folder: Path) -> str:
    """The message for a folder that holds no DICOM: a folder of a case's image files
    (a BraTS case folder) is named with the files to pass instead."""
    from napari_medseg.io._names import IMAGE_SUFFIXES

    images = sorted(entry.name for entry in folder.iterdir()
                    if entry.name.lower().endswith(IMAGE_SUFFIXES))
    if images:
        shown = ", ".join(images[:4]) + (f" and {len(images) - 4} more" if len(images) > 4 else "")
        return describe(folder, f"holds image files ({shown}), not a DICOM series",
                        "Pass the files themselves (one per contrast), not their folder")
    return describe(folder, "no DICOM files in this folder (none ends in .dcm or carries the "
                    "DICM marker)", "Choose the folder that holds the DICOM (.dcm) files")


def read_dicom_series(folder: Path, as_float: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read the largest DICOM series in ``folder`` as ``[1, Z, Y, X]`` and its affine.

    Parameters
    ----------
    folder : Path
        A folder of DICOM files (one or more series).
    as_float : bool
        Read voxels as float32 (images) or keep their type.
    """
    import SimpleITK as sitk

    if not any(folder.iterdir()):
        raise InputError(describe(folder, "the folder is empty",
                                  "Choose the folder that holds the DICOM (.dcm) files"))
    if not looks_like_dicom_folder(folder):
        raise InputError(_not_dicom(folder))
    reader = sitk.ImageSeriesReader()
    warnings = sitk.ProcessObject_GetGlobalWarningDisplay()
    sitk.ProcessObject_SetGlobalWarningDisplay(False)  # GDCM's multi-line notes: ours is one line
    try:
        series_ids = reader.GetGDCMSeriesIDs(str(folder))
    finally:
        sitk.ProcessObject_SetGlobalWarningDisplay(warnings)
    if not series_ids:
        raise InputError(describe(folder, "no DICOM series found in this folder",
                                  "Choose the folder that holds the DICOM (.dcm) files"))
    files_per_series = [reader.GetGDCMSeriesFileNames(str(folder), sid) for sid in series_ids]
    files = max(files_per_series, key=len)
    if len(files) < 2:
        raise InputError(describe(folder, "the DICOM series has a single slice",
                                  "A 3D volume needs a series of slices"))
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except Exception as error:
        raise InputError(describe(folder, f"the DICOM series cannot be read ({error})")) from error
    return _image_to_channels_first(image, folder, as_float), affine_from_itk(image)


def write_itk(path: Path, data_zyx: np.ndarray, affine: np.ndarray) -> None:
    """Write ``[Z, Y, X]`` to an ITK format chosen by the extension.

    Parameters
    ----------
    path : Path
        Output file (``.nrrd``, ``.mha`` or ``.mhd``).
    data_zyx : ndarray
        The voxels ``[Z, Y, X]``.
    affine : ndarray of shape (4, 4)
        Voxel-to-RAS affine (written as ITK's LPS origin and direction).
    """
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(data_zyx))
    origin, spacing, direction = itk_geometry(affine)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    sitk.WriteImage(image, str(path), useCompression=True)
