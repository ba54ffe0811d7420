"""nnU-Net v2 raw datasets: create one, or append a case without touching the others.

Layout (nnU-Net v2 "dataset format"): ``DatasetNNN_Name/imagesTr/
{case}_{0000..}.nii.gz``, ``labelsTr/{case}.nii.gz`` and ``dataset.json`` with
``channel_names``, ``labels``, ``numTraining`` and ``file_ending``. A case is
written into a staging folder first and moved into place file by file, then
``dataset.json`` is rewritten atomically, so a failure leaves the dataset as
it was. Provenance and the model's original mask go to ``provenance/``, which
nnU-Net ignores.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError, describe
from napari_medseg.io import Volume, write_image, write_labels
from napari_medseg.io._atomic import atomic_path

FILE_ENDING = ".nii.gz"
_DATASET = re.compile(r"^Dataset(\d{3})_(.+)$")


def dataset_folder(out: str | Path, name: str | None, dataset_id: int | None = None) -> Path:
    """The dataset folder: ``out`` itself when it is one, an existing ``Dataset*_{name}``
    inside it, or a new ``DatasetNNN_{name}`` with the next free id (from 501)."""
    out = Path(out)
    if _DATASET.match(out.name):
        return out
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


def append_case(out: str | Path, volume: Volume, mask: np.ndarray, case_id: str,
                label_names: dict[int, str], name: str | None = None,
                dataset_id: int | None = None, overwrite: bool = False,
                extra_files: dict[str, bytes | np.ndarray] | None = None) -> Path:
    """Add a case to an nnU-Net v2 raw dataset (created when missing); returns its folder.

    Raises
    ------
    InputError
        For another dataset's channels or labels, a mask label the dataset lacks, a
        case that exists (unless ``overwrite``), or a folder that is not writable.
    """
    folder = dataset_folder(out, name, dataset_id)
    parent = folder.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise InputError(f"{parent}: the output folder does not exist or is not writable")
    descriptor_path = folder / "dataset.json"
    wanted = _descriptor(list(volume.channel_names), label_names, 0,
                         _DATASET.match(folder.name).group(2))
    if descriptor_path.exists():
        try:
            existing = json.loads(descriptor_path.read_text())
        except json.JSONDecodeError as error:
            raise InputError(describe(descriptor_path, f"is not valid JSON ({error.msg})"))
        _check_compatible(existing, wanted, folder, mask)
        wanted = {**existing, "numTraining": existing.get("numTraining", 0)}
    elif not set(np.unique(mask).tolist()) <= {0, *label_names}:
        raise InputError(f"the mask has labels {sorted(set(np.unique(mask).tolist()))} but "
                         f"only {sorted(label_names)} are named: name every label first")
    label_path = folder / "labelsTr" / f"{case_id}{FILE_ENDING}"
    if label_path.exists() and not overwrite:
        raise InputError(f"{folder.name}: case {case_id!r} already exists. Choose another "
                         "case id, or pass overwrite=True (CLI: --overwrite)")
    _write_staged(folder, volume, mask, case_id, extra_files or {})
    wanted["numTraining"] = len(list((folder / "labelsTr").glob(f"*{FILE_ENDING}")))
    with atomic_path(descriptor_path, overwrite=True) as temporary:
        temporary.write_text(json.dumps(wanted, indent=2) + "\n")
    return folder


def _write_staged(folder: Path, volume: Volume, mask: np.ndarray, case_id: str,
                  extra_files: dict[str, bytes | np.ndarray]) -> None:
    staging = folder / f".staging-{uuid.uuid4().hex[:8]}"
    moves: list[tuple[Path, Path]] = []
    try:
        (staging / "imagesTr").mkdir(parents=True)
        (staging / "labelsTr").mkdir()
        (staging / "provenance").mkdir()
        for index in range(volume.n_channels):
            relative = Path("imagesTr") / f"{case_id}_{index:04d}{FILE_ENDING}"
            write_image(staging / relative, volume.data[index], volume)
            moves.append((staging / relative, folder / relative))
        relative = Path("labelsTr") / f"{case_id}{FILE_ENDING}"
        write_labels(staging / relative, mask, volume)
        moves.append((staging / relative, folder / relative))
        for file_name, content in extra_files.items():
            target = staging / "provenance" / file_name
            if isinstance(content, np.ndarray):
                write_labels(target, content, volume)
            else:
                target.write_bytes(content)
            moves.append((target, folder / "provenance" / file_name))
        for source, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
