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


def _fold_logits(predictor, network, data, fold: int, n_folds: int):
    """One fold's logits over the preprocessed case (nnU-Net's window loop, with progress)."""
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
        with autocast:
            output = predictor._internal_maybe_mirror_and_predict(window.to(device))[0]
        output = output.to(results_device) * gaussian
        logits[slicer] += output
        counts[slicer[1:]] += gaussian
        yield Progress(fold * len(slicers) + index + 1, n_folds * len(slicers),
                       f"fold {fold + 1}/{n_folds}, window {index + 1}/{len(slicers)}")
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
    import torch
    from nnunetv2.inference.export_prediction import (
        convert_predicted_logits_to_segmentation_with_correct_shape)

    from napari_medseg.inference._predict import Prediction, channels_for_model
    from napari_medseg.models.device import choose_device

    torch_device = choose_device(device)
    image = channels_for_model(volume, model.spec)
    yield Progress(0, 1, "nnU-Net preprocessing")
    preprocessor = model.configuration.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case_npy(
        image, None, {"spacing": list(volume.spacing)}, model.plans, model.configuration,
        model.dataset)
    data = torch.from_numpy(data).to(dtype=torch.float32, memory_format=torch.contiguous_format)
    predictor = _predictor(model, torch_device, mirroring, step_size)
    total = None
    for fold, network in enumerate(model.fold_networks):
        logits = yield from _fold_logits(predictor, network, data, fold, len(model.networks))
        total = logits if total is None else total + logits
    if len(model.networks) > 1:
        total /= len(model.networks)
    labels, probabilities = convert_predicted_logits_to_segmentation_with_correct_shape(
        total, model.plans, model.configuration, predictor.label_manager, properties,
        return_probabilities=True)
    if predictor.label_manager.has_regions:
        probabilities = class_probabilities(probabilities, model.dataset["regions_class_order"])
    region = region or tuple(slice(0, n) for n in volume.shape)
    return Prediction(labels=np.ascontiguousarray(labels[region]).astype(np.uint8),
                      probabilities=np.ascontiguousarray(probabilities[(slice(None), *region)],
                                                         dtype=np.float32),
                      model_name=model.spec.name, model_version=model.spec.version,
                      folds=tuple(range(len(model.networks))), device=str(torch_device),
                      notes=("nnU-Net prediction" + (", mirrored" if mirroring else ""),),
                      precision="float16" if torch_device.type == "cuda" else "float32")
