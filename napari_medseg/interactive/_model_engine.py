"""The model-aware click engine: the segmentation model's probabilities, moved by clicks.

The segmentation model already knows most of the answer; where it erred it
was, on the measured cases, unsure (mean top probability 0.5-0.7 in its
error regions). Each click for label L adds a smooth bump to L's
log-probability around the click, just high enough (plus a margin) for the
clicked voxel to take the click's sign: a positive click raises L, a
negative click lowers it. The bump is bilateral: it falls off with the
distance in mm and with the intensity difference to the clicked voxel, so
voxels nearby that look alike and that the model was unsure about follow;
voxels it was confident about, or that look different, do not. A positive
click claims only voxels with the clicked voxel's current label, a negative
click removes only voxels whose runner-up class is the clicked voxel's.
The engine's answer is the argmax of the moved log-probabilities, so voxels
a negative click removes go to the model's next most probable class. The session then keeps only
the region connected to the click (see ``_edit``).

A first positive click on a label the model predicts under the click
needs no bump: the answer is the model's own connected object there
(adopted whole, the box grows until it holds it).

Probabilities come from the model run (``probabilities=``); when the run
did not keep them, the segmentation model predicts each click's box on
demand, normalised with the whole case's statistics.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from napari_medseg.interactive._bump import MARGIN, SIGMA_MM, TAU, ClickBump
from napari_medseg.interactive._clicks import Click
from napari_medseg.interactive._edit import change_reaches_open_face
from napari_medseg.interactive._geometry import crop_box
from napari_medseg.io import Volume

_EPS = 1e-4
_MAX_BOX = 256


class ModelEngine:
    """Refine a label with the segmentation model's class probabilities as the prior.

    Parameters
    ----------
    volume : Volume
        The case.
    probabilities : ndarray of shape (C, Z, Y, X), optional
        Class probabilities from the model run on this case's grid.
    model : str, Path or LoadedModel, optional
        Segmentation model that computes missing probabilities (default built-in).
    device : str, optional
        Torch device for that computation.
    classes : mapping of int to sequence of int, optional
        Which probability channels make up each label value (default: label
        value ``v`` is channel ``v``). Labels absent here have no prior and
        are refined by the model-free engine.
    sigma_mm, margin : float
        Width of a click's influence (mm) and how far past the tie the
        clicked voxel is pushed (log-probability units).
    tau : float or None
        Intensity similarity width: a click moves voxels that look like the
        clicked voxel (every channel, in units of the channel's 5-95 %
        range); None: space alone.
    """

    name = "model"

    def __init__(self, volume: Volume, probabilities: np.ndarray | None = None, model=None,
                 device: str | None = None, classes: Mapping[int, Sequence[int]] | None = None,
                 sigma_mm: float = SIGMA_MM, margin: float = MARGIN, tau: float | None = TAU):
        self.volume = volume
        self.spacing = tuple(float(s) for s in volume.spacing)
        self.bump = ClickBump(volume.data, self.spacing, sigma_mm, margin, tau)
        self._model, self._device = model, device
        self._known: np.ndarray | None = None
        if probabilities is not None:
            probabilities = np.asarray(probabilities)
            if tuple(probabilities.shape[1:]) != tuple(volume.shape):
                from napari_medseg.errors import InputError

                raise InputError(f"probabilities of shape {tuple(probabilities.shape)} do not "
                                 f"fit the image {tuple(volume.shape)}: use the model run of "
                                 "this case")
        self.probabilities = probabilities
        n_classes = None if probabilities is None else probabilities.shape[0]
        self.classes = dict(classes) if classes is not None else (
            {c: (c,) for c in range(n_classes)} if n_classes else None)
        self._fallback = None
        self.description = "model-aware (segmentation model's probabilities)"

    # -- probabilities ------------------------------------------------------
    def _loaded_model(self):
        from napari_medseg.models import load_model
        from napari_medseg.models.loading import LoadedModel

        if not isinstance(self._model, LoadedModel):
            self._model = load_model(self._model)
        return self._model

    def _ensure(self, box: tuple[slice, ...]) -> None:
        """Predict the parts of ``box`` with no probabilities yet (with a context margin)."""
        if self.probabilities is not None and self._known is None:
            return
        from napari_medseg.inference import predict
        from napari_medseg.models.nnunet import NnunetModel
        from napari_medseg.progress import run_to_end

        model = self._loaded_model()
        if self.probabilities is None:
            n = model.spec.n_classes
            self.probabilities = np.zeros((n, *self.volume.shape), np.float32)
            self._known = np.zeros(self.volume.shape, bool)
        if self._known[box].all():
            return
        context = [max(p, int(np.ceil(p * t / s)) // 2) for p, t, s in
                   zip(model.spec.patch_size, model.spec.spacing, self.spacing)]
        region = tuple(slice(max(0, s.start - m), min(n, s.stop + m))
                       for s, m, n in zip(box, context, self.volume.shape))
        if isinstance(model, NnunetModel):  # nnU-Net predicts the whole case for any box
            box = region = tuple(slice(0, n) for n in self.volume.shape)  # exactly: keep it
        prediction = run_to_end(predict(model, self.volume, device=self._device or "auto",
                                        region=region))
        self.probabilities[(slice(None), *box)] = prediction.probabilities[
            (slice(None), *(slice(s.start - r.start, s.stop - r.start)
                            for s, r in zip(box, region)))]
        self._known[box] = True

    def _log_probabilities(self, box: tuple[slice, ...]) -> tuple[np.ndarray, list[int]]:
        """Per-label log-probabilities in ``box`` (``[K, *box]``) and the label values."""
        self._ensure(box)
        values = sorted(self.classes)
        window = self.probabilities[(slice(None), *box)].astype(np.float32, copy=False)
        grouped = np.stack([window[list(self.classes[v])].sum(0) for v in values])
        return np.log(grouped + _EPS), values

    # -- refinement ---------------------------------------------------------
    def _raised(self, log_p: np.ndarray, row: int, clicks: Sequence[Click],
                box: tuple[slice, ...]) -> np.ndarray:
        """``log_p`` with each click's bump added to ``row``, click by click: each
        bump's height is what its clicked voxel needs to take the click's sign,
        given the bumps before it (clicks outside the box are left out)."""
        for click in clicks:
            self.bump.push(log_p, row, click, box)
        return log_p

    def _answer(self, current: np.ndarray, label: int, clicks: Sequence[Click],
                box: tuple[slice, ...]) -> np.ndarray:
        log_p, values = self._log_probabilities(box)
        row = values.index(label)
        origin = [s.start for s in box]
        runner_up = _runner_up(log_p, row)
        log_p = self._raised(log_p, row, clicks, box)
        answer = np.asarray(values, dtype=np.int64)[np.argmax(log_p, axis=0)]
        newest = clicks[-1]
        local = tuple(int(p - o) for p, o in zip(newest.position, origin))
        if newest.positive:  # claim only voxels of the clicked voxel's current label
            return np.where((current == current[local]) | (answer != label), answer, current)
        # remove only voxels whose runner-up is the clicked voxel's runner-up
        return np.where((runner_up == runner_up[local]) | (current != label), answer, current)

    def propose(self, labels: np.ndarray, label: int, clicks: Sequence[Click]
                ) -> tuple[tuple[slice, ...], np.ndarray]:
        """The engine's labels for a box around the newest click.

        Parameters
        ----------
        labels : ndarray of int
            The whole current mask ``[Z, Y, X]``.
        label : int
            The label the clicks edit.
        clicks : sequence of Click
            This label's clicks, newest last.

        Returns
        -------
        box, ndarray
            Slices into the volume and the labels the engine gives the box.
        """
        if self.classes is None:  # no run kept: the segmentation model's classes
            self.classes = {c: (c,) for c in range(self._loaded_model().spec.n_classes)}
        if label not in self.classes:
            return self._model_free().propose(labels, label, clicks)
        newest = clicks[-1]
        radius = [int(np.ceil(3 * self.bump.sigma_mm / s)) for s in self.spacing]
        size = np.minimum([2 * r + 1 for r in radius], _MAX_BOX)
        while True:
            box = crop_box(newest.position, size, labels.shape)
            answer = self._answer(labels[box], label, clicks, box)
            if size.min() >= _MAX_BOX or not change_reaches_open_face(
                    labels[box], answer, label, newest, box, labels.shape):
                return box, answer
            size = np.minimum(size * 3 // 2, _MAX_BOX)

    def _model_free(self):
        if self._fallback is None:
            from napari_medseg.interactive._classical import RandomWalkerEngine

            self._fallback = RandomWalkerEngine(self.volume)
        return self._fallback


def _runner_up(log_p: np.ndarray, row: int) -> np.ndarray:
    """Index of the most probable class other than ``row``, per voxel."""
    others = log_p.copy()
    others[row] = -np.inf
    return np.argmax(others, axis=0)
