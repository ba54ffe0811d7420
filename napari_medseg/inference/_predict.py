"""Predicting a label map for a `Volume` with a loaded model (all its folds)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_medseg.contrasts import guess_contrast
from napari_medseg.errors import InputError
from napari_medseg.inference._memory import available_memory_bytes, inference_memory_bytes
from napari_medseg.inference._sliding import inputs_per_pass, sliding_window
from napari_medseg.io import Volume, check_finite
from napari_medseg.models.loading import LoadedModel
from napari_medseg.models.normalise import normalise_channel
from napari_medseg.models.spec import ModelSpec
from napari_medseg.progress import ProgressGenerator, rescaled


@dataclass(frozen=True, eq=False)
class Prediction:
    """Result of `predict` on the case's own voxel grid."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    model_name: str
    model_version: str
    folds: tuple[int, ...]
    device: str
    notes: tuple[str, ...] = field(default=())
    precision: str = "float32"


def channels_for_model(volume: Volume, spec: ModelSpec) -> np.ndarray:
    """The volume's channels in the model's input order, matched by contrast name as
    `channel_indices` matches them (its `InputError` names what the case lacks).

    Parameters
    ----------
    volume : Volume
        The case.
    spec : ModelSpec
        The model's inputs.
    """
    image = np.stack([np.asarray(channel, dtype=np.float32)
                      for channel in model_channels(volume, spec)])
    check_finite(image, ", ".join(volume.source_paths) or "the case")
    return image


def model_channels(volume: Volume, spec: ModelSpec) -> list:
    """The volume's channels as stored (not cast, not copied), in the model's input order,
    matched by contrast name as `channel_indices` matches them.

    Parameters
    ----------
    volume : Volume
        The case.
    spec : ModelSpec
        The model's inputs.
    """
    by_contrast = channel_indices(volume.channel_names, spec)
    return [volume.data[by_contrast[name]] for name in spec.input_names]


def channel_indices(channel_names: Sequence[str], spec: ModelSpec) -> dict[str, int]:
    """Which channel holds each contrast, by name or by `guess_contrast` (no data read).

    Parameters
    ----------
    channel_names : sequence of str
        The case's channels.
    spec : ModelSpec
        The model's inputs.

    Raises
    ------
    InputError
        Naming every contrast the model needs and the case lacks.
    """
    by_contrast: dict[str, int] = {}
    for index, name in enumerate(channel_names):
        by_contrast.setdefault(name, index)
        by_contrast.setdefault(guess_contrast(name) or name, index)
    missing = [name for name in spec.input_names if name not in by_contrast]
    if missing:
        raise InputError(
            f"model '{spec.name}' needs contrasts {', '.join(spec.input_names)}; the case has "
            f"{', '.join(channel_names)} and lacks {', '.join(missing)}. Open the missing "
            "contrast(s), or name the channels: in the dock's Case section, or with --contrasts "
            "on the command line")
    return by_contrast


def model_grid_shape(shape, spacing, target_spacing) -> tuple[int, ...]:
    """Shape of the case resampled to the model's spacing.

    Parameters
    ----------
    shape : sequence of int
        The case's shape (z, y, x).
    spacing, target_spacing : sequence of float
        The case's and the model's voxel sizes in mm.
    """
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target_spacing))


def resample(tensor, shape):
    """A ``[C, Z, Y, X]`` tensor resampled (trilinear) to ``shape``.

    Parameters
    ----------
    tensor : Tensor of shape (C, Z, Y, X)
        Channels to resample together.
    shape : sequence of int
        The new (Z, Y, X).

    Returns
    -------
    Tensor of shape (C, *shape)
        ``tensor`` itself when it already has that shape (no copy).
    """
    import torch.nn.functional as F

    if tuple(tensor.shape[1:]) == tuple(shape):
        return tensor
    return F.interpolate(tensor[None], size=tuple(shape), mode="trilinear",
                         align_corners=False)[0]


