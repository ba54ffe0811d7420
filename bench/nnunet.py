"""nnU-Net v2 models: the plugin against nnU-Net's own predictor, on one case.

A small nnU-Net model (two folds) is made by nnU-Net's own planning and
trainer (`tests.nnunet_builder`), then a 240x240x155 four-contrast generator
case (1 mm) is segmented by

- ``plugin``: ``napari_medseg.models.load_model`` + ``inference.predict``
  (what the dock's Run and ``napari-medseg predict --model FOLDER`` do);
- ``nnunet``: ``nnUNetPredictor.initialize_from_trained_model_folder`` +
  ``predict_from_files`` (what ``nnUNetv2_predict`` does; one process each
  for preprocessing and export).

With ``--explain``, a third process runs ``napari-medseg shapley --model FOLDER``
with voxel maps (every coalition through nnU-Net's own pipeline,
``explain._nnunet``), reported against the plugin's prediction.

Each runs in its own process, same folds, mirroring on, CPU; wall time
includes loading the model and reading and writing files. Peak memory is the
process's own high-water mark (``VmHWM``); nnU-Net's export worker process
is not counted in its figure.

    .venv/bin/python bench/nnunet.py --explain --json bench/results/nnunet.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import print_table, write_json  # noqa: E402


def run_plugin(model: Path, images: list[str], out: Path) -> None:
    from napari_medseg.cli import main

    assert main(["predict", *images, "--model", str(model), "-o", str(out / "plugin.nii.gz"),
                 "--device", "cpu"]) == 0


def run_nnunet(model: Path, images: list[str], out: Path) -> None:
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model), None)
    predictor.predict_from_files([images], [str(out / "nnunet")], num_processes_preprocessing=1,
                                 num_processes_segmentation_export=1)


def run_explain(model: Path, images: list[str], out: Path) -> None:
    from napari_medseg.cli import main

    assert main(["shapley", *images, "--model", str(model), "--json", str(out / "shapley.json"),
                 "--maps", str(out / "maps"), "--ranking", "none", "--device", "cpu"]) == 0


RUNS = {"plugin": run_plugin, "nnunet": run_nnunet, "plugin shapley": run_explain}


def worker(which: str, model: Path, images: list[str], out: Path) -> None:
    started = time.perf_counter()
    RUNS[which](model, images, out)
    seconds = time.perf_counter() - started
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's across exec)
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    peak_kib = int(next(line for line in status.splitlines()
                        if line.startswith("VmHWM")).split()[1])
    print("RESULT " + json.dumps({"tool": which, "seconds": seconds, "peak_mib": peak_kib / 1024}))


def brats_grid(case, shape=(155, 240, 240)):
    """The case centred on BraTS's 240x240x155 grid (zero-padded, or cropped where larger:
    background), the affine shifted to match."""
    from dataclasses import replace

    import numpy as np

    before = [(n - m) // 2 for n, m in zip(shape, case.volume.shape)]  # < 0: crop
    crop = tuple(slice(max(0, -b), max(0, -b) + min(n, m))
                 for b, n, m in zip(before, shape, case.volume.shape))
    pads = [(max(b, 0), n - min(n, m) - max(b, 0))
            for b, n, m in zip(before, shape, case.volume.shape)]
    shift = np.eye(4)
    shift[:3, 3] = [-b for b in before[::-1]]  # voxel (i, j, k) is (x, y, z): reversed
    affine = case.volume.affine @ shift
    volume = replace(case.volume, data=np.pad(case.volume.data[(slice(None), *crop)],
                                              [(0, 0), *pads]), affine=affine)
    labels = replace(case.labels, data=np.pad(case.labels.data[crop], pads), affine=affine)
    return replace(case, volume=volume, labels=labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--explain", action="store_true",
                        help="also time Shapley attributions through nnU-Net's pipeline")
    parser.add_argument("--worker", choices=tuple(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("images", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.model, args.images, args.out)
    import numpy as np
    import SimpleITK as sitk

    from napari_medseg.sample import generate_case
    from napari_medseg.sample._generate import case_files, write_case
    from tests.nnunet_builder import build_model

    work = Path(tempfile.mkdtemp(prefix="bench_nnunet_"))
    model = build_model(work / "model")
    case = brats_grid(generate_case(9001, spacing=1.0))
    write_case(case, work / "case", "bench")
    images = [str(p) for p in case_files(work / "case", "bench")[0]]
    rows = []
    for which in ("nnunet", "plugin", *(("plugin shapley",) if args.explain else ())):
        done = subprocess.run([sys.executable, __file__, "--worker", which, "--model",
                               str(model), "--out", str(work), *images],
                              capture_output=True, text=True, check=True)
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        rows.append(json.loads(line.removeprefix("RESULT ")))
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(work / "plugin.nii.gz")))
    theirs = sitk.GetArrayFromImage(sitk.ReadImage(str(work / "nnunet.nii.gz")))
    for row in rows:
        row["vs nnU-Net"] = row["seconds"] / rows[0]["seconds"]
        row["vs plugin predict"] = row["seconds"] / rows[1]["seconds"]
    print(f"case {' x '.join(map(str, case.volume.shape))} voxels, 4 contrasts; model "
          f"{model.parent.name} (2 folds, mirroring); labels identical: "
          f"{bool(np.array_equal(ours, theirs))}")
    for row in rows:
        row["peak_mib"] = round(row["peak_mib"], 1)
    print_table(rows, ["tool", "seconds", "peak_mib", "vs nnU-Net", "vs plugin predict"])
    if args.json:
        write_json(args.json, {"case_shape": list(case.volume.shape), "rows": rows,
                               "labels_identical": bool(np.array_equal(ours, theirs))})


if __name__ == "__main__":
    main()
