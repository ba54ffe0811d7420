"""Provenance of an exported case: what it came from, what changed, who changed it.

Kept beside every export (as MONAI Label keeps the original and final
labels): source files with checksums, the model and its weight checksums,
the model's own mask (a sibling file), the fraction of voxels changed per
label, the click and edit history with times, and the tool version.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_medseg.io import Volume


def file_checksums(paths: Sequence[str | Path]) -> list[dict]:
    """``[{"path", "sha256"}]`` for the files (folders and missing paths get no checksum)."""
    from napari_medseg.models.loading import sha256_of

    records = []
    for path in paths:
        path = Path(path)
        records.append({"path": str(path),
                        "sha256": sha256_of(path) if path.is_file() else None})
    return records


def model_record(model) -> dict | None:
    """Name, version, folder and weight checksums of a `LoadedModel` (or None)."""
    if model is None:
        return None
    spec = model.spec
    return {"name": spec.name, "version": spec.version, "folder": str(model.folder),
            "weights": [{"file": fold.file, "sha256": fold.sha256} for fold in spec.folds]}


def label_changes(original: np.ndarray | None, corrected: np.ndarray,
                  label_names: dict[int, str]) -> dict[str, dict]:
    """Per label: voxels before and after, and the changed fraction (of the union).

    Parameters
    ----------
    original : ndarray of int or None
        The model's mask before correction (None: nothing to compare).
    corrected : ndarray of int
        The corrected mask.
    label_names : dict of int to str
        Names to report the labels by.
    """
    if original is None:
        return {}
    changes = {}
    values = sorted(set(np.unique(original).tolist()) | set(np.unique(corrected).tolist()) - {0})
    for value in values:
        before, after = original == value, corrected == value
        union = int((before | after).sum())
        changes[label_names.get(int(value), str(value))] = {
            "value": int(value), "original_voxels": int(before.sum()),
            "corrected_voxels": int(after.sum()),
            "changed_fraction": round(int((before ^ after).sum()) / max(union, 1), 6)}
    return changes


def provenance_record(volume: Volume, corrected: np.ndarray, original: np.ndarray | None = None,
                      model=None, history: Sequence[dict] = (),
                      label_names: dict[int, str] | None = None,
                      original_file: str | None = None) -> dict:
    """The provenance dictionary written beside an export (see the module docstring).

    Parameters
    ----------
    volume : Volume
        The image (its source paths are checksummed).
    corrected : ndarray
        The exported labels.
    original : ndarray, optional
        The model's mask before correction.
    model : LoadedModel, optional
        The model that produced ``original``.
    history : sequence of dict
        Click/edit records (as `InteractiveSession.history` holds).
    label_names : dict, optional
        Names of label values.
    original_file : str, optional
        Name of the file holding ``original`` beside the export.
    """
    from napari_medseg import __version__

    names = label_names or {}
    return {
        "tool": {"name": "napari-medseg", "version": __version__},
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sources": file_checksums(volume.source_paths),
        "channels": list(volume.channel_names),
        "geometry": {"shape_zyx": list(volume.shape), "spacing_zyx": list(volume.spacing),
                     "affine": np.asarray(volume.affine).tolist()},
        "model": model_record(model),
        "original_mask": original_file,
        "labels": {str(k): v for k, v in names.items()},
        "changes": label_changes(original, corrected, names),
        "edit_history": list(history),
    }
