"""The model-free engine: a multi-label random walker driven by the same clicks.

For images no model fits (a single CT channel, an unknown contrast set).
The walker runs in a box around the clicks and the edited object. Every
label present in the box (background included) is seeded by its own
interior, so the walker cannot hand another structure to the edited label
wholesale. Left unseeded, for the walker to decide, is the region the click
is about: voxels of the clicked voxel's current label, similar in every
channel to the click's neighbourhood and connected to it. Positive clicks
seed the edited label; a positive click that starts a new object in the
background also seeds the voxels within a few voxels of it that are most like
its surroundings (otherwise the walker, seeded by a speck against the box's
faces, gives the label a few hundred voxels of a large structure). Negative
clicks seed a "not this label" class, and
voxels it wins go to the walker's next most likely label. The session then
keeps only the change connected to the click (see ``_edit``). Boxes larger
than 48^3 are solved at half resolution with pyamg's multigrid solver.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.interactive._clicks import Click
from napari_medseg.interactive._edit import connected_at, surroundings_fill
from napari_medseg.interactive._geometry import ball_mask, crop_box
from napari_medseg.io import Volume

_MIN_BOX, _MAX_BOX, _HALF_RES_ABOVE = 48, 96, 48 ** 3
_NEAR_MADS = 6.0
_MAX_SPREAD = 0.03  # of the channel's 1-99 % range
_GROW_MADS = 8.0
_REACH = 8.0  # voxels a click may reach into another label's region
_NEW_OBJECT_GAP = 1.5  # a positive click this far from the label grows a new object
_CORE_MADS = 3.0  # a new object's seed: this similar to the click's surroundings,
_CORE_RADIUS = 6.0  # and this near it (voxels); 4 gained less, no limit leaked
_UNIFORM_SPREAD = 0.1  # only where the click's surroundings vary less than this (1-99 %
# range): a click at a tissue boundary (spread 0.2) seeded a core that leaked


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
    near_mads : float
        How similar (robust z-score, every channel) a voxel must be to the
        click's neighbourhood to be open to the walker.
    """

    name = "random_walker"

    def __init__(self, volume: Volume, beta: float = 500.0, near_mads: float = _NEAR_MADS):
        self.image = _normalised(volume.data)
        self.beta, self.near_mads = beta, near_mads
        self.description = "model-free (random walker)"

    def _similar(self, box, local, into_background: bool, mads: float | None = None
                 ) -> np.ndarray:
        """Voxels within ``near_mads`` robust z-scores of the click's neighbourhood.

        A positive click into unlabelled background, away from the label's
        voxels, grows a new object: the neighbourhood is wider and the
        tolerance looser (the walker and the seeded box faces bound it). A click
        that takes from another label or removes voxels compares with the
        clicked voxel's 3x3x3 neighbourhood, its spread capped, so a click on a
        boundary does not open both tissues.
        """
        data = self.image[(slice(None), *box)]
        radius, floor, cap, loose = (2.5, 0.05, np.inf, _GROW_MADS) if into_background else \
            (1.0, 0.02, _MAX_SPREAD, self.near_mads)
        mads = loose if mads is None else mads
        centre, spread = _robust_stats(data, local, radius)
        spread = np.clip(spread, floor, cap)
        centre, spread = centre.reshape(-1, 1, 1, 1), spread.reshape(-1, 1, 1, 1)
        return (np.abs(data - centre) / spread <= mads).all(axis=0)

    def _seeds(self, window: np.ndarray, label: int, clicks: Sequence[Click], box
               ) -> tuple[np.ndarray, list[int], np.ndarray]:
        """Walker seeds (0 = open, k = ``values[k - 1]``, last = "not label"), the
        values, and the voxels the walker may change (the open region and its rim)."""
        origin = np.array([s.start for s in box])
        values = sorted(set(np.unique(window).tolist()) | {0, int(label)})
        seeds = np.zeros(window.shape, np.int32)
        for index, value in enumerate(values, start=1):
            seeds[ndi.binary_erosion(window == value, border_value=1)] = index
        local = tuple(np.asarray(clicks[-1].position) - origin)
        into_background = clicks[-1].positive and window[local] == 0 and \
            not _near_label(window == label, local, _NEW_OBJECT_GAP)
        similar = self._similar(box, local, into_background) & (window == window[local])
        if not into_background:  # taking from a structure: stay near the click
            similar &= ball_mask(window.shape, local, _REACH)
        similar[local] = True
        open_region = connected_at(similar, local)
        open_region[_faces(window.shape)] = False  # the box's faces keep their labels
        seeds[open_region] = 0
        not_label = len(values) + 1
        data = self.image[(slice(None), *box)]
        if into_background and _robust_stats(data, local, 2.5)[1].max() <= _UNIFORM_SPREAD:
            # in uniform tissue, the voxels most like the click's surroundings seed the label
            core = connected_at(self._similar(box, local, True, _CORE_MADS) & open_region
                                & ball_mask(window.shape, local, _CORE_RADIUS), local)
            if core is not None:
                seeds[ndi.binary_erosion(core)] = values.index(int(label)) + 1
        for click in clicks:
            ball = ball_mask(window.shape, np.asarray(click.position) - origin, 1.5)
            seeds[ball] = values.index(int(label)) + 1 if click.positive else not_label
        return seeds, values, ndi.binary_dilation(open_region)

    def propose(self, labels: np.ndarray, label: int, clicks: Sequence[Click]
                ) -> tuple[tuple[slice, ...], np.ndarray]:
        """The walker's labels for a box around the clicks (see `ModelEngine.propose`).

        Parameters
        ----------
        labels : ndarray of int
            The whole current mask.
        label : int
            The label the clicks edit.
        clicks : sequence of Click
            This label's clicks, newest last.
        """
        from skimage.segmentation import random_walker

        box = _box_around(labels == label, clicks)
        window = labels[box]
        seeds, values, changeable = self._seeds(window, label, clicks, box)
        present = np.unique(seeds[seeds > 0])
        if (seeds > 0).all() or len(present) < 2:
            return box, _seeded_answer(seeds, values, window)
        data = self.image[(slice(None), *box)]
        step = 2 if seeds.size > _HALF_RES_ABOVE else 1
        small_seeds = _downsample_seeds(seeds, step)
        small = data[:, ::step, ::step, ::step]
        with warnings.catch_warnings():  # tolerance notes: the labels (argmax) are unaffected
            warnings.simplefilter("ignore", UserWarning)
            probability = random_walker(small, small_seeds, beta=self.beta, mode="cg_mg",
                                        tol=1e-3, channel_axis=0, return_full_prob=True)
        if step > 1:
            probability = np.repeat(np.repeat(np.repeat(probability, 2, 1), 2, 2), 2, 3)
            probability = probability[(slice(None), *(slice(0, n) for n in seeds.shape))]
        answer = _walker_answer(probability, present, seeds, values, int(label), window)
        # only the open region (and the voxel layer around it) may change: a thin
        # structure whose interior erosion left no seed is not handed over whole
        return box, np.where(changeable | (seeds == len(values) + 1), answer, window)


