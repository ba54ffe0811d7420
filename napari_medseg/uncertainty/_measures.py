"""Uncertainty measures from T probability samples ``[T, K, ...]``.

total = H[mean p] = -sum_c p_c log p_c; aleatoric = mean_t H[p_t];
epistemic (mutual information) = total - aleatoric, >= 0 (clipped at 0
against rounding). Returned normalised by log K, so each lies in [0, 1].
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


def entropy(probabilities: np.ndarray, axis: int = 0) -> np.ndarray:
    """Shannon entropy (nats) along the class axis.

    Parameters
    ----------
    probabilities : ndarray
        Probabilities summing to 1 along ``axis``.
    axis : int
        The class axis.
    """
    p = np.clip(probabilities, _EPS, 1.0)
    return -(probabilities * np.log(p)).sum(axis=axis)


def decompose(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Total, aleatoric and epistemic uncertainty maps, normalised by log K.

    Parameters
    ----------
    samples : ndarray of shape (T, K, ...)
        Per-sample class probabilities.

    Returns
    -------
    dict
        ``{"total", "aleatoric", "epistemic"}`` float32 maps of shape (...).
    """
    samples = np.asarray(samples, dtype=np.float64)
    scale = np.log(samples.shape[1])
    total = entropy(samples.mean(0), axis=0)
    aleatoric = entropy(samples, axis=1).mean(0)
    epistemic = np.maximum(total - aleatoric, 0.0)
    return {name: (value / scale).astype(np.float32) for name, value in
            (("total", total), ("aleatoric", aleatoric), ("epistemic", epistemic))}

