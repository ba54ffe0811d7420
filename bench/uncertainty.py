"""Uncertainty quality: error-detection AUROC, ECE and cost per method.

Held-out generator cases (seeds from 9000), half of them made harder than
anything in training (stronger Rician noise and bias field). For each
method: AUROC with which each map flags wrongly labelled brain voxels, ECE
(15 equal-width bins over brain voxels), and wall time relative to one
single-fold prediction of the same case.

    .venv/bin/python bench/uncertainty.py --cases 6 --json bench/results/uncertainty.json
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import (first_fold, print_table, single_prediction_seconds, uncertainty_case,
                     write_json)
from napari_medseg.models import load_model
from napari_medseg.progress import run_to_end
from napari_medseg.uncertainty import estimate_uncertainty

METHODS = {"mc (T=8)": ("mc", 8), "tta (T=8)": ("tta", 8), "ensemble (3 folds)": ("ensemble", 2),
           "mc+ensemble (T=4 per fold)": ("mc,ensemble", 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--json", default="bench/results/uncertainty.json")
    parser.add_argument("--overlap", type=float, default=None,
                        help="the samples' window overlap (default: the estimate's own)")
    parser.add_argument("--precision", default="auto",
                        help="the network's arithmetic, for the estimates and the prediction "
                             "their cost is divided by (default: the product's auto)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="which rows to run, comma-separated (default: all)")
    args = parser.parse_args()
    chosen = {name: METHODS[name] for name in args.methods.split(",")}
    options = {"precision": args.precision}
    if args.overlap is not None:
        options["overlap"] = args.overlap
    model = load_model("brats_unet")
    single = first_fold(model)
    rows, per_case = {name: [] for name in chosen}, []
    for index in range(args.cases):
        seed, hard, case = uncertainty_case(index)
        base = single_prediction_seconds(single, case.volume, args.precision)
        for name, (method, samples) in chosen.items():
            result = run_to_end(estimate_uncertainty(model, case.volume, method, samples,
                                                     reference=case.labels.data, **options))
            calibration = result.calibration
            rows[name].append({"hard": hard, "ece": calibration["ece"],
                               "error_rate": calibration["error_rate"],
                               "cost": result.seconds / base,
                               **{f"auroc {k}": v for k, v in
                                  calibration["error_detection_auroc"].items()}})
        per_case.append({"seed": seed, "hard": hard, "single_prediction_seconds": base})
        print(f"seed {seed} ({'hard' if hard else 'normal'}) done", flush=True)
    summary = []
    for name, records in rows.items():
        for subset, chosen in (("all", records), ("hard", [r for r in records if r["hard"]])):
            if not chosen:
                continue
            keys = [k for k in chosen[0] if k != "hard"]
            summary.append({"method": name, "cases": subset,
                            **{k: float(np.nanmean([r[k] for r in chosen])) for k in keys}})
    print_table(summary, ["method", "cases", "auroc total", "auroc epistemic",
                          "auroc aleatoric", "auroc 1 - confidence", "ece", "error_rate", "cost"])
    best = max(s["auroc total"] for s in summary if s["cases"] == "all")
    best_ece = min(s["ece"] for s in summary if s["cases"] == "all")
    print(f"\nbest error-detection AUROC (total) {best:.3f} (goal >= 0.85); "
          f"best ECE {best_ece:.4f} (goal <= 0.05)")
    write_json(args.json, {"command": "bench/uncertainty.py", "overlap": args.overlap,
                           "precision": args.precision,
                           "cases": per_case,
                           "summary": summary, "per_case": rows})


if __name__ == "__main__":
    main()
