"""Accuracy of the built-in model on held-out generator cases (BraTS regions).

Dice and HD95 (mm) per region for the fold ensemble and each fold alone, on
cases whose seeds (from 9000) were never used in training.

    .venv/bin/python bench/accuracy.py --cases 20 --json bench/results/accuracy.json
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import HELD_OUT_FIRST_SEED, print_table, write_json
from napari_medseg.inference import predict
from napari_medseg.labels import BRATS_REGIONS
from napari_medseg.metrics import region_scores
from napari_medseg.models import load_model
from napari_medseg.models.loading import LoadedModel
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case


def summarise(per_case: list[dict]) -> dict:
    out = {}
    for region in BRATS_REGIONS:
        dices = [case[region]["dice"] for case in per_case]
        hds = [case[region]["hd95"] for case in per_case if np.isfinite(case[region]["hd95"])]
        out[region] = {"dice_mean": float(np.mean(dices)), "dice_std": float(np.std(dices)),
                       "hd95_median": float(np.median(hds)) if hds else float("nan"),
                       "hd95_mean": float(np.mean(hds)) if hds else float("nan"),
                       "hd95_undefined": len(dices) - len(hds)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--spacing", type=float, default=2.0, help="case spacing in mm")
    parser.add_argument("--model", default="brats_unet")
    parser.add_argument("--json", default="bench/results/accuracy.json")
    args = parser.parse_args()
    model = load_model(args.model)
    members = {"ensemble": model, **{f"fold{i}": LoadedModel(model.spec, model.folder, (net,))
                                     for i, net in enumerate(model.networks)}}
    scores = {name: [] for name in members}
    started = time.time()
    for seed in range(HELD_OUT_FIRST_SEED, HELD_OUT_FIRST_SEED + args.cases):
        case = generate_case(seed, spacing=args.spacing)
        for name, member in members.items():
            labels = run_to_end(predict(member, case.volume, device="auto",
                                        keep_probabilities=False)).labels
            scores[name].append(region_scores(labels, case.labels.data, BRATS_REGIONS,
                                              case.volume.spacing))
        print(f"seed {seed}: ensemble Dice " + ", ".join(
            f"{r} {scores['ensemble'][-1][r]['dice']:.3f}" for r in BRATS_REGIONS), flush=True)
    summary = {name: summarise(values) for name, values in scores.items()}
    rows = [{"model": name, "region": region, "Dice": s["dice_mean"], "Dice sd": s["dice_std"],
             "HD95 median (mm)": s["hd95_median"], "HD95 mean (mm)": s["hd95_mean"]}
            for name, regions in summary.items() for region, s in regions.items()]
    print()
    print_table(rows, ["model", "region", "Dice", "Dice sd", "HD95 median (mm)",
                       "HD95 mean (mm)"])
    goals = {"WT": 0.90, "TC": 0.85, "ET": 0.80}
    met = {region: summary["ensemble"][region]["dice_mean"] >= goal
           for region, goal in goals.items()}
    print(f"\ngoals (ensemble Dice WT>=0.90, TC>=0.85, ET>=0.80): {met}")
    write_json(args.json, {"command": "bench/accuracy.py", "cases": args.cases,
                           "seeds": [HELD_OUT_FIRST_SEED, HELD_OUT_FIRST_SEED + args.cases - 1],
                           "spacing_mm": args.spacing, "model": model.spec.name,
                           "model_version": model.spec.version, "summary": summary,
                           "goals_met": met, "per_case": scores,
                           "seconds": round(time.time() - started, 1)})


if __name__ == "__main__":
    main()
