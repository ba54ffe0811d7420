"""How much of a prediction the built-in network's instance normalisations cost.

A ceiling, not a variant of the product: the end-to-end prediction of the
240x240x155 case (seed 9100, all folds, ``--precision``) is timed with the
network's `nn.InstanceNorm3d` layers

- as they are (per-window statistics, the product);
- replaced by a fixed affine (``F.batch_norm`` with mean 0 and variance 1 in
  inference mode: the same weights applied in one pass, no statistics and, under
  bf16 on a CPU, no change of memory layout);
- removed (the identity).

The fixed affine and the identity give wrong labels; they bound what any faster
normalisation could save. A fourth row joins the decoder's skips as the code did
before `models.unet.joined` (a plain ``torch.cat``, in the standard layout under
bf16): the same labels (checked), the time that change saved.

Under bf16 autocast on a CPU the convolutions keep their activations
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

from _common import abba_times, brats_sized_case, print_table, write_json

from napari_medseg.models import unet  # noqa: E402

AS_IS, JOINED = nn.InstanceNorm3d.forward, unet.joined


def _fixed_affine(self, input):
    ones = torch.ones(input.shape[1])
    return F.batch_norm(input, ones - 1, ones, self.weight, self.bias, False, 0.0, self.eps)


def _plain_concatenation(upsampled, skip):
    return torch.cat([upsampled, skip], dim=1)


VARIANTS = {  # name: (instance norm's forward, the decoder's join)
    "instance norm (the product)": (AS_IS, JOINED),
    "a fixed affine instead (no statistics)": (_fixed_affine, JOINED),
    "no normalisation": (lambda self, input: input, JOINED),
    "the product, skips joined in the standard layout (before)": (AS_IS, _plain_concatenation),
}


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

    labels = {}

    def seconds(name: str) -> float:
        nn.InstanceNorm3d.forward, unet.joined = VARIANTS[name]
        start = time.perf_counter()
        labels[name] = run_to_end(predict(model, volume, device="cpu", precision=args.precision,
                                          keep_probabilities=False)).labels
        return time.perf_counter() - start

    seconds("instance norm (the product)")  # warm-up
    times = abba_times(list(VARIANTS), seconds, args.rounds)
    nn.InstanceNorm3d.forward, unet.joined = AS_IS, JOINED
    product = statistics.median(times["instance norm (the product)"])
    rows = [{"network": name, "seconds (median)": statistics.median(values),
             "share of the product's time": statistics.median(values) / product,
             "all runs": " ".join(f"{value:.2f}" for value in values)}
            for name, values in times.items()]
    print_table(rows, ["network", "seconds (median)", "share of the product's time", "all runs"])
    same = bool((labels["instance norm (the product)"] == labels[list(VARIANTS)[-1]]).all())
    print(f"labels of the product and of the standard-layout joins identical: {same}")
    write_json(args.json, {"command": "bench/norm_share.py", "precision": args.precision,
                           "case_shape": list(volume.shape), "rows": rows,
                           "standard_layout_joins_same_labels": same})


if __name__ == "__main__":
    main()
