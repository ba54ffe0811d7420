"""Probability samples: Monte Carlo dropout, flip test-time augmentation, fold ensemble.

Samples of one window are batched through the network together (dropout
draws differ per batch element), inside the ordinary sliding-window engine;
for Monte Carlo dropout on a network with ``forward_samples`` (the built-in
U-Net), everything before the first dropout layer (the dropout-free encoder
levels and the convolutions of the block that ends in it) runs once per window
and is shared by all T samples, so T samples cost less than T predictions. Test-time flips are
undone on each output before blending, so every sample is aligned with the
image.
"""
from __future__ import annotations

from contextlib import contextmanager
from itertools import combinations

import torch

from napari_medseg.errors import InputError
from napari_medseg.inference import inputs_per_pass, sliding_window
from napari_medseg.models.device import place_network
from napari_medseg.progress import ProgressGenerator, rescaled
from napari_medseg.uncertainty._choices import METHODS, default_method

_DROPOUT = (torch.nn.Dropout, torch.nn.Dropout2d, torch.nn.Dropout3d, torch.nn.AlphaDropout)


def flip_sets(count: int) -> list[tuple[int, ...]]:
    """The first ``count`` of the 8 flip combinations of the 3 spatial axes (none first).

    Parameters
    ----------
    count : int
        1 to 8.
    """
    axes = [combo for size in range(4) for combo in combinations((0, 1, 2), size)]
    return axes[:count]


def has_dropout(network) -> bool:
    """True when the network has dropout layers (Monte Carlo dropout needs them).

    Parameters
    ----------
    network : torch.nn.Module or callable
        A callable without modules has none.
    """
    return hasattr(network, "modules") and any(isinstance(m, _DROPOUT) for m in network.modules())


@contextmanager
def dropout_active(network, active: bool, within: str = ""):
    """Dropout layers in training mode (sampling) inside the block, eval mode after.

    Parameters
    ----------
    network : torch.nn.Module
        The network.
    active : bool
        False leaves every layer as it is.
    within : str
        Only the dropout layers of this submodule (for example ``decoders``);
        empty: all of them.
    """
    layers = [m for m in network.get_submodule(within).modules()
              if isinstance(m, _DROPOUT)] if active else []
    for layer in layers:
        layer.train()
    try:
        yield
    finally:
        for layer in layers:
            layer.eval()


SAMPLED_OVERLAP = 0.25
"""Window overlap of MC-dropout and flip-TTA samples (MONAI's default): the samples'
average does the smoothing that overlapping windows do, with 12 windows instead of
27 on a 79x95x76 model grid (BENCHMARKS "Uncertainty": the same AUROC and ECE)."""
PLAIN_OVERLAP = 0.5
"""Window overlap of a plain fold ensemble: each fold's sample is its prediction."""


def default_overlap(methods: tuple[str, ...]) -> float:
    """`SAMPLED_OVERLAP` when the methods draw samples (``mc``, ``tta``), else `PLAIN_OVERLAP`.

    Parameters
    ----------
    methods : tuple of str
        The resolved methods (see `resolve_methods`).
    """
    return SAMPLED_OVERLAP if {"mc", "tta"} & set(methods) else PLAIN_OVERLAP


def resolve_methods(methods: str | tuple[str, ...], spec) -> tuple[str, ...]:
    """The methods asked for, with ``auto`` replaced by `default_method`.

    Parameters
    ----------
    methods : str or tuple of str
        ``auto``, a method, or a comma-separated combination.
    spec : ModelSpec
        The model's description.

    Raises
    ------
    InputError
        For MC dropout on a network that the description says has no dropout,
        before anything runs.
    """
    if methods == "auto":
        methods = default_method(spec)
    chosen = tuple(m.strip() for m in methods.split(",")) if isinstance(methods, str) \
        else tuple(methods)
    if "mc" in chosen and default_method(spec) != "mc":
        raise InputError(_NO_DROPOUT.format(spec.name))
    return chosen


_NO_DROPOUT = ("model '{}' has no dropout layers, so Monte Carlo dropout cannot sample it; "
               "use tta or ensemble (or auto) instead")


