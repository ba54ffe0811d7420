"""Dice and HD95 agree with MONAI's metric functions."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance

from napari_medseg.metrics import dice, hd95, region_scores


def _blob(shape, centre, radius, rng):
    grid = np.indices(shape).astype(float)
    distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre)))
    return distance + rng.normal(scale=0.8, size=shape) < radius


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 1.2)])
def test_dice_and_hd95_match_monai(seed, spacing):
    rng = np.random.default_rng(seed)
    shape = (30, 34, 28)
    a = _blob(shape, rng.uniform(10, 20, 3), rng.uniform(5, 9), rng)
    b = _blob(shape, rng.uniform(10, 20, 3), rng.uniform(5, 9), rng)
    as_tensor = lambda m: torch.from_numpy(m[None, None].astype(np.float32))  # noqa: E731
    assert dice(a, b) == pytest.approx(float(compute_dice(as_tensor(a), as_tensor(b))), abs=1e-6)
    reference = float(compute_hausdorff_distance(as_tensor(a), as_tensor(b), percentile=95,
                                                 spacing=spacing))
    assert hd95(a, b, spacing) == pytest.approx(reference, rel=1e-5)


def test_empty_masks_follow_brats_convention():
    empty, full = np.zeros((5, 5, 5), bool), np.ones((5, 5, 5), bool)
    assert dice(empty, empty) == 1.0 and hd95(empty, empty) == 0.0
    assert dice(empty, full) == 0.0 and hd95(empty, full) == float("inf")


def test_region_scores_group_labels():
    reference = np.zeros((10, 10, 10), np.uint8)
    reference[2:5, 2:5, 2:5] = 1
    reference[5:8, 2:5, 2:5] = 3
    prediction = reference.copy()
    prediction[5:8, 2:5, 2:5] = 1  # enhancing predicted as necrosis
    scores = region_scores(prediction, reference, {"TC": (1, 3), "ET": (3,)})
    assert scores["TC"]["dice"] == 1.0 and scores["ET"]["dice"] == 0.0
