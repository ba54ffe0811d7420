"""The learned click engine: a click-conditioned 3D U-Net on a patch around the click.

Input channels: the model's contrasts (normalised as its spec says), the
previous mask of the object, and positive/negative click guidance. The
patch is centred on the newest click; when the predicted object reaches a
patch face that is not the volume's edge the patch grows (x1.5, up to
``max_patch``) and the network runs again, as nnInteractive does.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_medseg.interactive._clicks import Click
from napari_medseg.interactive._clicks import network_input
from napari_medseg.interactive._geometry import crop_box, touches_open_face
from napari_medseg.io import Volume


def _consistent_with_clicks(inside: np.ndarray, before: np.ndarray, clicks: Sequence[Click],
                            box: tuple[slice, ...]) -> np.ndarray:
    """Keep the pieces the user asked for: components holding a positive click or
    overlapping the object's current mask; each click's own voxel follows its sign."""
    from scipy import ndimage as ndi

    origin = np.array([s.start for s in box])
    local = [(tuple(np.asarray(c.position) - origin), c.positive) for c in clicks
             if all(0 <= p - o < n for p, o, n in zip(c.position, origin, inside.shape))]
    for point, positive in local:
        inside[point] = positive
    labelled, _ = ndi.label(inside)
    keep = set(np.unique(labelled[before & inside]).tolist())
    keep |= {int(labelled[point]) for point, positive in local if positive}
    keep.discard(0)
    return np.isin(labelled, sorted(keep)) if keep else np.zeros_like(inside)


def _round_up(values: Sequence[int], divisor: int) -> tuple[int, ...]:
    return tuple(int(-(-v // divisor) * divisor) for v in values)


class LearnedEngine:
    """Refine with the built-in (or a given) click model.

    Parameters
    ----------
    volume : Volume
        The case; it must hold the contrasts the model needs.
    model : str, Path or LoadedModel, optional
        Click model (default the built-in ``click_unet``).
    device : str, optional
        Torch device (default: the best available).
    max_patch : int, optional
        Largest patch side the growth may reach (default: the model's patch, so
        no growth: on the benchmark, growing let the shipped model leak; see
        BENCHMARKS.md).
    """

    name = "learned"

    def __init__(self, volume: Volume, model=None, device: str | None = None,
                 max_patch: int | None = None):
        import torch

        from napari_medseg.inference._predict import channels_for_model
        from napari_medseg.models import choose_device, load_model
        from napari_medseg.models.loading import LoadedModel
        from napari_medseg.models.normalise import normalise_image
        from napari_medseg.models.registry import DEFAULT_CLICK_MODEL

        self.model = model if isinstance(model, LoadedModel) else load_model(
            model or DEFAULT_CLICK_MODEL)
        spec = self.model.spec
        self.device = torch.device(device) if device else choose_device()
        self.network = self.model.networks[0].to(self.device)
        self.image = normalise_image(channels_for_model(volume, spec),
                                     [item.normalization for item in spec.inputs])
        self.patch = tuple(spec.patch_size)
        self.max_patch = max_patch or max(self.patch)
        self.divisor = getattr(self.network, "divisor", 8)
        self.description = f"learned ({spec.name} {spec.version}, {self.device.type})"

    def _run(self, mask: np.ndarray, clicks: Sequence[Click], box: tuple[slice, ...]
             ) -> np.ndarray:
        import torch

        crop_shape = [s.stop - s.start for s in box]
        padded = _round_up(crop_shape, self.divisor)
        x = torch.from_numpy(network_input(self.image, mask, clicks, box, padded))[None]
        with torch.inference_mode():
            logits = self.network(x.to(self.device))[0]
        inside = (logits[1] > logits[0]).cpu().numpy()
        inside = inside[tuple(slice(0, n) for n in crop_shape)]
        return _consistent_with_clicks(inside, mask[box], clicks, box)

    def propose(self, labels: np.ndarray, label: int, clicks: Sequence[Click]
                ) -> tuple[tuple[slice, ...], np.ndarray]:
        """The engine's labels for a box around the newest click (removed voxels take
        what surrounds them; see `ModelEngine.propose`)."""
        from napari_medseg.interactive._edit import answer_from_inside

        box, inside = self.refine(labels == label, clicks)
        return box, answer_from_inside(labels[box], inside, label)

    def refine(self, mask: np.ndarray, clicks: Sequence[Click]
               ) -> tuple[tuple[slice, ...], np.ndarray]:
        """The object's new mask inside a box around the newest click.

        Parameters
        ----------
        mask : ndarray of bool
            The object's current mask ``[Z, Y, X]``.
        clicks : sequence of Click
            The object's clicks, newest last.

        Returns
        -------
        box, ndarray of bool
            The patch (slices into the volume) and the object's mask inside it.
        """
        shape = mask.shape
        size = np.array(self.patch)
        while True:
            box = crop_box(clicks[-1].position, size, shape)
            inside = self._run(mask, clicks, box)
            if size.min() >= self.max_patch or not touches_open_face(inside, box, shape):
                return box, inside
            size = np.minimum(_round_up(size * 1.5, self.divisor), self.max_patch)
