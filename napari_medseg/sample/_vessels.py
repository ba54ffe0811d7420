"""A branching vessel-tree phantom: tubes of varying radius, with noise.

For trying broken-tube detection on something tube-shaped: a root segment
splits recursively into two thinner, shorter branches at random angles.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.io import LabelMap, Volume

VESSEL_LABEL = 1


def _segments(rng: np.random.Generator, start, direction, length, radius, depth, out) -> None:
    end = start + direction * length
    out.append((start, end, radius))
    if depth == 0:
        return
    for sign in (-1.0, 1.0):
        axis = np.cross(direction, rng.normal(size=3))
        axis /= np.linalg.norm(axis) + 1e-9
        angle = sign * rng.uniform(0.45, 0.8)
        child = direction * np.cos(angle) + axis * np.sin(angle)
        child /= np.linalg.norm(child)
        _segments(rng, end, child, length * rng.uniform(0.65, 0.85),
                  max(radius * rng.uniform(0.65, 0.8), 1.0), depth - 1, out)


def vessel_tree(seed: int, shape=(64, 64, 64), spacing: float = 1.0,
                depth: int = 3) -> tuple[Volume, LabelMap]:
    """A vessel image (one channel, 'MRA') and its mask (label 1), deterministic by seed.

    The mask is a tree (one component, no loop, no cavity): draws whose
    branches cross are redrawn from the same seed sequence.

    Parameters
    ----------
    seed : int
        Random seed.
    shape : tuple of int
        Grid shape (z, y, x).
    spacing : float
        Isotropic voxel size in mm.
    depth : int
        Branching levels.
    """
    from napari_medseg.topology import betti_numbers

    rng = np.random.default_rng(seed)
    for _ in range(50):
        mask = _tree_mask(rng, tuple(int(n) for n in shape), depth)
        if betti_numbers(mask).as_dict() == {"b0": 1, "b1": 0, "b2": 0}:
            break
    image = ndi.gaussian_filter(mask.astype(np.float32), 0.8) * 800 + 100
    image += rng.normal(0, 40, mask.shape).astype(np.float32)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    return (Volume(image[None].astype(np.float32), affine, ("MRA",)),
            LabelMap(mask.astype(np.uint8), affine, {VESSEL_LABEL: "vessel"}))


def _tree_mask(rng: np.random.Generator, shape: tuple[int, ...], depth: int) -> np.ndarray:
    segments: list = []
    start = np.array([shape[0] * 0.15, shape[1] * 0.5, shape[2] * 0.5]) + rng.normal(0, 2, 3)
    _segments(rng, start, np.array([1.0, 0.0, 0.0]), shape[0] * 0.3, rng.uniform(2.5, 3.5),
              depth, segments)
    points = np.indices(shape).reshape(3, -1).T.astype(np.float32)
    distance = np.full(len(points), np.inf, np.float32)
    for a, b, radius in segments:
        ab = b - a
        t = np.clip(((points - a) @ ab) / (ab @ ab), 0, 1)
        nearest = a + t[:, None] * ab
        distance = np.minimum(distance, np.linalg.norm(points - nearest, axis=1) / radius)
    return (distance <= 1.0).reshape(shape)
