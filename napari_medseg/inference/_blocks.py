"""Labels on the case grid, resampled only where they may not be background.

A model predicts on its own grid (1.5 or 2 mm); the labels a user sees are the
most probable class of the probabilities resampled (trilinear, PyTorch's
``align_corners=False``) to the case grid. A case voxel interpolates the eight
model voxels around it with weights that sum to one, so where background beats
every other class at all eight, it wins in between: only the case's tiles that
read a model voxel where it does not are resampled. On a tumour case that is a
few tiles of the head, against the whole 240x240x155 volume (the prediction's
labels and each of Explain's coalitions).
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np
import torch

from napari_medseg.labels import most_probable

#: a float32 interpolation of probabilities is exact to well within this
_ROUNDING = 1e-5
Box = tuple[slice, ...]


@functools.lru_cache(maxsize=16)
def _sources(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output index of a linear resampling ``n_in -> n_out`` (PyTorch's
    ``align_corners=False``): the two input indices it reads and the second's weight
    (cached: read-only arrays)."""
    source = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    first = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    out = first, np.minimum(first + 1, n_in - 1), (source - first).astype(np.float32)
    for array in out:
        array.flags.writeable = False
    return out


def resampled_block(tensor: torch.Tensor, case_shape: Sequence[int], block: Box
                    ) -> torch.Tensor:
    """``resample(tensor, case_shape)[(slice(None), *block)]`` without resampling the rest:
    trilinear as three linear passes, with PyTorch's sampling positions, over only the
    model voxels the block reads.

    Parameters
    ----------
    tensor : Tensor of shape (C, Z, Y, X)
        Values on the model grid.
    case_shape : sequence of int
        The case grid's shape.
    block : tuple of slice
        The case-grid box wanted.
    """
    out, passes = tensor, []
    for axis, (box, n_out) in enumerate(zip(block, case_shape), start=1):
        first, second, weight = (part[box] for part in _sources(tensor.shape[axis], n_out))
        low = int(first[0])
        out = out.narrow(axis, low, int(second[-1]) + 1 - low)
        passes.append((axis, first - low, second - low, weight))
    for axis, first, second, weight in reversed(passes):  # x first: PyTorch's nesting
        shape = [1] * out.dim()
        shape[axis] = -1
        weight = torch.tensor(weight, device=out.device).reshape(shape)
        first, second = (torch.from_numpy(index).to(out.device) for index in (first, second))
        out = (out.index_select(axis, first) * (1 - weight)
               + out.index_select(axis, second) * weight)
    return out


def labelled_blocks(probabilities: torch.Tensor, case_shape: Sequence[int], tile: int = 32
                    ) -> list[tuple[Box, np.ndarray]]:
    """The most probable class on the case grid where it may not be background, as
    ``(case-grid block, labels)`` pairs; every case voxel outside them is background.

    A case voxel interpolates the eight model voxels around it with weights that sum to
    one, so where background beats every other class at all eight (by more than the
    interpolation's rounding), it wins there too. Only the case's tiles (``tile``
    voxels a side) that read a model voxel where it does not are resampled: on a
    tumour case, a few tiles of the head.

    Parameters
    ----------
    probabilities : Tensor of shape (K, Z, Y, X)
        Class probabilities on the model grid; class 0 is background (the class
        ``most_probable`` gives on ties).
    case_shape : sequence of int
        The case grid's shape.
    tile : int
        Side of the case-grid tiles, in voxels.
    """
    margin = probabilities[0] - probabilities[1:].amax(0)
    open_voxels = (margin < _ROUNDING).cpu().numpy()
    reads = []
    for n_in, n_out in zip(probabilities.shape[1:], case_shape):
        first, second, _ = _sources(n_in, n_out)
        reads.append([(slice(start, min(start + tile, n_out)), int(first[start]),
                       int(second[min(start + tile, n_out) - 1]) + 1)
                      for start in range(0, n_out, tile)])
    out = []
    for z, y, x in itertools.product(*reads):
        if open_voxels[z[1]:z[2], y[1]:y[2], x[1]:x[2]].any():
            block = (z[0], y[0], x[0])
            out.append((block, most_probable(resampled_block(probabilities, case_shape,
                                                             block))))
    return out


def case_labels(probabilities: torch.Tensor, case_shape: Sequence[int]) -> np.ndarray:
    """``most_probable(resample(probabilities, case_shape))`` through `labelled_blocks`
    (the same arithmetic as the coalitions' counts, so ties fall alike).

    Parameters
    ----------
    probabilities : Tensor of shape (K, Z, Y, X)
        Class probabilities on the model grid.
    case_shape : sequence of int
        The case grid's shape.
    """
    return pasted_labels(labelled_blocks(probabilities, case_shape), case_shape)


def pasted_labels(blocks: list[tuple[Box, np.ndarray]], case_shape: Sequence[int]
                  ) -> np.ndarray:
    """The case-grid label map of `labelled_blocks`' ``blocks``: background elsewhere.

    Parameters
    ----------
    blocks : list of (tuple of slice, ndarray)
        Case-grid blocks and their labels.
    case_shape : sequence of int
        The case grid's shape.
    """
    labels = np.zeros(tuple(case_shape), np.uint8)
    for block, values in blocks:
        labels[block] = values
    return labels
