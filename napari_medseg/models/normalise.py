"""Intensity normalisation named in a model spec."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_medseg.errors import InputError

METHODS = ("zscore_nonzero", "zscore", "none")


def normalise_channel(channel: np.ndarray, method: str) -> np.ndarray:
    """Normalise one ``[Z, Y, X]`` channel.

    ``zscore_nonzero`` (BraTS, skull-stripped): mean 0 and std 1 over non-zero
    voxels, background kept at 0; ``zscore``: over all voxels; ``none``.

    Parameters
    ----------
    channel : ndarray
        One contrast ``[Z, Y, X]``.
    method : str
        ``zscore_nonzero``, ``zscore`` or ``none``.
    """
    if method not in METHODS:
        raise InputError(f"normalisation {method!r} is not one this feature reproduces "
                         f"({', '.join(METHODS)}); nnU-Net models with other schemes run only "
                         "as a whole (the Model section's Run, or napari-medseg predict)")
    channel = np.asarray(channel, dtype=np.float32)
    if method == "none":
        return channel
    mask = channel != 0 if method == "zscore_nonzero" else np.ones(channel.shape, bool)
    if not mask.any():
        return np.zeros_like(channel)
    values = channel[mask]
    scaled = (channel - values.mean()) / max(float(values.std()), 1e-6)
    return np.where(mask, scaled, 0.0).astype(np.float32)


def normalise_image(image: np.ndarray, methods: Sequence[str]) -> np.ndarray:
    """Normalise ``[C, Z, Y, X]`` channel by channel.

    Parameters
    ----------
    image : ndarray of shape (C, Z, Y, X)
        The contrasts.
    methods : sequence of str
        One method per channel (see `normalise_channel`).
    """
    return np.stack([normalise_channel(c, m) for c, m in zip(image, methods)])
