"""napari reader contribution: NIfTI, NRRD, MHA/MHD, zarr, DICOM folders."""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from napari_medseg.errors import MedsegError

_LABEL_NAME = re.compile(r"(^|[^a-z])(seg|segmentation|label|labels|mask|gt|reference)([^a-z]|$)")
PathOrPaths = str | Sequence[str]


def napari_get_reader(path: PathOrPaths) -> Callable | None:
    """Return `read_layers` when every path is a medical image we read, else None."""
    from napari_medseg.io import detect_format
    from napari_medseg.io._itk import looks_like_dicom_folder

    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    for item in paths:
        kind = detect_format(item)
        if kind is None or (kind == "dicom" and not looks_like_dicom_folder(Path(item))):
            return None
    return read_layers


def named_like_labels(path: str | os.PathLike) -> bool:
    """Does the file's name say it is a segmentation (``*_seg``, ``*label*``, ``*mask*``)?

    Parameters
    ----------
    path : str or path
        A file.
    """
    return bool(_LABEL_NAME.search(Path(path).name.lower()))


def read_layers(path: PathOrPaths) -> list[tuple]:
    """Read files into napari layer data; bad files become one notification.

    napari's reader contribution: see `layer_data` (the dock reads with it in a
    worker). Errors never leave a half-made layer.
    """
    from napari.utils.notifications import show_error, show_info

    try:
        layers, notes = layer_data(path)
    except MedsegError as error:
        show_error(f"napari-medseg could not open {error}")
        return [(None,)]
    for note in notes:
        show_info(note)
    return layers


def layer_data(path: PathOrPaths) -> tuple[list[tuple], list[str]]:
    """napari layer data for medical image files, and what the user should be told.

    A single-channel file whose name says it is a segmentation (``*_seg``,
    ``*label*``, ``*mask*``) becomes a Labels layer; anything else one Image
    layer per contrast, placed by the file's affine. Of several contrasts only
    the last is visible (one shown, not four stacked). Qt-free: the dock calls
    it in a worker.

    Parameters
    ----------
    path : str or sequence of str
        Files, or folders (a DICOM series, a zarr store).

    Returns
    -------
    layers : list of tuple
        ``(data, kwargs, layer type)`` per layer.
    notes : list of str
        One line per oblique file (shown on its nearest anatomical axes).

    Raises
    ------
    MedsegError
        For the first file that cannot be read, naming it and the fix.
    """
    from napari_medseg.io import each_path

    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: list[tuple] = []
    notes: list[str] = []
    for item_layers, note in each_path(_layers_for_path, [Path(item) for item in paths]):
        layers.extend(item_layers)
        notes.extend([note] if note else [])
    images = [kwargs for _, kwargs, kind in layers if kind == "image"]
    for kwargs in images[:-1]:
        kwargs["visible"] = False
    return layers, notes


def _oblique_note(path: Path, affine: np.ndarray) -> str | None:
    from napari_medseg.orientation import obliquity_degrees

    degrees = obliquity_degrees(affine)
    if degrees > 0.5:
        return (f"{path.name} is oblique ({degrees:.0f}\u00b0 from the scanner axes): shown "
                "on its nearest anatomical axes; exports keep its exact geometry")
    return None


def _layers_for_path(path: Path) -> tuple[list[tuple], str | None]:
    """One file's layers, the file read once: a file named like a segmentation is read as
    labels, and as an image only when it is not one mask (several channels, fractions);
    a zarr store stays lazy, as an image."""
    from napari_medseg.errors import InputError
    from napari_medseg.io import detect_format, read_labels, read_volume
    from napari_medseg.layers import labels_layer, volume_layers

    if named_like_labels(path) and detect_format(path) != "zarr":
        try:
            labels = read_labels(path)
        except InputError:
            pass
        else:
            layer = labels_layer(labels, name=path.name.split(".")[0])
            return [layer], _oblique_note(path, labels.affine)
    volume = read_volume(path, keep_integers=True)  # int16 scans stay int16 in the viewer
    return volume_layers(volume), _oblique_note(path, volume.affine)
