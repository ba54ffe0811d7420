"""The model-free engine: a seeded random walker driven by the same clicks.

For images no click model fits (a single CT channel, an unknown contrast
set). The walker runs in a box around the clicks and the current object:
seeds inside are positive clicks and the object's current interior (minus
balls around negative clicks); seeds outside are negative clicks, the box
faces and voxels whose intensity is far from the newest positive click's
neighbourhood. A click changes the mask one way only, as annotators expect:
a positive click adds the walker's region connected to it, a negative
click removes the connected region it landed in. Boxes larger than 48^3
are solved at half resolution; pyamg's multigrid solver is used when
installed (much faster than conjugate gradients in 3D).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.interactive._clicks import Click
from napari_medseg.interactive._simulate import ball_mask, crop_box
from napari_medseg.io import Volume

_MIN_BOX, _MAX_BOX, _HALF_RES_ABOVE = 48, 96, 48 ** 3
_FAR_MADS = 8.0


def _normalised(data: np.ndarray) -> np.ndarray:
    data = np.asarray(data, dtype=np.float32)
    flat = data.reshape(data.shape[0], -1)
    low, high = np.percentile(flat, [1, 99], axis=1)
    scale = np.maximum(high - low, 1e-6).reshape(-1, 1, 1, 1)
    return (data - low.reshape(-1, 1, 1, 1)) / scale


def _box_around(mask: np.ndarray, clicks: Sequence[Click]) -> tuple[slice, ...]:
    points = [np.asarray(c.position) for c in clicks if c.positive] or [np.asarray(
        clicks[-1].position)]
    newest = np.asarray(clicks[-1].position)
    lo = np.minimum(np.min(points, axis=0), newest) - 12
    hi = np.maximum(np.max(points, axis=0), newest) + 13
    near = crop_box(newest, (_MAX_BOX,) * 3, mask.shape)
    window = mask[near]
    if window.any():
        found = np.argwhere(window) + [s.start for s in near]
        lo, hi = np.minimum(lo, found.min(0) - 4), np.maximum(hi, found.max(0) + 5)
    size = np.clip(hi - lo, _MIN_BOX, _MAX_BOX)
    return crop_box((lo + hi) // 2, size, mask.shape)


class RandomWalkerEngine:
    """Refine with `skimage.segmentation.random_walker` (no model needed).

    Parameters
    ----------
    volume : Volume
        The case, any number of channels.
    beta : float
        Edge sensitivity of the walker (higher: stops at weaker edges).
    """

    name = "random_walker"

    def __init__(self, volume: Volume, beta: float = 500.0):
        self.image = _normalised(volume.data)
        self.beta = beta
        self.description = "model-free (random walker)"

    def _seeds(self, mask: np.ndarray, clicks: Sequence[Click], box) -> np.ndarray:
        origin = np.array([s.start for s in box])
        window = mask[box]
        seeds = np.zeros(window.shape, np.uint8)
        inner = ndi.binary_erosion(window, iterations=2)
        depth = ndi.distance_transform_edt(np.pad(window, 1))[1:-1, 1:-1, 1:-1]
        for click in clicks:
            local = np.asarray(click.position) - origin
            if not click.positive:
                radius = max(4.0, 2.0 * float(depth[tuple(np.clip(local, 0,
                                                                  np.array(window.shape) - 1))]))
                inner &= ~ball_mask(window.shape, local, radius)
        seeds[inner] = 1
        for axis in range(3):
            for index in (0, -1):
                face = [slice(None)] * 3
                face[axis] = index
                seeds[tuple(face)] = np.where(seeds[tuple(face)] == 1, 1, 2)
        newest = clicks[-1]
        if newest.positive:
            seeds[(seeds == 0) & self._dissimilar(box, np.asarray(newest.position) - origin)] = 2
        for click in clicks:
            ball = ball_mask(window.shape, np.asarray(click.position) - origin, 1.5)
            seeds[ball] = 1 if click.positive else 2
        return seeds

    def _dissimilar(self, box, local) -> np.ndarray:
        """Voxels far (in robust z-score) from the intensities around the click, any channel."""
        data = self.image[(slice(None), *box)]
        ball = ball_mask(data.shape[1:], local, 2.5)
        values = data[:, ball]
        centre = np.median(values, axis=1, keepdims=True)
        spread = np.maximum(np.median(np.abs(values - centre), axis=1) * 1.4826, 0.05)
        centre, spread = centre.reshape(-1, 1, 1, 1), spread.reshape(-1, 1, 1, 1)
        return (np.abs(data - centre) / spread > _FAR_MADS).any(axis=0)

    def refine(self, mask: np.ndarray, clicks: Sequence[Click]
               ) -> tuple[tuple[slice, ...], np.ndarray]:
        """The object's new mask inside a box around the clicks (see `LearnedEngine.refine`)."""
        from skimage.segmentation import random_walker

        box = _box_around(mask, clicks)
        seeds = self._seeds(mask, clicks, box)
        if not (seeds == 1).any():
            return box, np.zeros(seeds.shape, bool)
        data = self.image[(slice(None), *box)]
        step = 2 if seeds.size > _HALF_RES_ABOVE else 1
        small_seeds = _downsample_seeds(seeds, step)
        small = data[:, ::step, ::step, ::step]
        with warnings.catch_warnings():  # tolerance notes: the labels (argmax) are unaffected
            warnings.simplefilter("ignore", UserWarning)
            result = random_walker(small, small_seeds, beta=self.beta, mode=_solver(), tol=1e-3,
                                   channel_axis=0) == 1
        if step > 1:
            result = np.repeat(np.repeat(np.repeat(result, 2, 0), 2, 1), 2, 2)
            result = result[tuple(slice(0, n) for n in seeds.shape)]
            result = np.where(seeds > 0, seeds == 1, result)
        return box, _one_way(mask[box], result, clicks[-1], box)


def _one_way(before: np.ndarray, walker: np.ndarray, newest: Click, box) -> np.ndarray:
    """Add (positive) or remove (negative) only the region connected to the newest click."""
    local = tuple(int(p - s.start) for p, s in zip(newest.position, box))
    region = walker if newest.positive else ~walker & before
    labelled, _ = ndi.label(region)
    hit = labelled[local]
    if hit == 0:
        return before
    connected = labelled == hit
    if newest.positive:
        return before | connected
    # a negative click removes locally: within a few times the wrong region's depth
    depth = ndi.distance_transform_edt(np.pad(before, 1))[1:-1, 1:-1, 1:-1][local]
    return before & ~(connected & ball_mask(before.shape, local, max(6.0, 3.0 * depth)))


def _solver() -> str:
    try:
        import pyamg  # noqa: F401
    except ImportError:
        return "cg_j"
    return "cg_mg"


def _downsample_seeds(seeds: np.ndarray, step: int) -> np.ndarray:
    if step == 1:
        return seeds
    small = seeds[::step, ::step, ::step].copy()
    for value in (2, 1):  # keep every seed that a plain stride would drop
        hits = np.argwhere(seeds == value) // step
        small[tuple(hits.T)] = value
    return small
