"""A click's smooth push on class log-probabilities (the model-aware engines' rule).

For a click on label L at voxel p, L's log-probability gets a bump just
high enough (plus ``margin``) for p to take the click's sign: a positive
click raises L, a negative one lowers it. The bump falls off with the
distance in mm (Gaussian, ``sigma_mm``) and, with ``tau``, with the
intensity difference to the clicked tissue (every channel, in units of the
channel's 5-95 % range; the median of the clicked voxel's nearest third of its
3x3x3 neighbours), so nearby voxels that look alike and that the
model was unsure about follow; confident or different-looking ones do not.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_medseg.interactive._clicks import Click
from napari_medseg.interactive._geometry import crop_box

SIGMA_MM = 8.0  # measured on bench/interactive.py: wider or stronger bumps
MARGIN = 0.5     # raised the gains little and the harm rate a lot (BENCHMARKS.md)
TAU = 0.15


def gaussian_bump(shape: Sequence[int], origin: Sequence[int], centre: Sequence[int],
                  spacing: Sequence[float], sigma_mm: float) -> np.ndarray:
    """Gaussian ``exp(-d^2 / 2 sigma^2)`` over a box, ``d`` in mm from ``centre``.

    Parameters
    ----------
    shape, origin : sequence of int
        The box's shape and its first voxel in the volume.
    centre : sequence of int
        The click, in volume voxels.
    spacing : sequence of float
        Voxel size (z, y, x) in mm.
    sigma_mm : float
        Width of the bump.
    """
    axes = [((np.arange(n) + o - c) * s) ** 2 for n, o, c, s in
            zip(shape, origin, centre, spacing)]
    distance2 = axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]
    return np.exp(-distance2 / (2.0 * sigma_mm ** 2)).astype(np.float32)


class ClickBump:
    """Push class log-probabilities towards what clicks ask (module docstring).

    Parameters
    ----------
    image : ndarray of shape (C, Z, Y, X)
        The case's channels on the grid the log-probabilities are on.
    spacing : sequence of float
        That grid's voxel size in mm.
    sigma_mm, margin : float
        Width of a click's influence (mm) and how far past the tie the
        clicked voxel is pushed (log-probability units).
    tau : float or None
        Intensity similarity width; None: space alone.
    """

    def __init__(self, image: np.ndarray, spacing: Sequence[float], sigma_mm: float = SIGMA_MM,
                 margin: float = MARGIN, tau: float | None = TAU):
        self.image = image
        self.spacing = tuple(float(s) for s in spacing)
        self.sigma_mm, self.margin, self.tau = float(sigma_mm), float(margin), tau
        self._standardised: np.ndarray | None = None

    def push(self, log_p: np.ndarray, row: int, click: Click, box: tuple[slice, ...]) -> bool:
        """Add the click's bump to ``log_p[row]`` in place (``log_p`` covers ``box``).

        Parameters
        ----------
        log_p : ndarray of shape (K, *box)
            Log-probabilities over the box, changed in place.
        row : int
            The clicked label's row.
        click : Click
            The click, in volume coordinates.
        box : tuple of slice
            Where ``log_p`` lies in the volume.

        Returns
        -------
        bool
            False when the clicked voxel already has the click's sign, or lies
            outside the box: nothing was added.
        """
        origin = [s.start for s in box]
        local = tuple(int(p - o) for p, o in zip(click.position, origin))
        if any(not 0 <= v < n for v, n in zip(local, log_p.shape[1:])):
            return False
        own = float(log_p[(row, *local)])
        others = np.delete(np.arange(log_p.shape[0]), row)
        best_other = float(log_p[(others, *local)].max()) if len(others) else -np.inf
        if click.positive and own <= best_other:
            height = best_other - own + self.margin
        elif not click.positive and own >= best_other:
            height = best_other - own - self.margin
        else:
            return False
        log_p[row] += height * self.kernel(box, click)
        return True

    def kernel(self, box: tuple[slice, ...], click: Click) -> np.ndarray:
        """A click's influence over the box: near in space and, with ``tau``, alike in
        intensity (every channel) to the clicked tissue (``reference``).

        Parameters
        ----------
        box : tuple of slice
            The box in the volume.
        click : Click
            The click.
        """
        origin = [s.start for s in box]
        shape = [s.stop - s.start for s in box]
        kernel = gaussian_bump(shape, origin, click.position, self.spacing, self.sigma_mm)
        if self.tau is None:
            return kernel
        image = self.standardised()
        window = image[(slice(None), *box)]
        reference = self.reference(click.position)
        distance2 = ((window - reference.reshape(-1, 1, 1, 1)) ** 2).mean(0)
        # 1 at the clicked voxel and at voxels that look at least as typical as it
        own = distance2[tuple(int(p - o) for p, o in zip(click.position, origin))]
        return kernel * np.exp(-np.maximum(distance2 - own, 0.0) / (2 * self.tau ** 2))

    def reference(self, position: Sequence[int]) -> np.ndarray:
        """What the clicked tissue looks like: per channel, the median of the clicked
        voxel's 3x3x3 neighbours nearest to it in intensity (a third of them).

        The whole neighbourhood's median is robust to noise but, on a structure one or
        two voxels thick (a rim), describes the tissue around it instead; the nearest
        third keeps the robustness and describes the clicked tissue.

        Parameters
        ----------
        position : sequence of int
            The clicked voxel.
        """
        image = self.standardised()
        around = crop_box(position, (3, 3, 3), image.shape[1:])
        neighbours = image[(slice(None), *around)].reshape(len(image), -1)
        clicked = image[(slice(None), *(int(p) for p in position))]
        nearest = np.argsort(((neighbours - clicked[:, None]) ** 2).mean(0), kind="stable")
        return np.median(neighbours[:, nearest[:max(1, neighbours.shape[1] // 3)]], axis=1)

    def standardised(self) -> np.ndarray:
        """The channels, each scaled by its robust spread inside the head (computed once)."""
        if self._standardised is None:
            data = np.asarray(self.image, np.float32)
            image = np.empty_like(data)
            for index, channel in enumerate(data):
                values = channel[channel != 0] if (channel != 0).any() else channel.ravel()
                low, high = np.percentile(values, [5, 95])
                image[index] = channel / max(float(high - low), 1e-6)
            self._standardised = image
        return self._standardised