def prepare_input(volume: Volume, spec: ModelSpec, region: tuple[slice, ...] | None = None):
    """The case as the model reads it, on the model's grid.

    One contrast at a time: it is cast to float32 into a buffer of the case's
    size (reused for the next contrast), normalised there, cropped and resampled;
    the case is never held stacked in float32 on its own grid (143 MB for a
    240x240x155 case with four contrasts). Trilinear resampling treats channels
    alone, so the result equals resampling the stacked channels bit for bit.

    Parameters
    ----------
    volume : Volume
        The case; channels are matched to the model's inputs by name.
    spec : ModelSpec
        The model's inputs (contrasts and their normalisation) and spacing.
    region : tuple of slice, optional
        A box of the case; it is normalised with the whole case's statistics.

    Returns
    -------
    torch.Tensor
        ``[C, *grid]`` float32: the channels in the model's order, normalised,
        cropped to ``region`` and resampled (trilinear) to the model spacing.

    Raises
    ------
    InputError
        When the case lacks a contrast the model needs, or holds NaN/inf.
    """
    import torch

    channels = model_channels(volume, spec)
    region = region or tuple(slice(None) for _ in volume.shape)
    buffer = np.empty(volume.shape, np.float32)
    grid = model_grid_shape(buffer[region].shape, volume.spacing, spec.spacing)
    model_input = torch.empty((len(channels), *grid), dtype=torch.float32)
    source = ", ".join(volume.source_paths) or "the case"
    for index, (channel, item) in enumerate(zip(channels, spec.inputs)):
        np.copyto(buffer, channel, casting="same_kind")
        check_finite(buffer, source)
        normalise_channel(buffer, item.normalization, out=buffer)
        box = torch.from_numpy(np.ascontiguousarray(buffer[region]))[None]
        model_input[index] = resample(box, grid)[0]  # a copy: the buffer is reused
    return model_input


@dataclass
class FoldPlacement:
    """Where and how the folds run (`fold_pass`); an out-of-memory retry changes it for
    the folds after."""

    device: Any
    batch_size: int | None  # None: `inputs_per_pass` for the device and precision
    precision: str


def fold_pass(network, image, spec, placement: FoldPlacement, overlap, notes):
    """One fold's sliding window, retrying with smaller batches, then the CPU, on CUDA OOM.

    A retry changes ``placement``, so the next folds start where this one ended. On
    the CPU float16 (slow there) becomes ``auto``.
    """
    import torch

    from napari_medseg.models.device import autocast_dtype, place_network, precision_name

    while True:
        arithmetic = autocast_dtype(placement.precision, placement.device)
        place_network(network, placement.device, arithmetic)
        softmax = lambda x: network(x).float().softmax(1)  # noqa: E731  float32 softmax
        batch_size = placement.batch_size or inputs_per_pass(spec.patch_size, placement.device,
                                                             arithmetic)
        try:
            result = yield from sliding_window(
                softmax, image, spec.patch_size, spec.n_classes, overlap=overlap,
                batch_size=batch_size, device=placement.device, autocast=arithmetic)
            return result
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if batch_size > 1:
                placement.batch_size = batch_size // 2
                notes.append(f"GPU out of memory: retrying with batch size {placement.batch_size}")
                continue
            placement.device, placement.batch_size = torch.device("cpu"), None
            note = "GPU out of memory at batch size 1: continuing on the CPU"
            if placement.precision == "float16":
                placement.precision = "auto"
                note += (f" in {precision_name(autocast_dtype('auto', placement.device))}"
                         " (float16 is slow there)")
            notes.append(note)


