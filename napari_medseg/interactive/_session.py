"""An interactive refinement session: clicks in, an updated label mask out, undo.

Used by the dock, the ``refine``/``bench-clicks`` commands and the benchmark.

Examples
--------
>>> session = InteractiveSession(volume, mask=prediction, label=2)   # doctest: +SKIP
>>> mask = session.click((40, 61, 52), positive=True)                # doctest: +SKIP
>>> mask = session.undo()                                            # doctest: +SKIP
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_medseg.errors import InputError
from napari_medseg.interactive._clicks import Click
from napari_medseg.io import Volume

Writer = Callable[[tuple[np.ndarray, ...], np.ndarray], None]


@dataclass(frozen=True, eq=False)
class Change:
    """What one click changed: voxel ``indices``, values ``before`` and ``after``."""

    click: Click
    label: int
    indices: tuple[np.ndarray, ...]
    before: np.ndarray
    after: np.ndarray
    seconds: float
    box: tuple[slice, ...] = field(default=())

    @property
    def n_voxels(self) -> int:
        """Number of voxels the click changed."""
        return int(self.indices[0].size)


def make_engine(engine: str, volume: Volume, model=None, device: str | None = None):
    """``"learned"``, ``"random_walker"``, or ``"auto"``.

    ``auto`` is the random walker: on the click benchmark (BENCHMARKS.md) it beats
    the shipped click model from a damaged prediction and from an empty mask; the
    learned engine stays selectable and ``auto`` will prefer it once a click model
    measures better.

    Raises
    ------
    InputError
        For an unknown engine name, or ``"learned"`` on a case the model cannot read.
    """
    from napari_medseg.interactive._classical import RandomWalkerEngine
    from napari_medseg.interactive._learned import LearnedEngine

    if engine == "random_walker":
        return RandomWalkerEngine(volume)
    if engine == "learned":
        return LearnedEngine(volume, model, device)
    if engine == "auto":
        return RandomWalkerEngine(volume)
    raise InputError(f"unknown click engine {engine!r}; use 'auto', 'learned' or "
                     "'random_walker'")


def _as_volume(volume) -> Volume:
    if isinstance(volume, Volume):
        return volume
    data = np.asarray(volume, dtype=np.float32)
    data = data[None] if data.ndim == 3 else data
    if data.ndim != 4:
        raise InputError(f"image of shape {data.shape}: expected [Z, Y, X] or [C, Z, Y, X]")
    return Volume(data=data, affine=np.eye(4), channel_names=tuple(
        f"channel{i}" for i in range(data.shape[0])))


class InteractiveSession:
    """Click-based refinement of one object (label value) in a label mask.

    Parameters
    ----------
    volume : Volume or ndarray
        The image (``[Z, Y, X]`` or ``[C, Z, Y, X]`` arrays are accepted).
    mask : ndarray, optional
        Initial labels ``[Z, Y, X]`` (the automatic result); default empty.
        Edited in place when ``copy=False`` (the dock shares the layer's array).
    label : int
        The label value the clicks edit.
    engine : str or engine object
        ``"auto"`` (see `make_engine`), ``"learned"``, ``"random_walker"``.
    model, device :
        Click model and torch device for the learned engine.
    copy : bool
        Copy ``mask`` (default) or edit it in place.
    """

    def __init__(self, volume, mask: np.ndarray | None = None, label: int = 1,
                 engine="auto", model=None, device: str | None = None, copy: bool = True):
        self.volume = _as_volume(volume)
        shape = self.volume.shape
        if mask is None:
            mask = np.zeros(shape, np.uint8)
        elif tuple(mask.shape) != tuple(shape):
            raise InputError(f"mask shape {tuple(mask.shape)} differs from the image "
                             f"{tuple(shape)}: open the matching segmentation")
        self.mask = np.array(mask, copy=True) if copy else mask
        self.engine = make_engine(engine, self.volume, model, device) if isinstance(
            engine, str) else engine
        self.label = int(label)
        self.clicks: list[Click] = []
        self.changes: list[Change] = []
        self.history: list[dict] = []

    @property
    def engine_name(self) -> str:
        """Which engine refines: a line for the dock and provenance."""
        return getattr(self.engine, "description", self.engine.name)

    def set_label(self, label: int) -> None:
        """Edit another object from now on (its click list starts empty)."""
        if int(label) != self.label:
            self.label = int(label)
            self.clicks, self.changes = [], []

    def _check_position(self, position: Sequence[float]) -> tuple[int, int, int]:
        point = tuple(int(round(float(p))) for p in position)
        if len(point) != 3 or any(not 0 <= p < n for p, n in zip(point, self.mask.shape)):
            raise InputError(f"click at {tuple(position)} is outside the volume "
                             f"{tuple(self.mask.shape)}: click inside the image")
        return point  # type: ignore[return-value]

    def propose(self, position: Sequence[float], positive: bool = True) -> Change:
        """Run the engine for a new click and return the change, without applying it."""
        click = Click(self._check_position(position), bool(positive))
        started = time.perf_counter()
        clicks = [*self.clicks, click]
        box, inside = self.engine.refine(self.mask == self.label, clicks)
        current = self.mask[box]
        was = current == self.label
        after_box = np.where(inside & ~was, self.label, np.where(was & ~inside, 0, current))
        changed = np.nonzero(after_box != current)
        origin = [s.start for s in box]
        indices = tuple(i + o for i, o in zip(changed, origin))
        return Change(click, self.label, indices, current[changed].copy(),
                      after_box[changed].astype(self.mask.dtype), time.perf_counter() - started,
                      box)

    def commit(self, change: Change, writer: Writer | None = None) -> np.ndarray:
        """Apply a proposed change (through ``writer``, e.g. a Labels layer's
        ``data_setitem``, when the mask is shared) and record it."""
        if writer is None:
            self.mask[change.indices] = change.after
        else:
            writer(change.indices, change.after)
        self.clicks.append(change.click)
        self.changes.append(change)
        self.history.append({**change.click.as_dict(), "label": change.label,
                             "voxels_changed": change.n_voxels,
                             "seconds": round(change.seconds, 4), "engine": self.engine.name})
        return self.mask

    def click(self, position: Sequence[float], positive: bool = True) -> np.ndarray:
        """Refine with one click at voxel ``position`` (z, y, x); returns the mask."""
        return self.commit(self.propose(position, positive))

    def forget_last(self) -> Change | None:
        """Drop the last click from the lists (its voxels restored by the caller)."""
        if not self.changes:
            return None
        change = self.changes.pop()
        self.clicks.pop()
        self.history.append({"undo": True, "label": change.label, "time": round(time.time(), 3)})
        return change

    def undo(self) -> np.ndarray:
        """Revert the last click of the current object; returns the mask."""
        change = self.forget_last()
        if change is not None:
            self.mask[change.indices] = change.before
        return self.mask

    def reset(self) -> np.ndarray:
        """Revert every click of the current object; returns the mask."""
        while self.changes:
            self.undo()
        return self.mask
