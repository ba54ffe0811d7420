"""nnU-Net v2 raw datasets: create one, or append a case without touching the others.

Layout (nnU-Net v2 "dataset format"): ``DatasetNNN_Name/imagesTr/
{case}_{0000..}.nii.gz``, ``labelsTr/{case}.nii.gz`` and ``dataset.json`` with
``channel_names``, ``labels``, ``numTraining``, ``file_ending`` and the
``dataset`` listing of every case's files (nnU-Net v2 reads cases from it
when present). A case's files are written first and count only once the
atomic rewrite of ``dataset.json`` lists them, so a kill or a full disk
leaves the dataset as it was or with the whole case. Provenance and the
model's original mask go to ``provenance/``, which nnU-Net ignores.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError, describe
from napari_medseg.io import Volume, write_image, write_labels
from napari_medseg.io import atomic_path, make_folder

FILE_ENDING = ".nii.gz"
LOCK_FILE = ".napari-medseg.lock"
_DATASET = re.compile(r"^Dataset(\d{3})_(.+)$")


def dataset_folder(out: str | Path, name: str | None, dataset_id: int | None = None) -> Path:
    """The dataset folder for an export.

    ``out`` itself when it is one, an existing ``Dataset*_{name}`` inside it,
    or a new ``DatasetNNN_{name}`` with the next free id (from 501). A full
    nnU-Net name (``Dataset901_Hidden``) is taken as given: its id and name.

    Parameters
    ----------
    out : str or Path
        A datasets root or a dataset folder.
    name : str or None
        The dataset's name.
    dataset_id : int, optional
        Its id (default: the next free one).
    """
    out = Path(out)
    if _DATASET.match(out.name):
        return out
    full = _DATASET.match(name or "")
    if full:
        given = int(full.group(1))
        if dataset_id is not None and dataset_id != given:
            raise InputError(f"dataset name {name} says id {given} but the dataset id given "
                             f"is {dataset_id}: give one of them")
        name, dataset_id = full.group(2), given
    if not name:
        raise InputError(f"{out}: not a DatasetNNN_Name folder; give a dataset name "
                         "(CLI: --dataset-name) to create or find one inside it")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise InputError(f"dataset name {name!r}: use letters, digits, '_' or '-' only")
    existing = {int(m.group(1)): (m.group(2), p) for p in (out.iterdir() if out.is_dir() else [])
                if (m := _DATASET.match(p.name))}
    for number, (found, path) in existing.items():
        if found == name and (dataset_id is None or dataset_id == number):
            return path
    if dataset_id is None:
        dataset_id = next(i for i in range(501, 1000) if i not in existing)
    if not 1 <= dataset_id <= 999:  # nnU-Net's ids have three digits
        raise InputError(f"dataset id {dataset_id}: nnU-Net's ids run from 1 to 999; give one "
                         "of them (501 and up are free for your own datasets)")
    if dataset_id in existing:
        raise InputError(f"{out}: dataset id {dataset_id} is taken by "
                         f"{existing[dataset_id][1].name}; choose another id")
    return out / f"Dataset{dataset_id:03d}_{name}"


def _descriptor(channels: list[str], label_names: dict[int, str], count: int, name: str) -> dict:
    labels = {"background": 0, **{label_names.get(v, f"label_{v}"): int(v)
                                  for v in sorted(label_names)}}
    return {"name": name, "channel_names": {str(i): c for i, c in enumerate(channels)},
            "labels": labels, "numTraining": count, "file_ending": FILE_ENDING,
            "description": "exported by napari-medseg (corrected segmentations)"}


def _check_compatible(existing: dict, wanted: dict, folder: Path, mask: np.ndarray) -> None:
    if existing.get("channel_names") != wanted["channel_names"]:
        raise InputError(describe(folder / "dataset.json",
                                  f"has channels {existing.get('channel_names')} but this case "
                                  f"has {wanted['channel_names']}",
                                  "Export to another dataset (a new --dataset-name)"))
    if existing.get("file_ending", FILE_ENDING) != FILE_ENDING:
        raise InputError(describe(folder / "dataset.json", "uses file ending "
                                  f"{existing.get('file_ending')!r}; napari-medseg writes "
                                  f"{FILE_ENDING}", "Export to another dataset"))
    known = {int(v) for v in existing.get("labels", {}).values() if not isinstance(v, list)}
    present = {int(v) for v in np.unique(mask)}
    if not present <= known:
        raise InputError(describe(folder / "dataset.json",
                                  f"the mask has label(s) {sorted(present - known)} that the "
                                  f"dataset does not define ({existing.get('labels')})",
                                  "Relabel the mask, or export to another dataset"))


def dataset_cases(folder: Path, meta: dict) -> dict[str, dict]:
    """``{case_id: {"images": [...], "label": path}}`` as nnU-Net finds them.

    With a ``dataset`` listing in ``dataset.json`` (what napari-medseg writes)
    only listed cases count; without one, every labelled case in ``labelsTr``
    (nnU-Net's older folder scan).

    Parameters
    ----------
    folder : Path
        The dataset folder.
    meta : dict
        Its ``dataset.json``.
    """
    ending = meta.get("file_ending", FILE_ENDING)
    if isinstance(meta.get("dataset"), dict):
        return {case: {"images": [folder / p for p in entry["images"]],
                       "label": folder / entry["label"]}
                for case, entry in meta["dataset"].items()}
    channels = len(meta.get("channel_names", {}))
    cases = {}
    for label in sorted((folder / "labelsTr").glob(f"*{ending}")):
        case = label.name[: -len(ending)]
        cases[case] = {"images": [folder / "imagesTr" / f"{case}_{i:04d}{ending}"
                                  for i in range(channels)], "label": label}
    return cases


def _listing(folder: Path, cases: dict[str, dict]) -> dict[str, dict]:
    return {case: {"images": [str(Path(p).relative_to(folder)) for p in entry["images"]],
                   "label": str(Path(entry["label"]).relative_to(folder))}
            for case, entry in cases.items()}


def read_descriptor(path: Path) -> dict:
    """``dataset.json`` as a dict (one clear line when it is not readable JSON)."""
    try:
        meta = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(describe(path, f"is not valid JSON ({error})",
                                  "Restore it from a backup, or export to a new dataset"))
    if not isinstance(meta, dict):
        raise InputError(describe(path, "is not a JSON object", "Export to a new dataset"))
    return meta


def _write_descriptor(folder: Path, meta: dict, cases: dict[str, dict]) -> None:
    """The commit point: one atomic rewrite lists the cases and their count."""
    meta = {**meta, "numTraining": len(cases), "dataset": _listing(folder, cases)}
    with atomic_path(folder / "dataset.json", overwrite=True) as temporary:
        temporary.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _clean_leftovers(root: Path, folder: Path) -> None:
    """Remove what interrupted runs left: staging folders and partial files."""
    for pattern in (".staging-*", "*/.*.partial-*", ".*.partial-*"):
        for path in folder.glob(pattern):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(True)
    for path in root.glob(".Dataset*.partial-*"):
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def dataset_lock(root: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold the datasets root's lock file (one exporter at a time allocates ids and cases).

    Parameters
    ----------
    root : Path
        The datasets root (the lock file lies there).
    timeout : float
        Seconds to wait for another exporter before giving up with a message.
    """
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(root / LOCK_FILE), timeout=timeout):
            yield
    except Timeout:
        raise InputError(describe(root / LOCK_FILE, f"another export held the lock for "
                                  f"{timeout:.0f} s", "Wait for it to finish; if none is "
                                  "running, delete the lock file")) from None


