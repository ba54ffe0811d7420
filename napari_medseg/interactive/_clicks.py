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


def read_clicks(path: str | Path) -> list[Click]:
    """Read a click list: JSON ``[{"position": [z, y, x], "positive": true}, ...]``.

    Also accepts ``{"clicks": [...]}`` (as `InteractiveSession.history_dict` writes).

    Raises
    ------
    InputError
        Naming the line of a JSON error or the entry that is malformed.
    """
    text = Path(path).read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(describe(path, f"line {error.lineno}: {error.msg}",
                                  'Write a JSON list like [{"position": [z, y, x], '
                                  '"positive": true}]')) from error
    entries = data.get("clicks") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise InputError(describe(path, "expected a list of clicks (or {\"clicks\": [...]})"))
    clicks = []
    for number, entry in enumerate(entries, start=1):
        try:
            position = tuple(int(round(float(v))) for v in entry["position"])
            if len(position) != 3:
                raise ValueError("position needs 3 values (z, y, x)")
            clicks.append(Click(position, bool(entry.get("positive", True)),
                                float(entry.get("time", 0.0))))
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(describe(path, f"click {number} ({entry!r}) is malformed: {error}",
                                      'Each click needs "position": [z, y, x]')) from error
    return clicks


def clicks_to_json(clicks: Sequence[Click]) -> str:
    """The JSON text `read_clicks` reads back."""
    return json.dumps({"clicks": [c.as_dict() for c in clicks]}, indent=1) + "\n"
