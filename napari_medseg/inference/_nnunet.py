"""nnU-Net v2 models predicted exactly as ``nnUNetPredictor`` predicts them, with progress.

nnU-Net's own code does every step that decides the result: its
preprocessor (crop to non-zero, the plans' normalisation, resampling to the
configuration's spacing), its sliding-window slicers, Gaussian weights and
mirroring, and its export back to the source grid. Only the window loop is
ours, written as nnU-Net's (``_internal_predict_sliding_window_return_logits``:
half-precision accumulation in the same order, logits averaged over folds)
so that it can yield progress between windows and stop when cancelled.
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence

import numpy as np

from napari_medseg.io import Volume
from napari_medseg.models.nnunet import class_probabilities
from napari_medseg.progress import Progress, ProgressGenerator


def _predictor(model, device, mirroring: bool, step_size: float):
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    with contextlib.redirect_stdout(io.StringIO()):  # its CPU notice is not for our users
        predictor = nnUNetPredictor(tile_step_size=step_size, use_gaussian=True,
                                    use_mirroring=mirroring, device=device,
                                    perform_everything_on_device=device.type == "cuda",
                                    allow_tqdm=False)
    predictor.manual_initialization(model.fold_networks[0], model.plans, model.configuration,
                                    None, model.dataset, "nnUNetTrainer", model.mirror_axes)
    return predictor


def _fold_logits(predictor, network, data, step: int, n_steps: int, flip: tuple[int, ...] = (),
                 label: str = ""):
    """One fold's logits over the preprocessed case (nnU-Net's window loop, with progress).

    ``flip``: spatial axes every window is flipped along before the network
    (and its output back after), one of the views nnU-Net's mirroring averages.
    """
    import torch
    from acvl_utils.cropping_and_padding.padding import pad_nd_image
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian

    device = predictor.device
    results_device = device if predictor.perform_everything_on_device else torch.device("cpu")
    patch = predictor.configuration_manager.patch_size
    predictor.network = network.to(device).eval()
    padded, revert = pad_nd_image(data, patch, "constant", {"value": 0}, True, None)
    slicers = predictor._internal_get_sliding_window_slicers(padded.shape[1:])
    padded = padded.to(results_device)
    heads = predictor.label_manager.num_segmentation_heads
    logits = torch.zeros((heads, *padded.shape[1:]), dtype=torch.half, device=results_device)
    counts = torch.zeros(padded.shape[1:], dtype=torch.half, device=results_device)
    gaussian = compute_gaussian(tuple(patch), sigma_scale=1. / 8, value_scaling_factor=10,
                                device=results_device)
    autocast = (torch.autocast(device.type, enabled=True) if device.type == "cuda"
                else contextlib.nullcontext())
    for index, slicer in enumerate(slicers):
        window = torch.clone(padded[slicer][None], memory_format=torch.contiguous_format)
        axes = tuple(a + 2 for a in flip)
        with autocast:
            window = window.to(device).flip(axes) if axes else window.to(device)
            output = predictor._internal_maybe_mirror_and_predict(window)
            output = (output.flip(axes) if axes else output)[0]
        output = output.to(results_device) * gaussian
        logits[slicer] += output
        counts[slicer[1:]] += gaussian
        yield Progress(step * len(slicers) + index + 1, n_steps * len(slicers),
                       f"{label or f'fold {step + 1}/{n_steps}'}, window {index + 1}/"
                       f"{len(slicers)}")
    torch.div(logits, counts, out=logits)
    return logits[(slice(None), *revert[1:])].to("cpu")


def predict_nnunet(model, volume: Volume, device: str = "auto", mirroring: bool = True,
                   step_size: float = 0.5, region: tuple[slice, ...] | None = None
                   ) -> ProgressGenerator:
    """Segment ``volume`` with an `NnunetModel` (see the module docstring).

    Parameters
    ----------
    model : NnunetModel
        From `napari_medseg.models.load_model` on an nnU-Net folder.
    volume : Volume
        The case; channels are matched to ``dataset.json``'s by contrast name.
    device : str
        ``'auto'``, ``'cuda'``, ``'mps'`` or ``'cpu'``.
    mirroring : bool
        nnU-Net's mirroring test-time augmentation (on by default, as in nnU-Net).
    step_size : float
        nnU-Net's ``tile_step_size`` (0.5: half-patch steps).
    region : tuple of slice, optional
        Return only this box (the whole case is predicted: nnU-Net's
        preprocessing depends on all of it).

    Yields
    ------
    Progress
        After every window of every fold; stop iterating to cancel.
    """
    from napari_medseg.inference._predict import Prediction
    from napari_medseg.models.device import choose_device

    torch_device = choose_device(device)
    yield Progress(0, 1, "nnU-Net preprocessing")
    data, properties = _preprocess(model, volume)
    predictor = _predictor(model, torch_device, mirroring, step_size)
    total = None
    for fold, network in enumerate(model.fold_networks):
        logits = yield from _fold_logits(predictor, network, data, fold, len(model.networks))
        total = logits if total is None else total + logits
    if len(model.networks) > 1:
        total /= len(model.networks)
    labels, probabilities = _export(model, predictor, total, properties)
    region = region or tuple(slice(0, n) for n in volume.shape)
    return Prediction(labels=np.ascontiguousarray(labels[region]).astype(np.uint8),
                      probabilities=np.ascontiguousarray(probabilities[(slice(None), *region)],
                                                         dtype=np.float32),
                      model_name=model.spec.name, model_version=model.spec.version,
                      folds=tuple(range(len(model.networks))), device=str(torch_device),
                      notes=("nnU-Net prediction" + (", mirrored" if mirroring else ""),),
                      precision=nnunet_precision(torch_device))


def nnunet_precision(device) -> str:
    """The arithmetic nnU-Net's own predictor runs in on ``device`` (its autocast on
    CUDA), whatever precision the user chose for other models."""
    import torch

    return "float16" if torch.device(device).type == "cuda" else "float32"


def _preprocess(model, volume: Volume):
    """nnU-Net's preprocessing of the case: ``(data tensor, properties)``."""
    import torch

    from napari_medseg.inference._predict import channels_for_model

    image = channels_for_model(volume, model.spec)
    preprocessor = model.configuration.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case_npy(
        image, None, {"spacing": list(volume.spacing)}, model.plans, model.configuration,
        model.dataset)
    data = torch.from_numpy(data).to(dtype=torch.float32, memory_format=torch.contiguous_format)
    return data, properties


