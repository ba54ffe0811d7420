"""What an explanation holds, and how Shapley values become per-target results."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from napari_medseg.explain._ranking import (
    normalised_footrule_similarity, rank_variance, ranks_from_phi)
from napari_medseg.explain._shapley import exact_shapley
from napari_medseg.models.loading import LoadedModel


@dataclass(frozen=True, eq=False)
class GridMaps:
    """Voxel maps ``[M, z, y, x]`` (float32) kept on the model's grid and resampled to the
    case grid when read (trilinear, as the prediction is; resampling is linear, so it
    commutes with the Shapley sum). A 240x240x155 case's maps of one target take 18 MB
    on a 2 mm grid instead of 143 MB; a result holds five targets."""

    on_grid: np.ndarray
    case_shape: tuple[int, ...]

    def on_case(self) -> np.ndarray:
        """The maps on the case grid, ``[M, *case_shape]`` float32 (a new array)."""
        import torch

        from napari_medseg.inference import resample

        return resample(torch.from_numpy(self.on_grid), self.case_shape).numpy().astype(
            np.float32, copy=False)


@dataclass(frozen=True, eq=False)
class TargetAttribution:
    """Attributions for one label or region (``phi`` and ranks in contrast order);
    ``maps`` are its voxel maps on the case grid, each read resampled anew (`GridMaps`)."""

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
    voxel_maps: GridMaps | np.ndarray | None = None
    standard_error: np.ndarray | None = None

    @property
    def maps(self) -> np.ndarray | None:
        """Voxel maps ``[M, Z, Y, X]`` on the case grid (None without maps): read it once
        and keep the array; each read of model-grid maps resamples them."""
        if isinstance(self.voxel_maps, GridMaps):
            return self.voxel_maps.on_case()
        return self.voxel_maps


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
                     "rank_variance": t.rank_variance}  # NaN (JSON: null) for one fold
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


def shapley_result(model: LoadedModel, baseline: str, reference: np.ndarray | None,
                   targets: dict[str, TargetAttribution], **method) -> ShapleyResult:
    """The `ShapleyResult` of ``model``'s explanation: its contrasts, the value used
    (Dice against the reference, or against the prediction from every contrast), and the
    model's name, version and folds, plus ``method`` entries (how it was computed).

    Parameters
    ----------
    model : LoadedModel
        The model explained.
    baseline : str
        What replaced an absent contrast.
    reference : ndarray or None
        The reference labels, when the values are Dice against them.
    targets : dict of str to TargetAttribution
        The attributions.
    **method
        More entries of the JSON's ``model``.
    """
    return ShapleyResult(
        contrasts=model.spec.input_names, baseline=baseline,
        value="dice_vs_reference" if reference is not None else "dice_vs_full_prediction",
        model={"name": model.spec.name, "version": model.spec.version,
               "folds": len(model.networks), **method},
        targets=targets)


def attribution_targets(model: LoadedModel) -> dict[str, tuple[int, ...]]:
    """Labels of the spec, then its regions that are not a single label (WT, TC).

    A region named like a label stands for it: a region-based nnU-Net model
    names each painted value after its region ("whole tumour" is painted
    where only the whole tumour is on), but its target is the whole region.

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
        if len(values) > 1:
            targets[name] = tuple(values)
    return targets


def target_masks(truth: np.ndarray, targets) -> list[np.ndarray]:
    """Each target's mask in ``truth`` (labels), in ``targets``' order."""
    return [np.isin(truth, values) for values in targets.values()]


def dice_counts(labels: np.ndarray, targets, wanted: list[np.ndarray]) -> np.ndarray:
    """``[T, 3]``: predicted, reference and overlapping voxels per target (``wanted``: the
    reference's masks of the targets)."""
    out = []
    for values, reference in zip(targets.values(), wanted):
        predicted = np.isin(labels, values)
        out.append((predicted.sum(), reference.sum(), np.logical_and(predicted, reference).sum()))
    return np.array(out, dtype=np.int64)


def target_attribution(name: str, labels: tuple[int, ...], phi: np.ndarray,
                       fold_phi: np.ndarray, value_all: float, value_empty: float,
                       clinician_ranks: np.ndarray | None,
                       maps: GridMaps | np.ndarray | None = None,
                       standard_error: np.ndarray | None = None) -> TargetAttribution:
    """One target's `TargetAttribution`: ranks, rank variance and NSF from its values.

    Parameters
    ----------
    name : str
        The target.
    labels : tuple of int
        Label values it covers.
    phi : ndarray of shape (M,)
        Shapley values of the fold ensemble.
    fold_phi : ndarray of shape (F, M)
        Shapley values of each fold.
    value_all, value_empty : float
        The ensemble's value with every contrast and with none.
    clinician_ranks : ndarray or None
        The clinician's ranking of the contrasts, when there is one.
    maps : GridMaps or ndarray, optional
        Voxel maps: on the model grid (`GridMaps`), or ``[M, Z, Y, X]`` on the case
        grid.
    standard_error : ndarray, optional
        Of ``phi``, when it was sampled.
    """
    fold_ranks = np.array([ranks_from_phi(p) for p in fold_phi])
    ranks = ranks_from_phi(phi)
    return TargetAttribution(
        name=name, labels=labels, phi=phi, ranks=ranks, value_all=float(value_all),
        value_empty=float(value_empty), fold_phi=fold_phi, fold_ranks=fold_ranks,
        rank_variance=rank_variance(fold_ranks), clinician_ranks=clinician_ranks,
        nsf=None if clinician_ranks is None else normalised_footrule_similarity(
            ranks, clinician_ranks),
        fold_nsf=[] if clinician_ranks is None else [
            normalised_footrule_similarity(r, clinician_ranks) for r in fold_ranks],
        voxel_maps=maps, standard_error=standard_error)


def exact_attributions(targets: Mapping[str, tuple[int, ...]], values: np.ndarray,
                       fold_values: list[np.ndarray], checked: Mapping[str, np.ndarray],
                       voxel_maps: Mapping[str, GridMaps | np.ndarray]
                       ) -> dict[str, TargetAttribution]:
    """Exact Shapley attributions of every target from its coalition values.

    Parameters
    ----------
    targets : mapping of str to tuple of int
        Target name to label values (`attribution_targets`), in column order.
    values : ndarray of shape (2**M, T)
        The fold ensemble's value of each coalition (bitmask order) and target.
    fold_values : list of ndarray of shape (2**M, T)
        The same for each fold.
    checked : mapping of str to ndarray
        Clinician rankings of the targets that have one.
    voxel_maps : mapping of str to GridMaps or ndarray
        Voxel maps of the targets that have them.
    """
    return {name: target_attribution(
        name, labels, exact_shapley(values[:, index]),
        np.array([exact_shapley(v[:, index]) for v in fold_values]), values[-1, index],
        values[0, index], checked.get(name), voxel_maps.get(name))
        for index, (name, labels) in enumerate(targets.items())}
