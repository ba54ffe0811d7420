"""Writes that survive kill -9, concurrent exporters and a full disk (short runs of
``bench/faults.py``, which kills each write path 30 times)."""
from __future__ import annotations

import errno
import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_medseg.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def faults():
    spec = importlib.util.spec_from_file_location("faults", ROOT / "bench" / "faults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_case(faults, tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    return folder, *faults._case(folder, 3)


@pytest.mark.parametrize("kind", ["nifti", "predict"])  # nnU-Net: bench, and the tests below
def test_killed_writes_leave_old_or_new_and_a_rerun_finishes(faults, small_case, kind,
                                                             monkeypatch):
    folder, images, old, new = small_case
    monkeypatch.setenv("NAPARI_MEDSEG_RECOVERY_DIR", str(folder / "recovery"))
    path = faults.WritePath(kind, folder / kind, images, old, new)
    path.work.mkdir()
    row = faults.kill_runs(path, kills=2, rng=random.Random(1))
    assert row["held"] == row["runs"], row["problems"]


_EXPORT = r"""
import sys
import numpy as np
from napari_medseg.export import export_case
from napari_medseg.io import read_volume
from napari_medseg.labels import label_names
volume = read_volume(sys.argv[3:])
mask = np.load(sys.argv[2])
sys.stdin.readline()
try:
    export_case(volume, mask, "nnunet", sys.argv[1], case_id="c1", label_names=label_names(),
                dataset_name="Race")
    print("ok")
except Exception as error:
    print(type(error).__name__, error)
"""


def test_concurrent_exports_share_the_lock(small_case, tmp_path):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    folder, images, old, _ = small_case
    np.save(tmp_path / "mask.npy", old)
    out = tmp_path / "datasets"
    out.mkdir()
    processes = [subprocess.Popen([sys.executable, "-c", _EXPORT, str(out),
                                   str(tmp_path / "mask.npy"), *images],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
    for process in processes:  # both start exporting at once
        process.stdin.write("go\n")
        process.stdin.flush()
    answers = sorted(process.communicate()[0].strip() for process in processes)
    assert answers[1] == "ok" and "already exists" in answers[0]  # one wins, one is told
    datasets = sorted(p.name for p in out.iterdir() if p.name.startswith("Dataset"))
    assert datasets == ["Dataset501_Race"]  # one id, not two folders for the same name
    verify_dataset_integrity(str(out / datasets[0]), 1)


def test_full_disk_is_one_line_and_keeps_the_old_files(small_case, tmp_path, monkeypatch):
    from napari_medseg.export import export_case
    from napari_medseg.export._formats import check_export_set
    from napari_medseg.io import _nifti, read_labels, read_volume
    from napari_medseg.labels import label_names

    _, images, old, new = small_case
    volume = read_volume(images)
    export_case(volume, old, "nifti", tmp_path, case_id="case", label_names=label_names())
    written = _nifti.write_nifti

    def fills_the_disk(path, data, affine):
        written(path, data, affine)  # part of the data reached the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_nifti, "write_nifti", fills_the_disk)
    monkeypatch.setattr("napari_medseg.io._write.write_nifti", fills_the_disk)
    with pytest.raises(InputError, match=r"case_seg.nii.gz: the disk is full \(about") as caught:
        export_case(volume, new, "nifti", tmp_path, case_id="case", label_names=label_names(),
                    overwrite=True)
    assert "\n" not in str(caught.value) and "partial" not in str(caught.value)
    np.testing.assert_array_equal(read_labels(tmp_path / "case_seg.nii.gz").data, old)
    assert check_export_set(tmp_path / "case_seg.provenance.json")
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_a_legacy_dataset_gets_a_listing_before_new_files(small_case, tmp_path):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    from napari_medseg.export import export_case
    from napari_medseg.io import read_volume
    from napari_medseg.labels import label_names

    _, images, old, new = small_case
    volume = read_volume(images)
    folder = export_case(volume, old, "nnunet", tmp_path, case_id="a", label_names=label_names(),
                         dataset_name="Legacy").output
    meta = json.loads((folder / "dataset.json").read_bytes())
    del meta["dataset"]  # as nnU-Net's own tools and older napari-medseg write it
    (folder / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    export_case(volume, new, "nnunet", folder, case_id="b", label_names=label_names())
    meta = json.loads((folder / "dataset.json").read_bytes())
    assert sorted(meta["dataset"]) == ["a", "b"] and meta["numTraining"] == 2
    verify_dataset_integrity(str(folder), 1)


_KILLED_BETWEEN_RENAMES = """
import os, signal, sys
import numpy as np
from napari_medseg.io import Volume, atomic_files, write_labels
from napari_medseg.io import _atomic

moves = []
real = _atomic._replace
def replace_then_die(source, target):
    real(source, target)
    if ".partial" not in target.name:  # a rename of the set, not one inside a file's write
        moves.append(target)
    if len(moves) == 1:  # the set is committed; killed before its second rename
        os.kill(os.getpid(), signal.SIGKILL)
out, value, killed = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "killed"
if killed:
    _atomic._replace = replace_then_die
volume = Volume(np.zeros((1, 6, 7, 8), np.float32), np.eye(4), ("T1",))
with atomic_files([out + "/a_seg.nii.gz", out + "/b_seg.nii.gz"], True) as paths:
    for path in paths:
        write_labels(path, np.full((6, 7, 8), value, np.uint8), volume, overwrite=True)
"""


def test_a_read_after_a_kill_between_a_sets_renames_sees_the_whole_new_set(tmp_path):
    """A writer killed after committing a set (CLI predict's segmentation and
    probabilities) but between its renames: a read before the next write saw the new
    first file beside the old second one. Reading completes the set first."""
    from napari_medseg.io import read_labels

    def write(value: int, how: str) -> int:
        return subprocess.run([sys.executable, "-c", _KILLED_BETWEEN_RENAMES, str(tmp_path),
                               str(value), how], capture_output=True).returncode

    assert write(1, "whole") == 0  # the old set
    assert write(2, "killed") < 0  # the new one: its first rename done, the journal left
    assert list(tmp_path.glob(".commit-*")), "no journal left"
    assert len(list(tmp_path.glob(".b_seg.partial-*"))) == 1
    assert (read_labels(tmp_path / "b_seg.nii.gz").data == 2).all()  # completed, not 1
    assert (read_labels(tmp_path / "a_seg.nii.gz").data == 2).all()
    assert not list(tmp_path.glob(".commit-*")) and not list(tmp_path.glob(".*partial*"))
