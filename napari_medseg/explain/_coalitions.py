"""Model runs for coalitions of contrasts: absent contrasts replaced by a baseline.

The ``2**M`` coalitions of a window go through the network together (in passes
of a few windows), inside the same sliding-window engine that makes ordinary
predictions (same windows, same Gaussian blending), so ``v(all contrasts)`` is
exactly the ordinary prediction. No input runs twice: coalitions that differ
only in contrasts equal to their baseline in the window (a contrast that is
zero there, under the zero baseline) share one run, and an all-zero input
(the empty coalition under the zero baseline, a window in the air) runs once
per network.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_medseg.errors import InputError
from napari_medseg.explain._choices import BASELINES
from napari_medseg.inference import inputs_per_pass, sliding_window
from napari_medseg.models.device import place_network
from napari_medseg.progress import ProgressGenerator


def make_baseline(image: np.ndarray, kind: str, spacing=(1.0, 1.0, 1.0),
                  blur_mm: float = 8.0) -> np.ndarray:
    """Values that replace an absent contrast (normalised ``[C, Z, Y, X]`` in and out).

    ``zero``: 0, which after z-score normalisation is the contrast's mean in the
    brain (background stays 0); ``mean``: each contrast's mean over the whole
    volume, everywhere (background included); ``blur``: a Gaussian-blurred
    copy (``blur_mm``), keeping coarse intensity but no detail.

    Parameters
    ----------
    image : ndarray of shape (C, Z, Y, X)
        The normalised contrasts.
    kind : str
        ``zero``, ``mean`` or ``blur``.
    spacing : sequence of float
        Voxel size in mm (z, y, x), for the blur.
    blur_mm : float
        Gaussian sigma of ``blur`` in mm.

    Raises
    ------
    InputError
        For another kind.
    """
    if kind == "zero":
        return np.zeros_like(image)
    if kind == "mean":
        return np.broadcast_to(image.mean(axis=(1, 2, 3), keepdims=True), image.shape).copy()
    if kind == "blur":
        sigma = [blur_mm / s for s in spacing]
        return np.stack([ndi.gaussian_filter(channel, sigma) for channel in image])
    raise InputError(f"unknown baseline {kind!r}: choose one of {', '.join(BASELINES)}")


def coalition_probabilities(network, image: torch.Tensor, baseline: torch.Tensor,
                            masks: np.ndarray, patch, n_classes: int, overlap: float = 0.5,
                            device: str | torch.device = "cpu", only=None,
                            autocast: torch.dtype | None = None
                            ) -> ProgressGenerator[torch.Tensor]:
    """Softmax output for each coalition in ``masks``.

    Parameters
    ----------
    network : callable
        Logits ``[B, K, *patch]`` for ``[B, C, *patch]``.
    image, baseline : Tensor of shape (C, Z, Y, X)
        Normalised input and its baseline on the model grid.
    masks : ndarray of bool, shape (S, C)
        Which contrasts each coalition keeps.
    patch : sequence of int
        Window size.
    n_classes : int
        K.
    overlap : float
        Window overlap.
    device : str or torch.device
        Where to run.
    only : callable, optional
        Which windows to run (see `inference.sliding_window`).
    autocast : torch.dtype, optional
        The network's arithmetic (`models.device.autocast_dtype`), as in the
        prediction explained; the softmax stays float32.

    Returns
    -------
    Tensor of shape (S, K, Z, Y, X)
    """
    n_channels = image.shape[0]
    keep = torch.as_tensor(masks, dtype=torch.bool, device=device)
    n_coalitions = keep.shape[0]
    blank_output: list[torch.Tensor] = []  # the network's answer to an all-zero window

    def run(inputs: torch.Tensor) -> torch.Tensor:
        per_pass = inputs_per_pass(inputs.shape[2:], device, autocast)
        return torch.cat([network(part).float().softmax(1) for part in inputs.split(per_pass)])

    def distinct_coalitions(window: torch.Tensor) -> torch.Tensor:
        """``[S, K, ...]`` for one window, each distinct input run once."""
        present, absent = window[:n_channels], window[n_channels:]
        matters = torch.tensor([not torch.equal(p, a) for p, a in zip(present, absent)],
                               device=keep.device)
        distinct, index = torch.unique(keep & matters, dim=0, return_inverse=True)
        inputs = torch.where(distinct[:, :, None, None, None], present, absent)
        zero = ~inputs.flatten(1).any(1)
        out = torch.empty((len(distinct), n_classes, *window.shape[1:]), device=window.device)
        if (~zero).any():
            out[~zero] = run(inputs[~zero])
        if zero.any():
            if not blank_output:
                blank_output.append(run(torch.zeros_like(inputs[:1]))[0])
            out[zero] = blank_output[0]
        return out[index]

    def all_coalitions(batch: torch.Tensor) -> torch.Tensor:
        out = torch.stack([distinct_coalitions(window) for window in batch])
        return out.reshape(batch.shape[0], n_coalitions * n_classes, *batch.shape[2:])

    stacked = torch.cat([image, baseline]).float()
    place_network(network, device, autocast)
    result = yield from sliding_window(all_coalitions, stacked, patch, n_coalitions * n_classes,
                                       overlap=overlap, batch_size=1, device=device,
                                       only=only, autocast=autocast)
    return result.reshape(n_coalitions, n_classes, *image.shape[1:]).cpu()
