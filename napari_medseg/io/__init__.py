"""Medical image I/O: NIfTI, NRRD, MHA/MHD, DICOM series and zarr.

Everything is read into a `Volume` (``[C, Z, Y, X]`` float32 plus the file's
affine) or a `LabelMap`; masks are written back in their source geometry so
they open aligned in ITK-SNAP and 3D Slicer.
"""
from napari_medseg.io._atomic import (
    atomic_files, atomic_path, check_writable, finish_interrupted, make_folder)
from napari_medseg.io._json import json_text
from napari_medseg.io._mask import as_label_mask
from napari_medseg.io._regrid import (
    finest_grid, grids_to_move, is_exact_copy, on_one_grid, onto_grid)
from napari_medseg.io._read import (
    check_finite, detect_format, each_path, labels_on_grid, read_labels, read_volume)
from napari_medseg.io._volume import (
    LabelMap, Volume, orientation_code, same_grid, spacing_from_affine)
from napari_medseg.io._write import check_output_format, write_image, write_labels

__all__ = [
    "LabelMap",
    "Volume",
    "as_label_mask",
    "atomic_files",
    "atomic_path",
    "check_output_format",
    "check_writable",
    "check_finite",
    "detect_format",
    "each_path",
    "finest_grid",
    "finish_interrupted",
    "grids_to_move",
    "is_exact_copy",
    "json_text",
    "labels_on_grid",
    "make_folder",
    "on_one_grid",
    "onto_grid",
    "orientation_code",
    "read_labels",
    "read_volume",
    "same_grid",
    "spacing_from_affine",
    "write_image",
    "write_labels",
]
