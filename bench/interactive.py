"""Click refinement with the robot user (DESIGN.md): both engines side by side.

Held-out generator cases (seeds from 9000) at the sample spacing (1.5 mm).
Targets: each tumour label (NCR, ED, ET) and the whole tumour (WT). Starts:
(a) an empty mask; (b) the built-in model's prediction of the target,
damaged on purpose: a lobe cut away (a half-space through a random point
of the target) and a spurious blob added next to it. Reports Dice after 1,
3, 5, 10 clicks, NoC@85 and NoC@90 (cap 20, failures counted as 20) and
the latency per click (median, 95th percentile) on this machine.

    .venv/bin/python bench/interactive.py --cases 4 --json bench/results/interactive.json
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from _common import HELD_OUT_FIRST_SEED, print_table, write_json
from napari_medseg.inference import predict
from napari_medseg.interactive import dice_score, make_engine
from napari_medseg.interactive._evaluate import evaluate_targets, summarise
from napari_medseg.models import load_model
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case, load_sample_case

TARGETS = {"NCR": (1,), "ED": (2,), "ET": (3,), "WT": (1, 2, 3)}
ENGINES = ("learned", "random_walker")


def damage(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cut a lobe away (about a third of the object) and add a spurious blob beside it."""
    points = np.argwhere(mask)
    if len(points) == 0:
        return mask.copy()
    normal = rng.normal(size=3)
    normal /= np.linalg.norm(normal)
    along = points @ normal
    cut = np.quantile(along, 0.67)
    damaged = mask.copy()
    damaged[tuple(points[along > cut].T)] = False
    extent = np.ptp(points, axis=0).max() / 2
    centre = points.mean(0) - normal * (extent + 4)
    grids = np.ogrid[tuple(slice(0, n) for n in mask.shape)]
    blob = sum((g - c) ** 2 for g, c in zip(grids, centre)) <= max(3.0, extent / 4) ** 2
    return damaged | blob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default="bench/results/interactive.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("brats_unet")
    rng = np.random.default_rng(0)
    trials = []
    for seed in range(HELD_OUT_FIRST_SEED, HELD_OUT_FIRST_SEED + args.cases):
        case = generate_case(seed, spacing=1.5)
        labels = case.labels.data
        predicted = run_to_end(predict(model, case.volume, device=args.device)).labels
        targets = {name: np.isin(labels, values) for name, values in TARGETS.items()}
        starts = {"empty": None,
                  "damaged": {name: damage(np.isin(predicted, values), rng)
                              for name, values in TARGETS.items()}}
        for engine_name in ENGINES:
            engine = make_engine(engine_name, case.volume, device=args.device)
            for start_name, start in starts.items():
                for trial in evaluate_targets(case.volume, targets, engine, start):
                    initial = 0.0 if start is None else dice_score(start[trial["target"]],
                                                                   targets[trial["target"]])
                    trials.append({"seed": seed, "engine": engine_name, "start": start_name,
                                   "start_dice": round(initial, 4), **trial})
                    print(seed, engine_name, start_name, trial["target"],
                          trial["dice"][:6], trial["noc90"], flush=True)
    rows = []
    for engine_name in ENGINES:
        for start_name in ("empty", "damaged"):
            for target in (*TARGETS, "all"):
                chosen = [t for t in trials if t["engine"] == engine_name and
                          t["start"] == start_name and target in (t["target"], "all")]
                start_dice = np.mean([t["start_dice"] for t in chosen])
                rows.append({"engine": engine_name, "start": start_name, "target": target,
                             "start Dice": round(float(start_dice), 3), **summarise(chosen)})
    sample_rows = []
    sample = load_sample_case()
    for engine_name in ENGINES:
        engine = make_engine(engine_name, sample.volume, device=args.device)
        trial = evaluate_targets(sample.volume, {"WT": sample.labels.data > 0}, engine)
        sample_rows.append({"engine": engine_name, **summarise(trial)})
    columns = ["engine", "start", "target", "start Dice", "n", "dice@1", "dice@3", "dice@5",
               "dice@10", "noc85", "noc90", "latency_median_ms", "latency_p95_ms"]
    print_table(rows, columns)
    print("\nSample case, whole tumour from empty:")
    print_table(sample_rows, ["engine", "dice@1", "dice@5", "noc90", "latency_median_ms",
                              "latency_p95_ms"])
    write_json(args.json, {"command": "bench/interactive.py", "cases": args.cases,
                           "device": args.device, "rows": rows, "sample_case": sample_rows,
                           "trials": trials})


if __name__ == "__main__":
    main()
