"""Robot-user evaluation over cases and targets (DESIGN.md's click protocol).

Shared by ``napari-medseg bench-clicks`` and ``bench/interactive.py``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from napari_medseg.interactive._robot import robot_trial
from napari_medseg.interactive._session import InteractiveSession
from napari_medseg.io import Volume

REPORTED_CLICKS = (1, 3, 5, 10)


def evaluate_targets(volume: Volume, targets: dict[str, np.ndarray], engine,
                     start: dict[str, np.ndarray] | None = None, cap: int = 20,
                     min_clicks: int = 10) -> list[dict]:
    """Run the robot user on each binary target of one case.

    Parameters
    ----------
    volume : Volume
        The case.
    targets : dict of str to ndarray of bool
        ``{name: reference mask}``.
    engine : engine object
        Shared across targets (built once per case by `make_engine`).
    start : dict of str to ndarray of bool, optional
        Initial masks per target (default: empty).
    cap, min_clicks : int
        Protocol limits (see `robot_trial`).
    """
    trials = []
    for name, target in targets.items():
        initial = None if start is None else start[name].astype(np.uint8)
        session = InteractiveSession(volume, initial, label=1, engine=engine)
        trial = robot_trial(session, target, min_clicks=min_clicks, cap=cap,
                            spacing=volume.spacing)
        trials.append({"target": name, "voxels": int(target.sum()), **trial})
    return trials


def summarise(trials: Iterable[dict], clicks: Sequence[int] = REPORTED_CLICKS) -> dict:
    """Mean Dice after k clicks, mean NoC@85/90 and latency percentiles over trials."""
    trials = list(trials)
    latencies = np.concatenate([np.asarray(t["latency_s"], float) for t in trials] or [[0.0]])
    latencies = latencies[latencies > 0] if (latencies > 0).any() else latencies
    return {"n": len(trials),
            **{f"dice@{k}": round(float(np.mean([t["dice"][k] for t in trials])), 4)
               for k in clicks},
            "noc85": round(float(np.mean([t["noc85"] for t in trials])), 2),
            "noc90": round(float(np.mean([t["noc90"] for t in trials])), 2),
            "latency_median_ms": round(1000 * float(np.median(latencies)), 1),
            "latency_p95_ms": round(1000 * float(np.percentile(latencies, 95)), 1)}
