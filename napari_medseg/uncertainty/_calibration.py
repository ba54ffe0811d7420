"""Calibration against a reference: ECE, reliability diagram, error-detection AUROC."""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray,
                               n_bins: int = 15) -> tuple[float, list[dict]]:
    """ECE with ``n_bins`` equal-width confidence bins on [0, 1].

    ECE = sum_b (n_b / N) |accuracy_b - mean confidence_b|, over voxels given
    (usually those inside the brain). Also returns the reliability diagram:
    per bin its range, count, mean confidence and accuracy.

    Parameters
    ----------
    confidence : ndarray of float
        Confidence of each prediction, in [0, 1].
    correct : ndarray of bool
        Whether each prediction was right.
    n_bins : int
        Equal-width bins on [0, 1].
    """
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    ece, diagram = 0.0, []
    for b in range(n_bins):
        members = index == b
        count = int(members.sum())
        if count == 0:
            diagram.append({"low": edges[b], "high": edges[b + 1], "count": 0})
            continue
        accuracy, mean_conf = float(correct[members].mean()), float(confidence[members].mean())
        ece += count / len(confidence) * abs(accuracy - mean_conf)
        diagram.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
                        "confidence": mean_conf, "accuracy": accuracy})
    return float(ece), diagram


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` flagging ``positives``.

    The Mann-Whitney statistic with tied scores averaged.

    Parameters
    ----------
    scores : ndarray of float
        Higher means more likely positive.
    positives : ndarray of bool
        Same size as ``scores``.

    Returns
    -------
    float
        NaN when either class is empty.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = np.asarray(positives, dtype=bool).ravel()
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
