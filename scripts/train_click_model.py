"""Train the built-in click network (`click_unet`) with DeepEdit's recipe.

The network is the built-in segmentation model's (`brats_unet`, fold 0) with
more input channels: the four contrasts, the current mask one-hot per label
(NCR, ED, ET) and each label's positive and negative click guidance. It
starts from the segmentation weights with the new input channels at zero, so
before training it *is* the segmentation model, and learns how clicks and the
current mask should change its answer. It answers every label (4 classes);
a session keeps only the clicked object's change (see
`napari_medseg.interactive._edit`).

Training interactions (`napari_medseg.interactive._simulate`): the starting
masks are the segmentation model's own predictions of generator cases never
used to train it (seeds 3000..), two thirds of them under a shifted
protocol (enhancement on T1ce dimmed to 0.85-1.3 of a scale whose default is
1.35, oedema on FLAIR dimmed to 0.55-0.95 of 1.0), so the model errs as on
a new scanner; clicks come from the robot user and then, for up to three
rounds, from the network's own errors. The benchmark's cases (seeds 9000..)
are never used.

Run (42 minutes on a 2-core CPU, a few on a GPU):
    .venv/bin/python scripts/train_click_model.py --out napari_medseg/models/builtin/click_unet
``--init FOLDER`` continues from a click model (a later stage: ``--max-rounds``,
``--learning-rate``, ``--seed``); one such stage measured no better (BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from napari_medseg.interactive._simulate import training_sample
from napari_medseg.models import load_model, save_model
from napari_medseg.models.normalise import normalise_image
from napari_medseg.models.spec import ModelSpec
from napari_medseg.models.training import TrainingSettings, train
from napari_medseg.models.unet import UNet3D
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case
from napari_medseg.sample._contrasts import AcquisitionSettings
from napari_medseg.sample._generate import PhantomSettings

SEGMENTATION_MODEL = "brats_unet"
SPACING = (1.5, 1.5, 1.5)
PATCH = (48, 48, 48)
MARGIN = 24  # voxels of context kept around the tumour and the prediction


def protocol(seed: int) -> PhantomSettings | None:
    """Original for one case in three, else a random dimming of ET (T1ce) and ED (FLAIR)."""
    if seed % 3 == 0:
        return None
    rng = np.random.default_rng(seed + 77)
    overrides = {"T1ce": {"ET": float(rng.uniform(0.85, 1.3))},
                 "FLAIR": {"ED": float(rng.uniform(0.55, 0.95))}}
    return PhantomSettings(acquisition=AcquisitionSettings(signal_overrides=overrides))


def make_case(seed: int, segmentation, cache: Path) -> dict:
    """A case around its tumour: normalised image, reference, the model's prediction."""
    from napari_medseg.inference import predict

    path = cache / f"click_case_{seed}.npz"
    if not path.exists():
        case = generate_case(seed, spacing=SPACING, settings=protocol(seed))
        prediction = run_to_end(predict(segmentation, case.volume, device="cpu",
                                        keep_probabilities=False))
        image = normalise_image(case.volume.data,
                                [item.normalization for item in segmentation.spec.inputs])
        reference = case.labels.data.astype(np.uint8)
        found = np.argwhere((reference > 0) | (prediction.labels > 0))
        low = np.maximum(found.min(0) - MARGIN, 0)
        high = np.minimum(found.max(0) + MARGIN + 1, reference.shape)
        box = tuple(slice(a, b) for a, b in zip(low, high))
        np.savez_compressed(path, image=image[(slice(None), *box)].astype(np.float32),
                            reference=reference[box],
                            predicted=prediction.labels[box].astype(np.uint8))
    stored = np.load(path)
    return {name: stored[name] for name in ("image", "reference", "predicted")}


def initial_network(segmentation, n_labels: int) -> tuple[UNet3D, dict]:
    """The segmentation network with ``3 n_labels`` more input channels, at zero."""
    args = dict(segmentation.spec.architecture["args"])
    contrasts = args["in_channels"]
    args.update(in_channels=contrasts + 3 * n_labels, dropout=0.0)
    network = UNet3D(**args)
    state = segmentation.networks[0].state_dict()
    own = network.state_dict()
    for key, value in state.items():
        if own[key].shape != value.shape:  # the first convolution: pad its input channels
            grown = torch.zeros_like(own[key])
            grown[:, :contrasts] = value
            value = grown
        own[key] = value
    network.load_state_dict(own)
    return network, args


