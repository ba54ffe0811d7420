"""zarr stores: lazy reading through dask, label writing with metadata.

A napari-medseg store is a zarr group holding one array (``image`` ``[C, Z, Y,
X]`` or ``labels`` ``[Z, Y, X]``) and attributes ``affine`` (RAS, NIfTI
convention), ``spacing`` (z, y, x, for readers that skip the affine),
``channel_names`` or ``label_names``. A plain array, or an OME-Zarr group
(first multiscale level, its scale used as spacing), is read too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_medseg.errors import InputError, describe

_ARRAY_KEYS = ("image", "labels", "data", "0")


def is_zarr(path: Path) -> bool:
    """True for a ``.zarr`` path or a folder with zarr metadata files."""
    if path.name.lower().endswith(".zarr"):
        return True
    return path.is_dir() and any((path / name).exists()
                                 for name in (".zgroup", ".zarray", "zarr.json"))


def _pick_array(node: Any, path: Path) -> tuple[Any, dict]:
    import zarr

    attrs = dict(node.attrs)
    if isinstance(node, zarr.Array):
        return node, attrs
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if multiscales:
        level = multiscales[0]["datasets"][0]
        for transform in level.get("coordinateTransformations", []):
            if transform.get("type") == "scale":
                attrs.setdefault("spacing", list(transform["scale"])[-3:])
        return node[level["path"]], attrs
    keys = list(node.array_keys())
    for key in (*_ARRAY_KEYS, *keys):
        if key in keys:
            return node[key], {**attrs, **dict(node[key].attrs)}
    raise InputError(describe(path, "the zarr group holds no array",
                              f"Expected an array named one of {_ARRAY_KEYS}"))


def _affine_from_attrs(attrs: dict) -> np.ndarray:
    if "affine" in attrs:
        return np.asarray(attrs["affine"], dtype=float)
    spacing = attrs.get("spacing", (1.0, 1.0, 1.0))
    return np.diag([float(spacing[2]), float(spacing[1]), float(spacing[0]), 1.0])


def read_zarr_lazy(path: Path) -> tuple[Any, np.ndarray, dict]:
    """Open a zarr store as a lazy dask array ``[C, Z, Y, X]`` (or 3D for labels).

    Returns
    -------
    data : dask.array.Array
        Nothing is read until a computation asks for a block.
    affine : ndarray of shape (4, 4)
    attrs : dict
        The store's attributes (``channel_names``, ``label_names``, ...).
    """
    import dask.array as da
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as error:
        raise InputError(describe(path, f"cannot be opened as zarr ({error})")) from error
    array, attrs = _pick_array(node, path)
    return da.from_zarr(array), _affine_from_attrs(attrs), attrs


def write_zarr_labels(path: Path, mask: np.ndarray, affine: np.ndarray,
                      attrs: dict[str, Any]) -> None:
    """Write a ``[Z, Y, X]`` label mask as a zarr group with metadata attributes."""
    import zarr

    from napari_medseg.io._volume import spacing_from_affine

    group = zarr.open_group(str(path), mode="w")
    chunks = tuple(min(64, n) for n in mask.shape)
    group.create_array("labels", data=np.ascontiguousarray(mask), chunks=chunks)
    group.attrs.update({
        "affine": np.asarray(affine, dtype=float).tolist(),
        "spacing": list(spacing_from_affine(affine)),
        "axes": ["z", "y", "x"],
        **attrs,
    })
