"""``napari-medseg uncertainty`` writes maps and the figures JSON."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.sample import case_files, write_case


def test_uncertainty_maps_and_json(tmp_path, small_case, tiny_model_folder, capsys):
    write_case(small_case, tmp_path, "c")
    images, reference = case_files(tmp_path, "c")
    prefix, out = tmp_path / "unc", tmp_path / "unc.json"
    assert main(["uncertainty", *map(str, images), "--method", "tta", "--samples", "3", "-o",
                 str(prefix), "--json", str(out), "--reference", str(reference), "--model",
                 str(tiny_model_folder), "--device", "cpu"]) == 0
    data = json.loads(out.read_bytes())
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


def test_flips_sample_the_fold_given(tmp_path, small_case, tiny_model_of_other_labels):
    """``--folds 1 --method tta`` samples fold 1 (what the library gives for that fold
    alone), not the first fold. (A model whose labels the click network lacks: the
    suggestions come from the maps, not a second opinion, which is not the subject.)"""
    from napari_medseg.io import read_volume
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end
    from napari_medseg.uncertainty import estimate_uncertainty

    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    totals = {}
    for fold in ("0", "1"):
        prefix = tmp_path / f"fold{fold}"
        assert main(["uncertainty", *map(str, images), "--method", "tta", "--samples", "2",
                     "-o", str(prefix), "--json", str(prefix) + ".json", "--model",
                     str(tiny_model_of_other_labels), "--device", "cpu", "--folds", fold]) == 0
        assert json.loads(open(str(prefix) + ".json").read())["model"]["folds"] == 1
        totals[fold] = np.asarray(nib.load(f"{prefix}_total.nii.gz").dataobj).T
    expected = run_to_end(estimate_uncertainty(
        load_model(tiny_model_of_other_labels, folds=[1]), read_volume(images), "tta", 2,
        device="cpu")).maps["total"]
    np.testing.assert_allclose(totals["1"], expected, atol=1e-6)
    assert np.abs(totals["0"] - expected).max() > 1e-3  # fold 0's flips differ


def test_a_reference_with_no_wrong_voxel_still_writes_standard_json(
        tmp_path, small_case, tiny_model_of_other_labels, capsys):
    """The model's own labels as the reference: no voxel is wrong, so the error-detection
    AUROCs are undefined; the JSON says null (not NaN, which JSON readers refuse)."""
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    common = [*map(str, images), "--model", str(tiny_model_of_other_labels),
              "--device", "cpu"]
    assert main(["predict", *common, "-o", str(tmp_path / "own.nii.gz")]) == 0
    out = tmp_path / "u.json"
    assert main(["uncertainty", *common, "--method", "ensemble", "-o", str(tmp_path / "u"),
                 "--json", str(out), "--reference", str(tmp_path / "own.nii.gz")]) == 0
    data = json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(name))
    assert data["calibration"]["error_rate"] == 0.0
    assert set(data["calibration"]["error_detection_auroc"].values()) == {None}
    assert "AUROC n/a" in capsys.readouterr().out


def test_t_below_two_is_refused(tmp_path, small_case, tiny_model_folder, capsys):
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    assert main(["uncertainty", *map(str, images), "--samples", "1", "-o", str(tmp_path / "u"),
                 "--json", str(tmp_path / "u.json"), "--model", str(tiny_model_folder)]) == 2
    assert "T >= 2" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["uncertainty", "predict"])
@pytest.mark.parametrize("overlap", ["1", "-0.1", "half"])
def test_an_overlap_outside_zero_to_one_is_refused_in_one_line(tmp_path, small_case, command,
                                                               overlap, capsys):
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    outputs = ["--json", str(tmp_path / "u.json")] if command == "uncertainty" else []
    with pytest.raises(SystemExit) as stopped:
        main([command, *map(str, images), "-o", str(tmp_path / "out"), *outputs,
              "--overlap", overlap])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].endswith(f"'{overlap}' is not a window overlap: give a fraction from 0 "
                              "up to (not including) 1, for example 0.5")
    assert "Traceback" not in "\n".join(error)
    assert not list(tmp_path.glob("out*")) and not (tmp_path / "u.json").exists()


@pytest.mark.parametrize("option", ["--batch-size", "--samples"])
@pytest.mark.parametrize("count", ["0", "-1", "four"])
def test_a_count_below_one_is_refused_in_one_line(tmp_path, small_case, option, count, capsys):
    """``--batch-size -1`` used to run no window at all and write an empty mask."""
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    command = "predict" if option == "--batch-size" else "uncertainty"
    outputs = ["--json", str(tmp_path / "u.json")] if command == "uncertainty" else []
    with pytest.raises(SystemExit) as stopped:
        main([command, *map(str, images), "-o", str(tmp_path / "out.nii.gz"), *outputs,
              option, count])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].endswith(f"'{count}' is not a count: give a whole number of 1 or more, "
                              "for example 4")
    assert not list(tmp_path.glob("out*")) and not (tmp_path / "u.json").exists()
