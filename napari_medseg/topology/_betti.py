"""Betti numbers of binary 3D masks.

Connectivity pairing: by default the foreground is 26-connected and the
background 6-connected (voxels as closed unit cubes: cubes touching at an
edge or corner are one piece), the convention of cubical persistent homology
(gudhi's ``CubicalComplex(top_dimensional_cells=...)``). The other pairing
(6-connected foreground, 26-connected background) matches gudhi's
``CubicalComplex(vertices=...)``.

b0 counts foreground components, b2 enclosed cavities (background components
that do not reach the border), and b1 (tunnels, handles) follows from the
Euler characteristic: b1 = b0 + b2 - chi.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import euler_number, label

from napari_medseg.errors import InputError

#: foreground connectivity -> (skimage connectivity of foreground, of background)
PAIRINGS = {26: (3, 1), 6: (1, 3)}
_STRUCTURES = {n: ndi.generate_binary_structure(3, n) for n in (1, 3)}


@dataclass(frozen=True)
class Betti:
    """Betti numbers and Euler characteristic of a mask."""

    b0: int
    b1: int
    b2: int

    @property
    def euler(self) -> int:
        """chi = b0 - b1 + b2."""
        return self.b0 - self.b1 + self.b2

    def as_dict(self) -> dict[str, int]:
        """``{"b0": .., "b1": .., "b2": ..}``."""
        return {"b0": self.b0, "b1": self.b1, "b2": self.b2}


def check_connectivity(connectivity: int) -> tuple[int, int]:
    """skimage connectivities for a foreground connectivity of 26 or 6."""
    if connectivity not in PAIRINGS:
        raise InputError(f"connectivity must be 26 (default) or 6, got {connectivity}")
    return PAIRINGS[connectivity]


def crop_to_mask(mask: np.ndarray, margin: int = 1) -> tuple[np.ndarray, tuple[slice, ...]]:
    """The mask's bounding box plus ``margin`` background voxels on every side.

    Parameters
    ----------
    mask : ndarray of bool
        The mask.
    margin : int
        Background voxels kept around it.
    """
    coords = np.argwhere(mask)
    lo, hi = coords.min(0), coords.max(0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    return np.pad(mask[box], margin), box


def betti_numbers(mask: np.ndarray, connectivity: int = 26) -> Betti:
    """Betti numbers ``(b0, b1, b2)`` of a binary 3D mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (Z, Y, X)
        The structure; an empty mask gives zeros.
    connectivity : {26, 6}
        Foreground connectivity; the background takes the complementary one.

    Examples
    --------
    >>> ring = np.zeros((3, 5, 5), bool); ring[1, 1:4, 1:4] = True; ring[1, 2, 2] = False
    >>> betti_numbers(ring)
    Betti(b0=1, b1=1, b2=0)
    """
    fg, bg = check_connectivity(connectivity)
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise InputError(f"Betti numbers need a 3D mask, got shape {mask.shape}")
    if not mask.any():
        return Betti(0, 0, 0)
    padded, _ = crop_to_mask(mask)
    return betti_of_padded(padded, connectivity, int(label(padded, connectivity=fg).max()))


def betti_of_padded(padded: np.ndarray, connectivity: int, b0: int) -> Betti:
    """Betti numbers of a bool mask with background on every side, its ``b0`` known
    (the topology check knows it: one per component).

    Parameters
    ----------
    padded : ndarray of bool
        A mask with background on every side.
    connectivity : int
        6, 18 or 26 (foreground).
    b0 : int
        Its number of components.
    """
    fg, bg = check_connectivity(connectivity)
    b2 = ndi.label(~padded, structure=_STRUCTURES[bg])[1] - 1
    chi = int(euler_number(padded, connectivity=fg))
    return Betti(b0, b0 + b2 - chi, b2)
