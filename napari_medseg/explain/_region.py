"""Explaining only where there is something to explain.

An exact Shapley explanation runs every coalition of contrasts (16 for
four) through the model. Run over the whole head, that is 16 model runs; but
a coalition can only change the value where some prediction changes, and on
a brain tumour case that is around the tumour. So the model first predicts
the whole volume once with every contrast (the ordinary prediction), and
the coalitions run only in the windows (the whole run's own windows: with
instance normalisation, other windows give other results) that touch boxes
around what it, or the reference, marks (one box per cluster of
structures). Inside the boxes the coalitions' results are exactly the
whole-volume run's; outside, every coalition takes the ordinary
prediction's probabilities.

Whatever the region, each coalition's labels are resampled to the case grid
only in the tiles where they may not be background
(``inference._blocks.labelled_blocks``):
the Dice counts are the whole volume's (but for voxels where two classes tie
within float rounding), for a fraction of the cost.

What this leaves out (a coalition predicting something far outside the
boxes) is measured against the whole-volume computation in
``bench/shapley.py`` (BENCHMARKS.md).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: run the coalitions on the whole volume when the boxes would cover more than this
_WORTH_IT = 0.6


Box = tuple[slice, ...]


def _slices(low: np.ndarray, high: np.ndarray) -> Box:
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def _merged(boxes: list[tuple[np.ndarray, np.ndarray]], gap: int
            ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Union bounding boxes ``(low, high)`` until no two come within ``gap`` voxels."""
    boxes = list(boxes)
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (a_low, a_high), (b_low, b_high) = boxes[i], boxes[j]
            if np.all(a_low < b_high + gap) and np.all(b_low < a_high + gap):
                union = (np.minimum(a_low, b_low), np.maximum(a_high, b_high))
                rest = [box for k, box in enumerate(boxes) if k not in (i, j)]
                return _merged([union, *rest], gap)
    return boxes


def explained_boxes(foreground: np.ndarray, patch: Sequence[int]) -> list[Box] | None:
    """Boxes whose coalition results are used: one per cluster of structures.

    Each connected structure gets a box an eighth of a window past it; boxes
    that come within two voxels are merged, so that no case voxel resamples
    from two of them. A false-positive speck far from the tumour gets its own
    small box instead of stretching one box over the whole head.

    Parameters
    ----------
    foreground : ndarray of bool, shape (Z, Y, X)
        Where the ordinary prediction or the reference marks a structure, on
        the model grid.
    patch : sequence of int
        The model's window.

    Returns
    -------
    list of boxes, or None
        None where the structures are absent or the boxes would cover most of
        the volume: then the coalitions run everywhere.
    """
    from scipy import ndimage as ndi

    if not foreground.any():
        return None
    shape, margin = np.asarray(foreground.shape), np.asarray(patch) // 8
    labelled, _ = ndi.label(foreground)
    used = [(np.maximum(np.array([s.start for s in found]) - margin, 0),
             np.minimum(np.array([s.stop for s in found]) + margin, shape))
            for found in ndi.find_objects(labelled)]
    used = _merged(used, gap=2)  # apart by 2 voxels: no case voxel resamples from two boxes
    if sum(np.prod(high - low) for low, high in used) > _WORTH_IT * np.prod(shape):
        return None
    return [_slices(low, high) for low, high in used]


def touches(window: Box, boxes: Sequence[Box]) -> bool:
    """Whether a sliding window overlaps any of ``boxes`` (then it must run).

    Parameters
    ----------
    window : tuple of slice
        A sliding window on the model grid.
    boxes : sequence of tuple of slice
        Boxes around the structures.
    """
    return any(all(w.start < b.stop and b.start < w.stop for w, b in zip(window, box))
               for box in boxes)


def reference_on_grid(reference: np.ndarray | None, grid: Sequence[int]) -> np.ndarray | None:
    """A reference mask's foreground on the model grid (nearest neighbour).

    Parameters
    ----------
    reference : ndarray of int or None
        Reference labels on the case grid.
    grid : sequence of int
        The model grid's shape.
    """
    if reference is None:
        return None
    index = [np.minimum((np.arange(g) + 0.5) * n / g, n - 1).astype(int)
             for g, n in zip(grid, reference.shape)]
    return (reference > 0)[np.ix_(*index)]


def pasted(ordinary: torch.Tensor, coalitions: torch.Tensor, boxes: Sequence[Box]
           ) -> torch.Tensor:
    """All coalitions' probabilities ``[S, K, Z, Y, X]``: the ordinary prediction
    ``[K, Z, Y, X]`` everywhere, the coalitions' own (run with the windows that
    touch the boxes) inside the boxes.

    Parameters
    ----------
    ordinary : Tensor of shape (K, Z, Y, X)
        The full prediction's probabilities.
    coalitions : Tensor of shape (S, K, Z, Y, X)
        Each coalition's probabilities, valid inside the boxes.
    boxes : sequence of tuple of slice
        Where the coalitions ran.
    """
    out = ordinary[None].expand(coalitions.shape[0], *ordinary.shape).clone()
    for box in boxes:
        index = (slice(None), slice(None), *box)
        out[index] = coalitions[index]
    return out
