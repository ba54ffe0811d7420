"""``napari-medseg shapley`` writes the documented JSON and maps."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy.stats import rankdata

from napari_medseg.cli import main
from napari_medseg.sample import case_files, write_case


def test_shapley_json_and_maps(tmp_path, small_case, coarse_model_folder):
    write_case(small_case, tmp_path, "c")
    images, reference = case_files(tmp_path, "c")
    out, maps = tmp_path / "shap.json", tmp_path / "maps"
    assert main(["shapley", *map(str, images), "--reference", str(reference), "--model",
                 str(coarse_model_folder), "--json", str(out), "--maps", str(maps),
                 "--device", "cpu"]) == 0
    data = json.loads(out.read_bytes())
    assert data["value"] == "dice_vs_reference" and data["ranking_source"] == "protocol"
    assert set(data["targets"]) == {"NCR", "ED", "ET", "WT", "TC"}
    ed = data["targets"]["ED"]
    assert sum(ed["phi"].values()) == pytest.approx(ed["v_all"] - ed["v_empty"], abs=1e-9)
    names = list(ed["phi"])  # ranks: 1 for the largest phi, ties share their average rank
    expected = rankdata([-ed["phi"][name] for name in names], method="average")
    assert [ed["ranking"][name] for name in names] == pytest.approx(list(expected))
    assert 0.0 <= ed["nsf"] <= 1.0 and len(ed["per_fold_phi"]) == 2
    stored = nib.load(data["maps"]["ED"]["file"])
    assert stored.shape == (*small_case.volume.shape[::-1], 4)
    assert np.isfinite(np.asarray(stored.dataobj)).all()


def test_bad_ranking_file_is_named(tmp_path, small_case, coarse_model_folder, capsys):
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    ranking = tmp_path / "ranking.json"
    ranking.write_text(json.dumps({"ED": {"T1": 1, "T1ce": 1, "T2": 2, "FLAIR": 3}}),
                       encoding="utf-8")
    assert main(["shapley", *map(str, images), "--model", str(coarse_model_folder), "--json",
                 str(tmp_path / "o.json"), "--ranking", str(ranking)]) == 2
    assert "not a permutation" in capsys.readouterr().err


def test_ranking_file_that_is_not_text_gets_one_line(tmp_path, small_case, coarse_model_folder,
                                                      capsys):
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    ranking = tmp_path / "ranking.json"
    ranking.write_bytes(b'{"ED": "\xff\xfe\x00"}')  # not UTF-8
    assert main(["shapley", *map(str, images), "--model", str(coarse_model_folder), "--json",
                 str(tmp_path / "o.json"), "--ranking", str(ranking)]) == 2
    error = capsys.readouterr().err
    assert "cannot read the ranking file" in error and "Traceback" not in error


def test_shapley_of_one_fold_is_that_fold_of_the_ensemble(tmp_path, small_case,
                                                          coarse_model_folder, capsys):
    """``--folds 1`` explains fold 1 alone: its values are that fold's in a run of every
    fold, and the JSON stays strict JSON (no NaN for the rank variance of one fold)."""
    write_case(small_case, tmp_path, "c")
    images, reference = case_files(tmp_path, "c")
    common = [*map(str, images), "--reference", str(reference), "--model",
              str(coarse_model_folder), "--device", "cpu", "--ranking", "none"]
    assert main(["shapley", *common, "--json", str(tmp_path / "all.json")]) == 0
    assert main(["shapley", *common, "--folds", "1", "--json", str(tmp_path / "one.json")]) == 0
    assert "(one fold)" in capsys.readouterr().out

    def strict(text):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))

    every, one = (strict((tmp_path / f"{n}.json").read_text()) for n in ("all", "one"))
    assert every["model"]["folds"] == 2 and one["model"]["folds"] == 1
    moved = 0.0
    for name, target in one["targets"].items():
        assert target["rank_variance"] is None and len(target["per_fold_phi"]) == 1
        fold_1 = every["targets"][name]["per_fold_phi"][1]
        assert target["phi"] == pytest.approx(fold_1, abs=1e-9)
        moved = max(moved, *(abs(target["phi"][c] - every["targets"][name]["phi"][c])
                             for c in fold_1))
    assert moved > 1e-3  # the ensemble's values are not fold 1's: the choice mattered
