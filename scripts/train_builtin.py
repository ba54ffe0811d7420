"""Train the built-in BraTS-like model family (K folds) on generator cases.

Cases come from `napari_medseg.sample.generate_case` at the model spacing
(2 mm), seeds 1000..1000+N-1; fold k validates on cases with index % K == k
and trains on the rest, so the folds are separately trained models. Held-out
evaluation (bench/accuracy.py) uses seeds from 9000, never seen here.

Run (about an hour on a 2-core CPU, minutes on a GPU):
    .venv/bin/python scripts/train_builtin.py --out napari_medseg/models/builtin/brats_unet
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from napari_medseg.inference import sliding_window
from napari_medseg.labels import BRATS_LABELS, BRATS_REGIONS
from napari_medseg.metrics import region_scores
from napari_medseg.models.normalise import normalise_image
from napari_medseg.models import save_model
from napari_medseg.models.spec import InputSpec, ModelSpec
from napari_medseg.models.training import TrainingCase, TrainingSettings, train
from napari_medseg.models.unet import UNet3D
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case

CONTRASTS = ("T1", "T1ce", "T2", "FLAIR")
ARCH = {"in_channels": 4, "n_classes": 4, "widths": [12, 24, 48, 96], "dropout": 0.1}
SPACING = (2.0, 2.0, 2.0)
PATCH = (48, 48, 48)


def make_cases(n_cases: int, first_seed: int) -> list[TrainingCase]:
    cases = []
    for seed in range(first_seed, first_seed + n_cases):
        case = generate_case(seed, spacing=SPACING)
        image = normalise_image(case.volume.data, ["zscore_nonzero"] * 4)
        cases.append(TrainingCase(image, case.labels.data))
    return cases


def validate(network, cases, device) -> dict[str, float]:
    scores = {name: [] for name in BRATS_REGIONS}
    softmax = lambda x: network(x).softmax(1)  # noqa: E731
    for case in cases:
        probabilities = run_to_end(sliding_window(softmax, torch.from_numpy(case.image), PATCH,
                                                  4, overlap=0.5, batch_size=4, device=device))
        labels = probabilities.argmax(0).cpu().numpy()
        for name, score in region_scores(labels, case.labels, BRATS_REGIONS, SPACING).items():
            scores[name].append(score["dice"])
    return {name: round(float(np.mean(values)), 4) for name, values in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--cases", type=int, default=48)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.time()
    cases = make_cases(args.cases, args.first_seed)
    print(f"generated {len(cases)} cases in {time.time() - started:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    networks, log = [], {"device": device, "cases": args.cases, "first_seed": args.first_seed,
                      "steps": args.steps, "folds": []}
    for fold in range(args.folds):
        fold_start = time.time()
        train_cases = [c for i, c in enumerate(cases) if i % args.folds != fold]
        val_cases = [c for i, c in enumerate(cases) if i % args.folds == fold]
        torch.manual_seed(fold)
        network = UNet3D(**ARCH)
        settings = TrainingSettings(steps=args.steps, patch_size=PATCH, seed=fold)
        curve = run_to_end(train(network, train_cases, settings, device),
                           lambda p: print(f"fold {fold} {p.message}", flush=True)
                           if p.done % 100 == 0 else None)
        network.cpu()
        val = validate(network, val_cases, "cpu")
        networks.append(network)
        minutes = (time.time() - fold_start) / 60
        log["folds"].append({"fold": fold, "minutes": round(minutes, 2), "validation_dice": val,
                             "val_seeds": [args.first_seed + i for i in range(args.cases)
                                           if i % args.folds == fold], "curve": curve})
        print(f"fold {fold} done in {minutes:.1f} min, validation Dice {val}", flush=True)
    log["total_minutes"] = round((time.time() - started) / 60, 2)
    spec = ModelSpec(
        name="brats_unet", version="1.0.0",
        description="3D U-Net (dropout 0.1) for BraTS-like glioma labels, trained on "
                    "napari-medseg's synthetic cases; 3 folds.",
        architecture={"name": "unet3d", "args": ARCH},
        inputs=tuple(InputSpec(c, "zscore_nonzero") for c in CONTRASTS),
        labels=BRATS_LABELS, regions=BRATS_REGIONS, patch_size=PATCH, spacing=SPACING,
        folds=(),
        training={"script": "scripts/train_builtin.py", "device": device,
                  "cases": args.cases, "first_seed": args.first_seed, "steps": args.steps,
                  "total_minutes": log["total_minutes"],
                  "validation_dice": [f["validation_dice"] for f in log["folds"]]},
        expected_topology={"WT": {"b0": 1, "b1": 0, "b2": 0}, "TC": {"b1": 0}})
    save_model(args.out, spec, networks)
    (args.out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    print(f"total {log['total_minutes']} min -> {args.out}")


if __name__ == "__main__":
    main()