def predict(model: LoadedModel, volume: Volume, device: str = "auto", overlap: float = 0.5,
            batch_size: int | None = None, precision: str = "auto",
            keep_probabilities: bool = True, region: tuple[slice, ...] | None = None,
            mirroring: bool = True) -> ProgressGenerator[Prediction]:
    """Segment ``volume`` with every fold of ``model`` (probabilities averaged).

    The case is normalised per the spec, resampled to the model spacing,
    predicted window by window, and the class probabilities resampled back
    to the case grid before the argmax (for the labels, only in the case's
    tiles where a class other than background may win: `inference._blocks`).

    Parameters
    ----------
    model : LoadedModel
        From `napari_medseg.models.load_model`.
    volume : Volume
        The case; channels are matched to the model's inputs by name.
    device : str
        ``'auto'`` (CUDA, then MPS, then CPU), ``'cuda'``, ``'mps'`` or ``'cpu'``.
    overlap : float
        Window overlap.
    batch_size : int, optional
        Windows per forward pass (halved automatically on CUDA out-of-memory); by
        default what `inference.inputs_per_pass` gives for the device and precision
        (one 48^3 window on a CPU in float32, else four).
    precision : {"auto", "float32", "bfloat16", "float16"}
        The network's arithmetic (see `models.device.autocast_dtype`):
        ``auto`` is bfloat16 on CPUs with native bf16 and on CUDA, float16 on
        MPS, else float32. Blending, fold averaging and the softmax stay float32.
    keep_probabilities : bool
        Return the per-class probabilities too (more memory).
    region : tuple of slice, optional
        Predict only this box of the case (z, y, x slices); intensities are
        still normalised with the whole case's statistics, so the box agrees
        with a full run away from its faces. The result has the box's shape.
    mirroring : bool
        nnU-Net models only: nnU-Net's mirroring test-time augmentation (on
        by default, as in nnU-Net). nnU-Net models run nnU-Net's own pipeline
        (`napari_medseg.inference._nnunet`), with ``1 - overlap`` as its step.

    Yields
    ------
    Progress
        Between window batches; stop iterating to cancel.
    """
    import torch

    from napari_medseg.inference._blocks import case_labels
    from napari_medseg.models.device import autocast_dtype, choose_device, precision_name
    from napari_medseg.models.nnunet import NnunetModel

    if isinstance(model, NnunetModel):
        from napari_medseg.inference._nnunet import predict_nnunet

        return (yield from predict_nnunet(model, volume, device, mirroring, 1.0 - overlap,
                                          region))
    spec = model.spec
    torch_device = choose_device(device)
    autocast_dtype(precision, torch_device)  # an unknown precision fails here, early
    region = region or tuple(slice(0, n) for n in volume.shape)
    shape = tuple(len(range(*s.indices(n))) for s, n in zip(region, volume.shape))
    target_shape = model_grid_shape(shape, volume.spacing, spec.spacing)
    needed = inference_memory_bytes(shape, target_shape, len(spec.inputs),
                                     spec.n_classes, keep_probabilities)
    free = available_memory_bytes()
    if needed > 0.8 * free:
        raise InputError(
            f"the case ({' x '.join(map(str, volume.shape))} voxels) needs about "
            f"{needed / 2**30:.1f} GiB to segment but only {free / 2**30:.1f} GiB are free. "
            "Crop the volume to the region of interest, or close other programs")
    image = prepare_input(volume, spec, region)
    notes: list[str] = []
    placement = FoldPlacement(torch_device, batch_size, precision)
    total = torch.zeros((spec.n_classes, *target_shape), dtype=torch.float32)
    for fold_index, network in enumerate(model.networks):
        passes = fold_pass(network, image, spec, placement, overlap, notes)
        fold_total = yield from rescaled(passes, fold_index, len(model.networks),
                                         f"fold {fold_index + 1}/{len(model.networks)}")
        total += fold_total.cpu()
    mean = total / len(model.networks)
    labels = case_labels(mean, shape)  # resampled only where it may not be background
    return Prediction(labels=labels,
                      probabilities=resample(mean, shape).numpy() if keep_probabilities else None,
                      model_name=spec.name, model_version=spec.version,
                      folds=tuple(range(len(model.networks))), device=str(placement.device),
                      notes=tuple(notes),
                      precision=precision_name(autocast_dtype(placement.precision,
                                                              placement.device)))
