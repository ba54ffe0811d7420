"""Explaining only where there is something to explain.

An exact Shapley explanation runs every coalition of contrasts (16 for
four) through the model. Run over the whole head, that is 16 model runs; but
a coalition can only change the value where some prediction changes, and on
a brain tumour case that is around the tumour. So the model first predicts
the whole volume once with every contrast (the ordinary prediction), and
the coalitions run only on a box around what it, or the reference, marks,
plus a margin of a quarter window; outside the box every coalition takes the
ordinary prediction's probabilities (background there, by construction).

What this leaves out (a coalition predicting something far outside the
box) is measured against the whole-volume computation in
``bench/shapley.py``. Experimental: on a 2-core CPU the one-pass box run was
measured slower than hoped (BENCHMARKS.md), so ``explain_case`` runs the
whole volume unless asked (``region="objects"``).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: run the coalitions on the whole volume when the box would cover more than this
_WORTH_IT = 0.6


def explained_box(foreground: np.ndarray, patch: Sequence[int]
                  ) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """The box whose coalition results are used, and the larger box they are run on.

    Parameters
    ----------
    foreground : ndarray of bool, shape (Z, Y, X)
        Where the ordinary prediction or the reference marks a structure, on
        the model grid.
    patch : sequence of int
        The model's window: the used box extends a quarter window past the
        structures, and the run box another quarter window (context, so that
        the run box's edges do not reach the used box).

    Returns
    -------
    (used, run) or None
        None where the structures are absent or the box would cover most of the
        volume: then the coalitions run everywhere.
    """
    if not foreground.any():
        return None
    points = np.argwhere(foreground)
    low, high = points.min(0), points.max(0) + 1
    half = np.asarray(patch) // 4
    shape = np.asarray(foreground.shape)
    used_low, used_high = np.maximum(low - half, 0), np.minimum(high + half, shape)
    run_low, run_high = np.maximum(used_low - half, 0), np.minimum(used_high + half, shape)
    if np.prod(run_high - run_low) > _WORTH_IT * np.prod(shape):
        return None
    used = tuple(slice(int(a), int(b)) for a, b in zip(used_low, used_high))
    run = tuple(slice(int(a), int(b)) for a, b in zip(run_low, run_high))
    return used, run


def one_window(run: tuple[slice, ...], patch: Sequence[int], divisor: int) -> tuple[int, ...]:
    """A window that covers the whole run box at once (each side a multiple of the
    network's ``divisor``, and no smaller than its patch).

    The network is fully convolutional: one pass over the box costs the box's
    voxels once, where overlapping windows cost them about ``1 / (1 - overlap)^3``
    times (8x at the usual 0.5).
    """
    sides = [s.stop - s.start for s in run]
    return tuple(max(int(np.ceil(n / divisor)) * divisor, p) for n, p in zip(sides, patch))


def reference_on_grid(reference: np.ndarray | None, grid: Sequence[int]) -> np.ndarray | None:
    """A reference mask's foreground on the model grid (nearest neighbour)."""
    if reference is None:
        return None
    index = [np.minimum((np.arange(g) + 0.5) * n / g, n - 1).astype(int)
             for g, n in zip(grid, reference.shape)]
    return (reference > 0)[np.ix_(*index)]


def pasted(ordinary: torch.Tensor, coalitions: torch.Tensor, used: tuple[slice, ...],
           run: tuple[slice, ...]) -> torch.Tensor:
    """All coalitions' probabilities on the whole grid ``[S, K, Z, Y, X]``: the
    ordinary prediction ``[K, Z, Y, X]`` everywhere, the coalitions' own results
    (computed on ``run``) inside ``used``."""
    n_coalitions = coalitions.shape[0]
    out = ordinary[None].expand(n_coalitions, *ordinary.shape).clone()
    inside = tuple(slice(u.start - r.start, u.stop - r.start) for u, r in zip(used, run))
    out[(slice(None), slice(None), *used)] = coalitions[(slice(None), slice(None), *inside)]
    return out
