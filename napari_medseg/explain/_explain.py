"""Shapley contrast attributions of a segmentation model, per label and region.

Value of a coalition S of contrasts (absent ones replaced by a baseline):
Dice of the prediction from S against the reference labels (Ren et al.'s
definition), or, without a reference, against the prediction from all
contrasts; for voxel maps, each voxel's foreground probability of the target.
Per fold and for the fold ensemble (mean probabilities).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from napari_medseg.errors import InputError
from napari_medseg.explain._coalitions import coalition_probabilities, make_baseline
from napari_medseg.explain._ranking import (
    normalised_footrule_similarity, rank_variance, ranks_from_phi, validate_ranking)
from napari_medseg.explain._region import (
    case_block, explained_boxes, pasted, reference_on_grid, resampled_block, touches)
from napari_medseg.explain._shapley import coalition_masks, exact_shapley, shapley_coefficients
from napari_medseg.inference._predict import _fold_pass, prepare_input, resample
from napari_medseg.io import Volume
from napari_medseg.labels import most_probable
from napari_medseg.metrics import dice_from_counts
from napari_medseg.models.loading import LoadedModel
from napari_medseg.progress import Progress, ProgressGenerator, rescaled

EXACT_LIMIT = 6


@dataclass(frozen=True, eq=False)
class TargetAttribution:
    """Attributions for one label or region (``phi`` and ranks in contrast order)."""

    name: str
    labels: tuple[int, ...]
    phi: np.ndarray
    ranks: np.ndarray
    value_all: float
    value_empty: float
    fold_phi: np.ndarray
    fold_ranks: np.ndarray
    rank_variance: float
    clinician_ranks: np.ndarray | None = None
    nsf: float | None = None
    fold_nsf: list[float] = field(default_factory=list)
    maps: np.ndarray | None = None
    standard_error: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ShapleyResult:
    """Everything `explain_case` computed; ``to_dict`` is the documented JSON."""

    contrasts: tuple[str, ...]
    baseline: str
    value: str
    model: dict
    targets: dict[str, TargetAttribution]

    def to_dict(self) -> dict:
        """JSON-ready summary (voxel maps are written separately)."""
        targets = {}
        for name, t in self.targets.items():
            entry = {"labels": list(t.labels),
                     "phi": dict(zip(self.contrasts, map(float, t.phi))),
                     "ranking": dict(zip(self.contrasts, map(float, t.ranks))),
                     "v_all": t.value_all, "v_empty": t.value_empty,
                     "per_fold_phi": [dict(zip(self.contrasts, map(float, row)))
                                      for row in t.fold_phi],
                     "per_fold_ranking": [dict(zip(self.contrasts, map(float, row)))
                                          for row in t.fold_ranks],
                     "rank_variance": t.rank_variance}
            if t.standard_error is not None:
                entry["phi_standard_error"] = dict(zip(self.contrasts,
                                                       map(float, t.standard_error)))
            if t.clinician_ranks is not None:
                entry["clinician_ranking"] = dict(zip(self.contrasts,
                                                      map(float, t.clinician_ranks)))
                entry["nsf"] = t.nsf
                entry["per_fold_nsf"] = t.fold_nsf
            targets[name] = entry
        return {"contrasts": list(self.contrasts), "baseline": self.baseline,
                "value": self.value, "model": self.model, "ties": "average rank",
                "targets": targets}


def attribution_targets(model: LoadedModel) -> dict[str, tuple[int, ...]]:
    """Labels of the spec, then its regions that are not a single label (WT, TC).

    Parameters
    ----------
    model : LoadedModel
        The model explained.

    Returns
    -------
    dict of str to tuple of int
        Target name to the label values it covers.
    """
    targets = {info.name: (info.value,) for info in model.spec.labels}
    for name, values in model.spec.regions.items():
        if len(values) > 1 and name not in targets:
            targets[name] = tuple(values)
    return targets


def _region_probability(probabilities: torch.Tensor, labels: tuple[int, ...]) -> torch.Tensor:
    return probabilities[:, list(labels)].sum(1)


def _coalition_values(probabilities, case_shape, targets, reference, blocks=None
                      ) -> np.ndarray:
    """Dice per coalition and target, ``[S, T]``; reference None means 'vs all contrasts'.

    With ``blocks`` (case-grid boxes outside which every coalition's
    probabilities are the same), each coalition is resampled and counted only
    inside them; outside, the full coalition's labels stand for all.
    """
    full = most_probable(resample(probabilities[-1], case_shape))
    for block in blocks or ():  # the same arithmetic as the coalitions' below: ties alike
        full[block] = most_probable(resampled_block(probabilities[-1], case_shape, block))
    truth = reference if reference is not None else full
    if not blocks:
        wanted = _target_masks(truth, targets)
        counts = np.stack([_counts(most_probable(resample(p, case_shape)), targets, wanted)
                           for p in probabilities[:-1]] + [_counts(full, targets, wanted)])
        return dice_from_counts(counts[..., 0], counts[..., 1], counts[..., 2])
    wanted = [_target_masks(truth[block], targets) for block in blocks]
    whole = _counts(full, targets, _target_masks(truth, targets))
    inside = [_counts(full[block], targets, masks) for block, masks in zip(blocks, wanted)]
    values = []
    for coalition in probabilities:
        counts = whole.copy()
        for block, masks, full_counts in zip(blocks, wanted, inside):
            labels = most_probable(resampled_block(coalition, case_shape, block))
            counts += _counts(labels, targets, masks) - full_counts
        values.append(dice_from_counts(counts[:, 0], counts[:, 1], counts[:, 2]))
    return np.array(values)


def _target_masks(truth: np.ndarray, targets) -> list[np.ndarray]:
    return [np.isin(truth, values) for values in targets.values()]


def _counts(labels: np.ndarray, targets, wanted: list[np.ndarray]) -> np.ndarray:
    """``[T, 3]``: predicted, reference and overlapping voxels per target (``wanted``: the
    reference's masks of the targets)."""
    out = []
    for values, reference in zip(targets.values(), wanted):
        predicted = np.isin(labels, values)
        out.append((predicted.sum(), reference.sum(), np.logical_and(predicted, reference).sum()))
    return np.array(out, dtype=np.int64)


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
                 permutations: int = 64, region: str = "whole"
                 ) -> ProgressGenerator[ShapleyResult]:
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
        measured in BENCHMARKS.md).

    Yields
    ------
    Progress
        Between window batches.
    """
    from napari_medseg.models.device import choose_device

    contrasts = model.spec.input_names
    reference = _check_reference(reference, volume, model)
    targets = attribution_targets(model)
    checked = {t: validate_ranking(r, contrasts, t) for t, r in (clinician or {}).items()
               if t in targets}
    torch_device = choose_device(device)
    image_t = prepare_input(volume, model.spec)
    grid = tuple(image_t.shape[1:])
    base_t = torch.from_numpy(make_baseline(image_t.numpy(), baseline, model.spec.spacing))
    if len(contrasts) > EXACT_LIMIT:
        result = yield from _sampled(model, image_t, base_t, volume, reference, targets,
                                     checked, baseline, overlap, torch_device, permutations)
        return result
    masks = coalition_masks(len(contrasts))
    boxes, ordinary, blocks = None, [], None
    if region == "objects":
        ordinary = yield from _ordinary_predictions(model, image_t, overlap, torch_device)
        structures = most_probable(sum(ordinary) / len(ordinary)) > 0
        on_grid = reference_on_grid(reference, grid)
        boxes = explained_boxes(structures if on_grid is None else structures | on_grid,
                                model.spec.patch_size)
        blocks = [case_block(box, grid, volume.shape) for box in boxes] if boxes else None
    elif region != "whole":
        raise InputError(f"unknown explanation region {region!r}: use 'objects' or 'whole'")
    fold_values, ensemble = [], None
    for fold, network in enumerate(model.networks):
        message = f"coalitions, fold {fold + 1}/{len(model.networks)}"
        runs = coalition_probabilities(network, image_t, base_t, masks, model.spec.patch_size,
                                       model.spec.n_classes, overlap, torch_device,
                                       only=(lambda window: touches(window, boxes)) if boxes
                                       else None)
        probabilities = yield from rescaled(runs, fold, len(model.networks), message)
        if boxes:
            probabilities = pasted(ordinary[fold], probabilities, boxes)
        fold_values.append(_coalition_values(probabilities, volume.shape, targets, reference,
                                             blocks))
        ensemble = probabilities if ensemble is None else ensemble + probabilities
    ensemble /= len(model.networks)
    values = _coalition_values(ensemble, volume.shape, targets, reference, blocks)
    voxel_maps = _voxel_maps(ensemble, targets, volume.shape) if maps else {}
    result_targets = {}
    for index, (name, labels) in enumerate(targets.items()):
        phi = exact_shapley(values[:, index])
        fold_phi = np.array([exact_shapley(v[:, index]) for v in fold_values])
        fold_ranks = np.array([ranks_from_phi(p) for p in fold_phi])
        ranks = ranks_from_phi(phi)
        clinician_ranks = checked.get(name)
        result_targets[name] = TargetAttribution(
            name=name, labels=labels, phi=phi, ranks=ranks, value_all=float(values[-1, index]),
            value_empty=float(values[0, index]), fold_phi=fold_phi, fold_ranks=fold_ranks,
            rank_variance=rank_variance(fold_ranks), clinician_ranks=clinician_ranks,
            nsf=None if clinician_ranks is None else normalised_footrule_similarity(
                ranks, clinician_ranks),
            fold_nsf=[] if clinician_ranks is None else [
                normalised_footrule_similarity(r, clinician_ranks) for r in fold_ranks],
            maps=voxel_maps.get(name))
    return ShapleyResult(contrasts=contrasts, baseline=baseline,
                         value="dice_vs_reference" if reference is not None
                         else "dice_vs_full_prediction",
                         model={"name": model.spec.name, "version": model.spec.version,
                                "folds": len(model.networks)},
                         targets=result_targets)


def _ordinary_predictions(model: LoadedModel, image_t: torch.Tensor, overlap: float,
                          device) -> ProgressGenerator[list[torch.Tensor]]:
    """Each fold's softmax over the whole model grid, every contrast present."""
    out = []
    for fold, network in enumerate(model.networks):
        runs = _fold_pass(network, image_t.float(), model.spec, device, 4, "float32", overlap,
                          [])
        probabilities = yield from rescaled(runs, fold, len(model.networks),
                                            f"whole volume, fold {fold + 1}")
        out.append(probabilities.cpu())
    return out