def batch_sampler(cases: list[dict], network: UNet3D, batch_size: int, n_labels: int,
                  max_rounds: int):
    """Batches of simulated interactions, the network answering the rounds."""
    def answer(x: np.ndarray) -> np.ndarray:
        network.eval()
        with torch.inference_mode():
            device = next(network.parameters()).device
            logits = network(torch.from_numpy(x)[None].to(device))[0]
        network.train()
        return logits.argmax(0).cpu().numpy()

    def draw(rng: np.random.Generator):
        inputs, targets = [], []
        while len(inputs) < batch_size:
            case = cases[rng.integers(len(cases))]
            sample = training_sample(case["image"], case["reference"], case["predicted"], rng,
                                     PATCH, n_labels, answer, max_rounds)
            if sample is None:
                continue
            x, y = sample
            if rng.random() < 0.5:
                x, y = x[..., ::-1], y[..., ::-1]
            inputs.append(np.ascontiguousarray(x, dtype=np.float32))
            targets.append(np.ascontiguousarray(y))
        return np.stack(inputs), np.stack(targets)
    return draw


def save(network: UNet3D, args: dict, segmentation, out: Path, log: dict) -> None:
    """Weights (float16 safetensors), spec and training log into ``out``."""
    source = segmentation.spec
    spec = ModelSpec(
        name="click_unet", version="2.0.0", task="interactive",
        description="DeepEdit-style click network: the built-in segmentation model with the "
                    "current mask (one-hot per label) and per-label positive/negative click "
                    "guidance as extra inputs, fine-tuned from its weights.",
        architecture={"name": "unet3d", "args": args}, inputs=source.inputs,
        labels=source.labels, patch_size=PATCH, spacing=SPACING, folds=(), training=log)
    save_model(out, spec, [network.cpu()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--first-seed", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rounds", type=int, default=3,
                        help="most rounds of the network's own answers before the last click")
    parser.add_argument("--init", type=Path,
                        help="continue from this click model folder (default: start from the "
                             "segmentation model's weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/napari_medseg_click_cases"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.time()
    args.cache.mkdir(parents=True, exist_ok=True)
    segmentation = load_model(SEGMENTATION_MODEL)
    n_labels = segmentation.spec.architecture["args"]["n_classes"] - 1
    seeds = range(args.first_seed, args.first_seed + args.cases)
    cases = [make_case(seed, segmentation, args.cache) for seed in seeds]
    print(f"{len(cases)} cases in {time.time() - started:.0f} s", flush=True)
    torch.manual_seed(0)
    network, arch = initial_network(segmentation, n_labels)
    earlier: dict = {}
    if args.init:  # a later stage: keep what the earlier one recorded
        initial = load_model(args.init)
        network = initial.networks[0]
        earlier = {"earlier_stage": dict(initial.spec.training or {})}
        if (args.init / "training_log.json").exists():
            earlier["curve"] = json.loads((args.init / "training_log.json").read_bytes())["curve"]
    settings = TrainingSettings(steps=args.steps, batch_size=args.batch_size, patch_size=PATCH,
                                learning_rate=args.learning_rate, seed=args.seed)
    sampler = batch_sampler(cases, network, args.batch_size, n_labels, args.max_rounds)
    curve = run_to_end(train(network, [], settings, device, sampler=sampler),
                       lambda p: print(p.message, f"{time.time() - started:.0f} s", flush=True)
                       if p.done % 50 == 0 else None)
    minutes = round((time.time() - started) / 60, 2)
    log = {"script": "scripts/train_click_model.py", "device": device,
           "initialised_from": str(args.init) if args.init else
           f"{SEGMENTATION_MODEL} {segmentation.spec.version} fold 0",
           "max_rounds": args.max_rounds, "seed": args.seed,
           "cases": args.cases, "first_seed": args.first_seed, "steps": args.steps,
           "batch_size": args.batch_size, "learning_rate": args.learning_rate,
           "total_minutes": minutes, **{k: v for k, v in earlier.items() if k != "curve"}}
    save(network, arch, segmentation, args.out, log)
    (args.out / "training_log.json").write_text(json.dumps({"curve": curve}, indent=1) + "\n",
                                                encoding="utf-8")
    if "curve" in earlier:
        (args.out / "training_log_earlier.json").write_text(
            json.dumps({"curve": earlier["curve"]}, indent=1) + "\n", encoding="utf-8")
    print(f"total {minutes} min -> {args.out}")


if __name__ == "__main__":
    main()
