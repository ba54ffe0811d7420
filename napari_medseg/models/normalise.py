"""Intensity normalisation named in a model spec."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_medseg.errors import InputError

METHODS = ("zscore_nonzero", "zscore", "none")


def normalise_channel(channel: np.ndarray, method: str,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Normalise one ``[Z, Y, X]`` channel.

    ``zscore_nonzero`` (BraTS, skull-stripped): mean 0 and std 1 over non-zero
    voxels, background kept at 0; ``zscore``: over all voxels; ``none``.

    Parameters
    ----------
    channel : ndarray
        One contrast ``[Z, Y, X]``.
    method : str
        ``zscore_nonzero``, ``zscore`` or ``none``.
    out : ndarray of float32, optional
        Where to write the result (may be ``channel`` itself); a new array by default.
    """
    if method not in METHODS:
        raise InputError(f"normalisation {method!r} is not one this feature reproduces "
                         f"({', '.join(METHODS)}); nnU-Net models with other schemes run only "
                         "as a whole (the Model section's Run, or napari-medseg predict)")
    channel = np.asarray(channel, dtype=np.float32)
    out = np.empty(channel.shape, np.float32) if out is None else out
    if method == "none":
        out[...] = channel
        return out
    mask = channel != 0 if method == "zscore_nonzero" else None
    values = channel[mask] if mask is not None else channel.reshape(-1)
    if values.size == 0:
        out[...] = 0
        return out
    mean, std = values.mean(), max(float(values.std()), 1e-6)
    np.subtract(channel, mean, out=out)  # float32 throughout, in two passes
    out /= std
    if mask is not None:
        out[~mask] = 0
    return out


def normalise_image(image: np.ndarray, methods: Sequence[str],
                    in_place: bool = False) -> np.ndarray:
    """Normalise ``[C, Z, Y, X]`` channel by channel.

    Parameters
    ----------
    image : ndarray of shape (C, Z, Y, X)
        The contrasts.
    methods : sequence of str
        One method per channel (see `normalise_channel`).
    in_place : bool
        Write into ``image`` (a float32 array the caller owns, such as
        `inference.channels_for_model`'s) instead of a new array: one case-sized
        copy fewer.
    """
    if in_place and (not isinstance(image, np.ndarray) or image.dtype != np.float32):
        raise TypeError("in-place normalisation needs a float32 numpy array")
    out = image if in_place else np.empty(np.shape(image), np.float32)
    for index, method in enumerate(methods):
        normalise_channel(image[index], method, out=out[index])
    return out
