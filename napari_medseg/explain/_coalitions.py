"""Model runs for coalitions of contrasts: absent contrasts replaced by a baseline.

All ``2**M`` coalitions of a window go through the network in one batch, inside
the same sliding-window engine that makes ordinary predictions (same windows,
same Gaussian blending), so ``v(all contrasts)`` is exactly the ordinary
prediction and no coalition runs twice.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_medseg.errors import InputError
from napari_medseg.inference import sliding_window
from napari_medseg.progress import ProgressGenerator

BASELINES = ("zero", "mean", "blur")
#: coalitions go through the network together up to this many voxels (memory)
_VOXELS_PER_PASS = 2 ** 21


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
                            device: str | torch.device = "cpu", only=None
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

    Returns
    -------
    Tensor of shape (S, K, Z, Y, X)
    """
    n_channels = image.shape[0]
    keep = torch.as_tensor(masks, dtype=torch.bool, device=device)
    n_coalitions = keep.shape[0]

    def all_coalitions(batch: torch.Tensor) -> torch.Tensor:
        present, absent = batch[:, :n_channels, None], batch[:, n_channels:, None]
        present, absent = present.transpose(1, 2), absent.transpose(1, 2)  # [B, 1, C, ...]
        chosen = torch.where(keep[None, :, :, None, None, None], present, absent)
        flat = chosen.reshape(-1, n_channels, *batch.shape[2:])
        per_pass = max(1, _VOXELS_PER_PASS // int(np.prod(batch.shape[2:])))
        out = torch.cat([network(part).softmax(1) for part in flat.split(per_pass)])
        return out.reshape(batch.shape[0], n_coalitions * n_classes, *batch.shape[2:])

    stacked = torch.cat([image, baseline]).float()
    if hasattr(network, "to"):
        network.to(device)
    result = yield from sliding_window(all_coalitions, stacked, patch, n_coalitions * n_classes,
                                       overlap=overlap, batch_size=1, device=device,
                                       only=only)
    return result.reshape(n_coalitions, n_classes, *image.shape[1:]).cpu()
