"""Shapley contrast attributions of a segmentation model, per label and region.

Value of a coalition S of contrasts (absent ones replaced by a baseline):
Dice of the prediction from S against the reference labels (Ren et al.'s
definition), or, without a reference, against the prediction from all
contrasts; for voxel maps, each voxel's foreground probability of the target.
Per fold and for the fold ensemble (mean probabilities).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from napari_medseg.errors import InputError
from napari_medseg.explain._coalitions import coalition_probabilities, make_baseline
from napari_medseg.explain._ranking import validate_ranking
from napari_medseg.explain._region import (
    explained_boxes, pasted, reference_on_grid, touches)
from napari_medseg.explain._result import (
    GridMaps, ShapleyResult, attribution_targets, exact_attributions, shapley_result)
from napari_medseg.explain._shapley import coalition_masks, shapley_coefficients
from napari_medseg.inference._blocks import labelled_blocks, pasted_labels
from napari_medseg.inference._predict import FoldPlacement, fold_pass, prepare_input
from napari_medseg.io import Volume
from napari_medseg.labels import most_probable
from napari_medseg.metrics import dice_from_counts
from napari_medseg.models.loading import LoadedModel
from napari_medseg.models.nnunet import NnunetModel
from napari_medseg.progress import ProgressGenerator, rescaled

EXACT_LIMIT = 6


def _region_probability(probabilities: torch.Tensor, labels: tuple[int, ...]) -> torch.Tensor:
    return probabilities[:, list(labels)].sum(1)


def _coalition_values(probabilities, case_shape, targets, reference) -> np.ndarray:
    """Dice per coalition and target, ``[S, T]``; reference None means 'vs all contrasts'.

    Each coalition's labels are counted only in the case-grid blocks where they may
    not be background (`labelled_blocks`), as voxels per (predicted, reference) label
    pair: what resampling the whole volume would count, at a fraction of its cost.
    """
    full = labelled_blocks(probabilities[-1], case_shape)
    if reference is None:
        reference = pasted_labels(full, case_shape)
    n_labels = max(int(reference.max()), probabilities.shape[1] - 1) + 1
    reference_sizes = np.bincount(reference.ravel(), minlength=n_labels)
    counts = []
    for coalition in [*probabilities[:-1], None]:
        pairs = np.zeros((n_labels, n_labels), np.int64)
        for block, labels in full if coalition is None else labelled_blocks(coalition,
                                                                            case_shape):
            pairs += np.bincount(labels.ravel().astype(np.intp) * n_labels
                                 + reference[block].ravel(),
                                 minlength=n_labels**2).reshape(n_labels, n_labels)
        counts.append([(pairs[list(values)].sum(), reference_sizes[list(values)].sum(),
                        pairs[np.ix_(values, values)].sum()) for values in targets.values()])
    counts = np.array(counts, dtype=np.int64)
    return dice_from_counts(counts[..., 0], counts[..., 1], counts[..., 2])


def _check_reference(reference, volume: Volume, model: LoadedModel) -> np.ndarray | None:
    if reference is None:
        return None
    reference = np.asarray(reference)
    if reference.shape != volume.shape:
        raise InputError(f"reference shape {reference.shape} differs from the case "
                         f"{volume.shape}: use the reference of this case")
    known = {0, *(info.value for info in model.spec.labels)}
    unknown = sorted(set(np.unique(reference).tolist()) - known)
    if unknown:
        raise InputError(f"reference holds labels {unknown} that model '{model.spec.name}' does "
                         f"not know (it knows {sorted(known)}); remap them first")
    return reference


def explain_case(model: LoadedModel, volume: Volume, reference: np.ndarray | None = None,
                 baseline: str = "zero", clinician: Mapping[str, Mapping[str, int]] | None = None,
                 maps: bool = True, overlap: float = 0.5, device: str = "auto",
                 permutations: int = 64, region: str = "whole", mirroring: bool = True,
                 precision: str = "auto") -> ProgressGenerator[ShapleyResult]:
    """Shapley attribution of every contrast, per label and region, per fold.

    Exact over all ``2**M`` coalitions for up to six contrasts; beyond that,
    permutation sampling (``permutations`` orderings, antithetic, each
    coalition run once) with standard errors, and no voxel maps.

    Parameters
    ----------
    model : LoadedModel
        Its folds are explained separately and as an ensemble.
    volume : Volume
        The case; channels matched to the model's inputs by name.
    reference : ndarray, optional
        Reference labels on the case grid (values: Dice against it).
    baseline : {'zero', 'mean', 'blur'}
        What replaces an absent contrast.
    clinician : mapping, optional
        ``{target: {contrast: rank}}``; targets without one get no NSF.
    maps : bool
        Also compute voxel maps (foreground probability attributions).
    overlap : float
        Window overlap of the model runs.
    device : str
        Torch device: ``auto`` (CUDA, then MPS, then the CPU), ``cuda``, ``mps`` or ``cpu``.
    permutations : int
        Orderings sampled when there are more than six contrasts.
    region : {'whole', 'objects'}
        Where the coalitions run: the ``whole`` volume, or ``objects``: only
        the windows that touch boxes around what the ordinary prediction or
        the reference marks (the model first predicts the whole volume once;
        see ``explain._region``; its error against the whole volume is
        measured in BENCHMARKS.md). nnU-Net models always run the whole case.
    mirroring : bool
        nnU-Net models: nnU-Net's mirroring test-time augmentation in every
        coalition's prediction (as in the prediction explained; on by default).
    precision : {"auto", "float32", "bfloat16", "float16"}
        The network's arithmetic, as in `inference.predict` (``auto``:
        bfloat16 on CPUs with native bf16 and on CUDA), so that the full
        coalition is the prediction explained; values and maps stay float32.
        nnU-Net models run nnU-Net's own predictor.

    Yields
    ------
    Progress
        Between window batches.
    """
    from napari_medseg.models.device import autocast_dtype, choose_device, precision_name

    contrasts = model.spec.input_names
    reference = _check_reference(reference, volume, model)
    targets = attribution_targets(model)
    checked = {t: validate_ranking(r, contrasts, t) for t, r in (clinician or {}).items()
               if t in targets}
    torch_device = choose_device(device)
    arithmetic = autocast_dtype(precision, torch_device)  # an unknown precision fails here
    if isinstance(model, NnunetModel) and len(contrasts) <= EXACT_LIMIT:
        from napari_medseg.explain._nnunet import explain_nnunet

        return (yield from explain_nnunet(model, volume, reference, targets, checked, baseline,
                                          maps, torch_device, mirroring, 1.0 - overlap))
    image_t = prepare_input(volume, model.spec)
    grid = tuple(image_t.shape[1:])
    base_t = torch.from_numpy(make_baseline(image_t.numpy(), baseline, model.spec.spacing))
    if len(contrasts) > EXACT_LIMIT:
        from napari_medseg.explain._sampled import explain_sampled

        result = yield from explain_sampled(model, image_t, base_t, volume, reference, targets,
                                            checked, baseline, overlap, torch_device,
                                            permutations, arithmetic)
        return result
    masks = coalition_masks(len(contrasts))
    boxes, ordinary = None, []
    if region == "objects":
        ordinary = yield from _ordinary_predictions(model, image_t, overlap, torch_device,
                                                    precision)
        structures = most_probable(sum(ordinary) / len(ordinary)) > 0
        on_grid = reference_on_grid(reference, grid)
        boxes = explained_boxes(structures if on_grid is None else structures | on_grid,
                                model.spec.patch_size)
    elif region != "whole":
        raise InputError(f"unknown explanation region {region!r}: use 'objects' or 'whole'")
    fold_values, ensemble = [], None
    for fold, network in enumerate(model.networks):
        message = f"coalitions, fold {fold + 1}/{len(model.networks)}"
        runs = coalition_probabilities(network, image_t, base_t, masks, model.spec.patch_size,
                                       model.spec.n_classes, overlap, torch_device,
                                       only=(lambda window: touches(window, boxes)) if boxes
                                       else None, autocast=arithmetic)
        probabilities = yield from rescaled(runs, fold, len(model.networks), message)
        if boxes:
            probabilities = pasted(ordinary[fold], probabilities, boxes)
        fold_values.append(_coalition_values(probabilities, volume.shape, targets, reference))
        ensemble = probabilities if ensemble is None else ensemble + probabilities
    ensemble /= len(model.networks)
    values = _coalition_values(ensemble, volume.shape, targets, reference)
    voxel_maps = _voxel_maps(ensemble, targets, volume.shape) if maps else {}
    result_targets = exact_attributions(targets, values, fold_values, checked, voxel_maps)
    return shapley_result(model, baseline, reference, result_targets,
                          precision=precision_name(arithmetic))


def _ordinary_predictions(model: LoadedModel, image_t: torch.Tensor, overlap: float,
                          device, precision: str) -> ProgressGenerator[list[torch.Tensor]]:
    """Each fold's softmax over the whole model grid, every contrast present."""
    out, placement = [], FoldPlacement(device, None, precision)  # passes as predict sizes them
    for fold, network in enumerate(model.networks):
        runs = fold_pass(network, image_t.float(), model.spec, placement, overlap, [])
        probabilities = yield from rescaled(runs, fold, len(model.networks),
                                            f"whole volume, fold {fold + 1}")
        out.append(probabilities.cpu())
    return out


def _voxel_maps(ensemble: torch.Tensor, targets, case_shape) -> dict[str, GridMaps]:
    """phi maps per target, kept on the model grid (`GridMaps`: resampled when read)."""
    coefficients = torch.from_numpy(shapley_coefficients(ensemble.shape[0].bit_length() - 1)
                                    ).float()
    out = {}
    for name, labels in targets.items():
        foreground = _region_probability(ensemble, labels)  # [S, z, y, x]
        phi = torch.tensordot(coefficients, foreground, dims=1)  # [M, z, y, x]
        out[name] = GridMaps(phi.numpy().astype(np.float32, copy=False), tuple(case_shape))
    return out
