"""Conversions between napari-medseg objects and napari layer data (no Qt).

Layers carry what export needs in ``metadata["napari_medseg"]``: the affine,
the source files and, for images, the contrast name.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_medseg.io import LabelMap, Volume
from napari_medseg.labels import BRATS_LABELS, LabelInfo, label_colors
from napari_medseg.orientation import placement

METADATA_KEY = "napari_medseg"
# the model run's class probabilities [C, Z, Y, X] on a model's Labels layer (float16):
# the prior of model-aware click refinement; kept apart from the JSON-ready metadata
PROBABILITIES_KEY = "napari_medseg_probabilities"
LayerDataTuple = tuple[Any, dict[str, Any], str]


def geometry_metadata(affine: np.ndarray, source_paths: tuple[str, ...] = (), **extra) -> dict:
    """The ``metadata`` dict a layer carries: ``{"napari_medseg": {...}}``.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        The file's voxel-to-RAS affine (kept so exports are voxel-exact).
    source_paths : tuple of str
        Files the layer came from (provenance).
    **extra
        More entries (e.g. ``label_names``, ``model``).
    """
    return {METADATA_KEY: {"affine": np.asarray(affine, dtype=float).tolist(),
                           "source_paths": list(source_paths), **extra}}


def affine_of_layer(layer_metadata: dict, scale: tuple[float, ...]) -> np.ndarray:
    """The affine a layer carries, or one built from its scale when it has none.

    Parameters
    ----------
    layer_metadata : dict
        The layer's ``metadata``.
    scale : tuple of float
        The layer's ``scale`` (z, y, x spacing last).
    """
    stored = stored_affine(layer_metadata)
    if stored is not None:
        return stored
    spacing = [float(s) for s in scale[-3:]]
    return np.diag([spacing[2], spacing[1], spacing[0], 1.0])


def stored_affine(layer_metadata: dict) -> np.ndarray | None:
    """The file affine a layer carries (its napari-medseg metadata), or None.

    Parameters
    ----------
    layer_metadata : dict
        The layer's ``metadata``.
    """
    stored = (layer_metadata or {}).get(METADATA_KEY, {}).get("affine")
    return None if stored is None else np.asarray(stored, dtype=float)


def _display_limits(channel: Any) -> tuple[float, float]:
    sample = np.asarray(channel[::2, ::2, ::2], dtype=np.float32)
    foreground = sample[sample > 0]
    values = foreground if foreground.size else sample.ravel()
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, [0.5, 99.5])
    return float(low), float(max(high, low + 1e-6))


def volume_layers(volume: Volume, visible: str | None = None) -> list[LayerDataTuple]:
    """One Image layer per contrast, placed anatomically by the file's affine.

    Parameters
    ----------
    volume : Volume
        The case.
    visible : str, optional
        The contrast shown at first; by default the last one (on top).
    """
    from napari_medseg.export._autosave import content_fingerprint

    shown = visible if visible in volume.channel_names else volume.channel_names[-1]
    layers = []
    for index, name in enumerate(volume.channel_names):
        channel = volume.data[index]
        # the autosave key's fingerprint, here in the reader's worker: not later, on the GUI
        # thread, inside the turn that adds the case's first mask (35 ms for 240x240x155)
        content = {} if volume.is_lazy else {"content": content_fingerprint(channel)}
        kwargs = {
            "name": name, **placement(volume.affine, channel.shape), "colormap": "gray",
            "contrast_limits": _display_limits(channel), "visible": name == shown,
            "metadata": geometry_metadata(volume.affine, volume.source_paths, contrast=name,
                                          **content),
        }
        layers.append((channel, kwargs, "image"))
    return layers


def labels_layer(labels: LabelMap | np.ndarray, affine: np.ndarray | None = None,
                 name: str = "labels", table: tuple[LabelInfo, ...] = BRATS_LABELS,
                 **extra_metadata) -> LayerDataTuple:
    """A Labels layer with the label names (status bar) and colours of ``table``.

    Parameters
    ----------
    labels : LabelMap or ndarray of int
        The mask; a `LabelMap` brings its affine and source file.
    affine : ndarray of shape (4, 4), optional
        Voxel-to-RAS affine; required for a bare array.
    name : str
        Layer name.
    table : tuple of LabelInfo
        Label values, names and colours (default BraTS's).
    **extra_metadata
        More entries for the layer's napari-medseg metadata.

    Returns
    -------
    tuple
        napari's ``(data, kwargs, "labels")`` layer-data tuple.
    """
    if isinstance(labels, LabelMap):
        data, affine, sources = labels.data, labels.affine, (labels.source_path,)
    else:
        data, sources = np.asarray(labels), ()
    if affine is None:
        raise ValueError("labels_layer needs an affine for a bare array")
    features = {"index": [0, *(info.value for info in table)],
                "name": ["background", *(info.name for info in table)],
                "description": ["", *(info.description for info in table)]}
    extra_metadata.setdefault("source_paths", [s for s in sources if s])
    metadata = geometry_metadata(affine, label_names={i.value: i.name for i in table},
                                 **extra_metadata)
    kwargs = {"name": name, **placement(affine, data.shape),
              "colormap": label_colors(table), "features": features, "opacity": 0.6,
              "metadata": metadata}
    return data, kwargs, "labels"


def volume_from_layers(layers: dict[str, Any]) -> Volume:
    """Build a `Volume` from ``{contrast: napari Image layer}`` (all on one grid).

    The affine comes from the first layer's napari-medseg metadata, or from
    its scale when the layer was not opened through napari-medseg.

    Parameters
    ----------
    layers : dict of str to napari Image layer
        Contrast name to layer, all on one voxel grid.
    """
    return volume_builder(layers)()


def volume_builder(layers: dict[str, Any], stored_types: bool = False
                   ) -> Callable[[], Volume]:
    """`volume_from_layers` in two steps: the layers are read now (their arrays by
    reference, their geometry), the volume is built when the returned function is
    called. The dock reads on the GUI thread and builds in its worker: stacking a
    240x240x155 case's four contrasts as float32 takes 40-460 ms.

    Parameters
    ----------
    layers : dict of str to napari Image layer
        Contrast name to layer, all on one voxel grid.
    stored_types : bool
        Stack the layers' 8- and 16-bit arrays in their own types (a case
        opened through napari-medseg keeps the files' integers: half the memory
        of float32, no conversion); wider types become float32 as without it.
        For work that reads the volume only through `inference.prepare_input`,
        which casts one contrast at a time: a model run, uncertainty, Explain.
    """
    names = list(layers)
    first = layers[names[0]]
    affine = affine_of_layer(first.metadata, tuple(first.scale))
    sources = source_paths(layers.values())
    arrays = [layers[name].data for name in names]

    def stacked(array):
        narrow = stored_types and np.dtype(array.dtype).itemsize <= 2
        return np.asarray(array, dtype=None if narrow else np.float32)

    def build() -> Volume:
        data = np.stack([stacked(array) for array in arrays])
        return Volume(data=data, affine=affine, channel_names=tuple(names),
                      source_paths=sources)

    return build


def case_token(images: dict[str, Any]) -> tuple:
    """Which case a result was computed on: weak references to its image layers' arrays
    (not their names, which the next case opened in their place reuses). See `is_case`.

    Parameters
    ----------
    images : dict of str to napari Image layer or None
        The Case section's assignment when the run started.
    """
    return tuple(_weak(layer.data) for layer in images.values() if layer is not None)


def is_case(token: tuple, images: dict[str, Any]) -> bool:
    """Whether ``images`` (the Case section's assignment now) hold the arrays of `case_token`.

    Parameters
    ----------
    token : tuple
        What `case_token` gave when the result's run started.
    images : dict of str to napari Image layer or None
        The case now.
    """
    return same_case(token, case_token(images))


def same_case(token: tuple, other: tuple) -> bool:
    """Whether two `case_token` answers name the same image arrays, in the same order.

    Parameters
    ----------
    token, other : tuple
        What `case_token` gave for each.
    """
    return len(token) == len(other) and all(
        ref() is not None and ref() is later() for ref, later in zip(token, other))


def case_open(token: tuple, layers) -> bool:
    """Whether any image array of `case_token` is still the data of one of ``layers``:
    the case is open, shown in the Case section or beside another (a token without
    images counts as open).

    Parameters
    ----------
    token : tuple
        What `case_token` gave when the run started.
    layers : iterable of napari layers
        The viewer's layers now.
    """
    arrays = [ref() for ref in token]
    held = {id(layer.data) for layer in layers}
    return not token or any(array is not None and id(array) in held for array in arrays)


def _weak(array) -> Callable[[], Any]:
    try:
        return weakref.ref(array)
    except TypeError:  # an array type without weak references: held, as the layer holds it
        return lambda: array


def source_paths(layers) -> tuple[str, ...]:
    """The files ``layers`` were read from (napari-medseg metadata), in order, once each.

    Parameters
    ----------
    layers : iterable of napari layers
        A case's images, say.
    """
    sources: list[str] = []
    for layer in layers:
        sources += layer.metadata.get(METADATA_KEY, {}).get("source_paths", [])
    return tuple(dict.fromkeys(sources))


def shapley_colormap():
    """A diverging colormap for signed attributions, transparent at zero.

    Blue for negative, magenta for positive: neither is near a label's colour
    (BraTS's red, green and yellow), so a map drawn over a segmentation is not
    read as one. With symmetric contrast limits ``(-m, m)`` zero falls on the
    clear middle, so the anatomy below shows wherever a contrast does not matter.
    """
    from napari.utils.colormaps import Colormap

    colors = [(0.05, 0.25, 0.75, 1.0), (0.40, 0.65, 0.95, 0.7), (1.0, 1.0, 1.0, 0.0),
              (0.90, 0.35, 0.85, 0.7), (0.60, 0.0, 0.55, 1.0)]
    return Colormap(colors=colors, controls=[0.0, 0.25, 0.5, 0.75, 1.0],
                    name="shapley: blue-magenta, clear at 0")


def is_model_output(layer) -> bool:
    """Was this Labels layer made by a model run (not loaded, not drawn)?

    Parameters
    ----------
    layer : napari layer
        Any layer (one without metadata is not a model's output).
    """
    return bool(getattr(layer, "metadata", {}).get(METADATA_KEY, {}).get("model"))


def layer_model_folder(layer) -> Path | None:
    """The folder of the model whose run made this Labels layer, if recorded and present.

    Parameters
    ----------
    layer : napari layer
        Any layer (a model run's, or a review case's, records its model).
    """
    folder = getattr(layer, "metadata", {}).get(METADATA_KEY, {}).get("model", {}).get("folder")
    return Path(folder) if folder and Path(folder).is_dir() else None


def kept_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """The model run's class probabilities as a Labels layer keeps them
    (`PROBABILITIES_KEY`): float16, half the memory.

    Converted by torch: NumPy's float16 cast takes a slow path for values below
    float16's normal range (6e-5), most of a probability volume's (every class but
    the one a voxel has): 1.4 s against 0.02 s for a 4x155x240x240 volume of such
    values on a 2-core CPU, with the same bits (round to nearest even).

    Parameters
    ----------
    probabilities : ndarray of shape (K, Z, Y, X)
        float32 class probabilities.
    """
    import torch

    return torch.from_numpy(np.ascontiguousarray(probabilities, np.float32)).half().numpy()


def layer_probabilities(layer) -> np.ndarray | None:
    """The class probabilities a model's Labels layer keeps from its run, if any.

    Parameters
    ----------
    layer : napari Labels layer
        The layer; None when it keeps none or its data was replaced since the run.
    """
    probabilities = getattr(layer, "metadata", {}).get(PROBABILITIES_KEY)
    if probabilities is None or tuple(probabilities.shape[1:]) != tuple(layer.data.shape):
        return None  # none kept, or the layer's data was replaced since the run
    return probabilities


def probability_layers(probabilities: np.ndarray, affine: np.ndarray,
                       table: tuple[LabelInfo, ...], prefix: str = "p") -> list[LayerDataTuple]:
    """One hidden Image layer per label with its probability (0..1, magma).

    Parameters
    ----------
    probabilities : ndarray of shape (K, Z, Y, X)
        Class probabilities, indexed by label value.
    affine : ndarray of shape (4, 4)
        Voxel-to-RAS affine of the grid.
    table : tuple of LabelInfo
        The labels to show.
    prefix : str
        Layer names are ``prefix(NAME)``.
    """
    layers = []
    for info in table:
        kwargs = {"name": f"{prefix}({info.name})", **placement(affine, probabilities.shape[1:]),
                  "colormap": "magma", "contrast_limits": (0.0, 1.0), "visible": False,
                  "blending": "additive",
                  "metadata": geometry_metadata(affine, (), probability_of=info.name)}
        layers.append((probabilities[info.value], kwargs, "image"))
    return layers


def same_placement(layer) -> dict:
    """Keyword arguments that put a new layer exactly over ``layer`` (its transforms).

    Parameters
    ----------
    layer : napari layer
        The layer to match: scale, translate, rotate, shear and affine.
    """
    return {"scale": tuple(layer.scale), "translate": tuple(layer.translate),
            "rotate": np.asarray(layer.rotate), "shear": np.asarray(layer.shear),
            "affine": np.asarray(layer.affine.affine_matrix)}


def on_same_grid(layer, other) -> bool:
    """Whether two layers hold voxels of one grid: the same shape and the same placement.

    Parameters
    ----------
    layer, other : napari layers
        A mask and an image, say.
    """
    if tuple(np.shape(layer.data)) != tuple(np.shape(other.data)):
        return False
    mine, theirs = same_placement(layer), same_placement(other)
    return all(np.allclose(mine[key], theirs[key]) for key in mine)
