"""Sliding-window prediction with Gaussian blending.

Windows are placed as MONAI's ``sliding_window_inference`` places them
(interval ``int(patch * (1 - overlap))``, the last window flush with the
border) and blended with the same Gaussian importance map (sigma = patch / 8),
so both give the same output for the same network; ours batches windows on
the device, accumulates there, precomputes the normalisation map once, runs
the network once for all windows whose input is entirely zero (the
background of skull-stripped MRI: a deterministic network gives every such
window the same output), and yields between batches so a caller can report
progress or cancel.
"""
from __future__ import annotations

import math

from collections.abc import Callable, Sequence
from itertools import product

import torch
import torch.nn.functional as F

from napari_medseg.models.device import autocast_context
from napari_medseg.progress import Progress, ProgressGenerator


#: inputs that go through a network in one pass, in voxels: four 48^3 windows.
VOXELS_PER_PASS = 2 ** 19
#: the same on a CPU in float32: one 48^3 window. On a 2-core AVX-512 BF16 CPU (2 MiB
#: L2 per core, 32 MiB L3) a float32 window took 21 % less time in passes of one than of
#: four (63 against 80 ms), while bf16 windows took about the same time in passes of
#: one to eight, four being fastest by 0-5 % (BENCHMARKS.md, "Windows per pass").
CPU_FLOAT32_VOXELS_PER_PASS = 2 ** 17


