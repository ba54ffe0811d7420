"""How much each case needs a human: the priority score and the ranked table.

In the spirit of MONAI Label's epistemic active-learning strategy, cases the
model is unsure about come first; topology errors and implausible volumes
add to that. For case i in a cohort of n::

    epistemic_rank_i = rank of its mean epistemic uncertainty (mutual
                       information) near the predicted tumour, scaled to [0, 1]
    topology_i       = min(1, (number of topology errors + structures whose
                       Betti numbers differ from the expected) / 3)
    volume_i         = min(1, |robust z| / 3), robust z of log(whole-tumour
                       volume) against the cohort's median and MAD; an empty
                       prediction counts as 1
    priority_i       = 0.5 * epistemic_rank_i + 0.3 * topology_i + 0.2 * volume_i

so priority lies in [0, 1]; ``reasons`` names the parts above 0.5.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_medseg.io import atomic_path, json_text

WEIGHTS = {"epistemic": 0.5, "topology": 0.3, "volume": 0.2}
COLUMNS = ("rank", "case_id", "priority", "epistemic_rank", "topology", "volume",
           "epistemic_foreground", "wt_volume_ml", "topology_errors", "reasons", "status")


def _ranks(values: np.ndarray) -> np.ndarray:
    if len(values) < 2:
        return np.zeros(len(values))
    from scipy.stats import rankdata

    # ties share the average of their ranks (as explain's rankings do), not an
    # arbitrary order
    return (rankdata(values, method="average") - 1) / (len(values) - 1)


def priority_rows(summaries: Sequence[dict], failed: Sequence[dict] = ()) -> list[dict]:
    """Rows of the ranked table (highest priority first; failed cases last).

    Parameters
    ----------
    summaries : sequence of dict
        Each finished case's summary (uncertainty and topology figures).
    failed : sequence of dict
        ``{"case": id, "error": one line}`` per failed case.
    """
    epistemic = np.array([s["epistemic_foreground"] for s in summaries], float)
    volumes = np.array([sum(s["volumes_ml"].values()) for s in summaries], float)
    logs = np.log(np.maximum(volumes, 1e-3))
    median = np.median(logs) if len(logs) else 0.0
    mad = max(1.4826 * float(np.median(np.abs(logs - median))), 0.1) if len(logs) else 1.0
    rows = []
    for summary, rank, log_volume, volume in zip(summaries, _ranks(epistemic), logs, volumes):
        errors = sum(summary["topology_errors"].values()) + len(summary["topology_mismatch"])
        parts = {"epistemic": float(rank), "topology": min(1.0, errors / 3.0),
                 "volume": 1.0 if volume <= 0 else min(1.0, abs(log_volume - median) / mad / 3)}
        rows.append({"case_id": summary["case_id"],
                     "priority": round(sum(WEIGHTS[k] * v for k, v in parts.items()), 4),
                     "epistemic_rank": round(parts["epistemic"], 3),
                     "topology": round(parts["topology"], 3), "volume": round(parts["volume"], 3),
                     "epistemic_foreground": round(summary["epistemic_foreground"], 5),
                     "wt_volume_ml": round(float(volume), 2), "topology_errors": errors,
                     "reasons": ", ".join(k for k, v in parts.items() if v > 0.5),
                     "status": "done"})
    rows.sort(key=lambda row: -row["priority"])
    rows += [{"case_id": f["case_id"], "priority": None, "reasons": f["error"],
              "status": "failed"} for f in failed]
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def write_table(output_dir: str | Path, rows: list[dict], extra: dict) -> tuple[Path, Path]:
    """Write ``triage.csv`` and ``triage.json`` atomically.

    Parameters
    ----------
    output_dir : str or Path
        The batch's output folder.
    rows : list of dict
        Ranked rows (see `priority_rows`).
    extra : dict
        More top-level entries of ``triage.json``.
    """
    output_dir = Path(output_dir)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    csv_path, json_path = output_dir / "triage.csv", output_dir / "triage.json"
    with atomic_path(csv_path, overwrite=True) as temporary:
        temporary.write_text(text.getvalue(), encoding="utf-8")
    with atomic_path(json_path, overwrite=True) as temporary:
        temporary.write_text(json_text({"weights": WEIGHTS, **extra, "cases": rows},
                                       indent=1), encoding="utf-8")
    return csv_path, json_path
