"""Robot-user evaluation over cases and targets (DESIGN.md's click protocol).

Shared by ``napari-medseg bench-clicks`` and ``bench/interactive.py``. Besides
the edited label's Dice, a trial tracks every label's Dice after each click:
the **harm rate** is the share of clicks after which any label's Dice fell by
more than ``_robot.HARM_DICE`` (0.005), and ``worst_other_change`` the largest drop of a label
other than the edited one in one click.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from napari_medseg.interactive._robot import harm_figures, robot_trial
from napari_medseg.interactive._session import InteractiveSession
from napari_medseg.io import Volume

REPORTED_CLICKS = (1, 3, 5, 10)


def evaluate_targets(volume: Volume, targets: dict[str, np.ndarray], engine,
                     start: Mapping[str, np.ndarray] | None = None, cap: int = 20,
                     min_clicks: int = 10, labels: Mapping[str, int] | None = None,
                     reference: np.ndarray | None = None, values: Sequence[int] = ()
                     ) -> list[dict]:
    """Run the robot user on each target of one case.

    Parameters
    ----------
    volume : Volume
        The case.
    targets : dict of str to ndarray of bool
        ``{name: reference mask of the edited label}``.
    engine : engine object
        Shared across targets (built once per case by `make_engine`).
    start : mapping of str to ndarray, optional
        Initial label maps per target (default: empty).
    cap, min_clicks : int
        Protocol limits (see `robot_trial`).
    labels : mapping of str to int, optional
        Label value each target is edited as (default 1).
    reference : ndarray of int, optional
        Full reference labels; with ``values`` every label's Dice is tracked.
    values : sequence of int
        Label values tracked for harm.
    """
    trials = []
    for name, target in targets.items():
        initial = None if start is None else np.asarray(start[name]).astype(np.uint8)
        label = (labels or {}).get(name, 1)
        session = InteractiveSession(volume, initial, label=label, engine=engine)
        trial = robot_trial(session, target, min_clicks=min_clicks, cap=cap,
                            spacing=volume.spacing, reference=reference, values=values)
        if reference is not None:
            trial.update(harm_figures(trial["label_dice"], list(values).index(label)
                                      if label in values else None))
        trials.append({"target": name, "label": label, "voxels": int(target.sum()), **trial})
    return trials


def summarise(trials: Iterable[dict], clicks: Sequence[int] = REPORTED_CLICKS) -> dict:
    """Mean Dice after k clicks, DSC-AUC over clicks 0-5, NoC, harm and latency over trials.

    Parameters
    ----------
    trials : iterable of dict
        Robot-user trials (`robot_trial` records).
    clicks : sequence of int
        Click counts at which Dice is reported.
    """
    trials = list(trials)
    latencies = np.concatenate([np.asarray(t["latency_s"], float) for t in trials] or [[0.0]])
    latencies = latencies[latencies > 0] if (latencies > 0).any() else latencies
    summary = {"n": len(trials),
               "dice@0": round(float(np.mean([t["dice"][0] for t in trials])), 4),
               **{f"dice@{k}": round(float(np.mean([t["dice"][k] for t in trials])), 4)
                  for k in clicks},
               "auc0-5": round(float(np.mean([np.trapezoid(t["dice"][:6]) / 5
                                              for t in trials])), 4),
               "noc85": round(float(np.mean([t["noc85"] for t in trials])), 2),
               "noc90": round(float(np.mean([t["noc90"] for t in trials])), 2),
               "latency_median_ms": round(1000 * float(np.median(latencies)), 1),
               "latency_p95_ms": round(1000 * float(np.percentile(latencies, 95)), 1)}
    if trials and "harmful_clicks" in trials[0]:
        made = sum(t["clicks"] for t in trials)
        summary["harm_rate"] = round(sum(t["harmful_clicks"] for t in trials) / max(made, 1), 4)
        summary["worst_other_change"] = round(min(t["worst_other_change"] for t in trials), 4)
    return summary