def _robust_stats(data: np.ndarray, local: tuple, radius: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the median and robust spread (1.4826 MAD) of a ball around ``local``."""
    values = data[:, ball_mask(data.shape[1:], local, radius)]
    centre = np.median(values, axis=1)
    return centre, np.median(np.abs(values - centre[:, None]), axis=1) * 1.4826


def _near_label(inside: np.ndarray, point: tuple, gap: float) -> bool:
    """Is a voxel of the label within ``gap`` voxels of ``point``?"""
    lo = [max(0, int(p - gap)) for p in point]
    hi = [int(p + gap) + 1 for p in point]
    window = inside[tuple(slice(a, b) for a, b in zip(lo, hi))]
    if not window.any():
        return False
    found = np.argwhere(window) + lo
    return bool((np.linalg.norm(found - np.asarray(point), axis=1) <= gap).any())


def _faces(shape) -> np.ndarray:
    faces = np.ones(shape, bool)
    faces[1:-1, 1:-1, 1:-1] = False
    return faces


def _seeded_answer(seeds: np.ndarray, values: list[int], window: np.ndarray) -> np.ndarray:
    """Nothing open to the walker: each seed's label (the current labels elsewhere)."""
    answer = window.copy()
    for index, value in enumerate(values, start=1):
        answer[seeds == index] = value
    return answer


def _walker_answer(probability: np.ndarray, present: np.ndarray, seeds: np.ndarray,
                   values: list[int], label: int, window: np.ndarray) -> np.ndarray:
    """Labels from the walker's probabilities (one row per seed index in ``present``).

    Voxels won by the "not label" class take the most likely label other than
    the edited one, or, where the walker gives those labels almost no
    probability (inside the click's own seed), the label that surrounds them:
    a negative click never leaves a hole.
    """
    not_label = len(values) + 1
    lookup = np.zeros(not_label + 1, np.int64)
    lookup[1:len(values) + 1] = values
    best = present[np.argmax(probability, axis=0)]
    answer = np.where((seeds > 0) & (seeds != not_label), lookup[seeds], lookup[best])
    others = [i for i, p in enumerate(present) if p not in (not_label, values.index(label) + 1)]
    refused = (best == not_label) | (seeds == not_label)
    if refused.any():
        fill = surroundings_fill(window, label)
        if others:
            mass = probability[others]
            best_other = lookup[present[others][np.argmax(mass, axis=0)]]
            fill = np.where(mass.sum(0) > 0.05, best_other, fill)
        answer = np.where(refused, fill, answer)
    return answer


def _downsample_seeds(seeds: np.ndarray, step: int) -> np.ndarray:
    if step == 1:
        return seeds
    small = seeds[::step, ::step, ::step].copy()
    for value in (2, 1):  # keep every seed that a plain stride would drop
        hits = np.argwhere(seeds == value) // step
        small[tuple(hits.T)] = value
    return small
