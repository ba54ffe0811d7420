"""Clicks and their encoding as guidance channels for the click network.

A click is a voxel position (z, y, x) and a sign. The network sees two
guidance channels, positive and negative, each the maximum over its clicks
of a Gaussian bump (sigma in voxels); the newest click has weight 1 and
older clicks ``older_weight``, so the network can tell which click asks for
the current change (as in DeepEdit and nnInteractive).
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError, describe

CLICK_SIGMA = 3.0
OLDER_WEIGHT = 0.6


@dataclass(frozen=True)
class Click:
    """One click: voxel ``position`` (z, y, x), ``positive`` or negative, wall ``time``."""

    position: tuple[int, int, int]
    positive: bool = True
    time: float = field(default_factory=time.time)

    def as_dict(self) -> dict:
        """JSON-ready record."""
        return {"position": [int(p) for p in self.position], "positive": bool(self.positive),
                "time": round(float(self.time), 3)}


def guidance_maps(shape: Sequence[int], clicks: Sequence[Click],
                  origin: Sequence[int] = (0, 0, 0), sigma: float = CLICK_SIGMA,
                  older_weight: float = OLDER_WEIGHT) -> np.ndarray:
    """Positive and negative guidance ``[2, *shape]`` for the box starting at ``origin``.

    Parameters
    ----------
    shape : sequence of int
        Box shape (z, y, x).
    clicks : sequence of Click
        In time order; the last one is the newest.
    origin : sequence of int
        Volume position of the box's first voxel.
    sigma : float
        Gaussian width in voxels.
    older_weight : float
        Peak value of all clicks but the newest.
    """
    maps = np.zeros((2, *shape), dtype=np.float32)
    radius = int(np.ceil(3 * sigma))
    for index, click in enumerate(clicks):
        weight = 1.0 if index == len(clicks) - 1 else older_weight
        centre = np.asarray(click.position) - np.asarray(origin)
        lo = np.maximum(centre - radius, 0)
        hi = np.minimum(centre + radius + 1, shape)
        if np.any(hi <= lo):
            continue
        axes = [np.arange(a, b) - c for a, b, c in zip(lo, hi, centre)]
        zz, yy, xx = np.meshgrid(*axes, indexing="ij")
        bump = weight * np.exp(-(zz ** 2 + yy ** 2 + xx ** 2) / (2 * sigma ** 2))
        target = maps[0 if click.positive else 1][tuple(slice(a, b) for a, b in zip(lo, hi))]
        np.maximum(target, bump.astype(np.float32), out=target)
    return maps


def network_input(image: np.ndarray, labels: np.ndarray, label: int, clicks: Sequence[Click],
                  box: tuple[slice, ...], size: Sequence[int], n_labels: int) -> np.ndarray:
    """The click network's input ``[C + 3 n_labels, *size]``, zero-padded to ``size``.

    Parameters
    ----------
    image : ndarray of shape (C, Z, Y, X)
        The normalised contrasts.
    labels : ndarray of int
        The current label mask ``[Z, Y, X]``.
    label : int
        The label the clicks edit (1 .. ``n_labels``).
    clicks : sequence of Click
        That label's clicks, newest last.
    box : tuple of slice
        The patch in the volume.
    size : sequence of int
        Patch shape after padding (the network's divisor).
    n_labels : int
        Foreground classes of the network.

    Returns
    -------
    ndarray of float32
        The contrasts, the current mask one-hot per label (1 .. ``n_labels``),
        then each label's positive guidance and each label's negative guidance
        (DeepEdit's per-label guidance: only ``label``'s two maps are non-zero).
    """
    origin = [s.start for s in box]
    crop_shape = [s.stop - s.start for s in box]
    current = labels[box]
    one_hot = (current[None] == np.arange(1, n_labels + 1).reshape(-1, 1, 1, 1))
    guidance = np.zeros((2 * n_labels, *crop_shape), np.float32)
    guidance[[label - 1, n_labels + label - 1]] = guidance_maps(crop_shape, clicks, origin)
    channels = np.concatenate([image[(slice(None), *box)], one_hot.astype(np.float32), guidance])
    pads = [(0, 0)] + [(0, s - c) for s, c in zip(size, crop_shape)]
    return np.pad(channels, pads).astype(np.float32, copy=False)


MAX_CLICKS = 10_000


def read_clicks(path: str | Path) -> list[Click]:
    """Read a click list: JSON ``[{"position": [z, y, x], "positive": true}, ...]``.

    Also accepts ``{"clicks": [...]}`` (as `clicks_to_json` writes). ``positive``
    must be a JSON boolean (``"false"`` is refused, not read as true).

    Parameters
    ----------
    path : str or Path
        The JSON file; at most ``MAX_CLICKS`` clicks.

    Returns
    -------
    list of Click
        In file order.

    Raises
    ------
    InputError
        Naming the line of a JSON error, the entry that is malformed, or a file
        that cannot be read as text; nothing is clicked then.
    """
    data = _load_json(Path(path))
    entries = data.get("clicks") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise InputError(describe(path, "expected a list of clicks (or {\"clicks\": [...]})"))
    if len(entries) > MAX_CLICKS:
        raise InputError(describe(path, f"{len(entries)} clicks: more than {MAX_CLICKS}",
                                  "Split the clicks into several files"))
    return [_click_entry(path, number, entry) for number, entry in enumerate(entries, start=1)]


def _load_json(path: Path):
    hint = 'Write a JSON list like [{"position": [z, y, x], "positive": true}]'
    if not path.is_file():
        raise InputError(describe(path, "no such file" if not path.exists() else
                                  "is a folder, not a click file", hint))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(describe(path, f"line {error.lineno}: {error.msg}", hint)) from error
    except UnicodeDecodeError as error:
        raise InputError(describe(path, "is not a text file", hint)) from error
    except (ValueError, RecursionError) as error:  # huge integers, deep nesting
        raise InputError(describe(path, f"cannot be read as JSON ({type(error).__name__})",
                                  hint)) from error


def _click_entry(path, number: int, entry) -> Click:
    hint = 'Each click needs "position": [z, y, x] and optionally "positive": true/false'
    try:
        if not isinstance(entry, dict):
            raise TypeError("a click is an object with a position")
        values = entry["position"]
        if not isinstance(values, list) or len(values) != 3 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ValueError("position needs 3 numbers (z, y, x)")
        position = tuple(int(round(float(v))) for v in values)
        positive = entry.get("positive", True)
        if not isinstance(positive, bool):
            raise ValueError(f"positive must be true or false, not {positive!r}")
        return Click(position, positive, float(entry.get("time", 0.0)))
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        shown = repr(entry)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise InputError(describe(path, f"click {number} ({shown}) is malformed: {error}",
                                  hint)) from error


def clicks_to_json(clicks: Sequence[Click]) -> str:
    """The JSON text `read_clicks` reads back.

    Parameters
    ----------
    clicks : sequence of Click
        The clicks, in order.

    Returns
    -------
    str
        ``{"clicks": [{"position": [z, y, x], "positive": ..., "time": ...}]}``.
    """
    return json.dumps({"clicks": [c.as_dict() for c in clicks]}, indent=1) + "\n"
