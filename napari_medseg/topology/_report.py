"""A topology check of a whole label map: per-label Betti numbers, errors, overlay, JSON."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_medseg.errors import InputError
from napari_medseg.io import as_label_mask, spacing_from_affine
from napari_medseg.topology._betti import Betti, betti_numbers
from napari_medseg.topology._errors import (
    DEFAULT_RULE, Expectation, TopologyError, analyse_structure, cl_dice, component_overlaps)

OVERLAY_CODES = {"fragment": 1, "cavity": 2, "handle": 3, "broken_tube": 4, "merge": 5,
                 "split": 6}
OVERLAY_COLORS = {1: (1.0, 0.3, 0.3, 1.0), 2: (0.3, 0.6, 1.0, 1.0), 3: (1.0, 0.6, 0.0, 1.0),
                  4: (0.9, 0.2, 0.9, 1.0), 5: (1.0, 1.0, 0.2, 1.0), 6: (0.2, 1.0, 1.0, 1.0)}


@dataclass(frozen=True, eq=False)
class TargetTopology:
    """Result for one label or region."""

    name: str
    values: tuple[int, ...]
    betti: Betti
    expected: Expectation
    errors: list[TopologyError]
    reference: dict = field(default_factory=dict)


def parse_expectation(text: str) -> tuple[str, Expectation]:
    """``'WT:b0=1,b1=0,b2=0'`` or ``'vessel:b0=1,tubular'`` -> (target, Expectation).

    Parameters
    ----------
    text : str
        One expectation line (the CLI's ``--expect``, a line of the dock's box).

    Raises
    ------
    InputError
        Naming what is wrong in the line.
    """
    match = re.fullmatch(r"\s*([^:]+):(.*)", text)
    if not match:
        raise InputError(f"cannot read expectation {text!r}: write LABEL:b0=1,b1=0,b2=0")
    target, body = match.group(1).strip(), match.group(2)
    numbers, tubular = {}, False
    for item in filter(None, (part.strip() for part in body.split(","))):
        if item == "tubular":
            tubular = True
            continue
        key, _, number = item.partition("=")
        if key not in ("b0", "b1", "b2") or not number.strip().isdigit():
            raise InputError(f"cannot read {item!r} in expectation {text!r}: use b0=N, b1=N, "
                             "b2=N or tubular")
        numbers[key] = int(number)
    return target, Expectation(tubular=tubular, **numbers)


def resolve_targets(labels: np.ndarray, names: Mapping[int, str],
                    regions: Mapping[str, Sequence[int]],
                    expectations: Mapping[str, Expectation]) -> dict[str, tuple[int, ...]]:
    """Targets to check: every label present, plus regions that have an expectation.

    Parameters
    ----------
    labels : ndarray of int
        The mask.
    names : mapping of int to str
        Label names.
    regions : mapping of str to sequence of int
        Unions of labels.
    expectations : mapping of str to Expectation
        Expected topology per target.
    """
    targets = {names.get(int(v), str(int(v))): (int(v),) for v in np.unique(labels) if v != 0}
    by_value = {str(v): n for n, (v,) in targets.items()}
    for key in expectations:
        if key in targets or key in by_value:
            continue
        if key in regions:
            targets[key] = tuple(regions[key])
        else:
            known = ", ".join([*targets, *regions]) or "none"
            raise InputError(f"expectation for {key!r}: no such label or region in this mask "
                             f"(known: {known})")
    return targets


def check_topology(labels: np.ndarray, affine: np.ndarray | None = None,
                   names: Mapping[int, str] | None = None,
                   regions: Mapping[str, Sequence[int]] | None = None,
                   expectations: Mapping[str, Expectation] | None = None,
                   reference: np.ndarray | None = None, connectivity: int = 26,
                   max_gap_mm: float = 8.0) -> dict[str, TargetTopology]:
    """Betti numbers and located errors for every label (and expected regions).

    Parameters
    ----------
    labels : ndarray of int
        The label mask ``[Z, Y, X]``.
    affine : ndarray of shape (4, 4), optional
        Voxel-to-world matrix (for distances in mm); identity when omitted.
    names : mapping of int to str, optional
        Label value to name (targets are reported by name).
    regions : mapping of str to sequence of int, optional
        Unions of labels (e.g. ``WT``) checked when they have an expectation.
    expectations : mapping of str to Expectation, optional
        Expected topology per label (name or value) or region.
    reference : ndarray of int, optional
        A reference mask: merges and splits against it are reported too.
    connectivity : {6, 18, 26}
        Foreground connectivity.
    max_gap_mm : float
        Widest gap a broken tube may have to be bridged.

    Returns
    -------
    dict of str to TargetTopology
        One entry per target.

    Raises
    ------
    InputError
        For a float or negative mask, or a reference of another shape.
    """
    labels = as_label_mask(labels, "the mask")
    affine = np.eye(4) if affine is None else affine
    spacing = spacing_from_affine(affine)
    names, regions, expectations = names or {}, regions or {}, dict(expectations or {})
    if reference is not None:
        reference = as_label_mask(reference, "the reference")
        if reference.shape != labels.shape:
            raise InputError(f"reference shape {reference.shape} differs from the mask "
                             f"{labels.shape}: use the reference of this case")
    by_value = {str(v): n for v, n in names.items()}
    expectations = {by_value.get(k, k): e for k, e in expectations.items()}
    results = {}
    for name, values in resolve_targets(labels, names, regions, expectations).items():
        expected = expectations.get(name, Expectation())
        errors, betti = analyse_structure(labels, values if len(values) > 1 else values[0],
                                          expected, spacing, connectivity, max_gap_mm)
        extra = {}
        if reference is not None:
            extra, more = _against_reference(np.isin(labels, values), np.isin(reference, values),
                                             values, connectivity, expected)
            errors += more
        results[name] = TargetTopology(name, values, betti, expected, errors, extra)
    return results




def _against_reference(mask, truth, values, connectivity, expected):
    betti_ref = betti_numbers(truth, connectivity)
    betti = betti_numbers(mask, connectivity)
    merges, splits = component_overlaps(mask, truth, connectivity)
    errors = [TopologyError("merge", values[0], v, "one component covers several reference "
                            "components", values=values) for v in merges]
    errors += [TopologyError("split", values[0], v, "one reference component is split",
                             values=values) for v in splits]
    extra = {"reference_betti": betti_ref.as_dict(),
             "betti_error": {k: abs(getattr(betti, k) - getattr(betti_ref, k))
                             for k in ("b0", "b1", "b2")},
             "merges": len(merges), "splits": len(splits)}
    if expected.tubular:
        extra["cl_dice"] = cl_dice(mask, truth)
    return extra, errors


def overlay(shape, results: Mapping[str, TargetTopology]) -> np.ndarray:
    """uint8 volume marking each error's voxels with its kind's code (OVERLAY_CODES).

    Parameters
    ----------
    shape : tuple of int
        The mask's shape.
    results : mapping of str to TargetTopology
        A check's results per target.
    """
    out = np.zeros(shape, np.uint8)
    for target in results.values():
        for error in target.errors:
            out[tuple(error.voxels.T)] = OVERLAY_CODES[error.kind]
    return out


def _rule(expected: dict) -> str:
    """Which expectation decided the errors, in words (stated in every report)."""
    if not expected:
        return DEFAULT_RULE
    stated = ", ".join(f"{k}={v}" for k, v in expected.items())
    left = [k for k in ("b0", "b1", "b2") if k not in expected]
    return f"expected {stated}" + (f"; {', '.join(left)} by the default rule" if left else "")


def report_dict(results: Mapping[str, TargetTopology], affine: np.ndarray,
                connectivity: int = 26) -> dict:
    """The documented JSON of a topology check.

    Parameters
    ----------
    results : mapping of str to TargetTopology
        The check's results per target.
    affine : ndarray of shape (4, 4)
        Voxel-to-RAS affine, for error positions in mm.
    connectivity : int
        The connectivity the check used.
    """
    spacing = spacing_from_affine(affine)
    voxel_mm3 = float(np.prod(spacing))
    out = {"connectivity": {"foreground": connectivity,
                            "background": 6 if connectivity == 26 else 26},
           "overlay_codes": OVERLAY_CODES, "targets": {}}
    for name, target in results.items():
        expected = {k: getattr(target.expected, k) for k in ("b0", "b1", "b2")
                    if getattr(target.expected, k) is not None}
        errors = []
        for error in target.errors:
            z, y, x = error.centroid_voxel
            world = (affine @ np.array([x, y, z, 1.0]))[:3]
            errors.append({"kind": error.kind, "label": error.label, "detail": error.detail,
                           "centroid_voxel_zyx": [round(v, 2) for v in (z, y, x)],
                           "centroid_mm_ras": [round(float(v), 2) for v in world],
                           "size_voxels": error.size_voxels,
                           "size_mm3": round(error.size_voxels * voxel_mm3, 2),
                           "fix": error.fix})
        out["targets"][name] = {"labels": list(target.values), "betti": target.betti.as_dict(),
                                "expected": expected, "tubular": target.expected.tubular,
                                "rule": _rule(expected),
                                "matches_expected": all(getattr(target.betti, k) == v
                                                        for k, v in expected.items()),
                                "errors": errors, **target.reference}
    return out
