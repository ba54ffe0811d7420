"""The field's robot user (see DESIGN.md): click the centre of the largest error.

Each step takes the false-negative and false-positive regions, picks the
largest 26-connected error component and clicks at the maximum of its
distance transform (the voxel deepest inside it): positive if the region was
missed, negative if it was wrongly included (the CVPR 2025 interactive 3D
challenge rule). A trial also records every label's Dice after each click,
so a click that fixes its label by breaking another one shows as harm.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.interactive._clicks import Click

HARM_DICE = 0.005


def _largest_component(error: np.ndarray) -> tuple[np.ndarray, tuple[slice, ...], int]:
    labelled, count = ndi.label(error, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        return labelled, (), 0
    sizes = np.bincount(labelled.ravel())[1:]
    best = int(np.argmax(sizes)) + 1
    box = ndi.find_objects(labelled, max_label=best)[best - 1]
    return labelled[box] == best, box, int(sizes[best - 1])


def robot_click(target: np.ndarray, mask: np.ndarray,
                spacing: Sequence[float] | None = None) -> Click | None:
    """The robot user's next click, or None when the mask equals the target.

    Parameters
    ----------
    target, mask : ndarray of bool
        Reference and current segmentation ``[Z, Y, X]``.
    spacing : sequence of float, optional
        Voxel size, so the distance transform is in mm.
    """
    target = np.asarray(target, bool)
    mask = np.asarray(mask, bool)
    missed, missed_box, missed_size = _largest_component(target & ~mask)
    extra, extra_box, extra_size = _largest_component(mask & ~target)
    if missed_size == 0 and extra_size == 0:
        return None
    positive = missed_size >= extra_size
    component, box = (missed, missed_box) if positive else (extra, extra_box)
    depth = ndi.distance_transform_edt(np.pad(component, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    local = np.unravel_index(int(np.argmax(depth)), depth.shape)
    position = tuple(int(s.start + i) for s, i in zip(box, local))
    return Click(position, positive, 0.0)


def dice_score(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty): `napari_medseg.metrics.dice`.

    Parameters
    ----------
    a, b : ndarray of bool
        Masks of the same shape.
    """
    from napari_medseg.metrics import dice

    return dice(a, b)


def clicks_to_reach(dices: Sequence[float], threshold: float, cap: int = 20) -> int:
    """NoC: clicks until Dice >= threshold (index 0 = before any click); ``cap`` if never.

    Parameters
    ----------
    dices : sequence of float
        Dice before any click, then after each click.
    threshold : float
        The Dice to reach.
    cap : int
        Clicks counted at most.
    """
    for count, value in enumerate(dices):
        if count > cap:
            break
        if value >= threshold:
            return count
    return cap


def label_dices(mask: np.ndarray, reference: np.ndarray, values: Sequence[int]) -> list[float]:
    """Dice of each label value between a mask and the reference.

    Parameters
    ----------
    mask, reference : ndarray of int
        Label maps of the same shape.
    values : sequence of int
        The labels to score, in the order returned.
    """
    return [dice_score(mask == v, reference == v) for v in values]


def robot_trial(session, target: np.ndarray, min_clicks: int = 10, cap: int = 20,
                stop_dice: float = 0.90, spacing: Sequence[float] | None = None,
                reference: np.ndarray | None = None, values: Sequence[int] = ()) -> dict:
    """Let the robot user click on ``session`` until the protocol's figures are known.

    Clicks at least ``min_clicks`` times (for Dice@10) and on up to ``cap`` while
    Dice stays below ``stop_dice`` (for NoC@90). Dice after more clicks than were
    made repeats the last value.

    Parameters
    ----------
    session : InteractiveSession
        Its ``label`` is the edited label; ``target`` is that label's reference.
    target : ndarray of bool
        Reference of the edited label.
    min_clicks, cap, stop_dice :
        Protocol limits.
    spacing : sequence of float, optional
        Voxel size for the robot's distance transform.
    reference : ndarray of int, optional
        The full reference labels: with ``values``, every label's Dice is
        recorded after each click (``label_dice``).
    values : sequence of int
        The label values tracked in ``label_dice``.

    Returns
    -------
    dict
        ``dice`` (index k: after k clicks), ``latency_s`` per click, ``noc85``,
        ``noc90``, and ``label_dice`` (one list per step) when tracked.
    """
    import time

    target = np.asarray(target, bool)
    dices = [dice_score(session.mask == session.label, target)]
    tracked = [label_dices(session.mask, reference, values)] if reference is not None else []
    latencies: list[float] = []
    while len(latencies) < cap and (len(latencies) < min_clicks or dices[-1] < stop_dice):
        click = robot_click(target, session.mask == session.label, spacing)
        if click is None:
            dices.append(1.0)
            latencies.append(0.0)
            tracked += tracked[-1:]
            continue
        started = time.perf_counter()
        session.click(click.position, click.positive)
        latencies.append(time.perf_counter() - started)
        dices.append(dice_score(session.mask == session.label, target))
        if reference is not None:
            tracked.append(label_dices(session.mask, reference, values))
    dices += [dices[-1]] * (cap + 1 - len(dices))
    trial = {"dice": [round(d, 4) for d in dices],
             "latency_s": [round(t, 4) for t in latencies],
             "noc85": clicks_to_reach(dices, 0.85, cap),
             "noc90": clicks_to_reach(dices, 0.90, cap)}
    if reference is not None:
        trial["label_dice"] = [[round(d, 4) for d in step] for step in tracked]
    return trial


def harm_figures(label_dice: Sequence[Sequence[float]], edited: int | None) -> dict:
    """Harmful clicks and the worst drop of another label, from per-step label Dice.

    Parameters
    ----------
    label_dice : sequence of sequence of float
        Every tracked label's Dice, one row per step (row 0: before any click).
    edited : int or None
        Column of the edited label (excluded from ``worst_other_change``).
    """
    steps = np.asarray(label_dice, float)
    if len(steps) < 2:
        return {"clicks": 0, "harmful_clicks": 0, "worst_other_change": 0.0}
    change = np.diff(steps, axis=0)
    others = np.delete(change, edited, axis=1) if edited is not None else change
    return {"clicks": int(len(change)),
            "harmful_clicks": int((change < -HARM_DICE).any(axis=1).sum()),
            "worst_other_change": round(float(others.min()) if others.size else 0.0, 4)}
