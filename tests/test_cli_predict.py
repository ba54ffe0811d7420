"""``napari-medseg predict`` and ``models`` on real files."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from napari_medseg.cli import main
from napari_medseg.inference import predict
from napari_medseg.io import read_labels, read_volume
from napari_medseg.models import load_model
from napari_medseg.models.device import cpu_has_native_bf16
from napari_medseg.progress import run_to_end
from napari_medseg.sample import case_files, write_case


def test_predict_writes_labels_and_probabilities(tmp_path, small_case, tiny_model_folder, capsys):
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    out, probs = tmp_path / "seg.nii.gz", tmp_path / "probs.nii.gz"
    status = main(["predict", *map(str, reversed(images)), "-o", str(out), "--model",
                   str(tiny_model_folder), "--device", "cpu", "--probabilities", str(probs)])
    assert status == 0
    picked = "bfloat16" if cpu_has_native_bf16() else "float32"  # what auto takes here
    assert f"tiny 0.0.1 on cpu ({picked}), 2 folds" in capsys.readouterr().out
    volume = read_volume(images)
    expected = run_to_end(predict(load_model(tiny_model_folder), volume, device="cpu"))
    np.testing.assert_array_equal(read_labels(out).data, expected.labels)
    stored = nib.load(str(probs))
    assert stored.shape == (*volume.shape[::-1], 4)
    np.testing.assert_allclose(stored.affine, volume.affine, atol=1e-5)
    np.testing.assert_allclose(np.asarray(stored.dataobj).sum(-1), 1.0, atol=1e-4)
    # refuses to overwrite
    assert main(["predict", *map(str, images), "-o", str(out), "--model",
                 str(tiny_model_folder)]) == 2


def test_bfloat16_on_a_cpu_that_emulates_it_is_warned_of_before_the_run(
        tmp_path, small_case, tiny_model_folder, capsys, monkeypatch):
    from napari_medseg.models import device

    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    arguments = ["predict", *map(str, images), "-o", str(tmp_path / "seg.nii.gz"), "--model",
                 str(tmp_path / "no model here"), "--device", "cpu", "--precision", "bfloat16"]
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *a: False)
    assert main(arguments) == 2  # the missing model still ends it, with one line
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "warning: bfloat16 is emulated on this CPU" in lines[0]
    assert "error:" in lines[1]
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *a: True)
    assert main(arguments) == 2
    assert "warning" not in capsys.readouterr().err


def test_predict_names_missing_contrast(tmp_path, small_case, tiny_model_folder, capsys):
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    status = main(["predict", *map(str, images[:3]), "-o", str(tmp_path / "x.nii.gz"),
                   "--model", str(tiny_model_folder)])
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert "lacks FLAIR" in error and len(error.splitlines()) == 1


def test_a_4d_file_is_named_with_contrasts(tmp_path, small_case, tiny_model_folder, capsys):
    """A 4D file stored FLAIR-first (as the Medical Segmentation Decathlon's BraTS task)
    predicts as the four named files do once --contrasts names its channels."""
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")  # T1, T1ce, T2, FLAIR
    stored = [images[3], images[0], images[1], images[2]]
    first = nib.load(str(stored[0]))
    stack = np.stack([np.asarray(nib.load(str(p)).dataobj) for p in stored], axis=-1)
    four_d = tmp_path / "case_4d.nii.gz"
    nib.save(nib.Nifti1Image(stack, first.affine), str(four_d))
    model = ["--model", str(tiny_model_folder), "--device", "cpu"]
    assert main(["predict", str(four_d), "-o", str(tmp_path / "x.nii.gz"), *model]) == 2
    error = capsys.readouterr().err.strip()
    assert "lacks T1, T1ce, T2, FLAIR" in error and "--contrasts" in error
    assert main(["predict", str(four_d), "-o", str(tmp_path / "4d.nii.gz"), *model,
                 "--contrasts", "FLAIR", "T1", "T1ce", "T2"]) == 0
    assert main(["predict", *map(str, images), "-o", str(tmp_path / "3d.nii.gz"), *model]) == 0
    np.testing.assert_array_equal(read_labels(tmp_path / "4d.nii.gz").data,
                                  read_labels(tmp_path / "3d.nii.gz").data)
    assert main(["predict", str(four_d), "-o", str(tmp_path / "y.nii.gz"), *model,
                 "--contrasts", "FLAIR", "T1"]) == 2
    assert "2 channel names given for 4 channels" in capsys.readouterr().err


def test_models_lists_builtins_as_json(capsys):
    from napari_medseg.models import builtin_models

    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listing["models"]] == list(builtin_models(task=None))
    assert {m["name"]: m["task"] for m in listing["models"]}["click_unet"] == "interactive"
    assert listing["devices"][-1] == "cpu"
    assert listing["auto_precision"]["cpu"] == ("bfloat16" if cpu_has_native_bf16()
                                                else "float32")
