"""Training data for the click network: damaged masks and simulated clicks.

Following DeepEdit, clicks are drawn from the error between a previous mask
and the target: the robot user's click (centre of the largest error) half
of the time, a random voxel of the error otherwise. Previous masks are empty
(first click, half of the time, so the network learns to segment from
clicks rather than to copy the mask), or the target damaged the way automatic models and annotators
damage it: grown or shrunk, a lobe cut away, a spurious blob added, a bite
taken out.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.interactive._clicks import Click, network_input
from napari_medseg.interactive._geometry import ball_mask, crop_box
from napari_medseg.interactive._robot import robot_click

_BALL = ndi.generate_binary_structure(3, 1)


def damage_mask(target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The target with one to three random damages (see the module docstring)."""
    mask = target.copy()
    points = np.argwhere(target) if target.any() else np.argwhere(np.ones_like(target))
    for _ in range(rng.integers(1, 4)):
        kind = rng.choice(["grow", "shrink", "cut", "cut", "blob", "bite"])
        if kind == "grow":
            mask = ndi.binary_dilation(mask, _BALL, iterations=int(rng.integers(1, 4)))
        elif kind == "shrink":
            mask = ndi.binary_erosion(mask, _BALL, iterations=int(rng.integers(1, 3)))
        elif kind == "cut":
            normal = rng.normal(size=3)
            anchor = points[rng.integers(len(points))]
            grids = np.ogrid[tuple(slice(0, n) for n in mask.shape)]
            mask &= sum((g - a) * n for g, a, n in zip(grids, anchor, normal)) < 0
        else:
            centre = points[rng.integers(len(points))] + rng.normal(0, 6, size=3)
            ball = ball_mask(mask.shape, centre, rng.uniform(2, 7))
            mask = mask | ball if kind == "blob" else mask & ~ball
    return mask


def _random_error_click(target, mask, rng) -> Click | None:
    missed, extra = target & ~mask, mask & ~target
    positive = missed.sum() >= extra.sum() if rng.random() < 0.7 else rng.random() < 0.5
    region = missed if positive else extra
    if not region.any():
        region, positive = (extra, False) if positive else (missed, True)
    if not region.any():
        return None
    inner = ndi.binary_erosion(region, _BALL)
    candidates = np.argwhere(inner if inner.any() else region)
    return Click(tuple(int(v) for v in candidates[rng.integers(len(candidates))]), bool(positive))


def _older_clicks(target, rng, count) -> list[Click]:
    clicks = []
    inside, outside = np.argwhere(target), np.argwhere(
        ndi.binary_dilation(target, _BALL, iterations=4) & ~target)
    for _ in range(count):
        positive = rng.random() < 0.6
        pool = inside if positive or len(outside) == 0 else outside
        if len(pool):
            clicks.append(Click(tuple(int(v) for v in pool[rng.integers(len(pool))]),
                                bool(positive and len(inside) > 0), 0.0))
    return clicks


def simulate_interaction(target: np.ndarray, rng: np.random.Generator
                         ) -> tuple[np.ndarray, list[Click]] | None:
    """A previous mask and a click history ending in the click that should fix it.

    Returns None when the target is empty and the mask happens to be too.
    """
    mask = np.zeros_like(target) if rng.random() < 0.5 else damage_mask(target, rng)
    newest = (robot_click(target, mask) if rng.random() < 0.5
              else _random_error_click(target, mask, rng))
    if newest is None:
        return None
    older = _older_clicks(target, rng, int(rng.integers(0, 4)))
    return mask, [*older, newest]


def training_sample(image: np.ndarray, target: np.ndarray, rng: np.random.Generator,
                    patch: Sequence[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """One (input, target) pair: a crop centred near the newest simulated click."""
    interaction = simulate_interaction(target, rng)
    if interaction is None:
        return None
    mask, clicks = interaction
    centre = np.asarray(clicks[-1].position) + rng.integers(-6, 7, size=3)
    box = crop_box(centre, patch, target.shape)
    x = network_input(image, mask, clicks, box, patch)
    crop = target[box]
    y = np.pad(crop, [(0, s - c) for s, c in zip(patch, crop.shape)]).astype(np.int64)
    return x, y
