"""Autosave and recovery of work in progress: nothing lost when napari dies.

Edits are saved to a per-case recovery file in the user's cache folder
(``$NAPARI_MEDSEG_RECOVERY_DIR``, else ``~/.cache/napari-medseg/recovery``):
a compressed ``.npz`` with the labels and a JSON record (sources, layer
name, shape, time, edit history), both written atomically. The key is a
hash of the case's source files (or the layer name for unsaved data), so
reopening the same case finds its recovery file.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError
from napari_medseg.io._atomic import atomic_path


def recovery_dir() -> Path:
    """Where recovery files live (created on demand)."""
    folder = Path(os.environ.get("NAPARI_MEDSEG_RECOVERY_DIR",
                                 Path.home() / ".cache" / "napari-medseg" / "recovery"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def case_key(sources: Sequence[str], layer_name: str) -> str:
    """Recovery key: the case's resolved source paths and the layer's name, hashed."""
    text = "\n".join(sorted(str(Path(p).resolve()) for p in sources)) + "\n" + layer_name
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Recovery:
    """A recovery file found for a case."""

    key: str
    labels_path: Path
    record: dict

    @property
    def saved_at(self) -> str:
        """When it was written (local time)."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.record["saved_at"]))

    def load(self) -> np.ndarray:
        """The saved labels."""
        with np.load(self.labels_path) as data:
            return data["labels"]


def autosave(labels: np.ndarray, sources: Sequence[str], layer_name: str,
             history: Sequence[dict] = ()) -> Path:
    """Save ``labels`` as the case's recovery file (atomic); returns its path."""
    key = case_key(sources, layer_name)
    folder = recovery_dir()
    labels_path = folder / f"{key}.npz"
    with atomic_path(labels_path, overwrite=True) as temporary:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, labels=np.asarray(labels))
    record = {"sources": list(sources), "layer": layer_name, "shape": list(np.shape(labels)),
              "dtype": str(np.asarray(labels).dtype), "saved_at": time.time(),
              "history": list(history)}
    with atomic_path(folder / f"{key}.json", overwrite=True) as temporary:
        temporary.write_text(json.dumps(record) + "\n")
    return labels_path


def find_recovery(sources: Sequence[str], layer_name: str) -> Recovery | None:
    """The recovery file of a case, or None."""
    key = case_key(sources, layer_name)
    folder = recovery_dir()
    labels_path, record_path = folder / f"{key}.npz", folder / f"{key}.json"
    if not (labels_path.is_file() and record_path.is_file()):
        return None
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{record_path}: recovery record is damaged ({error.msg}); delete it")
    return Recovery(key, labels_path, record)


def discard_recovery(sources: Sequence[str], layer_name: str) -> None:
    """Delete a case's recovery file (after the edits were exported or discarded)."""
    key = case_key(sources, layer_name)
    for suffix in (".npz", ".json"):
        (recovery_dir() / f"{key}{suffix}").unlink(missing_ok=True)
