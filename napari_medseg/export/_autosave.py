"""Autosave and recovery of work in progress: nothing lost when napari dies.

Edits are saved to a per-case recovery file in the user's cache folder
(``$NAPARI_MEDSEG_RECOVERY_DIR``, else ``recovery`` in platformdirs' user cache folder):
a compressed ``.npz`` with the labels and a JSON record (sources, layer
name, content fingerprint, shape, time, edit history), written as one set.
The key hashes the case's source files, the layer name and a fingerprint of
the case's content, so reopening the same case finds its recovery file and
another case of the same shape (or unsaved data) never does.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError, describe
from napari_medseg.io import atomic_files


def recovery_dir() -> Path:
    """Where recovery files live (created on demand)."""
    from platformdirs import user_cache_path

    folder = Path(os.environ.get("NAPARI_MEDSEG_RECOVERY_DIR",
                                 user_cache_path("napari-medseg") / "recovery"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def content_fingerprint(*arrays: np.ndarray | None) -> str:
    """A short hash of arrays' shapes and (every second voxel of) their values.

    Two cases of the same shape, or the same file names in another folder,
    get different fingerprints; one array of 240x240x155x4 takes tens of ms.

    Parameters
    ----------
    *arrays : ndarray or None
        The case's data (None entries count as absent).
    """
    digest = hashlib.blake2b(digest_size=10)
    for array in arrays:
        if array is None:
            continue
        array = np.asarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        step = (slice(None, None, 2),) * min(array.ndim, 3)
        digest.update(np.ascontiguousarray(array[(Ellipsis, *step)]).tobytes())
    return digest.hexdigest()


def case_key(sources: Sequence[str], layer_name: str, content: str = "") -> str:
    """Recovery key: the case's resolved source paths, the layer's name and the
    case's content fingerprint (`content_fingerprint`), hashed.

    Parameters
    ----------
    sources : sequence of str
        The case's source files.
    layer_name : str
        The edited Labels layer.
    content : str
        `content_fingerprint` of the case.
    """
    text = "\n".join(sorted(str(Path(p).resolve()) for p in sources))
    text += f"\n{layer_name}\n{content}"
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
             history: Sequence[dict] = (), content: str = "") -> Path:
    """Save ``labels`` as the case's recovery file (atomic); returns its path.

    Parameters
    ----------
    labels : ndarray
        The edited labels.
    sources, layer_name, content :
        The case's identity (see `case_key`).
    history : sequence of dict
        The edit history, restored with the labels.

    Raises
    ------
    InputError
        When the recovery folder cannot be created or written, or the disk is full.
    """
    key = case_key(sources, layer_name, content)
    try:
        folder = recovery_dir()
    except OSError as error:
        raise InputError(describe(os.environ.get("NAPARI_MEDSEG_RECOVERY_DIR", "recovery folder"),
                                  f"cannot be created ({error.strerror})",
                                  "Set NAPARI_MEDSEG_RECOVERY_DIR to a writable folder")) from None
    labels = np.asarray(labels)
    record = {"sources": list(sources), "layer": layer_name, "content": content,
              "shape": list(labels.shape), "dtype": str(labels.dtype), "saved_at": time.time(),
              "history": list(history)}
    labels_path = folder / f"{key}.npz"
    with atomic_files([labels_path, folder / f"{key}.json"], overwrite=True,
                      needed=int(labels.nbytes)) as (labels_file, record_file):
        with open(labels_file, "wb") as handle:
            np.savez_compressed(handle, labels=labels)
        record_file.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return labels_path


def _set_aside(paths: Sequence[Path]) -> Path:
    """Move a damaged recovery file aside (never delete it); returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved = paths[0]
    for path in paths:
        if path.exists():
            moved = path.with_name(f"{path.name}.damaged-{stamp}")
            os.replace(path, moved)
    return moved


def find_recovery(sources: Sequence[str], layer_name: str, content: str = "") -> Recovery | None:
    """The case's recovery file, checked whole, or None.

    Parameters
    ----------
    sources : sequence of str
        The case's source files (part of its key).
    layer_name : str
        The edited Labels layer.
    content : str
        `content_fingerprint` of the case.

    Raises
    ------
    InputError
        When the file is damaged (truncated, not a zip, wrong keys, a shape
        that differs from its record): it has been moved aside, and the
        message says where.
    """
    key = case_key(sources, layer_name, content)
    folder = recovery_dir()
    labels_path, record_path = folder / f"{key}.npz", folder / f"{key}.json"
    if not (labels_path.is_file() and record_path.is_file()):
        return None
    try:
        record = json.loads(record_path.read_bytes())
        with np.load(labels_path) as data:
            shape = data["labels"].shape
        if not isinstance(record, dict) or list(shape) != list(record["shape"]):
            raise ValueError(f"labels of shape {list(shape)} but the record says "
                             f"{record.get('shape') if isinstance(record, dict) else record}")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
        moved = _set_aside([labels_path, record_path])
        raise InputError(describe(labels_path, f"recovery file is damaged ({error}); moved "
                                  f"aside to {moved.name}", "Nothing else was changed")) from None
    return Recovery(key, labels_path, record)


def discard_recovery(sources: Sequence[str], layer_name: str, content: str = "") -> None:
    """Delete a case's recovery file (after the edits were exported or discarded).

    Parameters
    ----------
    sources : sequence of str
        The case's source files (part of its key).
    layer_name : str
        The edited Labels layer.
    content : str
        `content_fingerprint` of the case.
    """
    key = case_key(sources, layer_name, content)
    for suffix in (".npz", ".json"):
        (recovery_dir() / f"{key}{suffix}").unlink(missing_ok=True)
