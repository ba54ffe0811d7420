"""Training and fine-tuning of segmentation networks on labelled cases.

Patches are sampled around the labels (two thirds) and anywhere in the
brain (one third), flipped left-right and jittered in intensity; the loss is
cross-entropy plus soft Dice over the foreground classes. Training is a
generator yielding progress records, so the GUI can run it in a worker and
cancel it, and scripts can log curves.
"""
from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_medseg.progress import Progress


@dataclass(frozen=True, eq=False)
class TrainingCase:
    """A normalised image ``[C, Z, Y, X]`` and its labels ``[Z, Y, X]``."""

    image: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class TrainingSettings:
    """Hyper-parameters; defaults are those of the built-in model."""

    steps: int = 1200
    batch_size: int = 2
    patch_size: tuple[int, int, int] = (48, 48, 48)
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    foreground_fraction: float = 0.67
    seed: int = 0


def _crop(array: np.ndarray, start: np.ndarray, patch: Sequence[int]) -> np.ndarray:
    spatial = array.shape[-3:]
    pads = [(max(-s, 0), max(s + p - n, 0)) for s, p, n in zip(start, patch, spatial)]
    lo = [max(s, 0) for s in start]
    hi = [min(s + p, n) for s, p, n in zip(start, patch, spatial)]
    window = array[(..., *[slice(a, b) for a, b in zip(lo, hi)])]
    if any(a or b for a, b in pads):
        window = np.pad(window, [(0, 0)] * (array.ndim - 3) + pads)
    return window


def sample_patch(case: TrainingCase, patch: Sequence[int], rng: np.random.Generator,
                 foreground_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """One image/label patch, centred on a labelled voxel with ``foreground_fraction``.

    Parameters
    ----------
    case : TrainingCase
        Normalised image and labels.
    patch : sequence of int
        Patch shape.
    rng : numpy.random.Generator
        Random source.
    foreground_fraction : float
        How often the patch is centred on a labelled voxel.
    """
    if rng.random() < foreground_fraction and case.labels.any():
        candidates = np.flatnonzero(case.labels)
    else:
        candidates = np.flatnonzero(case.image[0] != 0)
        if candidates.size == 0:
            candidates = np.arange(case.labels.size)
    centre = np.array(np.unravel_index(rng.choice(candidates), case.labels.shape))
    start = centre - np.asarray(patch) // 2 + rng.integers(-4, 5, size=3)
    return _crop(case.image, start, patch), _crop(case.labels, start, patch)


def augment(image: np.ndarray, labels: np.ndarray,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Left-right flip and per-channel intensity scale/shift (brain voxels only).

    Parameters
    ----------
    image : ndarray of shape (C, Z, Y, X)
        A patch.
    labels : ndarray of int
        Its labels.
    rng : numpy.random.Generator
        Random source.
    """
    if rng.random() < 0.5:
        image, labels = image[..., ::-1], labels[..., ::-1]
    scale = rng.uniform(0.9, 1.1, size=(image.shape[0], 1, 1, 1))
    shift = rng.uniform(-0.1, 0.1, size=(image.shape[0], 1, 1, 1))
    image = np.where(image != 0, image * scale + shift, 0.0)
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(labels)


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus (1 - soft Dice) averaged over foreground classes.

    Parameters
    ----------
    logits : Tensor of shape (B, K, Z, Y, X)
        Network output.
    target : Tensor of int, shape (B, Z, Y, X)
        Class per voxel.
    """
    ce = F.cross_entropy(logits, target)
    probabilities = logits.softmax(1)
    one_hot = F.one_hot(target, logits.shape[1]).permute(0, 4, 1, 2, 3).float()
    dims = (0, 2, 3, 4)
    intersection = (probabilities * one_hot).sum(dims)
    denominator = probabilities.sum(dims) + one_hot.sum(dims)
    dice = (2 * intersection + 1e-5) / (denominator + 1e-5)
    return ce + (1 - dice[1:].mean())


BatchSampler = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


def case_batch_sampler(cases: Sequence[TrainingCase], settings: TrainingSettings) -> BatchSampler:
    """Draw ``settings.batch_size`` augmented patches from random cases.

    Parameters
    ----------
    cases : sequence of TrainingCase
        The training cases.
    settings : TrainingSettings
        Batch size, patch and foreground fraction.
    """
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        images, labels = zip(*(augment(*sample_patch(cases[rng.integers(len(cases))],
                                                     settings.patch_size, rng,
                                                     settings.foreground_fraction), rng)
                               for _ in range(settings.batch_size)))
        return np.stack(images), np.stack(labels)
    return draw


def train(network: nn.Module, cases: Sequence[TrainingCase], settings: TrainingSettings,
          device: torch.device | str = "cpu",
          sampler: BatchSampler | None = None) -> Generator[Progress, None, list[dict]]:
    """Train ``network`` in place; yields progress, returns the loss curve.

    Parameters
    ----------
    network : nn.Module
        Any module mapping ``[B, C, *patch]`` to class logits.
    cases : sequence of TrainingCase
        Normalised training data.
    settings : TrainingSettings
        Steps, batch, patch, learning rate, seed.
    device : torch.device or str
        Where to train.
    sampler : callable, optional
        ``sampler(rng) -> (images, labels)`` batches; default: patches of ``cases``
        (`case_batch_sampler`), so other tasks (click training) reuse the loop.
    """
    sampler = sampler or case_batch_sampler(cases, settings)
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    network.to(device).train()
    optimiser = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=settings.learning_rate,
                                                   total_steps=settings.steps, pct_start=0.1)
    curve: list[dict] = []
    running = 0.0
    for step in range(1, settings.steps + 1):
        images, labels = sampler(rng)
        x = torch.from_numpy(images).to(device)
        y = torch.from_numpy(labels.astype(np.int64)).to(device)
        loss = dice_ce_loss(network(x), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        running = loss.item() if step == 1 else 0.95 * running + 0.05 * loss.item()
        if step % 25 == 0 or step == settings.steps:
            curve.append({"step": step, "loss": round(running, 5)})
        yield Progress(step, settings.steps, f"step {step}/{settings.steps} loss {running:.4f}")
    network.eval()
    return curve
