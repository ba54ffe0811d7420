"""A structure analysed one connected component at a time, each in its own box.

A messy mask (a model's output with hundreds of specks) made every
whole-volume pass of the topology check cost as much as the biggest
structure. Here the volume is labelled once, and every further step
(Betti numbers, enclosed cavities, curve skeletons for tunnels) runs on each
component's bounding box, so its cost follows the component's size.

Splitting is exact: with a 26-connected foreground, two components share no
point (their closed voxel cubes do not touch), so the Euler characteristic,
b0 and, by Alexander duality, b2 (hence b1) of the whole are the sums over
the components.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as label_components

from napari_medseg.topology._betti import Betti, betti_of_padded, check_connectivity


@dataclass(frozen=True, eq=False)
class Piece:
    """One component: its id, box (one voxel of margin where the volume allows),
    its voxels in the box, and its Betti numbers."""

    index: int
    box: tuple[slice, ...]
    mask: np.ndarray
    betti: Betti

    @property
    def offset(self) -> np.ndarray:
        """Volume index of the box's first voxel."""
        return np.array([s.start for s in self.box])

    @property
    def voxels(self) -> np.ndarray:
        """Volume indices ``(N, 3)`` of the component's voxels."""
        return np.argwhere(self.mask) + self.offset

    @property
    def size(self) -> int:
        """Voxels in the component."""
        return int(self.mask.sum())


@dataclass(frozen=True, eq=False)
class Structure:
    """A binary structure split into its components."""

    mask: np.ndarray
    pieces: list[Piece]
    connectivity: int

    @property
    def betti(self) -> Betti:
        """Betti numbers of the whole structure (sums over the components)."""
        return Betti(*(sum(getattr(p.betti, k) for p in self.pieces) for k in ("b0", "b1", "b2")))

    @property
    def sizes(self) -> np.ndarray:
        """Voxels per component, in component order (component ``i`` at ``i - 1``)."""
        return np.array([p.size for p in self.pieces], dtype=np.int64)

    def holes(self, piece: Piece) -> Iterator[np.ndarray]:
        """Each cavity a component encloses, as volume indices of its unlabelled voxels
        (voxels of other components inside it are not part of the cavity)."""
        _, background = check_connectivity(self.connectivity)
        padded = label_components(np.pad(~piece.mask, 1, constant_values=True),
                                  connectivity=background)
        outside = int(padded[0, 0, 0])
        holes = padded[1:-1, 1:-1, 1:-1]
        free = ~self.mask[piece.box]
        for hole, box in enumerate(ndi.find_objects(holes), start=1):
            if hole == outside or box is None:
                continue
            inside = (holes[box] == hole) & free[box]
            if inside.any():
                yield np.argwhere(inside) + piece.offset + [s.start for s in box]


def split_structure(mask: np.ndarray, connectivity: int = 26) -> Structure:
    """Label ``mask`` once and analyse each component in its own box.

    Parameters
    ----------
    mask : ndarray of bool, shape (Z, Y, X)
        The structure.
    connectivity : {26, 6}
        Foreground connectivity (the background takes the other one).

    Returns
    -------
    Structure
        The components, each with its box, voxels and Betti numbers.
    """
    foreground, _ = check_connectivity(connectivity)
    mask = np.asarray(mask, dtype=bool)
    components = label_components(mask, connectivity=foreground)
    pieces = []
    for index, box in enumerate(ndi.find_objects(components), start=1):
        if box is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n))
                      for s, n in zip(box, mask.shape))
        own = components[grown] == index
        pieces.append(Piece(index, grown, own, betti_of_padded(np.pad(own, 1), connectivity, 1)))
    return Structure(mask, pieces, connectivity)
