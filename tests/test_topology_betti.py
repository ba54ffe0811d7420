"""Betti numbers agree with gudhi's cubical persistent homology."""
from __future__ import annotations

import gudhi
import numpy as np
import pytest

from napari_medseg.errors import InputError
from napari_medseg.topology import betti_numbers


def gudhi_betti(mask: np.ndarray, connectivity: int) -> tuple[int, int, int]:
    values = np.where(mask, 0.0, 1.0)
    if connectivity == 26:
        complex_ = gudhi.CubicalComplex(top_dimensional_cells=values)
    else:
        complex_ = gudhi.CubicalComplex(vertices=values)
    complex_.compute_persistence()
    numbers = complex_.persistent_betti_numbers(0.0, 0.0)
    return tuple(int(n) for n in (list(numbers) + [0, 0, 0])[:3])


def _padded(mask):
    return np.pad(mask, 1)


def ring():
    m = np.zeros((3, 7, 7), bool)
    m[1, 1:6, 1:6] = True
    m[1, 2:5, 2:5] = False
    return m


def hollow_sphere():
    grid = np.indices((13, 13, 13)) - 6
    radius = np.sqrt((grid**2).sum(0))
    return (radius <= 5.5) & (radius >= 3.5)


def torus():
    z, y, x = np.indices((11, 21, 21)) - np.array([5, 10, 10])[:, None, None, None]
    return (np.sqrt(x**2 + y**2) - 6) ** 2 + z**2 <= 2.5**2


def diagonal_pair():
    m = np.zeros((4, 4, 4), bool)
    m[1, 1, 1] = m[2, 2, 2] = True
    return m


@pytest.mark.parametrize("shape, expected26, expected6", [
    (ring, (1, 1, 0), (1, 1, 0)), (hollow_sphere, (1, 0, 1), (1, 0, 1)),
    (torus, (1, 1, 0), (1, 1, 0)), (diagonal_pair, (1, 0, 0), (2, 0, 0))])
def test_constructed_shapes(shape, expected26, expected6):
    mask = shape()
    assert tuple(betti_numbers(mask, 26).as_dict().values()) == expected26
    assert tuple(betti_numbers(mask, 6).as_dict().values()) == expected6
    assert gudhi_betti(_padded(mask), 26) == expected26
    assert gudhi_betti(_padded(mask), 6) == expected6


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("connectivity", [26, 6])
def test_random_masks_match_gudhi(seed, connectivity):
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.2, 0.7)
    mask = rng.random((9, 10, 11)) < density
    ours = betti_numbers(mask, connectivity)
    assert (ours.b0, ours.b1, ours.b2) == gudhi_betti(_padded(mask), connectivity)


@pytest.mark.parametrize("connectivity", [26, 6])
@pytest.mark.parametrize("seed", range(6))
def test_betti_summed_over_components_matches_gudhi(seed, connectivity):
    """The check analyses each component in its own box; the sums must be gudhi's
    numbers of the whole mask (many components, cavities and tunnels)."""
    from napari_medseg.topology._pieces import split_structure

    rng = np.random.default_rng(100 + seed)
    mask = rng.random((12, 13, 14)) < rng.uniform(0.1, 0.3)
    structure = split_structure(mask, connectivity)
    assert len(structure.pieces) > 1
    summed = structure.betti
    assert (summed.b0, summed.b1, summed.b2) == gudhi_betti(_padded(mask), connectivity)


def test_empty_and_bad_input():
    assert betti_numbers(np.zeros((4, 4, 4), bool)).as_dict() == {"b0": 0, "b1": 0, "b2": 0}
    with pytest.raises(InputError, match="26 .* or 6"):
        betti_numbers(np.ones((3, 3, 3), bool), connectivity=18)
    with pytest.raises(InputError, match="3D"):
        betti_numbers(np.ones((3, 3), bool))
