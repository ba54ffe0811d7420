"""zarr stores: lazy reading through dask, label writing as OME-Zarr.

Masks are written as OME-Zarr (NGFF 0.4, zarr format 2): a group whose
``multiscales`` metadata names the axes (z, y, x in millimetres) and the
scale and translation of its one level, the array ``0``, and ``image-label``
metadata with each label's value, colour and name, so napari-ome-zarr,
Fiji/MoBIE and ome-zarr-py open it. NGFF has no rotation, so the full
affine (RAS, NIfTI convention) is kept in the ``affine`` attribute too, and
this reader prefers it: the round trip is exact even for oblique scans.

Read: such a group, any OME-Zarr image (first multiscale level, its scale
used as spacing), a group holding an ``image`` ``[C, Z, Y, X]`` or ``labels``
array with ``affine``/``channel_names``/``label_names`` attributes, or a plain
array.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_medseg.errors import InputError, describe

_ARRAY_KEYS = ("image", "labels", "data", "0")
NGFF_VERSION = "0.4"


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


def ngff_metadata(name: str, affine: np.ndarray, label_names: dict[str, str] | None = None
                  ) -> dict[str, Any]:
    """OME-Zarr (NGFF 0.4) attributes of a one-level ``[Z, Y, X]`` image at path ``0``.

    Parameters
    ----------
    name : str
        The image's name.
    affine : ndarray of shape (4, 4)
        Voxel-to-RAS matrix: its spacing is the scale; the world position of
        voxel 0 (in z, y, x order) is the translation.
    label_names : dict of str to str, optional
        For a label image: value to name, written as ``image-label`` properties.
    """
    from napari_medseg.io._volume import spacing_from_affine

    spacing = [float(v) for v in spacing_from_affine(affine)]
    origin = [float(v) for v in np.asarray(affine, float)[:3, 3][::-1]]
    attrs: dict[str, Any] = {"multiscales": [{
        "version": NGFF_VERSION, "name": name,
        "axes": [{"name": axis, "type": "space", "unit": "millimeter"} for axis in "zyx"],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": spacing},
            {"type": "translation", "translation": origin}]}],
        "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 1.0]}]}]}
    if label_names is not None:
        from napari_medseg.labels import label_colors

        colors = label_colors()
        values = sorted({int(v) for v in label_names})
        attrs["image-label"] = {
            "version": NGFF_VERSION,
            "colors": [{"label-value": v, "rgba": [int(round(255 * c))
                                                   for c in colors.get(v, colors[None])]}
                       for v in values],
            "properties": [{"label-value": v, "name": label_names[str(v)]} for v in values]}
    return attrs


def add_ngff_array(group: Any, path: str, data: np.ndarray) -> Any:
    """An array in an NGFF 0.4 group: zarr format 2, ``/`` chunk keys, 64-voxel chunks.

    Parameters
    ----------
    group : zarr.Group
        The NGFF group.
    path : str
        The array's name in the group (``0`` for full resolution).
    data : ndarray
        The voxels.
    """
    chunks = tuple(min(64, n) for n in data.shape)
    return group.create_array(path, data=np.ascontiguousarray(data), chunks=chunks,
                              chunk_key_encoding={"name": "v2", "separator": "/"})


def write_zarr_labels(path: Path, mask: np.ndarray, affine: np.ndarray,
                      attrs: dict[str, Any]) -> None:
    """Write a ``[Z, Y, X]`` label mask as an OME-Zarr label image (module docstring).

    Parameters
    ----------
    path : Path
        The store (a folder) to create.
    mask : ndarray of int
        The labels.
    affine : ndarray of shape (4, 4)
        Voxel-to-RAS matrix, kept whole in the ``affine`` attribute.
    attrs : dict
        Extra attributes; ``label_names`` (value to name) also fills ``image-label``.
    """
    import zarr

    from napari_medseg.io._volume import spacing_from_affine
    from napari_medseg.labels import present_labels

    names = {str(k): v for k, v in (attrs.get("label_names") or {}).items()}
    names.update({str(v): names.get(str(v), f"label {v}") for v in present_labels(mask)})
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    add_ngff_array(group, "0", mask)
    group.attrs.update({
        **ngff_metadata(path.name.removesuffix(".zarr"), affine, names),
        "affine": np.asarray(affine, dtype=float).tolist(),
        "spacing": list(spacing_from_affine(affine)),
        **attrs,
    })
