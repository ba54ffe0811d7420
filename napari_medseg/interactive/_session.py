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
from napari_medseg.interactive._edit import local_edit
from napari_medseg.interactive._geometry import open_faces
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


ENGINES = ("auto", "model", "learned", "random_walker")


def make_engine(engine: str, volume: Volume, model=None, device: str | None = None,
                probabilities: np.ndarray | None = None, segmentation_model=None,
                precision: str = "auto"):
    """Build a click engine by name: ``auto``, ``model``, ``learned`` or ``random_walker``.

    Parameters
    ----------
    engine : str
        ``"model"`` refines with the segmentation model's probabilities (see
        `ModelEngine`); ``"learned"`` with the click network; ``"random_walker"``
        needs no model. ``"auto"``, when the case has class probabilities from a
        model run: the click network if it knows that model's labels (same
        values and names) and the case has its contrasts (it fixes the most per
        click, BENCHMARKS.md), else ``"model"``. Without a model run's
        probabilities (a review case, a mask opened from a file, an empty mask)
        the click network too when it knows ``segmentation_model``'s labels and
        the case has its contrasts, with no prior; else the random walker
        (``"model"`` without probabilities computes them with the segmentation
        model, box by box).
    volume : Volume
        The case.
    model : str, Path or LoadedModel, optional
        Click model of the learned engine.
    device : str, optional
        Torch device (``"auto"`` or None: the best available).
    probabilities : ndarray of shape (C, Z, Y, X), optional
        Class probabilities of the model run on this case (the click network's
        prior too: a positive click takes no background the model rules out).
    segmentation_model : str, Path or LoadedModel, optional
        Model that computes probabilities the run did not keep (default built-in).
    precision : str
        The click network's arithmetic (see `LearnedEngine`; ``auto`` by default).

    Raises
    ------
    InputError
        For an unknown engine name, or a model engine on a case the model cannot read.
    """
    from napari_medseg.interactive._classical import RandomWalkerEngine
    from napari_medseg.interactive._learned import LearnedEngine
    from napari_medseg.interactive._model_engine import ModelEngine

    device = None if device in (None, "auto") else device
    if engine not in ENGINES:
        raise InputError(f"unknown click engine {engine!r}; use {', '.join(map(repr, ENGINES))}")
    if engine == "random_walker":
        return RandomWalkerEngine(volume)
    if engine == "learned" or (engine == "auto" and click_network_fits(
            volume.channel_names, segmentation_model, model)):
        return LearnedEngine(volume, model, device, prior=probabilities, precision=precision)
    if engine == "auto" and probabilities is None:
        return RandomWalkerEngine(volume)
    if probabilities is None:
        _check_model_reads(segmentation_model, volume)
    return ModelEngine(volume, probabilities, segmentation_model, device)


def click_network_fits(channel_names: Sequence[str], segmentation_model=None,
                       click_model=None) -> bool:
    """Whether the click network can take over from a segmentation model's run.

    Parameters
    ----------
    channel_names : sequence of str
        The case's contrasts (``Volume.channel_names``): they must hold the click
        network's. Only names are read, so the dock asks before building the case.
    segmentation_model, click_model : str, Path or LoadedModel, optional
        The model whose run made the mask (default built-in) and the click
        network (default built-in ``click_unet``); their labels must agree in
        value and name.
    """
    from napari_medseg.errors import MedsegError
    from napari_medseg.inference._predict import channel_indices
    from napari_medseg.models.registry import DEFAULT_CLICK_MODEL

    try:
        click_spec = _spec_of(click_model or DEFAULT_CLICK_MODEL)
        model_spec = _spec_of(segmentation_model)
        channel_indices(channel_names, click_spec)
    except MedsegError:
        return False
    return ({(info.value, info.name) for info in click_spec.labels}
            == {(info.value, info.name) for info in model_spec.labels})


def _spec_of(model):
    from napari_medseg.models import read_spec
    from napari_medseg.models.loading import LoadedModel
    from napari_medseg.models.registry import resolve_model

    return model.spec if isinstance(model, LoadedModel) else read_spec(resolve_model(model))