def append_case(out: str | Path, volume: Volume, mask: np.ndarray, case_id: str,
                label_names: dict[int, str], name: str | None = None,
                dataset_id: int | None = None, overwrite: bool = False,
                extra_files: dict[str, bytes | np.ndarray] | None = None) -> Path:
    """Add a case to an nnU-Net v2 raw dataset (created when missing); returns its folder.

    Crash-safe: under the datasets root's lock, the case's files are written
    first, then one atomic rewrite of ``dataset.json`` lists them (nnU-Net's
    ``dataset`` key) and counts them. A kill or a full disk at any moment
    leaves the dataset as it was or with the whole case; a re-run of the same
    export finishes it. A new dataset is built in a hidden folder and renamed
    into place.

    Parameters
    ----------
    out : str or Path
        A datasets root or a dataset folder (see `dataset_folder`).
    volume : Volume
        The case's contrasts, written as ``{case}_{XXXX}.nii.gz`` in the
        dataset's channel order.
    mask : ndarray of int
        The corrected labels.
    case_id : str
        The case's name in the dataset.
    label_names : dict of int to str
        The labels of a new dataset (``labels`` of ``dataset.json``).
    name, dataset_id : optional
        Name and id of a new dataset.
    overwrite : bool
        Replace a case of the same id.
    extra_files : dict of str to bytes or ndarray, optional
        More files written with the case (provenance).

    Raises
    ------
    InputError
        For another dataset's channels or labels, a mask label the dataset lacks, a
        case that exists (unless ``overwrite``), or a folder that is not writable.
    """
    out = Path(out)
    root = out.parent if _DATASET.match(out.name) else out
    make_folder(root)
    if not os.access(root, os.W_OK):
        raise InputError(f"{root}: the output folder is not writable. Choose another folder")
    with dataset_lock(root):
        folder = dataset_folder(out, name, dataset_id)
        _clean_leftovers(root, folder)
        wanted = _descriptor(list(volume.channel_names), label_names, 0,
                             _DATASET.match(folder.name).group(2))
        if not (folder / "dataset.json").is_file():
            if not set(np.unique(mask).tolist()) <= {0, *label_names}:
                raise InputError(f"the mask has labels {sorted(set(np.unique(mask).tolist()))} "
                                 f"but only {sorted(label_names)} are named: name every label "
                                 "first")
            return _new_dataset(folder, wanted, volume, mask, case_id, extra_files or {})
        meta = read_descriptor(folder / "dataset.json")
        _check_compatible(meta, wanted, folder, mask)
        cases = dataset_cases(folder, meta)
        if case_id in cases and not overwrite:
            raise InputError(f"{folder.name}: case {case_id!r} already exists. Choose another "
                             "case id, or pass overwrite=True (CLI: --overwrite)")
        if "dataset" not in meta:  # list what is there before adding files nnU-Net would scan
            _write_descriptor(folder, meta, cases)
        cases[case_id] = _write_case(folder, volume, mask, case_id, extra_files or {})
        _write_descriptor(folder, meta, cases)
    return folder


