"""How much of a prediction the built-in network's instance normalisations cost.

A ceiling, not a variant of the product: the end-to-end prediction of the
240x240x155 case (seed 9100, all folds, ``--precision``) is timed with the
network's `nn.InstanceNorm3d` layers

- as they are (per-window statistics, the product);
- replaced by a fixed affine (``F.batch_norm`` with mean 0 and variance 1 in
  inference mode: the same weights applied in one pass, no statistics and, under
  bf16 on a CPU, no change of memory layout);
- removed (the identity).

The last two give wrong labels; they bound what any faster normalisation could
save. Under bf16 autocast on a CPU the convolutions keep their activations
channels-last (`models.device.place_network`), and PyTorch's instance norm
copies them to the standard layout first, which the next convolution reorders
back. Rounds in ABBA order within one process (this machine's speed drifts);
medians in seconds.

    .venv/bin/python bench/norm_share.py --json bench/results/norm_share.json
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from _common import brats_sized_case, print_table, write_json

AS_IS = nn.InstanceNorm3d.forward


def _fixed_affine(self, input):
    ones = torch.ones(input.shape[1])
    return F.batch_norm(input, ones - 1, ones, self.weight, self.bias, False, 0.0, self.eps)


VARIANTS = {"instance norm (the product)": AS_IS,
            "a fixed affine instead (no statistics)": _fixed_affine,
            "no normalisation": lambda self, input: input}


def main() -> None:
    from napari_medseg.inference import predict
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=9100)
    parser.add_argument("--json", default="bench/results/norm_share.json")
    args = parser.parse_args()
    volume, model = brats_sized_case(args.seed), load_model("brats_unet")

    def seconds(forward) -> float:
        nn.InstanceNorm3d.forward = forward
        start = time.perf_counter()
        run_to_end(predict(model, volume, device="cpu", precision=args.precision,
                           keep_probabilities=False))
        return time.perf_counter() - start

    seconds(AS_IS)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(args.rounds):
        order = list(VARIANTS) if round_ % 2 == 0 else list(VARIANTS)[::-1]
        for name in order:
            times[name].append(seconds(VARIANTS[name]))
    nn.InstanceNorm3d.forward = AS_IS
    product = statistics.median(times["instance norm (the product)"])
    rows = [{"network": name, "seconds (median)": statistics.median(values),
             "share of the product's time": statistics.median(values) / product,
             "all runs": " ".join(f"{value:.2f}" for value in values)}
            for name, values in times.items()]
    print_table(rows, ["network", "seconds (median)", "share of the product's time", "all runs"])
    write_json(args.json, {"command": "bench/norm_share.py", "precision": args.precision,
                           "case_shape": list(volume.shape), "rows": rows})


if __name__ == "__main__":
    main()
