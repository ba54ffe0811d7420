"""``napari-medseg topology`` writes the documented JSON and an overlay."""
from __future__ import annotations

import json

import numpy as np

from napari_medseg.cli import main
from napari_medseg.io import read_labels, write_labels
from napari_medseg.sample import vessel_tree


def test_topology_json_and_overlay(tmp_path, capsys):
    volume, mask = vessel_tree(3)
    broken = mask.data.copy()
    broken[18:21] = 0
    broken[2:4, 2:4, 50:52] = 1
    path = write_labels(tmp_path / "vessels_seg.nii.gz", broken, volume)
    reference = write_labels(tmp_path / "ref.nii.gz", mask.data, volume)
    out, overlay = tmp_path / "topo.json", tmp_path / "overlay.nii.gz"
    assert main(["topology", str(path), "--expect", "1:b0=1,b1=0,b2=0,tubular", "--reference",
                 str(reference), "--json", str(out), "--overlay", str(overlay)]) == 0
    data = json.loads(out.read_bytes())
    target = data["targets"]["1"]
    assert target["betti"] == {"b0": 3, "b1": 0, "b2": 0} and not target["matches_expected"]
    kinds = sorted(error["kind"] for error in target["errors"])
    assert kinds == ["broken_tube", "fragment", "split"]
    fragment = next(e for e in target["errors"] if e["kind"] == "fragment")
    assert fragment["centroid_voxel_zyx"] == [2.5, 2.5, 50.5] and fragment["fix"] == "remove"
    assert target["reference_betti"] == {"b0": 1, "b1": 0, "b2": 0} and 0 < target["cl_dice"] < 1
    codes = read_labels(overlay).data
    assert codes[2, 2, 50] == data["overlay_codes"]["fragment"]
    assert "CHECK" in capsys.readouterr().out


def test_float_mask_is_refused(tmp_path, capsys):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.full((4, 4, 4), 0.4, np.float32), np.eye(4)),
             str(tmp_path / "probs.nii.gz"))
    assert main(["topology", str(tmp_path / "probs.nii.gz"), "--json",
                 str(tmp_path / "o.json")]) == 2
    assert "fractional" in capsys.readouterr().err


def test_empty_mask_is_valid(tmp_path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)),
             str(tmp_path / "empty_seg.nii.gz"))
    assert main(["topology", str(tmp_path / "empty_seg.nii.gz"), "--json",
                 str(tmp_path / "o.json")]) == 0
    assert json.loads((tmp_path / "o.json").read_bytes())["targets"] == {}


def test_the_rule_that_decided_is_stated_and_a_tunnel_needs_an_expectation(tmp_path, capsys):
    """Without an expectation a tunnel is reported in b1 but not as an error (tunnels are
    often anatomy); the JSON and the output say so, and an expectation makes it one."""
    grid = np.ogrid[:32, :32, :32]
    blob = (((grid[0] - 16) ** 2 + (grid[1] - 16) ** 2 + (grid[2] - 16) ** 2) <= 100)
    blob = blob.astype(np.uint8)
    blob[:, 14:18, 14:18] = 0  # a tunnel through the ball
    path = tmp_path / "ball_seg.nii.gz"
    import nibabel as nib

    nib.save(nib.Nifti1Image(blob, np.eye(4)), str(path))
    out = tmp_path / "o.json"
    assert main(["topology", str(path), "--json", str(out)]) == 0
    target = json.loads(out.read_bytes())["targets"]["1"]
    assert target["betti"]["b1"] == 1 and target["errors"] == []
    assert target["rule"].startswith("no expectation given") and "tunnels" in target["rule"]
    captured = capsys.readouterr()
    assert "expected default rule" in captured.out and "--expect" in captured.err
    assert main(["topology", str(path), "--json", str(out), "--overwrite",
                 "--expect", "1:b1=0"]) == 0
    target = json.loads(out.read_bytes())["targets"]["1"]
    assert [e["kind"] for e in target["errors"]] == ["handle"]
    assert target["rule"] == "expected b1=0; b0, b2 by the default rule"


def test_brats_flag_names_labels_and_checks_regions_and_vessel_samples(tmp_path, capsys):
    """``topology --brats``: labels named NCR/ED/ET and regions WT/TC checked with the
    built-in model's expectations; ``sample --vessels`` writes a tree that checks clean."""
    from napari_medseg.sample import generate_case

    case = generate_case(7, spacing=3.0)
    path = write_labels(tmp_path / "c_seg.nii.gz", case.labels.data, case.volume)
    out = tmp_path / "t.json"
    assert main(["topology", str(path), "--brats", "--json", str(out)]) == 0
    targets = json.loads(out.read_bytes())["targets"]
    assert {"NCR", "ED", "ET", "WT", "TC"} <= set(targets)
    assert targets["WT"]["labels"] == [1, 2, 3] and targets["WT"]["expected"]
    assert main(["sample", str(tmp_path / "vessels"), "--vessels", "--cases", "1",
                 "--seed", "3"]) == 0
    mask = next((tmp_path / "vessels").glob("*_seg.nii.gz"))
    assert len(list((tmp_path / "vessels").glob("*_mra.nii.gz"))) == 1
    assert main(["topology", str(mask), "--expect", "1:b0=1,b1=0,b2=0,tubular",
                 "--json", str(tmp_path / "v.json")]) == 0
    vessel = json.loads((tmp_path / "v.json").read_bytes())["targets"]["1"]
    assert vessel["betti"] == {"b0": 1, "b1": 0, "b2": 0} and vessel["errors"] == []
