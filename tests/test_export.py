"""Export for retraining: nnU-Net v2 datasets (checked by nnU-Net), NIfTI, zarr, safety."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from napari_medseg.errors import InputError
from napari_medseg.export import (
    autosave, discard_recovery, export_case, find_recovery, read_nnunet_dataset)
from napari_medseg.io import read_labels, read_volume, write_labels
from napari_medseg.labels import label_names
from napari_medseg.sample import case_files, generate_case, write_case


@pytest.fixture(scope="module")
def written_cases(tmp_path_factory):
    """Two small generator cases on disk (so provenance can checksum their files)."""
    folder = tmp_path_factory.mktemp("cases")
    cases = {}
    for seed, case_id in ((11, "case_a"), (12, "case_b")):
        write_case(generate_case(seed, spacing=3.0), folder, case_id)
        images, reference = case_files(folder, case_id)
        cases[case_id] = (read_volume(images), read_labels(reference).data)
    return cases


def test_nnunet_dataset_passes_nnunets_check_and_appends(written_cases, tmp_path):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    volume, labels = written_cases["case_a"]
    original = labels.copy()
    original[labels == 3] = 1
    result = export_case(volume, labels, "nnunet", tmp_path, original=original,
                         history=[{"position": [1, 2, 3], "positive": True}],
                         label_names=label_names(), dataset_name="Corrected")
    folder = result.output
    assert folder.name == "Dataset501_Corrected"
    verify_dataset_integrity(str(folder), 1)
    first_label = (folder / "labelsTr" / "case_a.nii.gz").read_bytes()
    volume_b, labels_b = written_cases["case_b"]
    again = export_case(volume_b, labels_b, "nnunet", tmp_path, label_names=label_names(),
                        dataset_name="Corrected")
    assert again.output == folder
    verify_dataset_integrity(str(folder), 1)
    meta = json.loads((folder / "dataset.json").read_bytes())
    assert meta["numTraining"] == 2 and meta["channel_names"] == {
        "0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
    assert meta["labels"] == {"background": 0, "NCR": 1, "ED": 2, "ET": 3}
    assert (folder / "labelsTr" / "case_a.nii.gz").read_bytes() == first_label
    record = json.loads((folder / "provenance" / "case_a.provenance.json").read_bytes())
    assert all(len(s["sha256"]) == 64 for s in record["sources"]) and len(record["sources"]) == 4
    assert record["changes"]["ET"]["changed_fraction"] == 1.0
    assert record["changes"]["ED"]["changed_fraction"] == 0.0
    assert record["edit_history"][0]["position"] == [1, 2, 3]
    np.testing.assert_array_equal(
        read_labels(folder / "provenance" / "case_a_model_seg.nii.gz").data, original)
    cases = read_nnunet_dataset(folder)
    assert [c[0] for c in cases] == ["case_a", "case_b"]
    np.testing.assert_allclose(cases[0][1].affine, volume.affine, atol=1e-5)


def test_nnunet_refuses_mismatches_and_writes_nothing(written_cases, tmp_path):
    volume, labels = written_cases["case_a"]
    folder = export_case(volume, labels, "nnunet", tmp_path, label_names=label_names(),
                         dataset_name="Corrected").output
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    with pytest.raises(InputError, match="already exists"):
        export_case(volume, labels, "nnunet", folder, label_names=label_names())
    bad = labels.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(InputError, match=r"label\(s\) \[7\]"):
        export_case(volume, bad, "nnunet", folder, case_id="other", label_names=label_names())
    from napari_medseg.io import Volume

    two = Volume(volume.data[:2], volume.affine, ("T1", "T2"))
    with pytest.raises(InputError, match="has channels"):
        export_case(two, labels, "nnunet", folder, case_id="other", label_names=label_names())
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="cannot create the output folder"):
        export_case(volume, labels, "nnunet", not_a_folder / "sub", label_names=label_names(),
                    dataset_name="X")


def test_nifti_and_zarr_exports_keep_geometry_and_provenance(written_cases, tmp_path):
    volume, labels = written_cases["case_a"]
    original = np.zeros_like(labels)
    nifti = export_case(volume, labels, "nifti", tmp_path, original=original,
                        label_names=label_names())
    assert nifti.output.name == "case_a_seg.nii.gz"
    back = read_labels(nifti.output)
    np.testing.assert_array_equal(back.data, labels)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-5)
    assert json.loads((tmp_path / "case_a_seg.provenance.json").read_bytes())[
        "original_mask"] == "case_a_model_seg.nii.gz"
    with pytest.raises(InputError, match="already exists"):
        export_case(volume, labels, "nifti", tmp_path)
    store = export_case(volume, labels, "zarr", tmp_path, original=original).output
    np.testing.assert_array_equal(read_labels(store).data, labels)
    import zarr

    group = zarr.open_group(str(store), mode="r")
    assert group.attrs["provenance"]["geometry"]["shape_zyx"] == list(labels.shape)
    assert group.attrs["multiscales"][0]["datasets"][0]["path"] == "0"  # OME-Zarr (NGFF)
    assert "image-label" in group.attrs
    np.testing.assert_array_equal(group["original_labels"][:], original)


_WRITER = """
import sys, numpy as np
from napari_medseg.io import write_labels
target = sys.argv[1]
mask = np.random.default_rng(0).integers(0, 4, size=(400, 400, 400)).astype(np.uint8)
write_labels(target, mask, np.eye(4), overwrite=True)
"""


def test_killed_writer_leaves_previous_file_intact(tmp_path):
    target = tmp_path / "mask.nii.gz"
    previous = np.ones((8, 8, 8), np.uint8)
    write_labels(target, previous, np.eye(4))
    process = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)])
    deadline = time.time() + 60
    while not list(tmp_path.glob(".mask.partial-*")) and time.time() < deadline:
        time.sleep(0.02)
    assert list(tmp_path.glob(".mask.partial-*")), "the writer never started writing"
    process.send_signal(signal.SIGKILL)
    process.wait()
    np.testing.assert_array_equal(read_labels(target).data, previous)


def test_autosave_restore_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_MEDSEG_RECOVERY_DIR", str(tmp_path / "recovery"))
    labels = np.zeros((6, 7, 8), np.uint8)
    labels[2:4, 3:5, 4:6] = 3
    sources = [str(tmp_path / "case_t1.nii.gz")]
    assert find_recovery(sources, "segmentation") is None
    autosave(labels, sources, "segmentation", history=[{"position": [2, 3, 4]}])
    found = find_recovery(sources, "segmentation")
    np.testing.assert_array_equal(found.load(), labels)
    assert found.record["history"][0]["position"] == [2, 3, 4]
    assert find_recovery(sources, "other layer") is None
    discard_recovery(sources, "segmentation")
    assert find_recovery(sources, "segmentation") is None
    assert not [p for p in (tmp_path / "recovery").iterdir() if ".partial" in p.name]


def test_export_cli(written_cases, tmp_path, capsys):
    from napari_medseg.cli import main

    folder = tmp_path / "cases"
    write_case(generate_case(11, spacing=3.0), folder, "case_a")
    images, reference = case_files(folder, "case_a")
    out = tmp_path / "datasets"
    out.mkdir()
    assert main(["export", *map(str, images), "--mask", str(reference), "--format", "nnunet",
                 "--out", str(out), "--dataset-name", "Cli"]) == 0
    assert (out / "Dataset501_Cli" / "labelsTr" / "case_a.nii.gz").is_file()
    assert main(["export", *map(str, images), "--mask", str(reference), "--format", "nnunet",
                 "--out", str(out), "--dataset-name", "Cli"]) == 2
    assert "already exists" in capsys.readouterr().err
    # a full nnU-Net name is taken as given, id and name
    assert main(["export", *map(str, images), "--mask", str(reference), "--format", "nnunet",
                 "--out", str(out), "--dataset-name", "Dataset901_Hidden"]) == 0
    assert (out / "Dataset901_Hidden" / "labelsTr" / "case_a.nii.gz").is_file()
    assert not list(out.glob("Dataset*_Dataset901_Hidden"))
    capsys.readouterr()
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "history.json").write_text(
        '{"clicks": [{"position": [1, 2, 3], "positive": true}]}', encoding="utf-8")
    for history, problem in ((tmp_path / "missing.json", "no such file"),
                             (tmp_path / "list.json", "click 1"),
                             (tmp_path, "")):
        assert main(["export", *map(str, images), "--mask", str(reference), "--format", "nifti",
                     "--out", str(tmp_path), "--history", str(history)]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and problem in error and "Traceback" not in error
    assert main(["export", *map(str, images), "--mask", str(reference), "--format", "nifti",
                 "--out", str(tmp_path), "--history", str(tmp_path / "history.json")]) == 0
    record = json.loads((tmp_path / "case_a_seg.provenance.json").read_bytes())
    assert record["edit_history"][0]["position"] == [1, 2, 3]


@pytest.mark.parametrize("case_id", ["../escaped", "/tmp/abs", "a/b", "..", "x y"])
def test_case_ids_that_would_leave_the_folder_are_refused(tmp_path, case_id):
    from napari_medseg.errors import InputError
    from napari_medseg.export import export_case
    from napari_medseg.sample import generate_case

    case = generate_case(3, spacing=4.0)
    with pytest.raises(InputError, match="not a plain name"):
        export_case(case.volume, case.labels.data, "nifti", tmp_path / "out", case_id=case_id)
    assert not any(tmp_path.rglob("*.nii.gz"))


def test_recovery_is_keyed_by_content_and_damaged_files_are_moved_aside(tmp_path):
    from napari_medseg.export import content_fingerprint, recovery_dir

    case_a, case_b = np.zeros((6, 7, 8), np.float32), np.ones((6, 7, 8), np.float32)
    edits = np.zeros((6, 7, 8), np.uint8)
    edits[1:3, 2:4, 3:5] = 2
    autosave(edits, [], "labels", content=content_fingerprint(case_a))
    assert find_recovery([], "labels", content_fingerprint(case_b)) is None  # same shape
    found = find_recovery([], "labels", content_fingerprint(case_a))
    np.testing.assert_array_equal(found.load(), edits)
    damages = {"truncated": found.labels_path.read_bytes()[:40], "not a zip": b"hello",
               "wrong keys": None, "shape": None}
    for kind, content in damages.items():
        autosave(edits, [], kind, content="x")
        labels_path = find_recovery([], kind, "x").labels_path
        if kind == "wrong keys":
            with open(labels_path, "wb") as handle:
                np.savez(handle, other=edits)
        elif kind == "shape":
            with open(labels_path, "wb") as handle:
                np.savez(handle, labels=edits[:3])
        else:
            labels_path.write_bytes(content)
        with pytest.raises(InputError, match="recovery file is damaged.*moved aside") as caught:
            find_recovery([], kind, "x")
        assert "\n" not in str(caught.value)
        assert find_recovery([], kind, "x") is None  # moved aside: never raises twice
        assert list(recovery_dir().glob(f"{labels_path.name}.damaged-*"))  # kept, not deleted


def test_autosave_to_a_folder_that_cannot_be_created_is_one_line(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("NAPARI_MEDSEG_RECOVERY_DIR", str(blocker / "recovery"))
    with pytest.raises(InputError, match="cannot be created.*NAPARI_MEDSEG_RECOVERY_DIR"):
        autosave(np.zeros((2, 2, 2), np.uint8), [], "labels")


def test_export_makes_a_missing_folder_and_names_contrast_only_files_by_their_folder(
        written_cases, tmp_path):
    from napari_medseg.export import default_case_id
    from napari_medseg.io import Volume

    volume, labels = written_cases["case_a"]
    nested = tmp_path / "new" / "exports"
    result = export_case(volume, labels, "nifti", nested, label_names=label_names())
    assert result.output.parent == nested and result.output.name == "case_a_seg.nii.gz"
    ids = []
    for folder in ("patient_07", "patient_08"):  # t1.nii.gz ... flair.nii.gz in each folder
        sources = tuple(str(tmp_path / folder / f"{c}.nii.gz") for c in
                        ("t1", "t1ce", "t2", "flair"))
        ids.append(default_case_id(Volume(volume.data, volume.affine, volume.channel_names,
                                          sources)))
    assert ids == ["patient_07", "patient_08"]
    two = tuple(str(tmp_path / f"c1_{c}.nii.gz") for c in ("t1", "t1ce"))  # not "c1_t1"
    assert default_case_id(Volume(volume.data[:2], volume.affine, ("T1", "T1ce"), two)) == "c1"


@pytest.mark.parametrize("dataset_id", [-3, 0, 1000])
def test_a_dataset_id_outside_nnunets_range_is_refused(written_cases, tmp_path, dataset_id):
    """Ids outside 1-999 ended in an AttributeError after the folder name failed to parse."""
    volume, mask = written_cases["case_a"]
    with pytest.raises(InputError, match=f"dataset id {dataset_id}: nnU-Net's ids run from 1 "
                                         "to 999"):
        export_case(volume, mask, "nnunet", tmp_path, case_id="case_a", dataset_name="Foo",
                    dataset_id=dataset_id)
    assert not list(tmp_path.glob("Dataset*"))
