"""Locating topology errors as regions a person can see and fix.

Kinds: ``fragment`` (a component beyond the expected number, or a small
one), ``cavity`` (enclosed unlabelled voxels), ``handle`` (a tunnel, found as
a cycle of the curve skeleton), ``broken_tube`` (skeleton endpoints of two
components facing each other across a small gap). Each error carries the
voxels to act on and the fix that acts on them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.measure import label as label_components

from napari_medseg.topology._betti import Betti, check_connectivity
from napari_medseg.topology._pieces import Piece, Structure, split_structure
from napari_medseg.topology._skeleton import long_cycles, skeleton_of

FIXES = {"fragment": "remove", "cavity": "fill", "handle": "close", "broken_tube": "bridge",
         "merge": "none", "split": "none"}
SMALL_FRACTION = 0.05
DEFAULT_RULE = (f"no expectation given: pieces under {SMALL_FRACTION:.0%} of the largest and "
                "cavities mostly not filled by another label are errors; tunnels are "
                "errors only against an expected b1 (they are often anatomy)")


@dataclass(frozen=True, eq=False)
class TopologyError:
    """One error: what, where (voxels), how big and how to fix it."""

    kind: str
    label: int
    voxels: np.ndarray
    detail: str
    extra: dict = field(default_factory=dict)
    values: tuple[int, ...] = ()

    @property
    def target_values(self) -> tuple[int, ...]:
        """Labels making up the checked structure (one label, or a region's labels)."""
        return self.values or (self.label,)

    @property
    def fix(self) -> str:
        """Name of the one-click fix (``remove``, ``fill``, ``close``, ``bridge``, ``none``)."""
        return FIXES[self.kind]

    @property
    def size_voxels(self) -> int:
        """Voxels in the error region."""
        return int(len(self.voxels))

    @property
    def centroid_voxel(self) -> tuple[float, float, float]:
        """Centre ``(z, y, x)`` in voxels."""
        return tuple(float(v) for v in self.voxels.mean(0))  # type: ignore[return-value]


def expectations_from_dict(entries: dict) -> dict[str, "Expectation"]:
    """``{name: Expectation}`` from a model spec's ``expected_topology`` entries.

    Parameters
    ----------
    entries : dict
        ``{target: {"b0": 1, "b1": 0, "b2": 0, "tubular": false}}``; absent keys
        mean "not checked".
    """
    return {name: Expectation(**{k: v for k, v in entry.items()
                                 if k in ("b0", "b1", "b2", "tubular")})
            for name, entry in entries.items()}


@dataclass(frozen=True)
class Expectation:
    """Expected topology of a label; None means 'no expectation'."""

    b0: int | None = None
    b1: int | None = None
    b2: int | None = None
    tubular: bool = False


def _fragments(structure: Structure, value: int, expected: Expectation,
               exclude: set[int]) -> list[TopologyError]:
    sizes = structure.sizes
    order = np.argsort(sizes, kind="stable")[::-1]  # pieces, largest first
    keep = expected.b0 if expected.b0 is not None else 1
    largest = sizes.max()
    errors = []
    for rank, position in enumerate(order):
        piece, size = structure.pieces[position], int(sizes[position])
        unexpected = expected.b0 is not None and rank >= keep
        small = expected.b0 is None and rank >= 1 and size < SMALL_FRACTION * largest
        if piece.index in exclude or not (unexpected or small):
            continue
        reason = "beyond the expected" if unexpected else "small"
        errors.append(TopologyError("fragment", value, piece.voxels,
                                    f"{reason} component of {size} voxels"))
    return errors


def _cavities(structure: Structure, labels: np.ndarray, value: int,
              expected: Expectation) -> list[TopologyError]:
    errors = []
    for piece in structure.pieces:
        if not piece.betti.b2:
            continue
        for voxels in structure.holes(piece):
            unlabelled = float((labels[tuple(voxels.T)] == 0).mean())
            if expected.b2 is None and unlabelled < 0.5:
                continue  # another structure inside (e.g. necrosis in the enhancing rim)
            errors.append(TopologyError("cavity", value, voxels,
                                        f"enclosed cavity of {len(voxels)} voxels"))
    if expected.b2 is not None:
        errors = sorted(errors, key=lambda e: e.size_voxels)[:max(len(errors) - expected.b2, 0)]
    return errors


def _handles(structure: Structure, value: int, expected: Expectation) -> list[TopologyError]:
    if expected.b1 is None:
        return []  # tunnels can be real anatomy: only an expectation makes them errors
    excess = structure.betti.b1 - expected.b1
    if excess <= 0:
        return []
    holed = [piece for piece in structure.pieces if piece.betti.b1]
    cycles = sorted((cycle + piece.offset for piece in holed
                     for cycle in long_cycles(skeleton_of(piece.mask))), key=len, reverse=True)
    errors = [TopologyError("handle", value, cycle, f"tunnel or handle (loop of {len(cycle)} "
                            "skeleton voxels)") for cycle in cycles[:excess]]
    if len(errors) < excess:  # no clean skeleton loop: report the structures holding them
        errors.append(TopologyError("handle", value,
                                    np.concatenate([p.voxels for p in holed]),
                                    f"{excess - len(errors)} tunnel(s) not located"))
    return errors


def _is_compact_blob(piece_mm: np.ndarray, voxel_mm3: float) -> bool:
    """A roundish piece that fills much of its bounding sphere (a spurious
    fragment), not a piece of tube or branching tree (which fills little of it)."""
    if len(piece_mm) < 4:
        return True
    reach = float(np.linalg.norm(piece_mm - piece_mm.mean(0), axis=1).max())
    sphere = 4.0 / 3.0 * np.pi * max(reach, 1e-3) ** 3
    return len(piece_mm) * voxel_mm3 / sphere > 0.35


def _sticks_out(piece_mm: np.ndarray, point_mm: np.ndarray, towards: np.ndarray) -> float:
    """How far (in tube radii) ``point`` lies ahead of the piece's nearby voxels along
    ``towards``: about 2 at a tube end, about 0 on its side."""
    distance = np.linalg.norm(piece_mm - point_mm, axis=1)
    close = piece_mm[distance <= np.sort(distance)[min(len(distance) - 1, 30)]]
    radius = max(float(np.linalg.norm(close - close.mean(0), axis=1).max()), 1e-3)
    near = piece_mm[distance <= 4.0 * radius]
    return float(np.dot(point_mm - near.mean(0), towards)) / radius


def _looks_broken(piece_a, piece_b, end_a, end_b, direction, voxel_mm3: float) -> bool:
    """Two tube pieces where at least one clearly ends at the gap; or a short
    stub facing a piece that ends right there (a compact blob beside a tube's
    side is a fragment instead)."""
    out_a = _sticks_out(piece_a, end_a, direction)
    out_b = _sticks_out(piece_b, end_b, -direction)
    blob_a, blob_b = _is_compact_blob(piece_a, voxel_mm3), _is_compact_blob(piece_b, voxel_mm3)
    if not blob_a and not blob_b:
        return max(out_a, out_b) >= 0.5
    if blob_a and blob_b:
        return False
    return (out_b if blob_a else out_a) >= 1.5


def _nearby_pairs(pieces: list[Piece], reach: np.ndarray) -> list[tuple[Piece, Piece]]:
    """Pairs of pieces whose boxes, grown by ``reach`` voxels, overlap: the only
    pairs a gap of that size can join."""
    lows = np.array([[s.start for s in p.box] for p in pieces]).reshape(-1, 3)
    highs = np.array([[s.stop for s in p.box] for p in pieces]).reshape(-1, 3)
    pairs = []
    for index, piece in enumerate(pieces):
        overlap = np.all((lows[index + 1:] - reach < highs[index]) &
                         (lows[index] - reach < highs[index + 1:]), axis=1)
        pairs += [(piece, pieces[index + 1 + j]) for j in np.flatnonzero(overlap)]
    return pairs


def _broken_tubes(structure: Structure, spacing, max_gap_mm: float,
                  value: int) -> tuple[list[TopologyError], set[int]]:
    """Pairs of tube pieces whose closest ends face each other across a small gap.

    For each pair of components whose boxes lie within the gap of each other,
    the closest voxels (a KD-tree query) define the gap; it is a broken tube
    when the gap is at most ``max_gap_mm`` and `_looks_broken` (the pieces'
    ends face each other, judged by how far each sticks out towards the other).
    """
    step = np.asarray(spacing, dtype=float)
    voxels = {p.index: p.voxels for p in structure.pieces}
    trees = {index: cKDTree(v * step) for index, v in voxels.items()}
    reach = np.ceil(max_gap_mm / step).astype(int)
    candidates = []
    for piece_a, piece_b in _nearby_pairs(structure.pieces, reach):
        a, b = piece_a.index, piece_b.index
        gaps, nearest = trees[a].query(voxels[b] * step, distance_upper_bound=max_gap_mm + 1e-6)
        best = int(np.argmin(gaps))
        if not np.isfinite(gaps[best]):
            continue
        end_b, end_a = voxels[b][best], voxels[a][nearest[best]]
        direction = (end_b - end_a) * step
        direction /= np.linalg.norm(direction) + 1e-9
        if _looks_broken(voxels[a] * step, voxels[b] * step, end_a * step, end_b * step,
                         direction, float(np.prod(step))):
            candidates.append((float(gaps[best]), a, b, end_a, end_b))
    errors, bridged = [], set()
    for gap, a, b, end_a, end_b in sorted(candidates, key=lambda item: item[0]):
        path = np.unique(np.round(np.linspace(end_a, end_b, int(np.abs(end_b - end_a).max())
                                              + 2)).astype(int), axis=0)
        bridged.update((a, b))
        errors.append(TopologyError("broken_tube", value, path,
                                    f"gap of {gap:.1f} mm between two tube pieces",
                                    {"ends": [end_a.tolist(), end_b.tolist()]}))
    return errors, bridged


def _paint_label(labels: np.ndarray, voxels: np.ndarray, values: tuple[int, ...]) -> int:
    """The region label most common around ``voxels`` (what a fill should paint)."""
    if len(values) == 1:
        return values[0]
    lo = np.maximum(voxels.min(0) - 2, 0)
    hi = np.minimum(voxels.max(0) + 3, labels.shape)
    around = labels[tuple(slice(a, b) for a, b in zip(lo, hi))]
    counts = [(int(np.sum(around == v)), v) for v in values]
    return max(counts)[1]


def find_errors(labels: np.ndarray, value: int | tuple[int, ...],
                expected: Expectation | None = None, spacing=(1.0, 1.0, 1.0),
                connectivity: int = 26, max_gap_mm: float = 8.0) -> list[TopologyError]:
    """All topology errors of one label, or of a region (a tuple of labels, e.g. WT).

    Parameters
    ----------
    labels : ndarray of int, shape (Z, Y, X)
        The label map (other labels matter: a cavity filled by another
        structure is not a hole).
    value : int or tuple of int
        The label to check, or the labels of a region checked as one structure.
    expected : Expectation, optional
        Expected Betti numbers and whether the label is tubular.
    spacing : tuple of float
        Voxel size in mm (gap distances).
    connectivity : {26, 6}
        Foreground connectivity.
    max_gap_mm : float
        Largest gap bridged between tube pieces.
    """
    return analyse_structure(labels, value, expected, spacing, connectivity, max_gap_mm)[0]


def analyse_structure(labels: np.ndarray, value: int | tuple[int, ...],
                      expected: Expectation | None = None, spacing=(1.0, 1.0, 1.0),
                      connectivity: int = 26, max_gap_mm: float = 8.0
                      ) -> tuple[list[TopologyError], Betti]:
    """`find_errors` and the structure's Betti numbers, from one labelling.

    Parameters are those of `find_errors`.

    Returns
    -------
    errors : list of TopologyError
    betti : Betti
    """
    expected = expected or Expectation()
    values = (value,) if np.isscalar(value) else tuple(int(v) for v in value)
    mask = np.isin(labels, values)
    if not mask.any():
        return [], Betti(0, 0, 0)
    value = values[0]
    structure = split_structure(mask, connectivity)
    errors, bridged = [], set()
    if expected.tubular and len(structure.pieces) > 1:
        tube_errors, bridged = _broken_tubes(structure, spacing, max_gap_mm, value)
        errors += tube_errors
    errors += _fragments(structure, value, expected, bridged)
    errors += _cavities(structure, labels, value, expected)
    errors += _handles(structure, value, expected)
    return [TopologyError(e.kind, _paint_label(labels, e.voxels, values), e.voxels, e.detail,
                          e.extra, values) for e in errors], structure.betti


def component_overlaps(prediction: np.ndarray, reference: np.ndarray,
                       connectivity: int = 26) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Merged and split regions between a prediction and a reference.

    Parameters
    ----------
    prediction, reference : ndarray of bool
        The masks, same shape.
    connectivity : int
        6, 18 or 26.

    Returns
    -------
    merged, split : list of ndarray of bool
        Predicted components touching several reference components, and
        reference components covered by several predicted ones.
    """
    foreground, _ = check_connectivity(connectivity)
    predicted = label_components(prediction, connectivity=foreground)
    truth = label_components(reference, connectivity=foreground)
    both = (predicted > 0) & (truth > 0)
    pairs = set(zip(predicted[both].tolist(), truth[both].tolist()))
    merges = [np.argwhere(predicted == p) for p in {p for p, _ in pairs}
              if sum(1 for q, _ in pairs if q == p) > 1]
    splits = [np.argwhere(truth == t) for t in {t for _, t in pairs}
              if sum(1 for _, u in pairs if u == t) > 1]
    return merges, splits


def cl_dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Centreline Dice (Shit et al. 2021) of two binary masks.

    Parameters
    ----------
    prediction, reference : ndarray of bool
        The masks, same shape.
    """
    skeleton_p, skeleton_r = skeleton_of(prediction), skeleton_of(reference)
    if not skeleton_p.any() or not skeleton_r.any():
        return float(skeleton_p.any() == skeleton_r.any())
    precision = (skeleton_p & reference).sum() / skeleton_p.sum()
    sensitivity = (skeleton_r & prediction).sum() / skeleton_r.sum()
    total = precision + sensitivity
    return float(2 * precision * sensitivity / total) if total else 0.0


def dilate_path(path: np.ndarray, radius_voxels: float, shape) -> np.ndarray:
    """Voxels within ``radius`` of a polyline of voxels (a bridge cylinder).

    Parameters
    ----------
    path : ndarray of shape (N, 3)
        Voxels of the polyline.
    radius_voxels : float
        Cylinder radius.
    shape : tuple of int
        The volume's shape.
    """
    line = np.zeros(shape, bool)
    line[tuple(np.clip(path, 0, np.asarray(shape) - 1).T)] = True
    return ndi.distance_transform_edt(~line) <= max(radius_voxels, 1.0)
