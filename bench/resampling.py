"""How long *Resample onto one grid* takes: a FLAIR that is not on the T1's grid put onto it.

The 240x240x155 case at 1 mm (seed 9100); its FLAIR stored three ways:

- **stored LPS**: the same voxels, x and y flipped in the file (an exact copy: nearest
  voxel, kept in its own type);
- **oblique 10 deg**: the same grid turned 10 degrees about the z axis (linear);
- **2 mm slices**: every other slice, 2 mm thick, put onto 1 mm slices (linear).

Timed, in ABBA rounds within one process (medians in seconds):

- ``worker``: what the dock's worker runs (`case.resampled_layers`: the resampling and
  the layer's display limits);
- ``onto_grid``: the resampling alone (`io.onto_grid`: an exact copy by slicing, else
  SciPy's ``affine_transform`` in slabs, one thread per core);
- ``SimpleITK``: the same resampling by SimpleITK's ``Resample`` (linear or nearest, all
  cores) as the reference, with the largest difference from ours inside the field of
  view (in the scan's own units; the FLAIR's range is given).

    .venv/bin/python bench/resampling.py --json bench/results/resampling.json
"""
from __future__ import annotations

import argparse
import statistics
import time

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from _common import abba_times, brats_sized_case, print_table, stored_lps, write_json

from napari_medseg.case import Scan, resampled_layers
from napari_medseg.io import onto_grid
from napari_medseg.progress import run_to_end


def _flipped_xy(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same voxels stored LPS (`_common.stored_lps`) as ``[Z, Y, X]`` and affine."""
    image = stored_lps(nib.Nifti1Image(data.T, affine))
    return np.ascontiguousarray(np.asarray(image.dataobj).T), image.affine


def _turned(data: np.ndarray, affine: np.ndarray, degrees: float) -> tuple[np.ndarray,
                                                                        np.ndarray]:
    """The same voxel values on a grid turned about the z axis through its centre."""
    angle = np.radians(degrees)
    turn = np.eye(4)
    turn[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    centre = affine @ np.array([*(np.array(data.shape[::-1]) - 1) / 2, 1.0])
    to_centre, back = np.eye(4), np.eye(4)
    to_centre[:3, 3], back[:3, 3] = -centre[:3], centre[:3]
    return data, back @ turn @ to_centre @ affine


def _thick_slices(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every other slice, each 2 mm thick."""
    step = np.diag([1.0, 1.0, 2.0, 1.0])
    return np.ascontiguousarray(data[::2]), affine @ step


def _sitk_image(data: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A SimpleITK image of ``data`` ([Z, Y, X]) on ``affine`` (voxel x, y, z to RAS mm)."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image = sitk.GetImageFromArray(data)
    image.SetSpacing(spacing.tolist())
    image.SetDirection((lps[:3, :3] / spacing).ravel().tolist())
    image.SetOrigin(lps[:3, 3].tolist())
    return image


def _sitk_onto(data, affine, target_affine, target_shape, exact: bool) -> np.ndarray:
    reference = _sitk_image(np.zeros(target_shape, np.float32), target_affine)
    interpolator = sitk.sitkNearestNeighbor if exact else sitk.sitkLinear
    moved = sitk.Resample(_sitk_image(data, affine), reference, sitk.Transform(),
                          interpolator, 0.0)
    return sitk.GetArrayFromImage(moved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()
    volume = brats_sized_case(9100)
    t1, flair = volume.data[0], volume.data[3]
    stored = {"stored LPS": _flipped_xy(flair, volume.affine),
              "oblique 10 deg": _turned(flair, volume.affine, 10.0),
              "2 mm slices": _thick_slices(flair, volume.affine)}
    rows = []
    for name, (data, affine) in stored.items():
        exact = name == "stored LPS"
        scans = {"T1": Scan(t1, volume.affine, "T1"), "FLAIR": Scan(data, affine, "FLAIR")}
        ways = {
            "worker": lambda: run_to_end(resampled_layers(scans)),
            "onto_grid": lambda: onto_grid(data, affine, volume.affine, t1.shape),
            "SimpleITK": lambda: _sitk_onto(data, affine, volume.affine, t1.shape, exact)}

        def seconds(way: str) -> float:
            start = time.perf_counter()
            ways[way]()
            return time.perf_counter() - start

        times = abba_times(list(ways), seconds, args.rounds)
        ours = onto_grid(data, affine, volume.affine, t1.shape)
        reference = _sitk_onto(data, affine, volume.affine, t1.shape, exact)
        inside = (ours != 0) & (reference != 0)  # both in the field of view
        row = {"FLAIR stored": name, **{f"{way} (s)": statistics.median(times[way])
                                        for way in ways},
               "largest difference": float(np.abs(ours - reference)[inside].max()),
               "FLAIR range": float(flair.max() - flair.min()),
               "exact": exact}
        if exact:
            np.testing.assert_array_equal(ours, flair)  # the original voxels back
        rows.append(row)
    print_table(rows, list(rows[0]))
    if args.json:
        threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        write_json(args.json, {"shape_zyx": list(t1.shape), "rounds": args.rounds,
                               "sitk_threads": threads, "rows": rows})


if __name__ == "__main__":
    main()
