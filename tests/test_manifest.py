"""The npe2 manifest: every command resolves; the reader claims only our files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from npe2 import PluginManifest
from npe2.manifest.utils import import_python_name

import napari_medseg
from napari_medseg._reader import napari_get_reader, read_layers

MANIFEST = Path(napari_medseg.__file__).parent / "napari.yaml"


def test_manifest_is_installed_and_every_command_resolves():
    manifest = PluginManifest.from_distribution("napari-medseg")
    assert manifest.name == "napari-medseg"
    commands = manifest.contributions.commands
    assert {c.id for c in commands} >= {"napari-medseg.get_reader", "napari-medseg.dock",
                                        "napari-medseg.write_labels", "napari-medseg.sample_case"}
    for command in commands:
        assert callable(import_python_name(command.python_name)), command.id
    referenced = [r.command for r in manifest.contributions.readers] + \
        [w.command for w in manifest.contributions.writers] + \
        [s.command for s in manifest.contributions.sample_data] + \
        [w.command for w in manifest.contributions.widgets]
    assert set(referenced) <= {c.id for c in commands}


def test_reader_returns_none_for_files_it_does_not_handle(tmp_path):
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / "plain_folder").mkdir()
    (tmp_path / "plain_folder" / "a.txt").write_text("x", encoding="utf-8")
    for name in ("notes.txt", "photo.png", "plain_folder"):
        assert napari_get_reader(str(tmp_path / name)) is None
    assert napari_get_reader([str(tmp_path / "notes.txt")]) is None


def test_reader_claims_nifti_and_reads_images_and_labels(tmp_path, small_case):
    from napari_medseg.sample import case_files, write_case

    write_case(small_case, tmp_path, "c1")
    images, reference = case_files(tmp_path, "c1")
    assert napari_get_reader(str(images[1])) is read_layers
    [(data, kwargs, kind)] = read_layers(str(images[1]))
    assert kind == "image" and kwargs["name"] == "T1ce"
    from napari_medseg.export import content_fingerprint  # autosave's key, read in the worker

    assert kwargs["metadata"]["napari_medseg"]["content"] == content_fingerprint(data)
    # placed by the file's affine: 3 mm voxels, world axes (inferior, posterior, left)
    np.testing.assert_allclose(np.abs(kwargs["affine"][:3, :3]), np.eye(3) * 3.0)
    several = read_layers([str(image) for image in images])  # a case's files opened at once
    assert [kwargs["visible"] for _, kwargs, _ in several] == [False] * (len(images) - 1) + [
        True]
    [(labels, label_kwargs, label_kind)] = read_layers(str(reference))
    assert label_kind == "labels"
    np.testing.assert_array_equal(labels, small_case.labels.data)
    assert label_kwargs["features"]["name"][1:] == ["NCR", "ED", "ET"]


def test_reader_reads_a_segmentation_once_and_a_mask_named_file_of_fractions_as_image(
        tmp_path, small_case, monkeypatch):
    from napari_medseg.io import _read
    from napari_medseg.io._nifti import write_nifti
    from napari_medseg.sample import case_files, write_case

    write_case(small_case, tmp_path, "c1")
    _, reference = case_files(tmp_path, "c1")
    reads = []
    original = _read._read_raw
    monkeypatch.setattr(_read, "_read_raw", lambda path, **kw: (
        reads.append(Path(path).name), original(path, **kw))[1])
    [(labels, _, kind)] = read_layers(str(reference))
    assert kind == "labels" and reads == [reference.name]
    np.testing.assert_array_equal(labels, small_case.labels.data)
    soft = tmp_path / "c1_mask.nii.gz"  # a probability map named like a mask
    write_nifti(soft, small_case.labels.data.astype(np.float32) / 4.0,
                small_case.labels.affine)
    [(data, kwargs, kind)] = read_layers(str(soft))
    assert kind == "image" and float(np.asarray(data).max()) == 0.75


def test_reader_turns_bad_file_into_notification_and_no_layer(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    assert read_layers(str(bad)) == [(None,)]
