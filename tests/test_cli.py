"""The command line: sample and info on real files."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.io import read_labels, read_volume


def test_help_lists_subcommands():
    result = subprocess.run([sys.executable, "-m", "napari_medseg", "--help"],
                            capture_output=True, text=True, check=True)
    for command in ("sample", "info", "view"):
        assert command in result.stdout


def test_sample_writes_cases_with_references(tmp_path, capsys):
    assert main(["sample", str(tmp_path), "--cases", "2", "--seed", "40", "--spacing", "3"]) == 0
    output = capsys.readouterr().out
    assert "medseg_000040" in output and "medseg_000041" in output
    for case_id in ("medseg_000040", "medseg_000041"):
        volume = read_volume([tmp_path / f"{case_id}_{s}.nii.gz"
                              for s in ("t1", "t1ce", "t2", "flair")])
        labels = read_labels(tmp_path / f"{case_id}_seg.nii.gz")
        assert volume.shape == labels.shape
        assert set(np.unique(labels.data)) <= {0, 1, 2, 3} and labels.data.max() > 0
        assert json.loads((tmp_path / f"{case_id}.json").read_bytes())["seed"] in (40, 41)
    # refuses to overwrite without --overwrite, and says how
    assert main(["sample", str(tmp_path), "--seed", "40", "--spacing", "3"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_info_prints_shape_spacing_orientation_channels(tmp_path, capsys):
    main(["sample", str(tmp_path), "--seed", "5", "--spacing", "3"])
    capsys.readouterr()
    path = tmp_path / "medseg_000005_flair.nii.gz"
    assert main(["info", str(path), "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    volume = read_volume(path)
    assert record["shape_zyx"] == list(volume.shape)
    assert record["spacing_zyx_mm"] == [3.0, 3.0, 3.0]
    assert record["orientation"] == "RAS" and record["channels"] == ["FLAIR"]
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "orientation  RAS" in text and "FLAIR" in text


def test_readme_command_reference_names_every_option_of_every_command():
    import argparse
    import re
    from pathlib import Path

    from napari_medseg.cli import build_parser

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    reference = readme[readme.index("## Command line"):readme.index("## Models")]
    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    missing = {}
    for name, parser in commands.items():
        entry = rf"napari-medseg {name}\b[^\n]*(\n {{8}}[^\n]*)*"  # a command and its lines
        options = [o for action in parser._actions for o in action.option_strings
                   if o.startswith("--") and o != "--help"]
        absent = [o for o in options if not re.search(entry + re.escape(o) + r"\b", reference)]
        if absent or f"napari-medseg {name}" not in reference:
            missing[name] = absent
    assert not missing, missing


@pytest.mark.parametrize("arguments, message", [
    (["sample", "{out}", "--spacing", "0"],
     "'0' is not a number above 0: give a finite number such as 1.5"),
    (["sample", "{out}", "--spacing", "nan"],
     "'nan' is not a number above 0: give a finite number such as 1.5"),
    (["sample", "{out}", "--seed", "-5"],
     "'-5' is not a whole number of 0 or more: give 0, 1, 2, ..."),
    (["topology", "{out}/seg.nii.gz", "--json", "{out}/t.json", "--max-gap", "-1"],
     "'-1' is not a number of 0 or more: give a finite number such as 8"),
    (["finetune", "{out}", "-o", "{out}/model", "--learning-rate", "-0.1"],
     "'-0.1' is not a number above 0: give a finite number such as 1.5"),
])
def test_an_out_of_range_number_is_refused_in_one_line(tmp_path, arguments, message, capsys):
    """These ran into a traceback (a voxel size of 0 or below, a negative seed) or were
    taken silently (a negative gap, a negative learning rate)."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        main([argument.format(out=out) for argument in arguments])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].endswith(message) and "Traceback" not in "\n".join(error)
    assert not out.exists()


def test_a_fold_given_twice_is_refused(tmp_path, small_case, tiny_model_folder, capsys):
    """``--folds 0 0`` ran fold 0 twice, counting it double in the ensemble."""
    from napari_medseg.sample import case_files, write_case

    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    output = tmp_path / "seg.nii.gz"
    assert main(["predict", *map(str, images), "-o", str(output), "--model",
                 str(tiny_model_folder), "--folds", "0", "1", "0"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "fold 0 is given twice: give each fold once (for example --folds 0 1)")
    assert not output.exists()


@pytest.mark.parametrize("command, name, message", [
    ("predict", "seg.txt", "unknown output format. Use .nii.gz, .nii, .nrrd, .mha or .zarr"),
    ("probabilities", "probabilities.nrrd",
     "multi-channel images are written as NIfTI only. Use a .nii.gz file name"),
    ("refine", "seg.txt", "unknown output format. Use .nii.gz, .nii, .nrrd, .mha or .zarr"),
    ("topology", "overlay.png", "unknown output format. Use .nii.gz, .nii, .nrrd, .mha or .zarr"),
])
def test_an_output_name_no_writer_takes_is_refused_before_the_work(
        tmp_path, small_case, tiny_model_folder, command, name, message, capsys, monkeypatch):
    """``predict -o seg.txt`` ran the whole prediction, then named its temporary file."""
    from napari_medseg.inference import _predict
    from napari_medseg.sample import case_files, write_case

    write_case(small_case, tmp_path, "c")
    images, reference = case_files(tmp_path, "c")
    images, target = [str(p) for p in images], tmp_path / name
    monkeypatch.setattr(_predict, "prepare_input", lambda *a, **k: pytest.fail("it ran"))
    clicks = tmp_path / "clicks.json"
    clicks.write_text('[{"position": [5, 5, 5], "positive": true}]', encoding="utf-8")
    arguments = {
        "predict": ["predict", *images, "-o", str(target), "--model", str(tiny_model_folder)],
        "probabilities": ["predict", *images, "-o", str(tmp_path / "seg.nii.gz"),
                          "--probabilities", str(target), "--model", str(tiny_model_folder)],
        "refine": ["refine", *images, "--clicks", str(clicks), "-o", str(target)],
        "topology": ["topology", str(reference), "--json", str(tmp_path / "t.json"),
                     "--overlay", str(target)]}[command]
    assert main(arguments) == 2
    assert capsys.readouterr().err.strip() == f"napari-medseg: error: {target}: {message}"
    assert not target.exists() and not list(tmp_path.glob(".*partial*"))
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "seg.nii.gz").exists()
