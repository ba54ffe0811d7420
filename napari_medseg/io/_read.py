"""Format dispatch and the public readers: `read_volume`, `read_labels`."""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_medseg.contrasts import guess_contrast
from napari_medseg.errors import InputError, describe
from napari_medseg.io._names import image_stem
from napari_medseg.io._itk import is_itk_file, read_dicom_series, read_itk_file
from napari_medseg.io._nifti import is_nifti, read_nifti_array
from napari_medseg.io._regrid import on_one_grid, onto_grid
from napari_medseg.io._volume import LabelMap, Volume, orientation_code, same_grid
from napari_medseg.io._zarr import is_zarr, read_zarr_lazy

PathLike = str | os.PathLike


def detect_format(path: PathLike) -> str | None:
    """Name of the format napari-medseg would read ``path`` with, or None.

    Parameters
    ----------
    path : str or Path
        A file or folder.

    Returns
    -------
    str or None
        ``'nifti'``, ``'itk'``, ``'zarr'``, ``'dicom'``, or None for files it does
        not handle (napari then asks other readers).
    """
    path = Path(path)
    if is_nifti(path):
        return "nifti"
    if is_itk_file(path):
        return "itk"
    if is_zarr(path):
        return "zarr"
    if path.is_dir() or path.name.lower().endswith(".dcm"):
        return "dicom"
    return None


def _unsupported(path: Path) -> InputError:
    return InputError(describe(path, "unsupported file type", "napari-medseg reads NIfTI "
                               "(.nii, .nii.gz), NRRD, MHA/MHD, zarr and DICOM series folders"))


def _read_raw(path: Path, as_float: bool):
    _complete_interrupted_writes(path.parent)
    if not path.exists():
        raise InputError(describe(path, "no such file or folder", "Check the path"))
    if path.is_file() and not os.access(path, os.R_OK):
        raise InputError(describe(path, "permission denied", "Make the file readable"))
    kind = detect_format(path)
    if kind == "nifti":
        data, affine = read_nifti_array(path, as_float)
        return data, affine, {}
    if kind == "itk":
        data, affine = read_itk_file(path, as_float)
        return data, affine, {}
    if kind == "zarr":
        return read_zarr_lazy(path)
    if kind == "dicom":
        data, affine = read_dicom_series(path if path.is_dir() else path.parent, as_float)
        return data, affine, {}
    raise _unsupported(path)


def _complete_interrupted_writes(folder: Path) -> None:
    """Finish the renames of a file set (segmentation and probabilities, a mask and its
    provenance) whose writer was killed after committing it (`io.atomic_files`), so that
    a read never sees half of the new set beside half of the old. A folder that cannot be
    written is read as it is."""
    from napari_medseg.io._atomic import finish_interrupted

    try:
        finish_interrupted(folder)
    except OSError:
        pass


