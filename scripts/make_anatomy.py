"""Derive the packaged anatomy from the MNI ICBM152 2009a template.

Reads the T1 template and the grey- and white-matter probability maps that
ship inside the nilearn wheel, derives a CSF map (inside the brain, not grey
or white matter), crops to the brain with a margin, resamples to 1.5 mm and
writes uint8 probability maps (0..255) to ``napari_medseg/sample/anatomy``.

Run: ``.venv/bin/python scripts/make_anatomy.py`` (needs ``pip install nilearn``).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

SPACING_MM = 1.5
MARGIN_VOXELS = 4
OUT = Path(__file__).resolve().parents[1] / "napari_medseg" / "sample" / "anatomy"
TEMPLATE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"


def _template_folder() -> Path:
    import nilearn.datasets

    return Path(nilearn.datasets.__file__).parent / "data"


def main() -> None:
    folder = _template_folder()
    images = {name: nib.load(folder / TEMPLATE.format(name)) for name in ("t1", "gm", "wm")}
    affine = images["t1"].affine
    t1, gm, wm = (images[n].get_fdata(dtype=np.float32) / 255.0 for n in ("t1", "gm", "wm"))
    brain = ndi.binary_fill_holes(ndi.binary_closing((t1 > 0.12) | (gm + wm > 0.3), iterations=3))
    brain_soft = np.clip(ndi.gaussian_filter(brain.astype(np.float32), 0.7), 0, 1)
    csf = np.clip(brain_soft - gm - wm, 0, 1)
    lo = np.maximum(np.argwhere(brain).min(0) - MARGIN_VOXELS, 0)
    hi = np.minimum(np.argwhere(brain).max(0) + MARGIN_VOXELS + 1, brain.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    out_shape = tuple(int((b - a - 1) // SPACING_MM) + 1 for a, b in zip(lo, hi))
    maps = {"gm": gm, "wm": wm, "csf": csf, "t1": t1}
    out_affine = affine.copy()
    out_affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    out_affine[:3, :3] = affine[:3, :3] * SPACING_MM
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"source": "MNI ICBM152 2009a symmetric (nilearn wheel, nilearn/datasets/data)",
              "spacing_mm": SPACING_MM, "crop_voxels_xyz": [lo.tolist(), hi.tolist()],
              "files": {}}
    for name, volume in maps.items():
        # output voxel o samples input voxel 1.5 * o exactly, so the affine is exact
        resampled = ndi.affine_transform(volume[crop], np.full(3, SPACING_MM),
                                         output_shape=out_shape, order=1)
        data = np.clip(np.round(resampled * 255), 0, 255).astype(np.uint8)
        path = OUT / f"icbm152_2009a_{name}_{SPACING_MM}mm.nii.gz"
        image = nib.Nifti1Image(data, out_affine)
        image.set_sform(out_affine, code=4)
        image.set_qform(out_affine, code=4)
        nib.save(image, path)
        record["files"][path.name] = {
            "shape_xyz": list(data.shape),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        print(path.name, data.shape)
    (OUT / "provenance.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