def _check_model_reads(segmentation_model, volume: Volume) -> None:
    """Refuse, with the missing contrasts named, a case the segmentation model cannot read
    (by the channels' names: no voxel is read)."""
    from napari_medseg.inference._predict import channel_indices

    channel_indices(volume.channel_names, _spec_of(segmentation_model))


def check_label(label, dtype) -> int:
    """The label value as an int, refused when the mask's dtype cannot hold it.

    Parameters
    ----------
    label : int-like
        The label value asked for.
    dtype : numpy dtype
        The mask's dtype.

    Raises
    ------
    InputError
        For a value that is not an integer, is 0 (background), or does not fit
        (``--label 256`` on a uint8 mask would wrap to 0 and erase voxels).
    """
    if isinstance(label, bool) or not float(label).is_integer():
        raise InputError(f"label {label!r} is not a whole number: give a label value like 2")
    value, limits = int(label), np.iinfo(np.dtype(dtype))
    if value <= 0 or value > limits.max:
        raise InputError(f"label {value} does not fit this {np.dtype(dtype).name} mask: use a "
                         f"value from 1 to {limits.max}")
    return value


def _follows_object(engine, label: int) -> bool:
    """Does ``engine``'s answer for ``label`` see the current mask, so that a positive click
    may take the same fix further along the clicked object (see ``_edit``)?"""
    follows = getattr(engine, "follows_object", None)
    return bool(follows(label)) if follows is not None else False


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
        ``"auto"``, ``"model"``, ``"learned"`` or ``"random_walker"`` (see `make_engine`).
    model, device :
        Click model and torch device for the learned engine.
    copy : bool
        Copy ``mask`` (default) or edit it in place.
    probabilities : ndarray of shape (C, Z, Y, X), optional
        Class probabilities of the model run (the model-aware engine's prior).
    protect : bool
        Protect other labels: a positive click may take only background voxels.

    Notes
    -----
    Every click follows one rule whatever the engine (see ``_edit``): it
    changes only the region connected to the click where the engine's answer
    disagrees with the mask in the click's direction; with an engine whose
    answer sees the mask (the click network), a positive click also makes
    the same fix further along the answer's object under the click, never on
    voxels an earlier click set. Voxels a negative click removes go to the
    label the engine gives them, never to a hole.
    """

    def __init__(self, volume, mask: np.ndarray | None = None, label: int = 1,
                 engine="auto", model=None, device: str | None = None, copy: bool = True,
                 probabilities: np.ndarray | None = None, protect: bool = False):
        self.volume = _as_volume(volume)
        shape = self.volume.shape
        if mask is None:
            mask = np.zeros(shape, np.uint8)
        elif tuple(mask.shape) != tuple(shape):
            raise InputError(f"mask shape {tuple(mask.shape)} differs from the image "
                             f"{tuple(shape)}: open the matching segmentation")
        self.mask = np.array(mask, copy=True) if copy else mask
        self.engine = engine if not isinstance(engine, str) else make_engine(
            engine, self.volume, model, device, probabilities=probabilities)
        self.label = check_label(label, self.mask.dtype)
        self.protect = bool(protect)
        self.clicks: list[Click] = []
        self.changes: list[Change] = []
        self.edits: list[tuple[np.ndarray, ...]] = []  # every label's clicks' voxels
        self.history: list[dict] = []

    @property
    def engine_name(self) -> str:
        """Which engine refines: a line for the dock and provenance."""
        return getattr(self.engine, "description", self.engine.name)

    def set_label(self, label: int) -> None:
        """Edit another object from now on (its click list starts empty).

        Parameters
        ----------
        label : int
            The label value the next clicks edit.

        Raises
        ------
        InputError
            When the mask's dtype cannot hold ``label``.
        """
        label = check_label(label, self.mask.dtype)
        if label != self.label:
            self.label = label
            self.clicks, self.changes = [], []

    def _check_position(self, position: Sequence[float]) -> tuple[int, int, int]:
        point = tuple(int(round(float(p))) for p in position)
        if len(point) != 3 or any(not 0 <= p < n for p, n in zip(point, self.mask.shape)):
            raise InputError(f"click at {tuple(position)} is outside the volume "
                             f"{tuple(self.mask.shape)}: click inside the image")
        return point  # type: ignore[return-value]

    def propose(self, position: Sequence[float], positive: bool = True) -> Change:
        """Run the engine for a new click and return the change, without applying it.

        Parameters
        ----------
        position : sequence of float
            The clicked voxel (z, y, x); rounded to the nearest voxel.
        positive : bool
            True adds the current label there, False removes it.

        Returns
        -------
        Change
            The voxels the click changes (only the clicked object where the
            engine disagrees with the mask; see ``_edit``), before and after.

        Raises
        ------
        InputError
            When the click is outside the volume.
        """
        click = Click(self._check_position(position), bool(positive))
        started = time.perf_counter()
        clicks = [*self.clicks, click]
        box, answer = self.engine.propose(self.mask, self.label, clicks)
        current = self.mask[box]
        local = [p - s.start for p, s in zip(click.position, box)]
        along = click.positive and _follows_object(self.engine, self.label)
        after_box = local_edit(current, answer, self.label, local, click.positive, self.protect,
                               along_object=along, held=self._held(box) if along else None,
                               open_face=open_faces(box, self.mask.shape) if along else None,
                               engine_voxel=getattr(self.engine, "engine_voxel", None))
        changed = np.nonzero(after_box != current)
        origin = [s.start for s in box]
        indices = tuple(i + o for i, o in zip(changed, origin))
        return Change(click, self.label, indices, current[changed].copy(),
                      after_box[changed].astype(self.mask.dtype), time.perf_counter() - started,
                      box)

    def _held(self, box: tuple[slice, ...]) -> np.ndarray | None:
        """The voxels of ``box`` that this session's earlier clicks set."""
        if not self.edits:
            return None
        held = np.zeros([s.stop - s.start for s in box], bool)
        origin = np.array([s.start for s in box])[:, None]
        for indices in self.edits:
            local = np.asarray(indices) - origin
            inside = np.all((local >= 0) & (local < np.array(held.shape)[:, None]), axis=0)
            held[tuple(local[:, inside])] = True
        return held

    def commit(self, change: Change, writer: Writer | None = None) -> np.ndarray:
        """Apply a proposed change and record it.

        Parameters
        ----------
        change : Change
            What `propose` returned.
        writer : callable, optional
            ``writer(indices, values)`` that writes the voxels, e.g. a Labels
            layer's ``data_setitem`` when the layer shares the mask (so napari's
            undo sees the edit); default: write into the mask directly.

        Returns
        -------
        ndarray
            The mask.
        """
        if writer is None:
            self.mask[change.indices] = change.after
        else:
            writer(change.indices, change.after)
        self.clicks.append(change.click)
        self.changes.append(change)
        self.edits.append(change.indices)
        self.history.append({**change.click.as_dict(), "label": change.label,
                             "voxels_changed": change.n_voxels,
                             "seconds": round(change.seconds, 4), "engine": self.engine.name})
        return self.mask

    def click(self, position: Sequence[float], positive: bool = True) -> np.ndarray:
        """Refine with one click: `propose`, then `commit`.

        Parameters
        ----------
        position : sequence of float
            The clicked voxel (z, y, x).
        positive : bool
            True adds the current label, False removes it.

        Returns
        -------
        ndarray
            The mask after the click.
        """
        return self.commit(self.propose(position, positive))

    def forget_last(self) -> Change | None:
        """Drop the last click from the lists (its voxels restored by the caller)."""
        if not self.changes:
            return None
        change = self.changes.pop()
        self.clicks.pop()
        if self.edits and self.edits[-1] is change.indices:
            self.edits.pop()
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
