"""Shapley attributions: speed against captum, and the scientific check.

Part 1 (speed, one held-out case cropped to a 56^3 region of interest around
the tumour so that captum's ~100 passes fit in minutes, fold 0 of the
built-in model, target WT):
our exact Shapley (16 coalitions batched through one sliding-window pass,
values for all five targets at once) against captum's ShapleyValues (exact,
over permutations) on the same forward function, and against captum's
ShapleyValueSampling: how many permutation samples it needs to come within
0.005 of the exact values, and how long that takes.

Part 2 (physics, N held-out cases, fold ensemble): mean Shapley value per
contrast and target, the model's ranking, NSF against the protocol ranking,
rank variance across folds; where the generator's physics is known.

    .venv/bin/python bench/shapley.py --cases 8 --json bench/results/shapley.json
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from _common import HELD_OUT_FIRST_SEED, first_fold, print_table, write_json
from napari_medseg.explain import (
    PROTOCOL_RANKINGS, explain_case, normalised_footrule_similarity, ranks_from_phi)
from napari_medseg.inference import sliding_window
from napari_medseg.inference import channels_for_model, model_grid_shape, resample
from napari_medseg.metrics import dice
from napari_medseg.models import load_model
from napari_medseg.models.normalise import normalise_image
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case

WT = (1, 2, 3)


def crop_around_tumour(case, side: int = 56):
    """The case cropped to a ``side``^3 box around the tumour (a region of interest)."""
    from napari_medseg.io import LabelMap, Volume

    centre = np.argwhere(case.labels.data > 0).mean(0).round().astype(int)
    lo = np.clip(centre - side // 2, 0, np.asarray(case.labels.data.shape) - side)
    box = tuple(slice(a, a + side) for a in lo)
    shift = np.eye(4)
    shift[:3, 3] = lo[::-1]
    affine = case.volume.affine @ shift
    volume = Volume(case.volume.data[(slice(None), *box)], affine, case.volume.channel_names)
    return type(case)(volume, LabelMap(case.labels.data[box], affine, case.labels.label_names),
                      case.seed, case.info)


def speed(seed: int, tolerance: float) -> dict:
    from captum.attr import ShapleyValues, ShapleyValueSampling

    full = load_model("brats_unet")
    model = first_fold(full)
    case = crop_around_tumour(generate_case(seed, spacing=2.0))
    start = time.perf_counter()
    ours = run_to_end(explain_case(model, case.volume, case.labels.data, maps=False))
    ours_seconds = time.perf_counter() - start
    ours_phi = ours.targets["WT"].phi

    spec, network = model.spec, model.networks[0]
    image = normalise_image(channels_for_model(case.volume, spec), ["zscore_nonzero"] * 4)
    grid = model_grid_shape(case.volume.shape, case.volume.spacing, spec.spacing)
    image_t = resample(torch.from_numpy(image), grid)
    truth = np.isin(case.labels.data, WT)
    calls = []

    def forward(x):  # x: [1, C, z, y, x] with absent contrasts at the zero baseline
        calls.append(1)
        softmax = lambda batch: network(batch).softmax(1)  # noqa: E731
        probabilities = run_to_end(sliding_window(softmax, x[0], spec.patch_size, 4, 0.5, 4))
        labels = resample(probabilities, case.volume.shape).argmax(0).numpy()
        return torch.tensor([dice(np.isin(labels, WT), truth)], dtype=torch.float64)

    mask = torch.arange(4).reshape(1, 4, 1, 1, 1).expand(1, 4, *grid).contiguous()
    inputs, baseline = image_t[None], torch.zeros_like(image_t)[None]
    start = time.perf_counter()
    exact = ShapleyValues(forward).attribute(inputs, baselines=baseline, feature_mask=mask)
    captum_seconds = time.perf_counter() - start
    captum_calls = len(calls)
    captum_phi = exact[0, :, 0, 0, 0].numpy()

    sampling = {}
    for n_samples in (1, 2, 4, 8, 16):
        calls.clear()
        start = time.perf_counter()
        sampled = ShapleyValueSampling(forward).attribute(
            inputs, baselines=baseline, feature_mask=mask, n_samples=n_samples)
        error = float(np.abs(sampled[0, :, 0, 0, 0].numpy() - ours_phi).max())
        sampling = {"n_samples": n_samples, "seconds": time.perf_counter() - start,
                    "forward_calls": len(calls), "max_abs_error": error}
        if error <= tolerance:
            break
    return {"seed": seed, "ours_seconds_all_targets": ours_seconds,
            "captum_seconds_one_target": captum_seconds, "captum_forward_calls": captum_calls,
            "speedup_vs_captum": captum_seconds / ours_seconds,
            "max_abs_difference": float(np.abs(ours_phi - captum_phi).max()),
            "ours_phi_wt": ours_phi.tolist(), "captum_phi_wt": captum_phi.tolist(),
            "sampling_to_tolerance": sampling, "tolerance": tolerance,
            "speedup_vs_sampling": sampling["seconds"] / ours_seconds}


VARIANTS = {"objects": {"region": "objects", "precision": "float32"},
            "whole": {"region": "whole", "precision": "float32"},
            "whole at overlap 0.25": {"region": "whole", "overlap": 0.25, "precision": "float32"},
            "whole in auto precision": {"region": "whole", "precision": "auto"}}
"""Explain's settings compared by ``--against-prediction``; ``whole`` (float32, the
computation the issue's bound refers to) is the reference the others' values are compared
with. ``auto`` is the product's default: bfloat16 on a CPU with native bf16."""


