"""The command line: sample and info on real files."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

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
