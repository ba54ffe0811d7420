"""Uncertainty of a model's prediction on one case, streamed sample by sample."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from napari_medseg.inference._predict import model_channels, prepare_input, resample
from napari_medseg.io import Volume
from napari_medseg.labels import most_probable
from napari_medseg.progress import ProgressGenerator
from napari_medseg.uncertainty._calibration import auroc, expected_calibration_error
from napari_medseg.uncertainty._measures import entropy
from napari_medseg.uncertainty._sampling import (
    check_methods, default_overlap, draw_samples, flip_sets, resolve_methods)



@dataclass(frozen=True, eq=False)
class UncertaintyResult:
    """Maps and figures on the case grid (maps normalised to [0, 1] by log K)."""

    method: str
    n_samples: int
    mean: np.ndarray
    labels: np.ndarray
    maps: dict[str, np.ndarray]
    spread: np.ndarray
    structures: dict[str, dict[str, float]]
    calibration: dict | None
    seconds: float
    overlap: float
    precision: str = "float32"  # the network's arithmetic

    def to_dict(self) -> dict:
        """JSON-ready figures (maps are written separately)."""
        return {"method": self.method, "samples": self.n_samples, "overlap": self.overlap,
                "precision": self.precision, "seconds": round(self.seconds, 3),
                "structures": self.structures, "calibration": self.calibration,
                "map_means": {k: float(v.mean()) for k, v in self.maps.items()}}


class _Accumulator:
    """Running sums over samples: mean, mean entropy, second moment, volumes."""

    def __init__(self, structures: dict[str, tuple[int, ...]]):
        self.count, self.structures = 0, structures
        self.total = self.entropy = self.square = None
        self.volumes: dict[str, list[int]] = {name: [] for name in structures}

    def add(self, probabilities: np.ndarray) -> None:
        if self.total is None:
            self.total = np.zeros_like(probabilities, dtype=np.float64)
            self.square = np.zeros_like(probabilities, dtype=np.float64)
            self.entropy = np.zeros(probabilities.shape[1:], np.float64)
        self.count += 1
        self.total += probabilities
        self.square += probabilities.astype(np.float64) ** 2
        self.entropy += entropy(probabilities, axis=0)
        labels = most_probable(probabilities)
        for name, values in self.structures.items():
            self.volumes[name].append(int(np.isin(labels, values).sum()))


def _structure_figures(acc: _Accumulator, mean_labels, total_map, voxel_mm3) -> dict:
    from scipy import ndimage as ndi

    figures = {}
    for name, values in acc.structures.items():
        volumes = np.asarray(acc.volumes[name], float) * voxel_mm3
        inside = np.isin(mean_labels, values)
        boundary = inside ^ ndi.binary_erosion(inside)
        mean = float(volumes.mean())
        spread = float(volumes.std(ddof=1)) if len(volumes) > 1 else 0.0
        figures[name] = {"volume_mean_mm3": round(mean, 2), "volume_sd_mm3": round(spread, 2),
                         "volume_cv": round(spread / mean, 4) if mean else 0.0,
                         "uncertainty_inside": float(total_map[inside].mean()) if inside.any()
                         else 0.0,
                         "uncertainty_boundary": float(total_map[boundary].mean())
                         if boundary.any() else 0.0}
    return figures


def _brain_mask(volume: Volume, spec) -> np.ndarray:
    """Voxels where any contrast the model reads is non-zero (one contrast at a time)."""
    brain = np.zeros(volume.shape, bool)
    for channel in model_channels(volume, spec):
        brain |= np.asarray(channel) != 0
    return brain


def calibration_figures(mean: np.ndarray, maps: dict[str, np.ndarray], reference: np.ndarray,
                        region: np.ndarray, n_bins: int = 15) -> dict:
    """ECE (equal-width bins), reliability diagram and error-detection AUROC per map.

    Parameters
    ----------
    mean : ndarray of shape (K, Z, Y, X)
        Mean class probabilities.
    maps : dict of str to ndarray
        Uncertainty maps ``[Z, Y, X]`` by name.
    reference : ndarray of int
        The reference labels.
    region : ndarray of bool
        The voxels counted (inside the brain).
    n_bins : int
        Confidence bins of the ECE.
    """
    confidence = mean.max(0)[region]
    wrong = (most_probable(mean) != reference)[region]
    ece, diagram = expected_calibration_error(confidence, ~wrong, n_bins)
    detection = {name: auroc(value[region], wrong) for name, value in maps.items()}
    detection["1 - confidence"] = auroc(1.0 - confidence, wrong)
    return {"ece": ece, "bins": n_bins, "binning": "equal-width on [0, 1]",
            "voxels": "inside the brain (any contrast non-zero)",
            "error_rate": float(wrong.mean()), "error_detection_auroc": detection,
            "reliability": diagram}


def estimate_uncertainty(model, volume: Volume, methods: str | tuple[str, ...] = "mc",
                         samples: int = 8, reference: np.ndarray | None = None,
                         device: str = "auto", overlap: float | None = None,
                         precision: str = "auto") -> ProgressGenerator[UncertaintyResult]:
    """Sample the model, decompose its uncertainty, optionally calibrate against a reference.

    Parameters
    ----------
    model : LoadedModel
        With dropout for ``mc``; two or more folds for ``ensemble``.
    volume : Volume
        The case.
    methods : str or tuple of str
        ``mc``, ``tta``, ``ensemble`` or a combination (``"mc,ensemble"``);
        ``auto``: MC dropout when the network has dropout, else the fold
        ensemble, else flip TTA (see `resolve_methods`).
    samples : int
        T per fold (ignored for ``ensemble`` alone, which takes one per fold).
    reference : ndarray, optional
        Reference labels: adds ECE, the reliability diagram and error-detection AUROC.
    device : str
        Torch device: ``auto`` (CUDA, then MPS, then the CPU), ``cuda``, ``mps`` or ``cpu``.
    overlap : float, optional
        Window overlap; by default 0.25 when the methods sample (``mc``, ``tta``) and
        0.5 for a plain fold ensemble (see `default_overlap`).
    precision : {"auto", "float32", "bfloat16", "float16"}
        The network's arithmetic, as in `inference.predict` (``auto``: bfloat16
        on CPUs with native bf16 and on CUDA); the softmax and the sums over
        samples stay float32. nnU-Net models run nnU-Net's own predictor.
    """
    from napari_medseg.errors import InputError
    from napari_medseg.io import spacing_from_affine
    from napari_medseg.inference._nnunet import nnunet_precision, nnunet_samples
    from napari_medseg.models.device import autocast_dtype, choose_device, precision_name
    from napari_medseg.models.nnunet import NnunetModel

    started = time.perf_counter()
    torch_device = choose_device(device)
    arithmetic = autocast_dtype(precision, torch_device)  # an unknown precision fails here
    chosen = resolve_methods(methods, model.spec)
    overlap = default_overlap(chosen) if overlap is None else overlap
    if reference is not None and np.shape(reference) != volume.shape:
        raise InputError(f"reference shape {np.shape(reference)} differs from the case "
                         f"{volume.shape}: use the reference of this case")
    spec = model.spec
    structures = {info.name: (info.value,) for info in spec.labels}
    structures.update({k: tuple(v) for k, v in spec.regions.items() if len(v) > 1})
    acc = _Accumulator(structures)
    if isinstance(model, NnunetModel):  # nnU-Net's own preprocessing, windows and export
        check_methods(chosen, samples, model)
        folds = range(model.n_folds) if "ensemble" in chosen else [0]
        flips = flip_sets(samples) if "tta" in chosen else None
        yield from nnunet_samples(model, volume, folds, flips, acc.add, device, 1 - overlap)
        arithmetic_name = nnunet_precision(torch_device)
    else:
        drawn = yield from draw_samples(model, prepare_input(volume, spec), chosen, samples,
                                        overlap, torch_device, arithmetic)
        for sample in drawn:
            acc.add(resample(sample, volume.shape).numpy())
        arithmetic_name = precision_name(arithmetic)
    mean = (acc.total / acc.count).astype(np.float32)
    scale = np.log(mean.shape[0])
    total = entropy(mean, axis=0) / scale
    aleatoric = acc.entropy / acc.count / scale
    maps = {"total": total.astype(np.float32), "aleatoric": aleatoric.astype(np.float32),
            "epistemic": np.maximum(total - aleatoric, 0).astype(np.float32)}
    spread = np.sqrt(np.maximum(acc.square / acc.count - (acc.total / acc.count) ** 2, 0))
    labels = most_probable(mean)
    voxel_mm3 = float(np.prod(spacing_from_affine(volume.affine)))
    calibration = None
    if reference is not None:
        brain = _brain_mask(volume, spec)
        calibration = calibration_figures(mean, maps, np.asarray(reference), brain)
    return UncertaintyResult(method="+".join(chosen), n_samples=acc.count, mean=mean,
                             labels=labels, maps=maps, spread=spread.astype(np.float32),
                             structures=_structure_figures(acc, labels, maps["total"],
                                                           voxel_mm3),
                             calibration=calibration, seconds=time.perf_counter() - started,
                             overlap=overlap, precision=arithmetic_name)
