"""NIfTI reading and writing through nibabel.

nibabel stores arrays ``(x, y, z[, c])``; we transpose to ``([c,] z, y, x)``
on reading and back on writing, keeping the file's affine, so a round trip is
exact.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
        image = nib.load(str(path), mmap=False)  # in memory: no file mapped (locked on Windows)
    except Exception as error:  # nibabel raises many types for damaged files
        raise InputError(describe(
            path, f"cannot be read as NIfTI ({type(error).__name__}: {error})",
            "The file may be truncated or corrupt; export it again from the source")) from error
    with memory_reserved(path, image):
        try:
            if _gzipped(path):
                image = _decompressed(path, image)
            data = (image.get_fdata(dtype=np.float32) if as_float
                    else np.asanyarray(image.dataobj))
        except Exception as error:  # nibabel raises many types for damaged files
            raise InputError(describe(
                path, f"cannot be read as NIfTI ({type(error).__name__}: {error})",
                "The file may be truncated or corrupt; export it again from the source"
            )) from error
    return to_channels_first(np.asarray(data), path), np.asarray(image.affine, dtype=float)


def _gzipped(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _decompressed(path: Path, image):
    """The gzip file's image inflated in memory by ISA-L (about twice as fast as nibabel's
    zlib stream on 240x240x155 volumes), after its header passed the checks: no more
    bytes than the header's voxels end at, whatever else the stream would inflate to."""
    from isal import igzip

    proxy = image.dataobj  # nibabel's array proxy: where the voxels start in the stream
    end = int(proxy.offset) + int(np.prod(proxy.shape, dtype=np.int64)) * proxy.dtype.itemsize
    with igzip.open(path) as stream:
        return type(image).from_bytes(stream.read(end))


_MAX_DEFLATE_RATIO = 1032  # the most a DEFLATE stream can expand
_RESERVED = {"bytes": 0}  # memory promised to reads under way (a case's files read side by side)
_RESERVED_LOCK = threading.Lock()


@contextmanager
def memory_reserved(path: Path, image) -> Iterator[None]:
    """Check the header (`check_header_size`) counting the memory of reads under way, and
    hold this read's share until it ends: files read side by side cannot together take
    more than is free, as one after another could not.

    Parameters
    ----------
    path : Path
        The file (named in the message).
    image : nibabel image
        Its header, read without the data.
    """
    voxels = int(np.prod(image.header.get_data_shape(), dtype=np.int64))
    share = voxels * 4 + (2 * voxels * image.header.get_data_dtype().itemsize
                          if _gzipped(path) else 0)  # + the inflated bytes
    with _RESERVED_LOCK:
        check_header_size(path, image, reserved=_RESERVED["bytes"])
        _RESERVED["bytes"] += share
    try:
        yield
    finally:
        with _RESERVED_LOCK:
            _RESERVED["bytes"] -= share


def check_header_size(path: Path, image, memory: bool = True, reserved: int = 0) -> None:
    """Refuse a header whose voxel data cannot be in the file or in memory, before reading.

    Parameters
    ----------
    path : Path
        The file (named in the message).
    image : nibabel image
        Its header, read without the data.
    memory : bool
        Also refuse data larger than the free memory.
    reserved : int
        Bytes of the free memory already promised to other reads.

    Raises
    ------
    InputError
        When the file is too small for the voxels its header declares (an
        uncompressed file must hold them all; a gzip file cannot expand more
        than DEFLATE allows), or the voxels as float32 need more memory than is
        available (unless ``memory`` is False: only the header is needed).
    """
    import psutil

    shape = tuple(int(n) for n in image.header.get_data_shape())
    stored = int(np.prod(shape, dtype=np.int64)) * image.header.get_data_dtype().itemsize
    size = path.stat().st_size
    offset = int(getattr(image.dataobj, "offset", 0))  # the header's copy says 0 once loaded
    possible = size * _MAX_DEFLATE_RATIO if _gzipped(path) else size - offset
    if stored > possible:
        raise InputError(describe(path, f"the header declares {' x '.join(map(str, shape))} "
                                  f"voxels ({stored / 2**20:.0f} MiB) but the file holds "
                                  f"{size} bytes", "The file is truncated or its header is "
                                  "damaged; export it again from the source"))
    needed = int(np.prod(shape, dtype=np.int64)) * 4
    free = psutil.virtual_memory().available - reserved
    if memory and needed > 0.8 * free:
        raise InputError(describe(path, f"{' x '.join(map(str, shape))} voxels need "
                                  f"{needed / 2**30:.1f} GiB but {free / 2**30:.1f} GiB are "
                                  "free", "Crop the image first, or close other programs"))


def to_channels_first(data_xyz: np.ndarray, path: Path) -> np.ndarray:
    """Reorder ``(x, y, z[, c])`` to ``[C, Z, Y, X]``; refuse other dimensionalities.

    Parameters
    ----------
    data_xyz : ndarray
        NIfTI order ``(x, y, z)`` or ``(x, y, z, c)``.
    path : Path
        The file (named in the message).
    """
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
    image = nib.Nifti1Image(array.transpose(order), affine)  # NIfTI order: a view, no copy
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    if not _gzipped(path):
        nib.save(image, str(path))
        return
    from isal import igzip

    # ISA-L at level 1, as nibabel's zlib would write it (and with its zero time stamp):
    # 2-3x faster on 240x240x155 volumes, files of the same size or smaller; streamed,
    # so no uncompressed copy of the volume is held; no file name in the gzip header (it
    # would be the atomic write's temporary one)
    with open(path, "wb") as raw, igzip.IGzipFile(
            "", "wb", compresslevel=1, fileobj=raw, mtime=0) as stream:
        image.to_stream(stream)
