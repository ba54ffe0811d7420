"""Irregular glioma-like tumours: necrotic core, enhancing rim, oedema.

Shapes are built in millimetres so they look the same at any voxel spacing:
a core of one or more lobes with a noisy boundary, an enhancing rim of
varying thickness (patchy in some cases), a necrotic interior (absent in
some), oedema spreading further along white matter, and a mass effect that
pushes the surrounding anatomy away.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.sample._fields import smooth_field

NCR, ED, ET = 1, 2, 3


@dataclass(frozen=True)
class TumourParams:
    """Random parameters of one tumour (all lengths in mm, centres in case mm)."""

    centre_mm: tuple[float, float, float]
    core_radius_mm: float
    lobes: tuple[tuple[tuple[float, float, float], float], ...]
    roughness: float
    rim_mm: float
    patchy_enhancement: bool
    necrotic: bool
    oedema_mm: float
    mass_effect: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready copy."""
        return asdict(self)


def sample_tumour_params(rng: np.random.Generator, centre_mm: np.ndarray) -> TumourParams:
    """Draw the shape parameters of one tumour around ``centre_mm``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source.
    centre_mm : ndarray
        The tumour's centre in mm.
    """
    radius = float(rng.uniform(10.0, 24.0))
    lobes = [(tuple(float(v) for v in centre_mm), radius)]
    for _ in range(int(rng.integers(0, 3))):  # satellite lobes fused with the core
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        offset = direction * radius * rng.uniform(0.5, 0.9)
        lobe_radius = radius * rng.uniform(0.4, 0.75)
        lobes.append((tuple(float(v) for v in centre_mm + offset), lobe_radius))
    if rng.random() < 0.1:  # multifocal: a separate small lesion
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        offset = direction * radius * rng.uniform(2.0, 2.6)
        lobes.append((tuple(float(v) for v in centre_mm + offset), radius * rng.uniform(0.3, 0.5)))
    return TumourParams(
        centre_mm=tuple(float(v) for v in centre_mm), core_radius_mm=radius, lobes=tuple(lobes),
        roughness=float(rng.uniform(0.15, 0.4)), rim_mm=float(rng.uniform(1.5, 5.0)),
        patchy_enhancement=bool(rng.random() < 0.4), necrotic=bool(rng.random() < 0.8),
        oedema_mm=float(rng.uniform(4.0, 22.0)), mass_effect=float(rng.uniform(0.15, 0.5)))


def mass_effect_mm(points_mm: np.ndarray, params: TumourParams) -> np.ndarray:
    """Outward displacement (mm) of tissue at ``points_mm`` (``[3, ...]``).

    ``u(x) = s (x - c) exp(-|x - c|^2 / L^2)`` with ``L = 1.5 R + 10 mm``; the
    map ``x -> x - u(x)`` stays invertible for ``s < 1``.

    Parameters
    ----------
    points_mm : ndarray of shape (3, ...)
        Tissue positions in mm.
    params : TumourParams
        The tumour.
    """
    centre = np.asarray(params.centre_mm).reshape(3, *([1] * (points_mm.ndim - 1)))
    offset = points_mm - centre
    length = 1.5 * params.core_radius_mm + 10.0
    weight = np.exp(-np.sum(offset**2, axis=0) / length**2)
    return params.mass_effect * offset * weight


def _lobe_distance(shape: tuple[int, ...], spacing: np.ndarray, params: TumourParams
                   ) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    normalised = np.full(shape, np.inf, dtype=np.float32)
    for centre, radius in params.lobes:
        squared = sum(((grid * step - c) / radius) ** 2
                      for grid, step, c in zip(grids, spacing, centre))
        normalised = np.minimum(normalised, np.sqrt(squared).astype(np.float32))
    return normalised


def tumour_labels(shape: tuple[int, int, int], spacing: tuple[float, float, float],
                  params: TumourParams, tissue: dict[str, np.ndarray],
                  rng: np.random.Generator) -> np.ndarray:
    """Label volume (0 background, 1 NCR, 2 ED, 3 ET) of one tumour.

    Parameters
    ----------
    shape, spacing : tuple
        The case grid ``(Z, Y, X)`` and voxel size in mm.
    params : TumourParams
        Shape parameters.
    tissue : dict of str to ndarray
        Warped ``csf``, ``gm`` and ``wm`` fractions on the case grid.
    rng : numpy.random.Generator
        Randomness for the boundary noise.
    """
    step = np.asarray(spacing, dtype=float)
    mean_step = float(step.mean())
    brain = (tissue["csf"] + tissue["gm"] + tissue["wm"]) > 0.5
    parenchyma = (tissue["gm"] + tissue["wm"]) > 0.45
    roughness = smooth_field(shape, 0.45 * params.core_radius_mm / mean_step, rng)
    core = (_lobe_distance(shape, step, params) + params.roughness * roughness < 1.0) & brain
    labels = np.zeros(shape, dtype=np.uint8)
    if not core.any():
        return labels
    depth = ndi.distance_transform_edt(core, sampling=step)
    thickness = params.rim_mm * (1.0 + 0.35 * smooth_field(shape, 4.0 / mean_step, rng))
    if not params.necrotic:
        thickness = thickness + 100.0  # solid enhancing lesion
    rim = core & (depth <= np.maximum(thickness, mean_step))
    labels[core] = NCR
    labels[rim] = ET
    if params.patchy_enhancement:
        gaps = smooth_field(shape, 5.0 / mean_step, rng) > 0.9
        labels[rim & gaps] = NCR
    distance_out = ndi.distance_transform_edt(~core, sampling=step)
    reach = params.oedema_mm * (0.5 + 0.9 * tissue["wm"]) * (
        1.0 + 0.3 * smooth_field(shape, 6.0 / mean_step, rng))
    oedema = ~core & parenchyma & (distance_out < reach)
    labels[oedema] = ED
    return labels
