"""Image file names: the extensions the package reads, a name without them, a case's id."""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

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


def case_id_from_paths(paths: Sequence[str | os.PathLike]) -> str:
    """A case id from its files' names, else ``case``.

    The id is the words (split at ``_``, ``-`` and ``.``) that every file name
    starts with, less trailing contrast names: ``c1_t1`` and ``c1_t1ce`` give
    ``c1``. Files named only by their contrast (``t1.nii.gz``, ``flair.nii.gz``
    in a case folder) take the folder's name, so two such cases do not clash.

    >>> case_id_from_paths(["/d/BraTS-GLI-001-000-t1c.nii.gz", "/d/BraTS-GLI-001-000-t2f.nii.gz"])
    'BraTS-GLI-001-000'
    >>> case_id_from_paths(["/d/c1_t1.nii.gz", "/d/c1_t1ce.nii.gz"])
    'c1'
    """
    from napari_medseg.contrasts import is_contrast_name

    paths = [Path(p) for p in paths]
    if not paths:
        return "case"
    words = [re.split(r"([_.\-])", image_stem(p)) for p in paths]  # words and separators
    shared = 0
    while all(len(w) > shared and w[shared] == words[0][shared] for w in words):
        shared += 1
    common = words[0][:shared]
    while common and (common[-1] in "_.-" or is_contrast_name(common[-1])):
        common.pop()
    text = "".join(common) or paths[0].resolve().parent.name
    return re.sub(r"[^A-Za-z0-9_\-]", "_", text) or "case"
