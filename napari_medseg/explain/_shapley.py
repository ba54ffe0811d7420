"""Shapley values over a few players (the contrasts), exact or sampled.

Coalitions are indexed by bitmask: coalition ``s`` holds player ``i`` when bit
``i`` of ``s`` is set, so a table of ``2**M`` values, one per coalition,
holds everything the exact formula needs and no coalition is evaluated twice.
"""
from __future__ import annotations

from collections.abc import Callable
from math import factorial

import numpy as np


def coalition_masks(n_players: int) -> np.ndarray:
    """Boolean ``[2**M, M]`` table: row ``s`` marks the players in coalition ``s``.

    Parameters
    ----------
    n_players : int
        M, the contrasts.
    """
    codes = np.arange(2**n_players)[:, None]
    return (codes >> np.arange(n_players)[None, :]) & 1 == 1


def shapley_coefficients(n_players: int) -> np.ndarray:
    """Matrix ``[M, 2**M]`` with ``phi = C @ v`` for a table ``v`` of coalition values.

    ``phi_i = sum_{S not containing i} |S|!(M-|S|-1)!/M! [v(S + i) - v(S)]``:
    coalition ``S`` enters with ``+w(|S| - 1)`` when it contains ``i`` and
    ``-w(|S|)`` when it does not.

    Parameters
    ----------
    n_players : int
        M, the contrasts.
    """
    weight = [factorial(k) * factorial(n_players - k - 1) / factorial(n_players)
              for k in range(n_players)]
    masks = coalition_masks(n_players)
    sizes = masks.sum(1)
    coefficients = np.zeros((n_players, 2**n_players))
    for player in range(n_players):
        inside = masks[:, player]
        coefficients[player, inside] = [weight[k - 1] for k in sizes[inside]]
        outside = ~inside
        coefficients[player, outside] = [-weight[k] if k < n_players else 0.0
                                         for k in sizes[outside]]
    return coefficients


def exact_shapley(values: np.ndarray) -> np.ndarray:
    """Exact Shapley values from coalition values.

    Parameters
    ----------
    values : ndarray of shape (2**M, ...)
        ``values[s]`` is the value of coalition ``s`` (a scalar, or a map per voxel).

    Returns
    -------
    ndarray of shape (M, ...)
        One attribution per player; they sum to ``v(all) - v(empty)``.

    Examples
    --------
    >>> exact_shapley(np.array([0.0, 1.0, 2.0, 3.0]))  # additive game: v = x0 + 2 x1
    array([1., 2.])
    """
    n_players = int(np.log2(len(values)))
    if 2**n_players != len(values):
        raise ValueError(f"need 2**M coalition values, got {len(values)}")
    return np.tensordot(shapley_coefficients(n_players), values, axes=1)


def antithetic_orderings(n_players: int, n_permutations: int, seed: int = 0) -> list[np.ndarray]:
    """The orderings `permutation_shapley` visits: random ones, each with its reverse.

    Parameters
    ----------
    n_players : int
        M, the contrasts.
    n_permutations : int
        Orderings in all (each random one and its reverse).
    seed : int
        Random seed.
    """
    rng = np.random.default_rng(seed)
    orderings = []
    for _ in range((n_permutations + 1) // 2):
        order = rng.permutation(n_players)
        orderings += [order, order[::-1]]
    return orderings


def coalitions_visited(n_players: int, n_permutations: int, seed: int = 0) -> set[int]:
    """Bitmasks of every coalition those orderings pass through (run each once).

    Parameters
    ----------
    n_players : int
        M, the contrasts.
    n_permutations : int
        Orderings, as `antithetic_orderings`.
    seed : int
        Random seed, as `antithetic_orderings`.
    """
    visited = {0}
    for ordering in antithetic_orderings(n_players, n_permutations, seed):
        code = 0
        for player in ordering:
            code |= 1 << int(player)
            visited.add(code)
    return visited


def permutation_shapley(value_of: Callable[[int], float], n_players: int, n_permutations: int,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values by permutation sampling, with their standard errors.

    Each sampled ordering adds players one by one and credits each with its
    marginal gain; coalition values are cached (by bitmask), so a coalition
    met in several orderings is evaluated once. Antithetic pairs (an ordering
    and its reverse) reduce the variance.

    Parameters
    ----------
    value_of : callable
        Value of a coalition given as a bitmask.
    n_players : int
        Number of players M.
    n_permutations : int
        Orderings to sample (rounded up to an even number).
    seed : int
        Seed of the orderings.

    Returns
    -------
    phi, standard_error : ndarray of shape (M,)
    """
    cache: dict[int, float] = {}

    def cached(code: int) -> float:
        if code not in cache:
            cache[code] = float(value_of(code))
        return cache[code]

    samples = []
    for ordering in antithetic_orderings(n_players, n_permutations, seed):
        gains, code, previous = np.zeros(n_players), 0, cached(0)
        for player in ordering:
            code |= 1 << int(player)
            current = cached(code)
            gains[player], previous = current - previous, current
        samples.append(gains)
    samples = np.asarray(samples)
    pairs = samples.reshape(-1, 2, n_players).mean(1)
    error = pairs.std(0, ddof=1) / np.sqrt(len(pairs)) if len(pairs) > 1 else np.full(
        n_players, np.nan)
    return samples.mean(0), error