def _new_dataset(folder: Path, meta: dict, volume: Volume, mask: np.ndarray, case_id: str,
                 extra_files: dict[str, bytes | np.ndarray]) -> Path:
    staging = folder.with_name(f".{folder.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        staging.mkdir()
        case = _write_case(staging, volume, mask, case_id, extra_files)
        _write_descriptor(staging, meta, {case_id: case})
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write_case(folder: Path, volume: Volume, mask: np.ndarray, case_id: str,
                extra_files: dict[str, bytes | np.ndarray]) -> dict:
    """Write a case's files (each atomically and flushed to disk); they count once listed."""
    images = [Path("imagesTr") / f"{case_id}_{index:04d}{FILE_ENDING}"
              for index in range(volume.n_channels)]
    label = Path("labelsTr") / f"{case_id}{FILE_ENDING}"
    for sub in ("imagesTr", "labelsTr", "provenance"):
        (folder / sub).mkdir(exist_ok=True)
    for index, relative in enumerate(images):
        write_image(folder / relative, volume.data[index], volume, overwrite=True)
    write_labels(folder / label, mask, volume, overwrite=True)
    for file_name, content in extra_files.items():
        target = folder / "provenance" / file_name
        if isinstance(content, np.ndarray):
            write_labels(target, content, volume, overwrite=True)
        else:
            with atomic_path(target, overwrite=True) as temporary:
                temporary.write_bytes(content)
    return {"images": [folder / p for p in images], "label": folder / label}
