"""Reading a 240x240x155 case's four .nii.gz contrasts: ours against nibabel and SimpleITK.

Each reader turns the four int16 files into float32 arrays, five times in turn
in one run; the table gives the median seconds and the ratio to nibabel's own
``get_fdata`` read one file after another (what the plugin did before ISA-L and
the side-by-side reads). Ours is `read_volume` (the CLI, the batch) and the
reader's `layer_data` (the dock's Open, in its worker; napari's File > Open
calls it once per file), which also takes display limits and fingerprints.

    .venv/bin/python bench/reading.py --json bench/results/reading.json
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="bench/results/reading.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        readers = _readers(_write_case(Path(scratch)))
        for read in readers.values():  # warm the page cache and the imports
            read()
        times: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(args.repeats):  # in turn, so that drift hits every reader alike
            for name, read in readers.items():
                started = time.perf_counter()
                read()
                times[name].append(time.perf_counter() - started)
    baseline = statistics.median(next(iter(times.values())))
    rows = [{"reader": name, "median s": statistics.median(values),
             "runs (s)": ", ".join(f"{value:.3f}" for value in values),
             "speed-up over nibabel": f"{baseline / statistics.median(values):.2f}x"}
            for name, values in times.items()]
    print_table(rows, ["reader", "median s", "runs (s)", "speed-up over nibabel"])
    write_json(args.json, {"command": "bench/reading.py", "rows": rows})


if __name__ == "__main__":
    main()