def inputs_per_pass(window: Sequence[int], device: torch.device | str = "cpu",
                    autocast: torch.dtype | None = None) -> int:
    """How many inputs of spatial shape ``window`` to run through a network together.

    Parameters
    ----------
    window : sequence of int
        Spatial shape of one input.
    device : torch.device or str
        Where the network runs.
    autocast : torch.dtype, optional
        The reduced precision the network runs in (`models.device.autocast_dtype`);
        None: float32, whose passes on a CPU are smaller (`CPU_FLOAT32_VOXELS_PER_PASS`).

    Examples
    --------
    >>> import torch
    >>> inputs_per_pass((48, 48, 48)), inputs_per_pass((48, 48, 48), "cpu", torch.bfloat16)
    (1, 4)
    >>> inputs_per_pass((48, 48, 48), "cuda")
    4
    """
    voxels = math.prod(int(n) for n in window)
    float32_cpu = torch.device(device).type == "cpu" and autocast is None
    return max(1, (CPU_FLOAT32_VOXELS_PER_PASS if float32_cpu else VOXELS_PER_PASS) // voxels)


def gaussian_importance(patch: Sequence[int], sigma_scale: float = 0.125,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """Separable Gaussian weight map over a patch (MONAI's definition, clamped >= 1e-3).

    Parameters
    ----------
    patch : sequence of int
        Window shape.
    sigma_scale : float
        Standard deviation as a fraction of the window side (MONAI's default 0.125).
    device : torch.device or str
        Where the map is made.

    Returns
    -------
    Tensor of shape patch
        Peak 1 at the centre; the smallest weight is at least 1e-3.
    """
    weights = None
    for size in patch:
        x = torch.arange(-(size - 1) / 2.0, (size - 1) / 2.0 + 1, dtype=torch.float32,
                         device=device)
        profile = torch.exp(x**2 / (-2 * (size * sigma_scale) ** 2))
        weights = profile if weights is None else weights.unsqueeze(-1) * profile
    return weights.clamp(min=max(float(weights.min()), 1e-3))


def window_starts(image_size: Sequence[int], patch: Sequence[int],
                  overlap: float) -> list[tuple[int, ...]]:
    """Start corners of every window covering ``image_size``.

    Parameters
    ----------
    image_size : sequence of int
        Image shape, at least ``patch`` on every axis.
    patch : sequence of int
        Window shape.
    overlap : float
        Fraction of a window shared with its neighbour (0 to < 1).

    Returns
    -------
    list of tuple of int
        One corner per window, the last window on each axis flush with the end.
    """
    per_axis = []
    for size, length in zip(image_size, patch):
        interval = length if length == size else max(int(length * (1 - overlap)), 1)
        count = next((i for i in range(math.ceil(size / interval))
                      if i * interval + length >= size), 0) + 1
        per_axis.append([min(i * interval, size - length) for i in range(count)])
    return list(product(*per_axis))


def _pad_to_patch(image: torch.Tensor, patch: Sequence[int]):
    pads, crop = [], []
    for size, length in zip(image.shape[1:], patch):
        diff = max(length - size, 0)
        pads.append((diff // 2, diff - diff // 2))
        crop.append(slice(diff // 2, diff // 2 + size))
    flat = [value for pair in reversed(pads) for value in pair]
    return (F.pad(image, flat) if any(flat) else image), tuple(crop)


def _split_blank(padded: torch.Tensor, windows: list) -> tuple[list, list]:
    """Windows with some non-zero input, and windows that are entirely zero."""
    busy, blank = [], []
    for window in windows:
        (busy if bool(padded[(slice(None), *window)].any()) else blank).append(window)
    return busy, blank


def sliding_window(network: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                   patch: Sequence[int], n_outputs: int, overlap: float = 0.5,
                   batch_size: int | None = None, device: torch.device | str = "cpu",
                   autocast: torch.dtype | None = None,
                   reuse_blank: bool = True,
                   only: Callable[[tuple[slice, ...]], bool] | None = None
                   ) -> ProgressGenerator[torch.Tensor]:
    """Blend ``network`` over ``image`` window by window.

    Parameters
    ----------
    network : callable
        Maps ``[B, C, *patch]`` to ``[B, n_outputs, *patch]`` (any callable:
        a module, a TorchScript function, a toy lambda in tests).
    image : Tensor of shape (C, Z, Y, X)
        Normalised input.
    patch : sequence of int
        Window size.
    n_outputs : int
        Output channels of the network.
    overlap : float
        Fraction of a window shared with its neighbour, in ``[0, 1)``.
    batch_size : int, optional
        Windows per forward pass; by default what `inputs_per_pass` gives for
        ``device`` and ``autocast``.
    device : torch.device or str
        Where the network runs and the output accumulates.
    autocast : torch.dtype, optional
        Run the network under ``torch.autocast`` with this dtype (see
        `models.device.autocast_dtype`); blending stays float32.
    reuse_blank : bool
        Predict all-zero windows once and reuse the output (exact for a
        deterministic network; pass False when sampling dropout).
    only : callable, optional
        Given a window (slices in ``image`` coordinates), whether to run it.
        Skipped windows add nothing, so the output is exact only where every
        window covering a voxel ran (a network with instance normalisation
        gives other results for other windows, so a region is explained
        exactly only with the whole run's own windows).

    Yields
    ------
    Progress
        After each batch; stop iterating to cancel.

    Returns
    -------
    Tensor of shape (n_outputs, Z, Y, X)
        float32 on ``device``.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    device = torch.device(device)
    padded, crop = _pad_to_patch(image.to(device=device, dtype=torch.float32), patch)
    starts = window_starts(padded.shape[1:], patch, overlap)
    importance = gaussian_importance(patch, device=device)
    output = torch.zeros((n_outputs, *padded.shape[1:]), dtype=torch.float32, device=device)
    weight = torch.zeros(padded.shape[1:], dtype=torch.float32, device=device)
    windows = [tuple(slice(s, s + length) for s, length in zip(start, patch)) for start in starts]
    for window in windows:
        weight[window] += importance
    if only is not None:
        windows = [window for window in windows if only(tuple(
            slice(w.start - c.start, w.stop - c.start) for w, c in zip(window, crop)))]
    busy, blank = _split_blank(padded, windows) if reuse_blank else (windows, [])
    batch_size = batch_size or inputs_per_pass(patch, device, autocast)
    batches = [busy[i:i + batch_size] for i in range(0, len(busy), batch_size)]
    if blank:
        batches.append(blank[:1])
    with torch.inference_mode():
        for batch_index, batch_windows in enumerate(batches):
            batch = torch.stack([padded[(slice(None), *window)] for window in batch_windows])
            with autocast_context(device, autocast):
                predicted = network(batch)
            predicted = predicted.float() * importance
            for window, values in zip(batch_windows, predicted):
                output[(slice(None), *window)] += values
            if blank and batch_windows is batches[-1]:
                for window in blank[1:]:
                    output[(slice(None), *window)] += predicted[0]
            yield Progress(batch_index + 1, len(batches),
                           f"window batch {batch_index + 1}/{len(batches)}")
    output /= weight
    return output[(slice(None), *crop)]