def _voxel_maps(ensemble: torch.Tensor, targets, case_shape) -> dict[str, np.ndarray]:
    """phi maps per target on the case grid; resampling is linear, so it commutes."""
    coefficients = torch.from_numpy(shapley_coefficients(ensemble.shape[0].bit_length() - 1)
                                    ).float()
    out = {}
    for name, labels in targets.items():
        foreground = _region_probability(ensemble, labels)  # [S, z, y, x]
        phi = torch.tensordot(coefficients, foreground, dims=1)  # [M, z, y, x]
        out[name] = resample(phi, case_shape).numpy().astype(np.float32)
    return out


def _sampled(model, image_t, base_t, volume, reference, targets, checked, baseline, overlap,
             device, permutations) -> ProgressGenerator[ShapleyResult]:
    """Permutation-sampling Shapley for many contrasts: coalitions run on demand, once."""
    from napari_medseg.explain._shapley import coalitions_visited, permutation_shapley

    contrasts = model.spec.input_names
    n = len(contrasts)
    full_code = 2**n - 1
    needed = sorted(coalitions_visited(n, permutations, seed=0) - {full_code})
    total = len(needed) + 1
    full = yield from _member_probabilities(model, image_t, base_t, full_code, n, overlap, device)
    # without a reference, each member (fold, ensemble) is compared with its own full prediction
    truths = [reference if reference is not None
              else most_probable(resample(p[0], volume.shape)) for p in full]

    def values_of(members) -> np.ndarray:  # [folds + 1 (ensemble), targets]
        return np.stack([_coalition_values(p, volume.shape, targets, truth)[0]
                         for p, truth in zip(members, truths)])

    cache: dict[int, np.ndarray] = {full_code: values_of(full)}
    yield Progress(1, total, f"coalition 1/{total}")
    for step, code in enumerate(needed, start=2):
        members = yield from _member_probabilities(model, image_t, base_t, code, n, overlap,
                                                   device)
        cache[code] = values_of(members)
        yield Progress(step, total, f"coalition {step}/{total}")
    results = {}
    for index, (name, labels) in enumerate(targets.items()):
        fold_phi = []
        for member in range(len(model.networks) + 1):
            phi, error = permutation_shapley(lambda c: cache[c][member, index], n,
                                             permutations, seed=0)
            fold_phi.append((phi, error))
        phi, error = fold_phi[-1]
        fold_only = np.array([p for p, _ in fold_phi[:-1]])
        fold_ranks = np.array([ranks_from_phi(p) for p in fold_only])
        ranks = ranks_from_phi(phi)
        clinician_ranks = checked.get(name)
        results[name] = TargetAttribution(
            name=name, labels=labels, phi=phi, ranks=ranks,
            value_all=float(cache[2**n - 1][-1, index]), value_empty=float(cache[0][-1, index]),
            fold_phi=fold_only, fold_ranks=fold_ranks, rank_variance=rank_variance(fold_ranks),
            clinician_ranks=clinician_ranks,
            nsf=None if clinician_ranks is None else normalised_footrule_similarity(
                ranks, clinician_ranks),
            fold_nsf=[] if clinician_ranks is None else [
                normalised_footrule_similarity(r, clinician_ranks) for r in fold_ranks],
            standard_error=error)
    return ShapleyResult(contrasts=contrasts, baseline=baseline,
                         value="dice_vs_reference" if reference is not None
                         else "dice_vs_full_prediction",
                         model={"name": model.spec.name, "version": model.spec.version,
                                "folds": len(model.networks), "method": "permutation sampling",
                                "permutations": permutations},
                         targets=results)


def _member_probabilities(model, image_t, base_t, code, n, overlap, device):
    mask = np.array([[(code >> i) & 1 == 1 for i in range(n)]])
    per_fold = []
    for network in model.networks:
        probabilities = yield from coalition_probabilities(
            network, image_t, base_t, mask, model.spec.patch_size, model.spec.n_classes,
            overlap, device)
        per_fold.append(probabilities)
    return [*per_fold, sum(per_fold) / len(per_fold)]
