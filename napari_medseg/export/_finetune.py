"""Fine-tune a model on corrected cases (an nnU-Net v2 raw dataset) into a new version.

The dataset is split (seeded) into training and validation cases; each
chosen fold network is trained further with the model's own patch size and
spacing at a small learning rate (`napari_medseg.models.training.train`),
and Dice on the validation cases is measured before and after. The result is
a new model folder: the spec's version bumped, the parent (name, version,
folder, weight checksums) recorded, new checksums. The original folder is
never written to.
"""
from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError, describe
from napari_medseg.io import Volume
from napari_medseg.progress import Progress
from napari_medseg.export._nnunet import dataset_cases, read_descriptor

PATCHES_PER_CASE_EPOCH = 8


@dataclass(frozen=True)
class FinetuneResult:
    """The new model folder and validation Dice before and after."""

    folder: Path
    dice_before: dict[str, float]
    dice_after: dict[str, float]
    train_cases: tuple[str, ...]
    val_cases: tuple[str, ...]


def read_nnunet_dataset(folder: str | Path) -> list[tuple[str, Volume, np.ndarray]]:
    """``[(case_id, volume, labels)]`` of an nnU-Net v2 raw dataset's training cases.

    Parameters
    ----------
    folder : str or Path
        A ``Dataset*`` folder with ``dataset.json``, ``imagesTr`` and ``labelsTr``.
    """
    from napari_medseg.io import read_labels, read_volume

    folder = Path(folder)
    descriptor = folder / "dataset.json"
    if not descriptor.is_file():
        raise InputError(describe(folder, "not an nnU-Net dataset (no dataset.json)",
                                  "Export corrected cases with format nnunet first"))
    meta = read_descriptor(descriptor)
    channels = [meta["channel_names"][str(i)] for i in range(len(meta["channel_names"]))]
    cases = []
    for case_id, files in sorted(dataset_cases(folder, meta).items()):
        cases.append((case_id, read_volume(files["images"], channel_names=channels),
                      read_labels(files["label"]).data))
    return cases


def _model_grid(volume: Volume, labels: np.ndarray, spec):
    import torch
    import torch.nn.functional as F

    from napari_medseg.inference import prepare_input
    from napari_medseg.models.training import TrainingCase

    image = prepare_input(volume, spec).numpy()
    shape = image.shape[1:]
    grid = F.interpolate(torch.from_numpy(labels.astype(np.float32))[None, None], size=shape,
                         mode="nearest")[0, 0].numpy().astype(np.int64)
    return TrainingCase(image, grid)


def validation_dice(model, cases: Sequence[tuple[str, Volume, np.ndarray]],
                    device: str = "auto") -> dict[str, float]:
    """Mean Dice per region (or label) of ``model`` over ``cases``.

    Parameters
    ----------
    model : LoadedModel
        The model evaluated.
    cases : sequence of (str, Volume, ndarray)
        Case id, contrasts and reference labels.
    device : str
        Torch device (``auto``: CUDA, then MPS, then the CPU).
    """
    from napari_medseg.inference import predict
    from napari_medseg.metrics import dice
    from napari_medseg.progress import run_to_end

    regions = dict(model.spec.regions) or {i.name: (i.value,) for i in model.spec.labels}
    scores: dict[str, list[float]] = {name: [] for name in regions}
    for _, volume, labels in cases:
        predicted = run_to_end(predict(model, volume, device=device)).labels
        for name, values in regions.items():
            scores[name].append(dice(np.isin(predicted, values), np.isin(labels, values)))
    return {name: round(float(np.mean(values)), 4) for name, values in scores.items()}


def _check_output(out: Path, model_folder: Path, overwrite: bool) -> None:
    from napari_medseg.models.registry import BUILTIN_DIR

    resolved = out.resolve()
    if resolved == model_folder.resolve() or BUILTIN_DIR.resolve() in resolved.parents:
        raise InputError(f"{out}: fine-tuning never writes into the original or built-in model "
                         "folders; choose a new folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out}: exists and is not empty. Choose a new folder, or pass "
                         "overwrite=True (CLI: --overwrite)")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: the output folder does not exist. Create it first")


def _bump(version: str) -> str:
    parts = (version.split(".") + ["0", "0"])[:3]
    try:
        return f"{parts[0]}.{int(parts[1]) + 1}.0"
    except ValueError:
        return f"{version}.ft1"