def against_prediction(seed: int, variants: tuple[str, ...] = ("objects", "whole")) -> dict:
    """Explain (all folds, reference given, voxel maps on) against one full prediction of
    the same model in the same precision on a 240x240x155 case, in one run, for each of
    ``variants`` (keys of `VARIANTS`); with ``whole`` among them, the largest difference of
    any other variant's Shapley values and voxel maps from its own."""
    from _common import brats_sized_case

    from napari_medseg.inference import predict

    model = load_model("brats_unet")
    volume, labels = brats_sized_case(seed, with_labels=True)
    precisions = sorted({VARIANTS[name]["precision"] for name in variants})

    def timed_prediction(precision: str) -> float:
        start = time.perf_counter()
        run_to_end(predict(model, volume, device="cpu", precision=precision))
        return time.perf_counter() - start

    before = {}
    for precision in precisions:
        timed_prediction(precision)  # warm-up: first-call costs are not the prediction's
        before[precision] = timed_prediction(precision)
    out = {"seed": seed, "shape": list(volume.shape), "folds": len(model.networks),
           "variants": {name: VARIANTS[name] for name in variants}}
    results = {}
    for name in variants:
        start = time.perf_counter()
        results[name] = run_to_end(explain_case(model, volume, labels, **VARIANTS[name]))
        out[f"explain_{name}_seconds"] = time.perf_counter() - start
        out[f"explain_{name}_arithmetic"] = results[name].model["precision"]
        print(f"{name}: {out[f'explain_{name}_seconds']:.1f} s", flush=True)
    # the machine's speed drifts over minutes: the prediction is timed before and after
    # the explanations, and the ratio is against their mean
    for precision in precisions:
        times = [before[precision], timed_prediction(precision)]
        out[f"predict_{precision}_seconds_before_after"] = times
        out[f"predict_{precision}_seconds"] = float(np.mean(times))
    for name in results:
        precision = VARIANTS[name]["precision"]
        predict_seconds = out[f"predict_{precision}_seconds"]
        out[f"explain_{name}_ratio"] = out[f"explain_{name}_seconds"] / predict_seconds
        print(f"{name}: {out[f'explain_{name}_ratio']:.2f}x one {precision} prediction of "
              f"{predict_seconds:.1f} s (before and after: "
              f"{out[f'predict_{precision}_seconds_before_after']})", flush=True)
        if precision != "float32" and "float32" in precisions:
            out[f"explain_{name}_ratio_to_float32_prediction"] = (
                out[f"explain_{name}_seconds"] / out["predict_float32_seconds"])
    for name in (n for n in results if n != "whole" and "whole" in results):
        out[f"{name}: max_abs_phi_difference"] = {
            target: float(np.abs(values.phi - results[name].targets[target].phi).max())
            for target, values in results["whole"].targets.items()}
        out[f"{name}: max_abs_map_difference"] = {
            target: float(np.abs(values.maps - results[name].targets[target].maps).max())
            for target, values in results["whole"].targets.items()}
    return out


