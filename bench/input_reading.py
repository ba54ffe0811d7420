"""How a prediction reads the case: one contrast at a time, against the stacked case.

The end-to-end prediction of the 240x240x155 case (seed 9100, all folds,
``--precision``) is timed with the model's input built

- as the product builds it (`inference.prepare_input`: one contrast at a time,
  cast to float32 into one reused buffer, normalised, resampled);
- as it was built before: the case stacked in float32 on its own grid
  (``channels_for_model``), normalised in place, then resampled (kept here as
  the reference).

Two sources of the case: a float32 volume (what ``napari-medseg predict``
reads) and the files' stored 16-bit integers as the dock's layers hold them;
for those, the dock's worker stacked the layers in float32 before
(``volume_builder``) and stacks them in their own type now
(``stored_types=True``), and that stacking is timed too. Rounds in ABBA order
within one process (this machine's speed drifts); medians in seconds; labels
checked identical for each source; numpy's peak memory while the volume is made and
the input built (tracemalloc).

    .venv/bin/python bench/input_reading.py --json bench/results/input_reading.json
"""
from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
import torch

from _common import abba_times, brats_sized_case, print_table, write_json

from napari_medseg.inference import _predict  # noqa: E402
from napari_medseg.inference._predict import channels_for_model, model_grid_shape, resample
from napari_medseg.models.normalise import normalise_image

PER_CONTRAST = _predict.prepare_input


def stacked_input(volume, spec, region=None):
    """The input as it was built before: the stacked case, normalised in place."""
    image = normalise_image(channels_for_model(volume, spec),
                            [item.normalization for item in spec.inputs], in_place=True)
    if region is not None:
        image = np.ascontiguousarray(image[(slice(None), *region)])
    grid = model_grid_shape(image.shape[1:], volume.spacing, spec.spacing)
    return resample(torch.from_numpy(image), grid)


class _Layer:  # what `layers.volume_builder` reads of a napari Image layer
    def __init__(self, data, affine):
        from napari_medseg.layers import METADATA_KEY

        self.data, self.scale = data, (1.0, 1.0, 1.0)
        self.metadata = {METADATA_KEY: {"affine": affine}}


def main() -> None:
    from napari_medseg.layers import volume_builder
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=9100)
    parser.add_argument("--json", default="bench/results/input_reading.json")
    args = parser.parse_args()
    model = load_model("brats_unet")
    volume = brats_sized_case(args.seed)
    stored = np.clip(np.round(volume.data), -32768, 32767).astype(np.int16)
    layers = {name: _Layer(stored[index], volume.affine)
              for index, name in enumerate(volume.channel_names)}
    variants = {  # name: (how the volume is made, how the input is built)
        "CLI (float32 case): stacked case (before)": (lambda: volume, stacked_input),
        "CLI (float32 case): one contrast at a time": (lambda: volume, PER_CONTRAST),
        "dock (int16 layers): float32 stack, stacked case (before)":
            (volume_builder(layers), stacked_input),
        "dock (int16 layers): int16 stack, one contrast at a time":
            (volume_builder(layers, stored_types=True), PER_CONTRAST),
    }
    labels, peaks = {}, {}

    def seconds(name: str) -> float:
        make_volume, _predict.prepare_input = variants[name]
        start = time.perf_counter()
        labels[name] = run_to_end(_predict.predict(
            model, make_volume(), device="cpu", precision=args.precision,
            keep_probabilities=False)).labels
        return time.perf_counter() - start

    for name, (make_volume, build_input) in variants.items():
        tracemalloc.start()
        build_input(make_volume(), model.spec)
        peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    seconds(list(variants)[1])  # warm-up
    times = abba_times(list(variants), seconds, args.rounds)
    _predict.prepare_input = PER_CONTRAST
    rows = [{"run": name, "seconds (median)": statistics.median(values),
             "numpy peak: volume and input (MiB)": peaks[name],
             "all runs": " ".join(f"{value:.2f}" for value in values)}
            for name, values in times.items()]
    print_table(rows, ["run", "seconds (median)", "numpy peak: volume and input (MiB)",
                       "all runs"])
    names = list(variants)  # each source's two rows (its data differ: integers are rounded)
    same = all(np.array_equal(labels[names[i]], labels[names[i + 1]]) for i in (0, 2))
    print(f"labels identical before and after, for each source: {same}")
    write_json(args.json, {"command": "bench/input_reading.py", "precision": args.precision,
                           "case_shape": list(volume.shape), "rows": rows,
                           "same_labels": same})


if __name__ == "__main__":
    main()
