"""Smooth random fields and warps used by the phantom generator."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def smooth_field(shape: tuple[int, ...], sigma_voxels: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation ``sigma``.

    The noise is drawn on a grid coarser by up to ``sigma / 3`` and smoothed
    there, then interpolated up: cheap even for large ``sigma``.

    Parameters
    ----------
    shape : tuple of int
        Output shape.
    sigma_voxels : float
        Correlation length in voxels of the output grid.
    rng : numpy.random.Generator
        Source of randomness (the only one: fields are deterministic by seed).
    """
    factor = max(1.0, sigma_voxels / 3.0)
    coarse_shape = tuple(max(2, int(np.ceil(n / factor)) + 1) for n in shape)
    coarse = ndi.gaussian_filter(rng.standard_normal(coarse_shape), sigma_voxels / factor,
                                 mode="wrap")
    step = np.asarray([(c - 1) / max(n - 1, 1) for c, n in zip(coarse_shape, shape)])
    field = ndi.affine_transform(coarse, step, output_shape=shape, order=1, mode="nearest")
    field -= field.mean()
    return (field / (field.std() + 1e-8)).astype(np.float32)


def warp(volume: np.ndarray, coordinates: np.ndarray, order: int = 1) -> np.ndarray:
    """Sample ``volume`` at ``coordinates`` (``[3, Z, Y, X]`` in its voxel units).

    Parameters
    ----------
    volume : ndarray
        The volume sampled.
    coordinates : ndarray of shape (3, Z, Y, X)
        Where to sample, in its voxel units.
    order : int
        Spline order (1: linear, 0: nearest).
    """
    return ndi.map_coordinates(volume, coordinates, order=order, mode="constant",
                               cval=0.0, prefilter=False).astype(np.float32)
