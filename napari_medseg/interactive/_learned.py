"""The learned click engine: DeepEdit's click network on a patch around the click.

The network (built-in ``click_unet``, made by ``scripts/train_click_model.py``)
is the segmentation model fine-tuned with more inputs: the current mask
one-hot per label and each label's positive and negative click guidance
(see `network_input`). It answers every label of the patch; the session keeps
only the clicked object's change (see ``_edit``). Where the network's
answer does not give the clicked voxel the click's sign, the click pushes the
network's log-probabilities as the model-aware engine pushes the segmentation
model's (`ClickBump`), so every click changes something and a repeated click
is never wasted. The patch is centred
on the newest click at the network's spacing; when the click's change reaches
a patch face that is not the volume's edge the patch grows (x1.5, up to
``max_patch``) and the network runs again, as nnInteractive does. Given the
segmentation model's probabilities from the run (``prior``), a positive click
takes no background voxel the model is sure is background (tumour probability
under ``PRIOR_FLOOR``): on a protocol-shifted case one oedema click had
grown 4,084 voxels into such background (BENCHMARKS.md).

On a case whose grid is not the network's (1 mm, 4 mm slices) the engine
gives its voxel in case voxels (``engine_voxel``): a positive click within one
network voxel of its label then takes no other label further along the
clicked object (``_edit``).

Labels the network does not know are refined by the model-free engine.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_medseg.errors import InputError
from napari_medseg.interactive._bump import ClickBump
from napari_medseg.interactive._clicks import Click, network_input
from napari_medseg.interactive._edit import change_reaches_open_face
from napari_medseg.interactive._geometry import NetworkGrid, crop_box
from napari_medseg.io import Volume
from napari_medseg.progress import Progress, ProgressGenerator


PRIOR_FLOOR = 0.1  # tumour probability under which the model rules a background voxel out
CLICK_SHARE = 0.5  # a click on a ruled-out voxel lowers the floor to this share of its own


def _round_up(values: Sequence[int], divisor: int) -> tuple[int, ...]:
    return tuple(int(-(-v // divisor) * divisor) for v in values)


class LearnedEngine:
    """Refine with the built-in (or a given) click network.

    Parameters
    ----------
    volume : Volume
        The case; it must hold the contrasts the network needs.
    model : str, Path or LoadedModel, optional
        Click model (default the built-in ``click_unet``).
    device : str, optional
        Torch device: ``auto`` (default: CUDA, then MPS, then the CPU), ``cuda``,
        ``mps`` or ``cpu``.
    max_patch : int, optional
        Largest patch side the growth may reach (default twice the network's patch).
    prior : ndarray of shape (C, Z, Y, X), optional
        The segmentation model's class probabilities on the case grid (background
        first), from its run: positive clicks do not take background it rules out.
    precision : str
        The network's arithmetic (`models.device.autocast_dtype`): ``auto`` (bf16 on a
        CPU with native bf16, about 2.2x faster per click there) or ``float32``.
    """

    name = "learned"

    def __init__(self, volume: Volume, model=None, device: str | None = None,
                 max_patch: int | None = None, prior: np.ndarray | None = None,
                 precision: str = "auto"):
        from napari_medseg.inference import prepare_input
        from napari_medseg.models import choose_device, load_model
        from napari_medseg.models.device import autocast_dtype, place_network, precision_name
        from napari_medseg.models.loading import LoadedModel
        from napari_medseg.models.registry import DEFAULT_CLICK_MODEL

        self.model = model if isinstance(model, LoadedModel) else load_model(
            model or DEFAULT_CLICK_MODEL)
        spec = self.model.spec
        self.n_labels = int(spec.architecture["args"]["n_classes"]) - 1
        expected = len(spec.inputs) + 3 * self.n_labels
        if spec.architecture["args"].get("in_channels") != expected:
            raise InputError(f"model {spec.name!r} is not a click network (it takes "
                             f"{spec.architecture['args'].get('in_channels')} inputs, a click "
                             f"network {expected}): pick a click model for the learned engine")
        self.device = choose_device(device or "auto")
        self.autocast = autocast_dtype(precision, self.device)
        self.network = self.model.networks[0]
        place_network(self.network, self.device, self.autocast)
        self.volume = volume
        self.image = prepare_input(volume, spec).numpy()
        self.grid = NetworkGrid(volume.shape, self.image.shape[1:])
        #: the network's voxel in case voxels per axis on a grid it resamples (``_edit``)
        self.engine_voxel = None if self.grid.same else tuple(float(v) for v in 1 / self.grid.zoom)
        self.bump = ClickBump(self.image, np.asarray(volume.spacing, float) / self.grid.zoom)
        self.patch = np.asarray(spec.patch_size)
        self.max_patch = max_patch or 2 * int(self.patch.max())
        self.divisor = getattr(self.network, "divisor", 8)
        self._fallback = None
        self._network_labels: np.ndarray | None = None
        self.prior = prior if prior is not None and len(prior) > self.n_labels else None
        self.description = (f"learned ({spec.name} {spec.version}, {self.device.type}, "
                            f"{precision_name(self.autocast)})")

    def _answer(self, labels: np.ndarray, label: int, clicks: Sequence[Click],
                box: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The network's labels for network-grid ``box``, and the labels it was given there."""
        crop_shape = [s.stop - s.start for s in box]
        if self.grid.same:
            network_labels, moved = labels, list(clicks)
        else:  # only the box's labels are sampled onto the network grid (one buffer)
            if self._network_labels is None or self._network_labels.dtype != labels.dtype:
                self._network_labels = np.zeros(self.grid.network_shape, labels.dtype)
            network_labels = self._network_labels
            network_labels[box] = labels[self.grid.sampled(box)]
            moved = [Click(self.grid.to_network(c.position), c.positive, c.time) for c in clicks]
        x = network_input(self.image, network_labels, label, moved, box,
                          _round_up(crop_shape, self.divisor), self.n_labels)
        log_p = self._forward(x).log_softmax(0).cpu().numpy()
        log_p = log_p[(slice(None), *(slice(0, n) for n in crop_shape))]
        self.bump.push(log_p, label, moved[-1], box)  # only if the network ignored the click
        return log_p.argmax(0).astype(labels.dtype), network_labels[box].copy()

    def follows_object(self, label: int) -> bool:
        """The network sees the current mask, so its answer for ``label`` (one it knows)
        may be followed along the clicked object (see ``_edit``)."""
        return 1 <= label <= self.n_labels

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
        if not 1 <= label <= self.n_labels:
            return self._model_free().propose(labels, label, clicks)
        newest = clicks[-1]
        centre = self.grid.to_network(newest.position)
        size = self.patch.copy()
        while True:
            network_box = crop_box(centre, size, self.grid.network_shape)
            answer, given = self._answer(labels, label, clicks, network_box)
            box, back = self.grid.case_box(network_box)
            local = tuple(int(p - side.start) for p, side in zip(newest.position, box))
            answer = self._changes_only(labels[box], answer, given, back, local)
            answer = self._ruled_out_kept(labels[box], answer, label, newest.positive, local,
                                          box)
            if size.min() >= self.max_patch or not change_reaches_open_face(
                    labels[box], answer, label, newest, box, labels.shape):
                return box, answer
            size = np.minimum(_round_up(size * 3 // 2, self.divisor), self.max_patch)

    @staticmethod
    def _changes_only(current: np.ndarray, answer: np.ndarray, given: np.ndarray,
                      back: tuple[np.ndarray, ...], click: tuple[int, ...]) -> np.ndarray:
        """The network's answer on the case grid: the case's own labels wherever the
        network kept the label it was given, except at the clicked voxel.

        On a case whose voxels are not the network's (a 1 mm BraTS case, 4 mm
        slices), the mask the network sees is resampled, and the way back to the
        case grid does not return the case's boundaries: taking the answer as it is
        would differ from the mask along every object's surface, and one click's
        connected change would run along it (BENCHMARKS.md, "Cases on another
        grid"). Only what the network changed is an answer.
        """
        changed = (answer != given)[back]
        changed[click] = True  # the network's answer there, even if it was given so
        return np.where(changed, answer[back], current)

    def _ruled_out_kept(self, current: np.ndarray, answer: np.ndarray, label: int,
                        positive: bool, local: tuple[int, ...], box: tuple[slice, ...]
                        ) -> np.ndarray:
        """A positive click takes no background voxel that the segmentation model is
        sure is background (tumour probability under ``PRIOR_FLOOR``).

        A click on such a voxel overrules the model there and wherever the model is
        about as unsure: the floor falls to ``CLICK_SHARE`` of the clicked voxel's
        tumour probability, not to zero (on 4 mm slices, one oedema click there had
        taken 14,900 voxels of background, most of them ten times surer than the
        clicked one; BENCHMARKS.md, "Cases on another grid")."""
        if self.prior is None or not positive:
            return answer
        tumour = 1.0 - self.prior[(0, *box)].astype(np.float32)
        floor = min(PRIOR_FLOOR, CLICK_SHARE * float(tumour[local]))
        ruled_out = (answer == label) & (current == 0) & (tumour < floor)
        ruled_out[local] = False
        return np.where(ruled_out, current, answer)

    def warm_up(self) -> None:
        """One forward pass on an empty patch, so the first click does not pay for the
        backend's first-call set-up (oneDNN builds its kernels for a shape on first use)."""
        size = _round_up(np.minimum(self.patch, self.grid.network_shape), self.divisor)
        self._forward(np.zeros((self.image.shape[0] + 3 * self.n_labels, *size), np.float32))

    def _forward(self, x: np.ndarray):
        """The network's float32 logits ``[C, Z, Y, X]`` for one input ``[C, Z, Y, X]``, in
        the engine's arithmetic."""
        import torch

        from napari_medseg.models.device import autocast_context

        with torch.inference_mode(), autocast_context(self.device, self.autocast):
            return self.network(torch.from_numpy(x)[None].to(self.device))[0].float()

    def second_opinion(self, labels: np.ndarray, margin: int = 8
                       ) -> ProgressGenerator[np.ndarray]:
        """The network's class probabilities for ``labels`` with no click: where it
        would change the mask by itself.

        Trained to correct the segmentation model's masks, the network without
        guidance finds most of their errors (BENCHMARKS.md, "Suggested clicks"),
        which a model's own probabilities cannot flag where it is confidently
        wrong. Patches of the network's size tile the box around the mask's
        objects (plus ``margin`` network voxels), overlapping by a third and
        averaged; outside the box the answer is the mask itself.

        Parameters
        ----------
        labels : ndarray of int
            The current mask ``[Z, Y, X]``.
        margin : int
            Network voxels around the objects' box.

        Yields
        ------
        Progress
            After each patch; stop iterating to cancel.

        Returns
        -------
        ndarray of shape (n_labels + 1, Z, Y, X)
            float32 probabilities on the case grid (one-hot outside the box).
        """
        whole = tuple(slice(0, n) for n in self.grid.network_shape)
        on_grid = labels if self.grid.same else labels[self.grid.sampled(whole)]
        on_grid = np.where(on_grid <= self.n_labels, on_grid, 0)
        found = np.argwhere(on_grid > 0)
        classes = self.n_labels + 1
        votes = np.eye(classes, dtype=np.float32)[on_grid].transpose(3, 0, 1, 2).copy()
        if len(found):
            lo = np.maximum(found.min(0) - margin, 0)
            hi = np.minimum(found.max(0) + margin + 1, self.grid.network_shape)
            size = np.minimum(self.patch, self.grid.network_shape)
            starts = [sorted({*range(a, max(b - n, a) + 1, max(int(n) * 2 // 3, 1)),
                              max(min(b, m) - n, 0)})
                      for a, b, n, m in zip(lo, hi, size, self.grid.network_shape)]
            total = np.zeros_like(votes)
            corners = np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, 3)
            for index, corner in enumerate(corners):
                box = tuple(slice(int(c), int(c + n)) for c, n in zip(corner, size))
                x = network_input(self.image, on_grid, 1, [], box,
                                  _round_up(size, self.divisor), self.n_labels)
                p = self._forward(x).softmax(0).cpu().numpy()
                total[(slice(None), *box)] += p[(slice(None), *(slice(0, int(n)) for n in size))]
                yield Progress(index + 1, len(corners), f"second opinion: patch {index + 1}/"
                               f"{len(corners)}")
            covered = total.sum(0) > 0
            votes[:, covered] = total[:, covered] / total.sum(0)[covered]
        if self.grid.same:
            return votes
        case_box, back = self.grid.case_box(whole)
        return _kept_as_drawn(np.ascontiguousarray(votes[(slice(None), *back)]),
                              on_grid[back], np.where(labels <= self.n_labels, labels, 0))

    def _model_free(self):
        if self._fallback is None:
            from napari_medseg.interactive._classical import RandomWalkerEngine

            self._fallback = RandomWalkerEngine(self.volume)
        return self._fallback


def _kept_as_drawn(opinion: np.ndarray, given: np.ndarray, own: np.ndarray) -> np.ndarray:
    """The network's opinion on the case grid, agreeing with the mask wherever the network
    kept the label it was given.

    Where the case's own label is not the one its network voxel was given (the
    boundaries a resampling does not return), the probabilities of the two labels
    are swapped: a disagreement is where the network changed something, not where
    the grids differ (see `LearnedEngine._changes_only`).

    Parameters
    ----------
    opinion : ndarray of shape (K, Z, Y, X)
        The network's probabilities, each case voxel taking its network voxel's.
    given : ndarray of int
        The label the network was given at each case voxel's network voxel.
    own : ndarray of int
        The case's own labels (those the network knows; others as background).
    """
    where = np.nonzero((opinion.argmax(0) == given) & (own != given))
    if len(where[0]):
        drawn, seen = own[where], given[where]
        as_seen = opinion[(seen, *where)]
        opinion[(seen, *where)] = opinion[(drawn, *where)]
        opinion[(drawn, *where)] = as_seen
    return opinion


def suggestion_map(volume: Volume, labels: np.ndarray, probabilities: np.ndarray | None = None,
                   segmentation_model=None, device: str | None = None, precision: str = "auto"
                   ) -> ProgressGenerator[tuple[np.ndarray, str]]:
    """The error map that click suggestions rank, and where it comes from.

    The click network's second opinion on ``labels`` when it knows the
    segmentation model's labels and the case has its contrasts (it flags
    errors the model is confidently wrong about; BENCHMARKS.md, "Suggested
    clicks"); otherwise ``probabilities``.

    Parameters
    ----------
    volume : Volume
        The case.
    labels : ndarray of int
        The mask the suggestions are for.
    probabilities : ndarray of shape (K, Z, Y, X), optional
        The fallback: a model run's probabilities or the uncertainty samples' mean.
    segmentation_model : str, Path or LoadedModel, optional
        The model that made the mask (default the built-in one).
    device : str, optional
        Torch device of the click network (default ``auto``).
    precision : str
        Its arithmetic (see `LearnedEngine`).

    Yields
    ------
    Progress
        While the network runs; the generator returns ``(map, source)``,
        source ``"click network"`` or ``"uncertainty maps"``.

    Raises
    ------
    InputError
        When the network does not fit and there are no probabilities.
    """
    from napari_medseg.interactive._session import click_network_fits

    if click_network_fits(volume.channel_names, segmentation_model):
        opinion = yield from LearnedEngine(volume, device=device,
                                           precision=precision).second_opinion(labels)
        return opinion, "click network"
    if probabilities is None:
        raise InputError("the click network does not know this model's labels: estimate "
                         "uncertainty first, its maps show where the model is unsure")
    return probabilities, "uncertainty maps"
