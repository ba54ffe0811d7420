"""MRI contrasts synthesised from tissue fractions, following MRI physics.

Relative signal per tissue (white matter ~0.85 on T1): CSF is dark on T1 and
bright on T2, suppressed on FLAIR; oedema (free water in white matter) is
bright on T2 and FLAIR; the enhancing rim takes up gadolinium and is bright on
T1ce only; necrosis is dark on T1ce and bright on T2. The template T1's own
detail beyond the tissue model (deep grey nuclei, cortex) is carried into
every contrast, with the sign that contrast gives T1 differences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.sample._fields import smooth_field

CONTRASTS = ("T1", "T1ce", "T2", "FLAIR")
CLASSES = ("csf", "gm", "wm", "NCR", "ED", "ET")

#: Mean signal of each class (columns follow CLASSES) per contrast.
SIGNAL = {
    "T1":    np.array([0.30, 0.62, 0.85, 0.35, 0.55, 0.62]),
    "T1ce":  np.array([0.30, 0.64, 0.86, 0.28, 0.56, 1.35]),
    "T2":    np.array([1.00, 0.62, 0.45, 0.95, 0.82, 0.68]),
    "FLAIR": np.array([0.15, 0.62, 0.48, 0.60, 1.00, 0.80]),
}
#: How the template T1's residual detail enters each contrast.
TEMPLATE_DETAIL = {"T1": 0.6, "T1ce": 0.6, "T2": -0.5, "FLAIR": -0.35}


@dataclass(frozen=True)
class AcquisitionSettings:
    """Ranges the per-case acquisition parameters are drawn from.

    Attributes
    ----------
    noise : tuple of float
        Rician noise sigma relative to white matter.
    bias : tuple of float
        Standard deviation of the log bias field.
    gain : tuple of float
        Global intensity scale per contrast (scanner units / 1000).
    class_jitter : float
        Relative spread of each tissue's mean signal between cases.
    signal_overrides : dict or None
        Replace class means for a contrast, e.g. ``{"T1ce": {"ET": 0.9}}``
        (used to build shifted cases a model has not seen).
    """

    noise: tuple[float, float] = (0.015, 0.05)
    bias: tuple[float, float] = (0.05, 0.15)
    gain: tuple[float, float] = (0.75, 1.3)
    class_jitter: float = 0.06
    signal_overrides: dict | None = None


def class_fractions(tissue: dict[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """Fractions ``[6, Z, Y, X]`` of each class in CLASSES, tumour with soft edges.

    Parameters
    ----------
    tissue : dict of str to ndarray
        Tissue probability maps of the anatomy.
    labels : ndarray of int
        The tumour labels.
    """
    tumour = np.stack([ndi.gaussian_filter((labels == value).astype(np.float32), 0.5)
                       for value in (1, 2, 3)])
    tumour_total = np.clip(tumour.sum(0), 0, 1)
    healthy = np.stack([tissue[name] for name in ("csf", "gm", "wm")])
    healthy_total = healthy.sum(0)
    scale = np.where(healthy_total > 1, 1.0 / np.maximum(healthy_total, 1e-6), 1.0)
    healthy = healthy * scale * (1.0 - tumour_total)
    tumour = tumour * (healthy_total.clip(0, 1) > 0.05)
    return np.concatenate([healthy, tumour]).astype(np.float32)


def _class_means(contrast: str, settings: AcquisitionSettings, rng: np.random.Generator):
    means = SIGNAL[contrast] * (1.0 + settings.class_jitter * rng.standard_normal(len(CLASSES)))
    for name, value in (settings.signal_overrides or {}).get(contrast, {}).items():
        means[CLASSES.index(name)] = value
    return means


def synthesise(fractions: np.ndarray, template_detail: np.ndarray, brain: np.ndarray,
               spacing: tuple[float, float, float], settings: AcquisitionSettings,
               rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Four contrasts ``[4, Z, Y, X]`` (scanner-like units) and what was drawn.

    Parameters
    ----------
    fractions : ndarray of shape (6, Z, Y, X)
        From `class_fractions`.
    template_detail : ndarray of shape (Z, Y, X)
        Template T1 minus its tissue-model prediction.
    brain : ndarray of bool
        Skull-stripping mask; outside it the images are 0 (as in BraTS).
    spacing : tuple of float
        Voxel size in mm (sets the smoothness of bias and texture).
    settings : AcquisitionSettings
        Ranges for noise, bias and gain.
    rng : numpy.random.Generator
        Randomness.
    """
    shape = fractions.shape[1:]
    mean_step = float(np.mean(spacing))
    healthy = fractions[:3].sum(0)
    tumour_texture = 0.08 * smooth_field(shape, 2.5 / mean_step, rng)
    images, drawn = [], {}
    for contrast in CONTRASTS:
        means = _class_means(contrast, settings, rng)
        signal = np.tensordot(means, fractions, axes=1)
        signal += TEMPLATE_DETAIL[contrast] * template_detail * healthy
        signal *= 1.0 + tumour_texture * (1.0 - healthy)
        bias_sd = rng.uniform(*settings.bias)
        signal *= np.exp(bias_sd * smooth_field(shape, 50.0 / mean_step, rng))
        noise_sd = rng.uniform(*settings.noise)
        noisy = np.hypot(signal + noise_sd * rng.standard_normal(shape),
                         noise_sd * rng.standard_normal(shape))
        gain = rng.uniform(*settings.gain) * 1000.0
        images.append(np.where(brain, noisy * gain, 0.0).astype(np.float32))
        drawn[contrast] = {"noise": float(noise_sd), "bias": float(bias_sd), "gain": float(gain),
                           "class_means": dict(zip(CLASSES, np.round(means, 4).tolist()))}
    return np.stack(images), drawn
