"""Curve skeletons and their cycles (tunnels)."""
from __future__ import annotations

import networkx as nx
import numpy as np
from skimage.morphology import skeletonize

def skeleton_of(mask: np.ndarray) -> np.ndarray:
    """Boolean curve skeleton (Lee's 3D thinning, scikit-image)."""
    return skeletonize(mask.astype(bool)).astype(bool)


def skeleton_graph(skeleton: np.ndarray) -> nx.Graph:
    """Graph of skeleton voxels joined to their 26 neighbours."""
    coords = [tuple(int(v) for v in c) for c in np.argwhere(skeleton)]
    present = set(coords)
    graph = nx.Graph()
    graph.add_nodes_from(coords)
    offsets = [o for o in np.ndindex(3, 3, 3) if o != (1, 1, 1)]
    for node in coords:
        for offset in offsets:
            other = (node[0] + offset[0] - 1, node[1] + offset[1] - 1, node[2] + offset[2] - 1)
            if other in present:
                graph.add_edge(node, other)
    return graph


def long_cycles(skeleton: np.ndarray, min_length: int = 6) -> list[np.ndarray]:
    """Fundamental cycles of the skeleton graph longer than ``min_length`` voxels.

    The 26-neighbour graph of a thick junction holds many tiny triangles; a
    tunnel shows as a long cycle around it, so short cycles are dropped.
    Fundamental cycles (one per non-tree edge, linear time) rather than a
    minimum basis, whose cost explodes on large skeletons; a long one still
    runs around its tunnel, which is what locating and closing need.

    Parameters
    ----------
    skeleton : ndarray of bool
        A curve skeleton.
    min_length : int
        Shorter cycles (junction triangles) are dropped.
    """
    graph = skeleton_graph(skeleton)
    cycles = [np.array(cycle) for cycle in nx.cycle_basis(graph) if len(cycle) >= min_length]
    return sorted(cycles, key=len, reverse=True)
