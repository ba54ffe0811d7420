"""napari writer contribution: save a Labels layer aligned with its image."""
from __future__ import annotations

from typing import Any

import numpy as np


def write_labels_layer(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer to NIfTI, NRRD, MHA or zarr with its source affine.

    napari asks before overwriting, so an existing file is replaced (atomically).

    Parameters
    ----------
    path : str
        Output file; the suffix picks the format.
    data : array-like
        The layer's label data.
    meta : dict
        The layer's attributes from napari (its metadata holds the source affine).
    """
    from napari_medseg.io import write_labels
    from napari_medseg.layers import METADATA_KEY, affine_of_layer

    metadata = meta.get("metadata", {}) or {}
    affine = affine_of_layer(metadata, tuple(meta.get("scale", (1.0, 1.0, 1.0))))
    ours = metadata.get(METADATA_KEY, {})
    names = {int(k): v for k, v in ours.get("label_names", {}).items()}
    written = write_labels(path, np.asarray(data), affine, label_names=names, overwrite=True,
                           attrs={"source_paths": ours.get("source_paths", [])})
    return [str(written)]
