"""Reading and writing a 240x240x155 case's .nii.gz files: ours against nibabel and SimpleITK.

Each reader turns the four int16 files into float32 arrays, five times in turn
in one run; the table gives the median seconds and the ratio to nibabel's own
``get_fdata`` read one file after another (what the plugin did before ISA-L and
the side-by-side reads). Ours is `read_volume` (the CLI, the batch) and the
reader's `layer_data` (the dock's Open, in its worker; napari's File > Open
calls it once per file), which also takes display limits and fingerprints.
The writers write the four contrasts as float32 (an nnU-Net export) and a
uint8 mask: nibabel's ``save`` (what the plugin did) against `write_nifti`.

    .venv/bin/python bench/nifti_io.py --json bench/results/nifti_io.json
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import brats_sized_case, print_table, write_json  # noqa: E402


def _write_case(folder: Path) -> list[Path]:
    from napari_medseg.io._nifti import write_nifti

    volume = brats_sized_case(9100)
    paths = []
    for index, name in enumerate(volume.channel_names):
        paths.append(folder / f"case9100_{name.lower()}.nii.gz")
        write_nifti(paths[-1], np.round(volume.data[index]).astype(np.int16), volume.affine)
    return paths


def _readers(paths: list[Path]) -> dict:
    import nibabel as nib
    import SimpleITK as sitk

    from napari_medseg._reader import layer_data
    from napari_medseg.io import read_volume

    return {
        "nibabel get_fdata, one file after another (before)":
            lambda: [nib.load(str(p)).get_fdata(dtype=np.float32) for p in paths],
        "SimpleITK ReadImage, one file after another":
            lambda: [sitk.GetArrayFromImage(sitk.Cast(sitk.ReadImage(str(p)), sitk.sitkFloat32))
                     for p in paths],
        "napari-medseg read_volume (CLI, batch)": lambda: read_volume(paths),
        "napari-medseg layer_data (the dock's Open)": lambda: layer_data([str(p) for p in paths]),
        "napari-medseg layer_data, one file per call (napari's File > Open)":
            lambda: [layer_data(str(p)) for p in paths],
    }


def _writers(folder: Path, paths: list[Path]) -> dict:
    import nibabel as nib

    from napari_medseg.io import read_volume
    from napari_medseg.io._nifti import write_nifti

    volume = read_volume(paths)
    mask = (volume.data[-1] > np.percentile(volume.data[-1], 95)).astype(np.uint8)
    arrays = [*volume.data, mask]

    def with_nibabel():
        for index, array in enumerate(arrays):
            image = nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)),
                                    volume.affine)
            nib.save(image, str(folder / f"nibabel_{index}.nii.gz"))

    def with_ours():
        for index, array in enumerate(arrays):
            write_nifti(folder / f"ours_{index}.nii.gz", array, volume.affine)

    return {"write: nibabel save, 4 float32 images and a mask (before)": with_nibabel,
            "write: napari-medseg write_nifti, the same": with_ours}


def _megabytes(folder: Path, prefix: str) -> float:
    return sum(path.stat().st_size for path in folder.glob(f"{prefix}_*.nii.gz")) / 2**20


def _timed(tasks: dict, repeats: int) -> dict[str, list[float]]:
    for task in tasks.values():  # warm the page cache and the imports
        task()
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(repeats):  # in turn, so that drift hits every task alike
        for name, task in tasks.items():
            started = time.perf_counter()
            task()
            times[name].append(time.perf_counter() - started)
    return times


def _rows(times: dict[str, list[float]]) -> list[dict]:
    baseline = statistics.median(next(iter(times.values())))
    return [{"task": name, "median s": statistics.median(values),
             "runs (s)": ", ".join(f"{value:.3f}" for value in values),
             "speed-up over nibabel": f"{baseline / statistics.median(values):.2f}x"}
            for name, values in times.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="bench/results/nifti_io.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        paths = _write_case(Path(scratch))
        rows = _rows(_timed(_readers(paths), args.repeats))
        rows += _rows(_timed(_writers(Path(scratch), paths), args.repeats))
        sizes = {"nibabel": _megabytes(Path(scratch), "nibabel"),
                 "napari-medseg": _megabytes(Path(scratch), "ours")}
    print_table(rows, ["task", "median s", "runs (s)", "speed-up over nibabel"])
    print(f"\nfiles written (MiB): {sizes}")
    write_json(args.json, {"command": "bench/nifti_io.py", "rows": rows,
                           "written_mib": sizes})


if __name__ == "__main__":
    main()
