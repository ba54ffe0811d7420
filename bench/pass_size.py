"""How many inputs to run through the built-in network together on this CPU.

Three workloads of the product, each on real windows of the 240x240x155 case
(seed 9100) normalised and resampled to the model's 2 mm grid, with the
built-in model's fold 0, in float32 and in the product's ``auto`` precision:

- windows: eight 48^3 windows of the case (the prediction's sliding window);
- coalitions: the 15 non-empty contrast coalitions of one window (Explain);
- MC samples: eight dropout samples of one window (`UNet3D.forward_samples`,
  whose passes run only the levels after the first dropout layer).

Each pass size is timed in ABBA order within one process (this machine's speed
drifts), ``--repeats`` times; the table gives medians in milliseconds per input
(per sample for MC), and the pass size the product chooses.

    .venv/bin/python bench/pass_size.py --json bench/results/pass_size.json
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from _common import brats_sized_case, print_table, write_json

SIZES = (1, 2, 4, 8)


def _workloads(image: torch.Tensor, network):
    """name -> (inputs, run(pass_size)) for the three workloads."""
    windows = torch.stack([image[:, z:z + 48, y:y + 48, x:x + 48]
                           for z in (0, 24) for y in (36, 60) for x in (36, 60)])
    window = windows[3]
    keep = torch.tensor([[(s >> c) & 1 for c in range(4)] for s in range(1, 16)], dtype=torch.bool)
    coalitions = torch.where(keep[:, :, None, None, None], window, torch.zeros_like(window))

    def through(inputs):
        return lambda size: [network(part).float().softmax(1) for part in inputs.split(size)]

    def samples(size):
        return network.forward_samples(window[None], 8, size).float().softmax(1)

    return {"windows": (8, through(windows)), "coalitions": (15, through(coalitions)),
            "MC samples": (8, samples)}


def measure(precision: str, repeats: int, seed: int) -> list[dict]:
    """Median milliseconds per input for each workload and pass size in ``precision``."""
    from napari_medseg.inference import inputs_per_pass, prepare_input
    from napari_medseg.models import load_model
    from napari_medseg.models.device import autocast_context, autocast_dtype, place_network
    from napari_medseg.uncertainty._sampling import dropout_active

    model = load_model("brats_unet", folds=[0])
    network = model.networks[0]
    dtype = autocast_dtype(precision, "cpu")
    place_network(network, "cpu", dtype)
    image = prepare_input(brats_sized_case(seed), model.spec)
    rows = []
    for name, (count, run) in _workloads(image, network).items():
        times: dict[int, list[float]] = {size: [] for size in SIZES}
        with (torch.inference_mode(), autocast_context("cpu", dtype),
              dropout_active(network, name == "MC samples")):
            run(4)  # warm-up
            for _ in range(repeats):
                for size in SIZES + SIZES[::-1]:
                    start = time.perf_counter()
                    run(size)
                    times[size].append((time.perf_counter() - start) / count * 1000)
        chosen = inputs_per_pass((48, 48, 48), "cpu", dtype)
        rows.append({"workload": name, "precision": precision,
                     **{f"{size} per pass (ms)": statistics.median(times[size])
                        for size in SIZES},
                     "product's pass": 2 * chosen if name == "MC samples" else chosen,
                     "all_ms": {str(size): values for size, values in times.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--seed", type=int, default=9100)
    parser.add_argument("--json", default="bench/results/pass_size.json")
    args = parser.parse_args()
    rows = [row for precision in ("float32", "auto")
            for row in measure(precision, args.repeats, args.seed)]
    print_table(rows, ["workload", "precision", *(f"{s} per pass (ms)" for s in SIZES),
                       "product's pass"])
    from napari_medseg.models.device import autocast_dtype, precision_name

    write_json(args.json, {"command": "bench/pass_size.py", "repeats": args.repeats,
                           "auto_is": precision_name(autocast_dtype("auto", "cpu")),
                           "rows": rows})


if __name__ == "__main__":
    main()
