"""Shapley contrast attributions of an nnU-Net v2 model, through nnU-Net's own pipeline.

Every coalition is one prediction exactly as ``nnUNetPredictor`` makes it:
the case is preprocessed once by nnU-Net (crop to non-zero, the plans'
normalisation, resampling), the absent channels are replaced by the
baseline on that preprocessed grid, and each fold runs nnU-Net's window loop
(Gaussian blending, mirroring when chosen) and nnU-Net's export back to the
case grid. The fold ensemble averages logits as nnU-Net does, so the full
coalition's labels are the model's own prediction, region-based models
included (nnU-Net paints the regions; an argmax over the value
probabilities would not).

The coalitions run one at a time and are reduced as they come: Dice counts
per target and member (each fold and the ensemble), and for voxel maps each
coalition's foreground probability times its Shapley coefficients, summed.
So one coalition's probabilities on the case grid are held at a time, not
``2**M`` of them (one of a 240x240x155 case is 140 MB).
"""
from __future__ import annotations

import numpy as np
import torch

from napari_medseg.explain._coalitions import make_baseline
from napari_medseg.explain._result import (
    ShapleyResult, dice_counts, exact_attributions, shapley_result, target_masks)
from napari_medseg.explain._shapley import coalition_masks, shapley_coefficients
from napari_medseg.inference._nnunet import _export, _fold_logits, _predictor, _preprocess
from napari_medseg.io import Volume
from napari_medseg.metrics import dice_from_counts
from napari_medseg.progress import Progress, ProgressGenerator


class _Tally:
    """Dice counts ``[S, T, 3]`` of one member (a fold or the ensemble) against its truth."""

    def __init__(self, n_coalitions: int, targets, truth: np.ndarray | None):
        self.targets, self.wanted = targets, None if truth is None else target_masks(
            truth, targets)
        self.counts = np.zeros((n_coalitions, len(targets), 3), dtype=np.int64)

    def add(self, coalition: int, labels: np.ndarray) -> None:
        if self.wanted is None:  # no reference: the full coalition's labels are the truth
            self.wanted = target_masks(labels, self.targets)
        self.counts[coalition] = dice_counts(labels, self.targets, self.wanted)

    def values(self) -> np.ndarray:
        return dice_from_counts(self.counts[..., 0], self.counts[..., 1], self.counts[..., 2])


def explain_nnunet(model, volume: Volume, reference: np.ndarray | None, targets: dict,
                   checked: dict, baseline: str, maps: bool, device: torch.device,
                   mirroring: bool = True, step_size: float = 0.5
                   ) -> ProgressGenerator[ShapleyResult]:
    """Exact Shapley attributions of an `NnunetModel` (see the module docstring).

    Parameters
    ----------
    model : NnunetModel
        The model; each of its folds is explained, and their ensemble.
    volume : Volume
        The case.
    reference : ndarray or None
        Reference labels on the case grid; None: Dice against each member's own
        prediction from every contrast.
    targets : dict
        Target name to label values (`attribution_targets`).
    checked : dict
        Clinician rankings by target (validated).
    baseline : str
        What replaces an absent channel on nnU-Net's preprocessed grid.
    maps : bool
        Also sum voxel maps of the ensemble's foreground probability.
    device : torch.device
        Where the networks run.
    mirroring : bool
        nnU-Net's mirroring test-time augmentation, as in the prediction explained.
    step_size : float
        nnU-Net's ``tile_step_size``.

    Yields
    ------
    Progress
        After every window of every coalition and fold.
    """
    n_contrasts, n_folds = len(model.spec.input_names), len(model.fold_networks)
    masks = coalition_masks(n_contrasts)
    yield Progress(0, 1, "nnU-Net preprocessing")
    data, properties = _preprocess(model, volume)
    base = torch.from_numpy(make_baseline(data.numpy(), baseline,
                                          tuple(model.configuration.spacing)))
    predictor = _predictor(model, device, mirroring, step_size)
    coefficients = shapley_coefficients(n_contrasts)
    tallies = [_Tally(len(masks), targets, reference) for _ in range(n_folds + 1)]
    voxel_maps: dict[str, np.ndarray] = {}
    order = [len(masks) - 1, *range(len(masks) - 1)]  # the full coalition first: the truth
    for step, coalition in enumerate(order):
        inputs = torch.where(torch.from_numpy(masks[coalition])[:, None, None, None], data, base)
        total = None
        for fold, network in enumerate(model.fold_networks):
            logits = yield from _fold_logits(
                predictor, network, inputs, step * n_folds + fold, len(order) * n_folds,
                label=f"coalition {step + 1}/{len(order)}, fold {fold + 1}/{n_folds}")
            labels, probabilities = _export(model, predictor, logits, properties)
            tallies[fold].add(coalition, labels)
            total = logits if total is None else total + logits
        if n_folds > 1:
            labels, probabilities = _export(model, predictor, total / n_folds, properties)
        tallies[-1].add(coalition, labels)
        if maps:
            _add_to_maps(voxel_maps, np.asarray(probabilities, np.float32), targets,
                         coefficients[:, coalition])
    values = [tally.values() for tally in tallies]
    return shapley_result(
        model, baseline, reference,
        exact_attributions(targets, values[-1], values[:-1], checked, voxel_maps),
        method="nnU-Net's own pipeline per coalition" + (", mirrored" if mirroring else ""))


def _add_to_maps(voxel_maps: dict[str, np.ndarray], probabilities: np.ndarray, targets: dict,
                 weights: np.ndarray) -> None:
    """Add one coalition's term ``weights[i] * p(target)`` to each target's ``[M, ...]`` map."""
    for name, labels in targets.items():
        foreground = probabilities[list(labels)].sum(0)
        if name not in voxel_maps:
            voxel_maps[name] = np.zeros((len(weights), *foreground.shape), np.float32)
        for player, weight in enumerate(weights):
            if weight:
                voxel_maps[name][player] += np.float32(weight) * foreground
