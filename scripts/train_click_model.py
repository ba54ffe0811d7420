"""Train the built-in click-refinement network (`click_unet`) on generator cases.

Targets, drawn per training patch: each tumour label (NCR, ED, ET), whole
tumour and tumour core (60%), and anatomical structures from the generator's
tissue maps (40%): the ventricles, and white- or grey-matter pieces (the
connected tissue inside a random ball), so clicks also work on structures
no automatic model knows. Previous masks and clicks are simulated
(`napari_medseg.interactive._simulate`). Cases: seeds 2000.. at the sample
spacing (1.5 mm); the benchmark's held-out cases start at 9000.

Run (about 45 minutes on a 2-core CPU, a few on a GPU):
    .venv/bin/python scripts/train_click_model.py --out napari_medseg/models/builtin/click_unet
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from scipy import ndimage as ndi

from napari_medseg.interactive._geometry import crop_box
from napari_medseg.interactive._simulate import training_sample
from napari_medseg.models.normalise import normalise_image
from napari_medseg.models.spec import FoldSpec, InputSpec, ModelSpec
from napari_medseg.models.training import TrainingSettings, train
from napari_medseg.models.unet import UNet3D
from napari_medseg.labels import LabelInfo
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case

CONTRASTS = ("T1", "T1ce", "T2", "FLAIR")
ARCH = {"in_channels": 7, "n_classes": 2, "widths": [12, 24, 48, 96], "dropout": 0.0}
SPACING = (1.5, 1.5, 1.5)
PATCH = (48, 48, 48)
REGION = (80, 80, 80)
TUMOUR_TARGETS = {"NCR": (1,), "ED": (2,), "ET": (3,), "WT": (1, 2, 3), "TC": (1, 3)}


def ventricles(csf: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """CSF deep inside the brain: the ventricles (components of 100+ voxels)."""
    depth = ndi.distance_transform_edt(ndi.binary_fill_holes(brain))
    labelled, _ = ndi.label((csf > 0.5) & (depth > 8))
    sizes = np.bincount(labelled.ravel())
    keep = np.flatnonzero(sizes >= 100)
    return np.isin(labelled, keep[keep > 0])


class ClickCase:
    """One generated case: normalised image, labels and tissue-derived targets."""

    def __init__(self, seed: int):
        case = generate_case(seed, spacing=SPACING, with_tissue=True)
        self.image = normalise_image(case.volume.data, ["zscore_nonzero"] * 4)
        self.labels = case.labels.data
        tissue = {k: v.astype(np.float32) for k, v in case.tissue.items()}
        tumour = self.labels > 0
        self.tissue = {k: (v > 0.5) & ~tumour for k, v in tissue.items()}
        self.ventricles = ventricles(tissue["csf"], sum(tissue.values()) > 0.5) & ~tumour
        self.seed = seed

    def region(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A region of image and target around a random target."""
        choice = rng.random()
        if choice < 0.6:
            values = TUMOUR_TARGETS[rng.choice(list(TUMOUR_TARGETS))]
            target = np.isin(self.labels, values)
        elif choice < 0.75 and self.ventricles.any():
            target = self.ventricles
        else:
            target = None
        if target is not None and target.any():
            points = np.argwhere(target)
            centre = points[rng.integers(len(points))]
            box = crop_box(centre, REGION, target.shape)
            return self.image[(slice(None), *box)], target[box]
        tissue = self.tissue["wm" if rng.random() < 0.6 else "gm"]
        points = np.argwhere(tissue)
        centre = points[rng.integers(len(points))]
        box = crop_box(centre, REGION, tissue.shape)
        local = centre - np.array([s.start for s in box])
        grids = np.ogrid[tuple(slice(0, s.stop - s.start) for s in box)]
        ball = sum((g - c) ** 2 for g, c in zip(grids, local)) <= rng.uniform(6, 16) ** 2
        labelled, _ = ndi.label(tissue[box] & ball)
        return self.image[(slice(None), *box)], labelled == labelled[tuple(local)]


def batch_sampler(cases: list[ClickCase], batch_size: int):
    """Batches of simulated interactions, flipped and intensity-jittered."""
    def draw(rng: np.random.Generator):
        inputs, targets = [], []
        while len(inputs) < batch_size:
            image, target = cases[rng.integers(len(cases))].region(rng)
            sample = training_sample(image, target, rng, PATCH)
            if sample is None:
                continue
            x, y = sample
            if rng.random() < 0.5:
                x, y = x[..., ::-1], y[..., ::-1]
            scale = rng.uniform(0.9, 1.1, size=(4, 1, 1, 1))
            x = x.copy()
            x[:4] = np.where(x[:4] != 0, x[:4] * scale + rng.uniform(-0.1, 0.1, (4, 1, 1, 1)), 0)
            inputs.append(np.ascontiguousarray(x, dtype=np.float32))
            targets.append(np.ascontiguousarray(y))
        return np.stack(inputs), np.stack(targets)
    return draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.time()
    cases = [ClickCase(seed) for seed in range(args.first_seed, args.first_seed + args.cases)]
    print(f"generated {len(cases)} cases in {time.time() - started:.0f} s", flush=True)
    torch.manual_seed(0)
    network = UNet3D(**ARCH)
    settings = TrainingSettings(steps=args.steps, batch_size=args.batch_size, patch_size=PATCH,
                                seed=0)
    curve = run_to_end(train(network, [], settings, device,
                             sampler=batch_sampler(cases, args.batch_size)),
                       lambda p: print(p.message, f"{time.time() - started:.0f} s", flush=True)
                       if p.done % 50 == 0 else None)
    network.cpu()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "fold0.safetensors"
    save_file({k: v.half().contiguous() for k, v in network.state_dict().items()}, str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    minutes = round((time.time() - started) / 60, 2)
    spec = ModelSpec(
        name="click_unet", version="1.0.0", task="interactive",
        description="Click-conditioned 3D U-Net: contrasts + previous mask + positive/negative "
                    "click guidance -> object mask, on a patch around the newest click.",
        architecture={"name": "unet3d", "args": ARCH},
        inputs=tuple(InputSpec(c, "zscore_nonzero") for c in CONTRASTS),
        labels=(LabelInfo(1, "object", "the clicked structure", (1.0, 1.0, 0.0, 1.0)),),
        patch_size=PATCH, spacing=SPACING, folds=(FoldSpec(path.name, digest),),
        training={"script": "scripts/train_click_model.py", "device": device,
                  "cases": args.cases, "first_seed": args.first_seed, "steps": args.steps,
                  "batch_size": args.batch_size, "total_minutes": minutes,
                  "targets": [*TUMOUR_TARGETS, "ventricles", "wm piece", "gm piece"]})
    (args.out / "model.json").write_text(spec.to_json())
    (args.out / "training_log.json").write_text(json.dumps({"curve": curve}, indent=1) + "\n")
    print(f"total {minutes} min -> {args.out}")


if __name__ == "__main__":
    main()