def check_methods(methods: tuple[str, ...], samples: int, model) -> None:
    """Refuse unknown methods, T < 2, MC dropout without dropout, a one-fold ensemble.

    Parameters
    ----------
    methods : tuple of str
        The methods asked for.
    samples : int
        Samples per fold.
    model : LoadedModel
        The model sampled.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"unknown uncertainty method(s) {unknown or methods}: choose from "
                         f"{', '.join(METHODS)} (comma-separated to combine)")
    if "mc" in methods and not has_dropout(model.networks[0]):
        raise InputError(_NO_DROPOUT.format(model.spec.name))
    if methods == ("ensemble",):
        if model.n_folds < 2:
            raise InputError("a fold ensemble needs a model with 2 or more folds; use mc or tta")
    elif samples < 2:
        raise InputError(f"{samples} sample(s): uncertainty needs T >= 2 samples")
    if "tta" in methods and "mc" not in methods and samples > 8:
        raise InputError("flip test-time augmentation has 8 distinct flips: use --samples <= 8, "
                         "or combine with mc")


def _sampler(network, flips: list[tuple[int, ...]], n_samples: int, n_classes: int,
             autocast: torch.dtype | None = None):
    """A window function returning ``n_samples`` probability maps per window, the
    network running in ``autocast`` (None: float32)."""

    shares_encoder = flips == [()] and hasattr(network, "forward_samples")

    def run(batch: torch.Tensor) -> torch.Tensor:
        per_pass = inputs_per_pass(batch.shape[2:], batch.device, autocast)
        if shares_encoder:  # MC dropout alone: the dropout-free encoder runs once
            # a sample pass runs only the levels after the first dropout layer, fastest
            # with twice a whole network's pass (BENCHMARKS.md, "Windows per pass")
            probabilities = network.forward_samples(
                batch, n_samples, max(1, 2 * per_pass // batch.shape[0])).float().softmax(1)
        else:
            outputs = []
            for index in range(n_samples):
                axes = tuple(a + 2 for a in flips[index % len(flips)])
                outputs.append(torch.flip(batch, axes) if axes else batch)
            probabilities = torch.cat([network(part).float().softmax(1)  # [n_samples B, K, ...]
                                       for part in torch.cat(outputs).split(per_pass)])
        probabilities = probabilities.reshape(n_samples, batch.shape[0], n_classes,
                                              *batch.shape[2:])
        aligned = [torch.flip(probabilities[i], tuple(a + 2 for a in flips[i % len(flips)]))
                   if flips[i % len(flips)] else probabilities[i] for i in range(n_samples)]
        return torch.stack(aligned, 1).reshape(batch.shape[0], n_samples * n_classes,
                                               *batch.shape[2:])

    return run


def draw_samples(model, image: torch.Tensor, methods: tuple[str, ...], samples: int,
                 overlap: float = 0.5, device: str | torch.device = "cpu",
                 autocast: torch.dtype | None = None) -> ProgressGenerator[torch.Tensor]:
    """Probability samples ``[S, K, Z, Y, X]`` on the model grid.

    ``ensemble`` uses every fold (else fold 0); per fold, ``mc`` draws
    ``samples`` dropout passes, ``tta`` ``samples`` flips, both together
    ``samples`` flipped dropout passes, and ``ensemble`` alone one plain pass.

    Parameters
    ----------
    model : LoadedModel
        The model (its folds for ``ensemble``).
    image : Tensor of shape (C, Z, Y, X)
        The prepared input on the model grid.
    methods : tuple of str
        Some of ``mc``, ``tta``, ``ensemble``.
    samples : int
        Samples per fold.
    overlap : float
        Sliding-window overlap.
    device : str or torch.device
        Where to run.
    autocast : torch.dtype, optional
        The network's arithmetic (`models.device.autocast_dtype`); None: float32.

    Yields
    ------
    Progress
        After each window batch; the generator returns the samples.
    """
    check_methods(methods, samples, model)
    networks = model.networks if "ensemble" in methods else model.networks[:1]
    per_fold = 1 if methods == ("ensemble",) else samples
    flips = flip_sets(8) if "tta" in methods else [()]
    k = model.spec.n_classes
    collected = []
    windows_per_pass = max(1, inputs_per_pass(model.spec.patch_size, device, autocast) // per_fold)
    for fold, network in enumerate(networks):
        place_network(network, device, autocast)
        with dropout_active(network, "mc" in methods):
            runs = sliding_window(_sampler(network, flips, per_fold, k, autocast), image,
                                  model.spec.patch_size, per_fold * k, overlap=overlap,
                                  batch_size=windows_per_pass, device=device,
                                  reuse_blank="mc" not in methods, autocast=autocast)
            samples = yield from rescaled(runs, fold, len(networks),
                                          f"{'+'.join(methods)}: fold {fold + 1}/{len(networks)}")
            collected.append(samples.reshape(per_fold, k, *image.shape[1:]).cpu())
    return torch.cat(collected)

