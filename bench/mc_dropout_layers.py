"""Which dropout layers Monte Carlo sampling switches on: cost and quality.

The built-in U-Net has dropout at the end of its two deepest encoder levels
and of its two deeper decoder levels; everything before the first active
dropout layer runs once per window for all T samples
(`UNet3D.forward_samples`). Three choices, on held-out cases (seeds 9200+,
the odd ones harder, as in bench/uncertainty.py), MC dropout with T = 8:
``all`` (as trained, the product's choice), ``decoder`` (the decoder's two),
``last`` (the last one only). Cost: the whole estimate over one single-fold
prediction of the same case, measured just before. Also the time of each
level of one plain forward on a 48^3 window, which bounds what any choice
can save: the full-resolution decoder level runs once per sample in all three.

    .venv/bin/python bench/mc_dropout_layers.py --cases 4 \
        --json bench/results/mc_dropout_layers.json
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch

from _common import (first_fold, print_table, single_prediction_seconds, uncertainty_case,
                     write_json)
from napari_medseg.models import load_model
from napari_medseg.models.unet import UNet3D
from napari_medseg.progress import run_to_end
from napari_medseg.uncertainty import _sampling, estimate_uncertainty

switch_dropout = _sampling.dropout_active



WITHIN = {"all": "", "decoder": "decoders", "last": "decoders.1"}  # decoders: levels 2, 1, 0


def level_times(network, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per level of one plain forward on a 48^3 window (median)."""
    steps, x = network._steps(), torch.randn(1, 4, 48, 48, 48)
    level_of, level, times = [], "encoder 0", defaultdict(list)
    encoders, decoders = 0, len(network.decoders)
    for kind, module in steps:  # a level: its block, with the step that brings it there
        if kind == "push" and encoders < len(network.encoders) - 1:
            encoders += 1
            level = f"encoder {encoders}" + (" (bottleneck)" if encoders == decoders else "")
        if kind == "apply" and isinstance(module, torch.nn.ConvTranspose3d):
            decoders -= 1
            level = f"decoder {decoders}"
        level_of.append("head" if kind == "apply" and module is network.head else level)
    with torch.no_grad():
        for _ in range(repeats + 1):
            state, skips, spent = x, [], defaultdict(float)
            for step, name in zip(steps, level_of):
                started = time.perf_counter()
                state = UNet3D._run([step], state, skips)
                spent[name] += time.perf_counter() - started
            for name, seconds in spent.items():
                times[name].append(seconds * 1000)
    return {name: float(np.median(values[1:])) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--json", default="bench/results/mc_dropout_layers.json")
    args = parser.parse_args()
    model = load_model("brats_unet")
    single = first_fold(model)
    levels = level_times(model.networks[0].eval())
    print_table([{"level": k, "ms": v} for k, v in levels.items()], ["level", "ms"])
    records = []
    for index in range(args.cases):
        seed, hard, case = uncertainty_case(index)
        for choice in ("all", "decoder", "last"):
            base = single_prediction_seconds(single, case.volume)
            _sampling.dropout_active = (lambda network, on, within=WITHIN[choice]:
                                        switch_dropout(network, on, within))
            # at the prediction's overlap: what each layer choice costs on its windows
            result = run_to_end(estimate_uncertainty(model, case.volume, "mc", 8, overlap=0.5,
                                                     reference=case.labels.data))
            auroc = result.calibration["error_detection_auroc"]
            records.append({"seed": seed, "hard": hard, "dropout": choice,
                            "cost": result.seconds / base, "ece": result.calibration["ece"],
                            "auroc total": auroc["total"], "auroc epistemic": auroc["epistemic"]})
        print(f"seed {seed} done", flush=True)
    figures = ("cost", "ece", "auroc total", "auroc epistemic")
    summary = [{"dropout": choice, **{key: float(np.mean([r[key] for r in records
                                                          if r["dropout"] == choice]))
                                      for key in figures}} for choice in WITHIN]
    print_table(summary, ["dropout", "cost", "ece", "auroc total", "auroc epistemic"])
    write_json(args.json, {"command": "bench/mc_dropout_layers.py", "level_ms": levels,
                           "summary": summary, "per_case": records})


if __name__ == "__main__":
    main()
