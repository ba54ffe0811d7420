"""Training interactions for the click network, simulated as DeepEdit and VISTA3D do.

A training sample starts from what a user starts from: the segmentation
model's own prediction of a case (on held-out and shifted-protocol cases,
so it errs), or that prediction with one label erased (the first click on
an empty label). The first click is the robot user's (centre of the largest
error of one label) or, for variety, a voxel deep inside a random error
region of it. Then, for zero to ``max_rounds`` rounds, the network being
trained answers the clicks so far, the answer is applied with the same
local rule as a real session (`local_edit`), and the robot user clicks the
largest error left in the patch: the clicks of the last rounds come from the
network's own mistakes. The sample is the network input at that moment and
the reference labels of the patch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.interactive._clicks import Click, network_input
from napari_medseg.interactive._edit import local_edit
from napari_medseg.interactive._geometry import crop_box
from napari_medseg.interactive._robot import robot_click

_BALL = ndi.generate_binary_structure(3, 1)
#: ``answer(x) -> labels``: the network's labels for one padded input ``[C, *patch]``.
Answer = Callable[[np.ndarray], np.ndarray]


def deep_error_click(target: np.ndarray, mask: np.ndarray, rng: np.random.Generator
                     ) -> Click | None:
    """A click on a random voxel inside a random error component of ``mask`` (not
    the largest one): positive on a missed voxel, negative on an extra one.

    Parameters
    ----------
    target, mask : ndarray of bool
        Reference and current masks of the label.
    rng : numpy.random.Generator
        Random source.
    """
    missed, extra = target & ~mask, mask & ~target
    positive = bool(rng.random() < 0.5)
    region = missed if positive else extra
    if not region.any():
        region, positive = (extra, False) if positive else (missed, True)
    if not region.any():
        return None
    labelled, count = ndi.label(region, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(labelled.ravel())[1:]
    big = np.flatnonzero(sizes >= min(8, sizes.max())) + 1
    component = labelled == rng.choice(big)
    inner = ndi.binary_erosion(component, _BALL)
    candidates = np.argwhere(inner if inner.any() else component)
    return Click(tuple(int(v) for v in candidates[rng.integers(len(candidates))]), positive, 0.0)


def start_mask(predicted: np.ndarray, reference: np.ndarray, rng: np.random.Generator,
               empty_fraction: float = 0.2) -> tuple[np.ndarray, int]:
    """A starting mask and the label to edit: the model's prediction, with the label
    erased ``empty_fraction`` of the time; the label is one the mask gets wrong.

    Parameters
    ----------
    predicted, reference : ndarray of int
        The segmentation model's prediction and the reference.
    rng : numpy.random.Generator
        Random source.
    empty_fraction : float
        How often the chosen label is erased from the start mask.
    """
    mask = predicted.copy()
    values = [v for v in np.unique(reference).tolist() if v > 0]
    if not values:
        return mask, 1
    label = int(rng.choice(values))
    if rng.random() < empty_fraction:
        mask[mask == label] = 0
        return mask, label
    wrong = [v for v in values if ((mask == v) != (reference == v)).any()]
    return mask, int(rng.choice(wrong)) if wrong else label


def training_sample(image: np.ndarray, reference: np.ndarray, predicted: np.ndarray,
                    rng: np.random.Generator, patch: Sequence[int], n_labels: int,
                    answer: Answer | None = None, max_rounds: int = 3
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """One (input, target) pair from a simulated interaction (module docstring).

    Parameters
    ----------
    image : ndarray of shape (C, Z, Y, X)
        Normalised contrasts.
    reference, predicted : ndarray of int
        Reference labels and the segmentation model's prediction.
    rng : numpy Generator
        Randomness.
    patch : sequence of int
        Patch shape.
    n_labels : int
        Foreground classes.
    answer : callable, optional
        The network being trained (see ``Answer``); None: no rounds.
    max_rounds : int
        Most rounds of network answers and new robot clicks.

    Returns
    -------
    (ndarray, ndarray) or None
        Input ``[C + 3 n_labels, *patch]`` and target ``[*patch]`` (int64); None
        when the mask is already right for the chosen label.
    """
    mask, label = start_mask(predicted, reference, rng)
    target = reference == label
    click = robot_click(target, mask == label) if rng.random() < 0.6 else \
        deep_error_click(target, mask == label, rng)
    if click is None:
        return None
    clicks = [click]
    rounds = int(rng.integers(0, max_rounds + 1)) if answer is not None else 0
    for _ in range(rounds):
        box = crop_box(clicks[-1].position, patch, mask.shape)
        origin = np.array([s.start for s in box])
        labels = answer(network_input(image, mask, label, clicks, box, patch, n_labels))
        labels = labels[tuple(slice(0, s.stop - s.start) for s in box)]
        mask[box] = local_edit(mask[box], labels, label, np.asarray(clicks[-1].position) - origin,
                               clicks[-1].positive)
        following = robot_click(target[box], mask[box] == label)
        if following is None:
            break
        clicks.append(Click(tuple(int(v) for v in origin + following.position),
                            following.positive, 0.0))
    centre = np.asarray(clicks[-1].position) + rng.integers(-4, 5, size=3)
    box = crop_box(centre, patch, mask.shape)
    x = network_input(image, mask, label, clicks, box, patch, n_labels)
    crop = reference[box]
    y = np.pad(crop, [(0, s - c) for s, c in zip(patch, crop.shape)]).astype(np.int64)
    return x, y
