"""``napari-medseg uncertainty`` writes maps and the figures JSON."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from napari_medseg.cli import main
from napari_medseg.sample import case_files, write_case


def test_uncertainty_maps_and_json(tmp_path, small_case, tiny_model_folder, capsys):
    write_case(small_case, tmp_path, "c")
    images, reference = case_files(tmp_path, "c")
    prefix, out = tmp_path / "unc", tmp_path / "unc.json"
    assert main(["uncertainty", *map(str, images), "--method", "tta", "--samples", "3", "-o",
                 str(prefix), "--json", str(out), "--reference", str(reference), "--model",
                 str(tiny_model_folder), "--device", "cpu"]) == 0
    data = json.loads(out.read_text())
    assert data["method"] == "tta" and data["samples"] == 3
    assert set(data["structures"]) == {"NCR", "ED", "ET", "WT", "TC"}
    assert data["calibration"]["bins"] == 15 and "reliability" in data["calibration"]
    assert data["suggestions_from"] == "click network"  # the model has the network's labels
    assert all(s["label"] in (1, 2, 3) for s in data["suggestions"])
    total = nib.load(data["maps"]["total"])
    assert total.shape == small_case.volume.shape[::-1]
    values = np.asarray(total.dataobj)
    assert values.min() >= 0 and values.max() <= 1.0001
    assert "ECE" in capsys.readouterr().out


def test_t_below_two_is_refused(tmp_path, small_case, tiny_model_folder, capsys):
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    assert main(["uncertainty", *map(str, images), "--samples", "1", "-o", str(tmp_path / "u"),
                 "--json", str(tmp_path / "u.json"), "--model", str(tiny_model_folder)]) == 2
    assert "T >= 2" in capsys.readouterr().err