def finetune(model_name: str | Path, dataset: str | Path, out: str | Path,
             epochs: int = 20, steps: int | None = None, folds: Sequence[int] | None = None,
             val_fraction: float = 0.25, learning_rate: float = 5e-4, seed: int = 0,
             device: str = "auto", overwrite: bool = False
             ) -> Generator[Progress, None, FinetuneResult]:
    """Fine-tune ``model_name`` on the corrected cases in ``dataset``; yields progress.

    Parameters
    ----------
    model_name : str or Path
        Built-in model name or model folder.
    dataset : path-like
        nnU-Net v2 raw dataset (as `export_case` writes).
    out : path-like
        New model folder (must not exist, or be empty).
    epochs : int
        One epoch = 8 patches per training case.
    steps : int, optional
        Optimiser steps per fold (overrides ``epochs``).
    folds : sequence of int, optional
        Folds to fine-tune (default all); the new model holds these.
    val_fraction : float
        Share of cases held out for validation (at least one).
    learning_rate, seed, device :
        Training settings.
    """
    from napari_medseg.models import load_model
    from napari_medseg.models.training import TrainingSettings, train

    base = load_model(model_name, list(folds) if folds is not None else None)
    if base.spec.architecture.get("name") == "nnunet":
        raise InputError(f"{base.folder.name}: an nnU-Net model is fine-tuned with nnU-Net: "
                         f"train on the exported dataset ({dataset}) with nnUNetv2_train "
                         "(its -pretrained_weights option starts from this checkpoint), then "
                         "open the new model folder")
    out = Path(out)
    _check_output(out, base.folder, overwrite)
    cases = read_nnunet_dataset(dataset)
    if len(cases) < 2:
        raise InputError(f"{dataset}: {len(cases)} case(s); fine-tuning needs at least 2 "
                         "(one is held out for validation). Export more corrected cases")
    order = np.random.default_rng(seed).permutation(len(cases))
    n_val = max(1, int(round(len(cases) * val_fraction)))
    val = [cases[i] for i in order[:n_val]]
    training = [cases[i] for i in order[n_val:]]
    from napari_medseg.models import choose_device

    device = str(choose_device(device))  # "auto" and the rest, resolved once for the log
    yield Progress(0, 1, f"validating {base.spec.name} {base.spec.version} on {n_val} case(s)")
    before = validation_dice(base, val, device)
    grids = [_model_grid(volume, labels, base.spec) for _, volume, labels in training]
    steps = steps or max(1, math.ceil(epochs * len(training) * PATCHES_PER_CASE_EPOCH / 2))
    settings = TrainingSettings(steps=steps, patch_size=tuple(base.spec.patch_size),
                                learning_rate=learning_rate, seed=seed)
    for index, network in enumerate(base.networks):
        for progress in train(network, grids, settings, device):
            yield Progress(index * steps + progress.done, len(base.networks) * steps,
                           f"fold {index + 1}/{len(base.networks)}: {progress.message}")
        network.cpu().eval()
    after = validation_dice(base, val, device)
    _save(base, out, overwrite, {
        "method": "napari_medseg.export.finetune", "dataset": str(dataset),
        "train_cases": [c[0] for c in training], "val_cases": [c[0] for c in val],
        "steps_per_fold": steps, "learning_rate": learning_rate, "seed": seed,
        "device": str(device), "dice_before": before, "dice_after": after})
    return FinetuneResult(out, before, after, tuple(c[0] for c in training),
                          tuple(c[0] for c in val))


def _save(base, out: Path, overwrite: bool, training: dict) -> None:
    from napari_medseg.io import atomic_path
    from napari_medseg.models import save_model

    with atomic_path(out, overwrite=True if overwrite or out.exists() else False) as temporary:
        parent = {"name": base.spec.name, "version": base.spec.version,
                  "folder": str(base.folder),
                  "weights": [{"file": f.file, "sha256": f.sha256} for f in base.spec.folds]}
        spec = replace(base.spec, version=_bump(base.spec.version), folds=(),
                       parent=parent, training=training,
                       metrics={"finetune_validation": {"before": training["dice_before"],
                                                        "after": training["dice_after"]}},
                       description=f"{base.spec.description} Fine-tuned on corrected cases "
                                   f"from {Path(training['dataset']).name}.")
        save_model(temporary, spec, base.networks)
