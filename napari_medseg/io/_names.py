"""Image file names: the extensions the package reads, and a name without them."""
from __future__ import annotations

import os

#: Extensions of the image formats read and written (compound ones first).
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".zarr")


def image_stem(name: str | os.PathLike) -> str:
    """A file name without its image extension (any case); other names unchanged.

    >>> image_stem("BraTS-GLI-00000-000-t1c.nii.gz")
    'BraTS-GLI-00000-000-t1c'
    >>> image_stem("T1ce")
    'T1ce'
    """
    name = os.path.basename(os.fspath(name).rstrip("/\\"))
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