def check_finite(data: np.ndarray, path: PathLike) -> None:
    """Refuse NaN or infinite voxels with a message that counts them.

    Parameters
    ----------
    data : ndarray
        The voxels.
    path : str or Path
        The file, named in the message.

    Raises
    ------
    InputError
        When any voxel is NaN or infinite.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # a huge sum is counted below
        total = np.add.reduce(data, axis=None, dtype=np.float64)
    if np.isfinite(total):
        return  # NaN and inf carry into the sum: one pass, no mask of the volume's size
    bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise InputError(describe(
            path, f"{bad} voxels are NaN or infinite",
            "Replace them (for example with 0) before segmenting; a model cannot use them"))


def _default_channel_names(path: Path, n_channels: int, attrs: dict) -> tuple[str, ...]:
    stored = attrs.get("channel_names")
    if stored and len(stored) == n_channels:
        return tuple(str(name) for name in stored)
    stem = image_stem(path)
    if n_channels == 1:
        return (guess_contrast(stem) or stem,)
    return tuple(f"{stem}[{index}]" for index in range(n_channels))


_DISPLAY_INTEGERS = (np.int8, np.uint8, np.int16, np.uint16)  # kept as stored for display


def _read_one(path: Path, keep_integers: bool = False) -> Volume:
    data, affine, attrs = _read_raw(path, as_float=not keep_integers)
    if data.ndim == 3:
        data = data[None]
    if not isinstance(data, np.ndarray):
        data = data.astype(np.float32)
    elif data.dtype.type not in _DISPLAY_INTEGERS:
        data = data.astype(np.float32, copy=False)  # scaled, 32-bit or wider: as before
        check_finite(data, path)
    return Volume(data=data, affine=affine,
                  channel_names=_default_channel_names(path, data.shape[0], attrs),
                  source_paths=(str(path),))


def read_volume(paths: PathLike | Sequence[PathLike],
                channel_names: Sequence[str] | None = None,
                keep_integers: bool = False, resample: bool = False) -> Volume:
    """Read one or several files into one multi-contrast `Volume`.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        NIfTI (3D or 4D), NRRD, MHA/MHD, zarr stores or DICOM series folders.
        Several files become channels, in the given order; they must share
        shape and geometry (or see ``resample``).
    channel_names : sequence of str, optional
        Names for the channels; by default guessed from the file names
        (``*_t1ce.nii.gz`` becomes ``T1ce``).
    keep_integers : bool
        Keep voxels stored as 8- or 16-bit integers (unscaled) in their own type,
        for display: half the memory of float32 and no conversion, values exact.
        A model's input is cast to float32 one contrast at a time
        (`inference.prepare_input`).
    resample : bool
        Put files on other grids onto the finest one (`io.on_one_grid`) instead of
        refusing them; the volume then has that file's geometry.

    Returns
    -------
    Volume
        Eager float32 data (or the stored integers, with ``keep_integers``),
        except for zarr inputs, which stay lazy (dask).

    Raises
    ------
    InputError
        With one line naming the file and the problem.

    Examples
    --------
    >>> volume = read_volume(["case_t1.nii.gz", "case_flair.nii.gz"])  # doctest: +SKIP
    >>> volume.channel_names, volume.spacing  # doctest: +SKIP
    (('T1', 'FLAIR'), (1.0, 1.0, 1.0))
    """
    path_list = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else \
        [Path(p) for p in paths]
    if not path_list:
        raise InputError("no input files given: pass one file per contrast")
    volumes = each_path(functools.partial(_read_one, keep_integers=keep_integers), path_list)
    if resample and len(volumes) > 1:
        volumes = on_one_grid(volumes)
    first = volumes[0]
    for other in volumes[1:]:
        if not same_grid(first.affine, first.shape, other.affine, other.shape):
            raise InputError(describe(
                other.source_paths[0],
                f"{_grid_difference(other, first)} does not match {first.source_paths[0]} "
                f"({_grid_difference(first, other)})",
                "All contrasts of a case must share one voxel grid: pass --resample to put "
                "them on the finest one, or resample them first"))
    data = _stack([volume.data for volume in volumes])
    names = tuple(name for volume in volumes for name in volume.channel_names)
    if channel_names is not None:
        if len(channel_names) != len(names):
            raise InputError(f"{len(channel_names)} channel names given for {len(names)} channels "
                             f"({', '.join(map(str, path_list))})")
        names = tuple(channel_names)
    return Volume(data=data, affine=first.affine, channel_names=names,
                  source_paths=tuple(str(p) for p in path_list))


def each_path(read: Callable, paths: Sequence) -> list:
    """``[read(path) for path in paths]``, the files read side by side in threads.

    Decompression and NumPy release the GIL, so a case's contrasts are read
    about twice as fast on two cores. The error raised is the first path's in
    order, as in the serial loop.

    Parameters
    ----------
    read : callable
        One path to its result.
    paths : sequence
        The files.
    """
    if len(paths) < 2:
        return [read(path) for path in paths]
    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1),
                            thread_name_prefix="napari-medseg-read") as pool:
        return list(pool.map(read, paths))


def _stack(arrays: list) -> object:
    if len(arrays) == 1:
        return arrays[0]
    if all(isinstance(array, np.ndarray) for array in arrays):
        if len({array.dtype for array in arrays}) > 1:  # integers kept, of several types
            arrays = [array.astype(np.float32, copy=False) for array in arrays]
        return np.concatenate(arrays, axis=0)
    import dask.array as da

    return da.concatenate(arrays, axis=0)


def _grid_difference(volume: Volume, other: Volume) -> str:
    """What differs between two grids, in words: shape, spacing, else axes or origin."""
    if volume.shape != other.shape or not np.allclose(volume.spacing, other.spacing, atol=1e-3):
        return f"shape {volume.shape} spacing {_fmt(volume.spacing)}"
    if np.allclose(volume.affine[:3, :3], other.affine[:3, :3], atol=1e-3):
        return f"origin {_fmt(volume.affine[:3, 3])} mm"
    axes = _fmt(volume.affine[:3, :3].ravel())
    return f"axis directions {orientation_code(volume.affine)} {axes}"


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{value:.3g}" for value in values) + ")"


MAX_LABELS = 300  # distinct values a label mask may hold (atlases have about a hundred)


def read_labels(path: PathLike) -> LabelMap:
    """Read an integer label mask ``[Z, Y, X]`` with its geometry.

    Parameters
    ----------
    path : str or Path
        A file or folder in a format `detect_format` names.

    Raises
    ------
    InputError
        When the file is not 3D, has negative, fractional or non-finite values.
    """
    path = Path(path)
    data, affine, attrs = _read_raw(path, as_float=False)
    data = np.asarray(data)
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise InputError(describe(path, f"a label mask must be a single 3D volume, got "
                                  f"{data.shape[0]} channels", "Pass one label file"))
    return LabelMap(data=_as_label_array(data, path), affine=affine,
                    label_names={int(k): str(v) for k, v in attrs.get("label_names", {}).items()},
                    source_path=str(path))


def labels_on_grid(labels: LabelMap, grid: Volume | LabelMap, resample: bool = False,
                   flag: str = "--resample") -> LabelMap:
    """``labels`` on ``grid``'s voxel grid (the case's, or another mask's).

    A mask of the case's shape stored on another grid (LPS beside RAS scans, say)
    holds mirrored or shifted voxels although a viewer draws it aligned, so the grid,
    not only the shape, decides.

    Parameters
    ----------
    labels : LabelMap
        A mask or reference read with `read_labels`.
    grid : Volume or LabelMap
        What it must lie on.
    resample : bool
        Put a mask on another grid onto ``grid`` (nearest neighbour, `onto_grid`)
        instead of refusing it.
    flag : str
        The option that sets ``resample``, named in the refusal ("" when there is none).

    Raises
    ------
    InputError
        When the grids differ and ``resample`` is off.
    """
    if same_grid(labels.affine, labels.shape, grid.affine, grid.shape):
        return labels
    if resample:
        return replace(labels, data=onto_grid(labels.data, labels.affine, grid.affine,
                                              grid.shape, labels=True), affine=grid.affine)
    fix = (f"pass {flag} to put it on that grid (nearest neighbour), or resample it first"
           if flag else "first resample it onto that grid")
    sources = grid.source_paths if isinstance(grid, Volume) else (grid.source_path,)
    raise InputError(describe(
        labels.source_path or "label map",
        f"{_grid_difference(labels, grid)} does not match {sources[0] or 'the case'} "
        f"({_grid_difference(grid, labels)})",
        f"A mask must lie on its case's voxel grid: {fix}"))


def _as_label_array(data: np.ndarray, path: Path) -> np.ndarray:
    from napari_medseg.io._mask import as_label_mask

    labels = as_label_mask(data, path)
    top = int(labels.max()) if labels.size else 0
    if top >= MAX_LABELS and len(np.unique(labels)) > MAX_LABELS:
        raise InputError(describe(path, f"holds {len(np.unique(labels))} distinct values: it "
                                  "looks like an intensity image, not a label mask", "Pass the "
                                  f"segmentation file (at most {MAX_LABELS} labels)"))
    return labels