def physics(n_cases: int) -> dict:
    model = load_model("brats_unet")
    contrasts = model.spec.input_names
    per_target: dict[str, dict[str, list]] = {}
    for seed in range(HELD_OUT_FIRST_SEED, HELD_OUT_FIRST_SEED + n_cases):
        case = generate_case(seed, spacing=2.0)
        result = run_to_end(explain_case(model, case.volume, case.labels.data,
                                         clinician=PROTOCOL_RANKINGS, maps=False))
        for name, target in result.targets.items():
            entry = per_target.setdefault(name, {"phi": [], "nsf": [], "rank_variance": []})
            entry["phi"].append(target.phi)
            entry["nsf"].append(target.nsf)
            entry["rank_variance"].append(target.rank_variance)
        print(f"seed {seed} done", flush=True)
    summary = {}
    for name, entry in per_target.items():
        mean_phi = np.mean(entry["phi"], axis=0)
        ranks = ranks_from_phi(mean_phi)
        protocol = np.array([PROTOCOL_RANKINGS[name][c] for c in contrasts], float)
        summary[name] = {"mean_phi": dict(zip(contrasts, mean_phi.round(4).tolist())),
                         "ranking_of_mean_phi": dict(zip(contrasts, ranks.tolist())),
                         "protocol_ranking": dict(zip(contrasts, protocol.tolist())),
                         "nsf_of_mean_ranking": normalised_footrule_similarity(ranks, protocol),
                         "nsf_per_case_mean": float(np.mean(entry["nsf"])),
                         "rank_variance_mean": float(np.nanmean(entry["rank_variance"])),
                         "top_contrast": contrasts[int(np.argmin(ranks))]}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--against-prediction", action="store_true",
                        help="only: Explain time over one prediction, 240x240x155, and "
                             "the box-restricted values against the whole volume's")
    parser.add_argument("--variants", default="objects,whole",
                        help=f"with --against-prediction: which of {', '.join(VARIANTS)} "
                             "(comma-separated; default objects,whole)")
    parser.add_argument("--json", default="bench/results/shapley.json")
    args = parser.parse_args()
    payload = {"command": "bench/shapley.py"}
    if args.against_prediction:
        unknown = set(args.variants.split(",")) - set(VARIANTS)
        if unknown:
            parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}: "
                         f"choose from {', '.join(VARIANTS)}")
        payload["against_prediction"] = against_prediction(
            HELD_OUT_FIRST_SEED + 100, tuple(args.variants.split(",")))
        print(json.dumps(payload["against_prediction"], indent=1))
        write_json(args.json, payload)
        return
    if not args.skip_speed:
        timing = speed(HELD_OUT_FIRST_SEED + 50, args.tolerance)
        payload["speed"] = timing
        print_table([{"method": "ours (exact, 16 coalitions, 5 targets)",
                      "seconds": timing["ours_seconds_all_targets"]},
                     {"method": f"captum ShapleyValues (exact, WT only, "
                                f"{timing['captum_forward_calls']} forwards)",
                      "seconds": timing["captum_seconds_one_target"]},
                     {"method": f"captum ShapleyValueSampling, n_samples="
                                f"{timing['sampling_to_tolerance']['n_samples']} "
                                f"(error {timing['sampling_to_tolerance']['max_abs_error']:.4f})",
                      "seconds": timing["sampling_to_tolerance"]["seconds"]}],
                    ["method", "seconds"])
        print(f"speed-up vs captum exact: {timing['speedup_vs_captum']:.1f}x, max |ours - "
              f"captum| = {timing['max_abs_difference']:.2e}; vs sampling at "
              f"{args.tolerance}: {timing['speedup_vs_sampling']:.1f}x\n")
    summary = physics(args.cases)
    payload["physics"] = {"cases": args.cases, "targets": summary}
    rows = [{"target": name, **{c: s["mean_phi"][c] for c in s["mean_phi"]},
             "model top": s["top_contrast"], "NSF vs protocol": s["nsf_of_mean_ranking"],
             "NSF per case": s["nsf_per_case_mean"], "rank var": s["rank_variance_mean"]}
            for name, s in summary.items()]
    print_table(rows, ["target", "T1", "T1ce", "T2", "FLAIR", "model top", "NSF vs protocol",
                       "NSF per case", "rank var"])
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
