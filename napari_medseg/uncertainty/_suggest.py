"""Where to click next: the regions of the current mask most likely wrong, near the objects.

For each voxel the model's probabilities give how likely the current label
is wrong (``1 - p[current label]``) and what it most likely is instead. Voxels
likely wrong (above ``threshold``) near a segmented object are grouped into
regions by connectivity and by the change they need (current label ->
most likely label), so a region is one click's worth of work. A region's
score is its expected number of wrong voxels (the sum of the error
probability), which is what a click there can gain in Dice. The suggested
point is the region's deepest voxel (where the robot user of DESIGN.md
would click), with the label and sign the click should have.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

_CONNECTIVITY = np.ones((3, 3, 3), bool)


def suggest_clicks(probabilities: np.ndarray, labels: np.ndarray,
                   clicked: Sequence[Sequence[float]] = (),
                   spacing: Sequence[float] = (1.0, 1.0, 1.0), threshold: float = 0.3,
                   margin_mm: float = 5.0, max_suggestions: int = 10,
                   min_score: float = 5.0) -> list[dict]:
    """Likely error regions of ``labels``, best first, one suggested click each.

    Parameters
    ----------
    probabilities : ndarray of shape (C, Z, Y, X)
        Class probabilities (a model run's, or the mean of uncertainty samples).
    labels : ndarray of int, shape (Z, Y, X)
        The current mask (with the user's edits); values index ``probabilities``.
    clicked : sequence of (z, y, x)
        Voxels already clicked: regions holding one are skipped.
    spacing : sequence of float
        Voxel size in mm (z, y, x).
    threshold : float
        Error probability above which a voxel counts as likely wrong.
    margin_mm : float
        Only voxels within this distance of a segmented object of the mask
        (of the model's prediction while the mask is empty) are considered:
        no specks far away.
    max_suggestions : int
        How many to return.
    min_score : float
        Regions expected to hold fewer wrong voxels are left out.

    Returns
    -------
    list of dict
        ``{"point": (z, y, x), "label": the label the click is for, "positive":
        sign, "current": label now, "size": voxels, "score": expected wrong
        voxels, "mean": mean error probability}``, best first.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    labels = np.asarray(labels)
    n_classes = probabilities.shape[0]
    current = np.where(labels < n_classes, labels, 0).astype(np.intp)
    own = np.take_along_axis(probabilities, current[None], axis=0)[0]
    error = np.where(labels < n_classes, 1.0 - own, 0.0)
    others = probabilities.copy()
    np.put_along_axis(others, current[None], -1.0, axis=0)
    alternative = np.argmax(others, axis=0)
    objects = labels > 0 if (labels > 0).any() else np.argmax(probabilities, axis=0) > 0
    near = ndi.distance_transform_edt(~objects, sampling=spacing) <= margin_mm \
        if objects.any() else np.zeros(labels.shape, bool)
    candidate = (error > threshold) & near
    taken = [tuple(int(round(c)) for c in point) for point in clicked]
    suggestions = []
    for change in np.unique(current[candidate] * n_classes + alternative[candidate]):
        was, becomes = divmod(int(change), n_classes)
        regions, _ = ndi.label(candidate & (current == was) & (alternative == becomes),
                               structure=_CONNECTIVITY)
        suggestions += _region_suggestions(regions, error, was, becomes, taken, min_score)
    return sorted(suggestions, key=lambda s: s["score"], reverse=True)[:max_suggestions]


def _region_suggestions(regions: np.ndarray, error: np.ndarray, was: int, becomes: int,
                        taken: list[tuple[int, ...]], min_score: float) -> list[dict]:
    skip = {int(regions[p]) for p in taken
            if all(0 <= c < n for c, n in zip(p, regions.shape))}
    out = []
    for index, box in enumerate(ndi.find_objects(regions), start=1):
        if box is None or index in skip:
            continue
        inside = regions[box] == index
        score = float(error[box][inside].sum())
        if score < min_score:
            continue
        depth = ndi.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1, 1:-1]
        likely = np.where(inside, ndi.uniform_filter(error[box] * inside, 3), -1.0)
        local = np.unravel_index(int(np.argmax(likely + 1e-3 * depth)), depth.shape)
        point = tuple(int(s.start + i) for s, i in zip(box, local))
        out.append({"point": point, "label": becomes if becomes else was,
                    "positive": bool(becomes), "current": was, "size": int(inside.sum()),
                    "score": round(score, 2), "mean": round(score / int(inside.sum()), 4)})
    return out