def _export(model, predictor, logits, properties):
    """nnU-Net's export to the source grid: labels, and probabilities per label value."""
    from nnunetv2.inference.export_prediction import (
        convert_predicted_logits_to_segmentation_with_correct_shape)

    labels, probabilities = convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, model.plans, model.configuration, predictor.label_manager, properties,
        return_probabilities=True)
    if predictor.label_manager.has_regions:
        probabilities = class_probabilities(probabilities, model.dataset["regions_class_order"])
    return labels, probabilities


def nnunet_samples(model, volume: Volume, folds: Sequence[int],
                   flips: Sequence[tuple[int, ...]] | None,
                   consume: Callable[[np.ndarray], None], device: str = "auto",
                   step_size: float = 0.5) -> ProgressGenerator[int]:
    """Probability samples of an nnU-Net model, each made by nnU-Net's own pipeline.

    The case is preprocessed once as nnU-Net does; every sample is one run of
    its window loop and its export to the source grid, so the samples live in
    the case's geometry like the model's prediction.

    Parameters
    ----------
    model : NnunetModel
        The model.
    volume : Volume
        The case.
    folds : sequence of int
        Indices into ``model.fold_networks``.
    flips : sequence of tuple of int, or None
        None: one sample per fold, mirrored as nnU-Net predicts (it equals
        ``nnUNetPredictor``'s prediction with that fold alone). Otherwise one
        sample per fold and flip (spatial axes), without mirroring.
    consume : callable
        Called with each sample's probabilities ``[K, Z, Y, X]`` (float32, per
        label value), one at a time, so only one sample is held.
    device : str
        ``'auto'``, ``'cuda'``, ``'mps'`` or ``'cpu'``.
    step_size : float
        nnU-Net's ``tile_step_size``.

    Yields
    ------
    Progress
        After every window; the generator returns the number of samples.
    """
    from napari_medseg.models.device import choose_device

    runs = [(fold, flip) for fold in folds for flip in (flips or [()])]
    torch_device = choose_device(device)
    yield Progress(0, 1, "nnU-Net preprocessing")
    data, properties = _preprocess(model, volume)
    predictor = _predictor(model, torch_device, flips is None, step_size)
    for step, (fold, flip) in enumerate(runs):
        logits = yield from _fold_logits(predictor, model.fold_networks[fold], data, step,
                                         len(runs), flip,
                                         f"sample {step + 1}/{len(runs)} (fold {fold})")
        consume(np.asarray(_export(model, predictor, logits, properties)[1], np.float32))
    return len(runs)
