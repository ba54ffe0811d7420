"""Our sliding-window engine vs MONAI's sliding_window_inference, and the full pipeline.

Same network (built-in fold 0), same patch, same overlap (0.5), same Gaussian
blending, same input (a BraTS-sized 240x240x155 four-contrast case, normalised
and resampled to the model's 2 mm grid). Each engine runs in its own process
so its peak memory is its own; the ratio compares runs on one machine.

    .venv/bin/python bench/inference.py --json bench/results/inference.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch

from _common import PeakRSS, brats_sized_case, print_table, write_json


def _input_tensor(seed: int):
    from napari_medseg.inference import channels_for_model, model_grid_shape, resample
    from napari_medseg.models import load_model
    from napari_medseg.models.normalise import normalise_image

    model = load_model("brats_unet", folds=[0])
    volume = brats_sized_case(seed)
    image = normalise_image(channels_for_model(volume, model.spec), ["zscore_nonzero"] * 4)
    shape = model_grid_shape(volume.shape, volume.spacing, model.spec.spacing)
    return model, volume, resample(torch.from_numpy(image), shape)


def run_engine(engine: str, device: str, batch_size: int, repeats: int, seed: int) -> dict:
    """Time one engine in this process; returns timings, memory and the output."""
    from monai.inferers import sliding_window_inference

    from napari_medseg.inference import sliding_window
    from napari_medseg.progress import run_to_end

    model, volume, image = _input_tensor(seed)
    network = model.networks[0].to(device)
    softmax = lambda x: network(x).softmax(1)  # noqa: E731
    patch = model.spec.patch_size
    amp = device == "cuda"
    from napari_medseg.models.device import autocast_dtype

    dtype = autocast_dtype("auto", device)

    def once():
        if engine == "ours":
            return run_to_end(sliding_window(softmax, image, patch, 4, 0.5, batch_size, device,
                                             autocast=dtype))
        with torch.inference_mode(), torch.autocast("cuda", enabled=amp):
            return sliding_window_inference(image[None].to(device), patch, batch_size, softmax,
                                            overlap=0.5, mode="gaussian")[0].float()

    with PeakRSS() as memory:
        output = once()  # warm-up, and the memory one run needs
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        output = once()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    voxels = int(np.prod(image.shape[1:]))
    return {"engine": engine, "device": device, "seconds_median": float(np.median(times)),
            "seconds_all": times, "voxels_per_second": voxels / float(np.median(times)),
            "grid": list(image.shape[1:]), "run_memory_mib": memory.increase_mib,
            "output": output.cpu().numpy()}


def run_pipeline(device: str, seed: int) -> dict:
    """Full predict (3 folds) on the 240x240x155 case: time and peak memory."""
    from napari_medseg.inference import predict
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end

    volume = brats_sized_case(seed)
    model = load_model("brats_unet")
    start = time.perf_counter()
    with PeakRSS() as memory:
        run_to_end(predict(model, volume, device=device, keep_probabilities=True))
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "case_shape": list(volume.shape), "folds": model.n_folds,
              "run_memory_mib": memory.increase_mib,
              "case_mib": volume.data.nbytes / 2**20}
    if device == "cuda":
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _child(args) -> None:
    if args.child == "pipeline":
        print(json.dumps(run_pipeline(args.device, args.seed)))
        return
    result = run_engine(args.child, args.device, args.batch_size, args.repeats, args.seed)
    np.save(args.output_npy, result.pop("output"))
    print(json.dumps(result))


def _spawn(kind: str, args, npy: str = "") -> dict:
    command = [sys.executable, __file__, "--child", kind, "--device", args.device,
               "--batch-size", str(args.batch_size), "--repeats", str(args.repeats),
               "--seed", str(args.seed), "--output-npy", npy]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=9100)
    parser.add_argument("--json", default="bench/results/inference.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--output-npy", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        ours = _spawn("ours", args, f"{folder}/ours.npy")
        monai = _spawn("monai", args, f"{folder}/monai.npy")
        difference = float(np.abs(np.load(f"{folder}/ours.npy")
                                  - np.load(f"{folder}/monai.npy")).max())
    pipeline = _spawn("pipeline", args)
    print_table([ours, monai], ["engine", "device", "seconds_median", "voxels_per_second",
                                "run_memory_mib"])
    ratio = ours["voxels_per_second"] / monai["voxels_per_second"]
    print(f"\nthroughput ratio ours/MONAI: {ratio:.3f}   max |ours - MONAI|: {difference:.2e}")
    print(f"full predict, 3 folds, 240x240x155 case on {args.device}: {pipeline['seconds']:.1f} s,"
          f" memory +{pipeline['run_memory_mib']:.0f} MiB at peak over the loaded case "
          f"({pipeline['case_mib']:.0f} MiB) and model, probabilities kept")
    write_json(args.json, {"command": "bench/inference.py", "engines": [ours, monai],
                           "throughput_ratio_ours_over_monai": ratio,
                           "max_abs_difference": difference, "pipeline": pipeline})


if __name__ == "__main__":
    main()
