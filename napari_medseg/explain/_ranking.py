"""Rankings of contrasts, agreement with a clinician (NSF) and rank variance.

Rank 1 is the most important contrast (largest Shapley value). Ties share the
average of the ranks they span (``scipy.stats.rankdata(method='average')``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from napari_medseg.errors import InputError


def ranks_from_phi(phi: Sequence[float]) -> np.ndarray:
    """Rank per contrast, 1 = largest attribution; ties averaged.

    Parameters
    ----------
    phi : sequence of float
        Shapley value per contrast.
    """
    return rankdata(-np.asarray(phi, dtype=float), method="average")


def max_footrule(n: int) -> int:
    """Largest Spearman footrule between two rankings of ``n`` items (8 for 4).

    Parameters
    ----------
    n : int
        Items ranked.
    """
    return n * n // 2


def normalised_footrule_similarity(model_ranks: Sequence[float],
                                   clinician_ranks: Sequence[float]) -> float:
    """NSF = 1 - sum |R_model - R_clinician| / max footrule; 1 means the same order.

    Parameters
    ----------
    model_ranks, clinician_ranks : sequence of float
        Rank per contrast (1 = most important), in the same contrast order.
    """
    model_ranks = np.asarray(model_ranks, dtype=float)
    clinician_ranks = np.asarray(clinician_ranks, dtype=float)
    return float(1.0 - np.abs(model_ranks - clinician_ranks).sum() / max_footrule(
        len(model_ranks)))


def rank_variance(ranks_per_fold: np.ndarray) -> float:
    """Mean over contrasts of the sample variance of its rank across folds.

    Parameters
    ----------
    ranks_per_fold : ndarray of shape (K, C)
        Each fold's rank per contrast; K >= 2 (NaN otherwise).
    """
    ranks_per_fold = np.asarray(ranks_per_fold, dtype=float)
    if ranks_per_fold.shape[0] < 2:
        return float("nan")
    return float(ranks_per_fold.var(axis=0, ddof=1).mean())


def validate_ranking(ranking: Mapping[str, int], contrasts: Sequence[str],
                     target: str) -> np.ndarray:
    """Clinician ranking as an array in contrast order; refuses non-permutations.

    Parameters
    ----------
    ranking : mapping of str to int
        Contrast name to rank (1 = most important).
    contrasts : sequence of str
        The model's contrasts, in order.
    target : str
        The label or region ranked (named in messages).

    Raises
    ------
    InputError
        When the ranks are not a permutation of 1..C over exactly these contrasts.
    """
    expected = set(range(1, len(contrasts) + 1))
    names = set(ranking)
    if names != set(contrasts):
        raise InputError(f"clinician ranking for {target} must rank exactly "
                         f"{', '.join(contrasts)}; got {', '.join(sorted(names)) or 'nothing'}")
    values = [ranking[name] for name in contrasts]
    if sorted(values) != sorted(expected) or set(values) != expected:
        raise InputError(f"clinician ranking for {target} is not a permutation of "
                         f"1..{len(contrasts)}: {dict(ranking)}. Give each contrast a "
                         "different rank")
    return np.asarray(values, dtype=float)
