"""The review queue over a batch output folder: order, what to open, what was reviewed."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError
from napari_medseg.io import LabelMap, Volume
from napari_medseg.io import atomic_path, json_text

REVIEW_FILE = "review.json"


def read_queue(output_dir: str | Path) -> list[dict]:
    """Rows of ``triage.json`` (priority order) with a ``reviewed`` flag from ``review.json``."""
    output_dir = Path(output_dir)
    table = output_dir / "triage.json"
    if not table.is_file():
        raise InputError(f"{output_dir}: no triage.json. Run `napari-medseg batch INPUT "
                         f"{output_dir}` first")
    rows = json.loads(table.read_bytes())["cases"]
    reviewed = reviewed_cases(output_dir)
    return [{**row, "reviewed": row["case_id"] in reviewed} for row in rows]


def reviewed_cases(output_dir: str | Path) -> dict[str, dict]:
    """``{case_id: {"reviewed_at": ...}}``."""
    path = Path(output_dir) / REVIEW_FILE
    return json.loads(path.read_bytes()) if path.is_file() else {}


def mark_reviewed(output_dir: str | Path, case_id: str) -> None:
    """Record that a case was reviewed (atomic rewrite of ``review.json``).

    Parameters
    ----------
    output_dir : str or Path
        The batch's output folder.
    case_id : str
        The case reviewed.
    """
    records = reviewed_cases(output_dir)
    records[case_id] = {"reviewed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with atomic_path(Path(output_dir) / REVIEW_FILE, overwrite=True) as temporary:
        temporary.write_text(json_text(records, indent=1), encoding="utf-8")


def next_case(rows: list[dict]) -> dict | None:
    """The highest-priority finished case not yet reviewed."""
    return next((r for r in rows if r["status"] == "done" and not r["reviewed"]), None)


@dataclass(frozen=True, eq=False)
class ReviewCase:
    """What the dock shows for one case: images, segmentation, maps, topology error points."""

    case_id: str
    volume: Volume
    segmentation: LabelMap
    epistemic: np.ndarray
    error_points: np.ndarray
    error_kinds: list[str]
    summary: dict


def load_review_case(output_dir: str | Path, case_id: str) -> ReviewCase:
    """Read a case's images and batch outputs.

    Parameters
    ----------
    output_dir : str or Path
        The batch's output folder.
    case_id : str
        The case to open.
    """
    from napari_medseg.io import read_labels, read_volume

    folder = Path(output_dir) / case_id
    summary = json.loads((folder / "summary.json").read_bytes())
    volume = read_volume(summary["images"], resample=True)  # as batch --resample read them
    segmentation = read_labels(folder / "seg.nii.gz")
    epistemic = read_volume(folder / "epistemic.nii.gz").data[0]
    topology = json.loads((folder / "topology.json").read_bytes())
    errors = [e for target in topology["targets"].values() for e in target["errors"]]
    points = np.array([e["centroid_voxel_zyx"] for e in errors], float).reshape(-1, 3)
    return ReviewCase(case_id, volume, segmentation, epistemic, points,
                      [e["kind"] for e in errors], summary)
