"""The rule every click obeys: change only what the click is about.

An engine answers a click with a label map for a box around it (what it
thinks every voxel of the box should be). The session does not take that
answer wholesale: as MONAI's VISTA3D merges only the connected component
under a click, a click edits only the click's own object, in the click's own
direction:

- a positive click for label L adds L only inside the answer's L object
  that holds the click (its 26-connected component): the voxels of it that
  are not L yet. Those connected to the click through other such voxels
  always. When the engine's answer sees the current mask (the click
  network: ``along_object``), the rest too (further along the object,
  reached through voxels that are L already, such as the stretches of a
  thin rim the mask missed; an engine that does not see the mask would
  bring back there what the user already fixed), but only
  where they are background or a label that makes at least
  ``CONFUSION_SHARE`` of the click's own change (the click says "these X are
  really L"; further along, it fixes the same confusion and takes no other
  label), and not where an earlier click set them (``held``) or where they
  run into an open face of the box (the answer is cut there). On a grid the
  engine resamples (a 1 mm case for a 1.5 mm network; ``engine_voxel``), a
  click within one engine voxel of its label's voxels marks a boundary finer
  than the engine sees: further along, it takes background only, since the
  engine's redrawing of the label's boundaries there is resampling, not the
  click's fix;
- a negative click only removes L: voxels of L the answer gives to another
  label, connected to the click through other such voxels.

Everything else in the mask stays bit for bit as it was. Voxels a negative
click removes take the label the engine gives them (the model's next most
probable class, or the label that surrounds them), never a hole punched in
another structure. With ``protect=True`` a positive click may only claim
background voxels, so no other label loses a voxel.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.interactive._clicks import Click
from napari_medseg.interactive._geometry import touches_open_face

_CONNECTIVITY = np.ones((3, 3, 3), bool)
CONFUSION_SHARE = 0.03  # a label this share of a click's own change is one the click fixes


def local_edit(current: np.ndarray, answer: np.ndarray, label: int, point: Sequence[int],
               positive: bool, protect: bool = False, along_object: bool = False,
               held: np.ndarray | None = None, open_face: np.ndarray | None = None,
               engine_voxel: Sequence[float] | None = None) -> np.ndarray:
    """The box's labels after one click, following the module's rule.

    Parameters
    ----------
    current : ndarray of int
        Labels in the box before the click.
    answer : ndarray of int
        The engine's labels for the box (same shape).
    label : int
        The label the click edits.
    point : sequence of int
        The click, in box coordinates (z, y, x).
    positive : bool
        Add (True) or remove (False) ``label``.
    protect : bool
        A positive click may take only background voxels.
    along_object : bool
        A positive click also takes the same fix further along the answer's object
        (for engines whose answer sees the current mask: the click network).
    held : ndarray of bool, optional
        Voxels earlier clicks set: a positive click changes them only in its own
        connected region, not further along the object.
    open_face : ndarray of bool, optional
        The box's voxels on faces inside the volume: further along the object, a
        stretch of change that reaches one is left out.
    engine_voxel : sequence of float, optional
        On a grid the engine resamples, the engine's voxel in the box's voxels per
        axis (1.5 for a 1.5 mm network on a 1 mm case): a positive click within it of
        ``label``'s voxels takes only background further along the object.

    Returns
    -------
    ndarray
        A new array; ``current`` is not modified.
    """
    point = tuple(int(p) for p in point)
    if positive:
        region = (answer == label) & (current != label)
        if protect:
            region &= current == 0
    else:
        region = (current == label) & (answer != label)
    component = connected_at(region, point)
    after = current.copy()
    if component is None:
        return after
    after[component] = label if positive else answer[component]
    if positive and along_object:
        finer = engine_voxel is not None and within_voxel(current == label, point,
                                                           engine_voxel)
        further = _along_the_object(current, region & ~component, component,
                                    answer == label, point, held, open_face,
                                    background_only=finer)
        after[further] = label
    return after


def _along_the_object(current: np.ndarray, further: np.ndarray, component: np.ndarray,
                      answer_object: np.ndarray, point: tuple[int, ...],
                      held: np.ndarray | None, open_face: np.ndarray | None,
                      background_only: bool = False) -> np.ndarray:
    """The voxels of ``further`` (changes not connected to the click through other changes)
    that a positive click also takes: inside the answer's object under the click,
    background or (unless ``background_only``) a label the click's own change
    (``component``) took, not set by an earlier click, not in a stretch that runs into
    an open face of the box."""
    taken = np.bincount(current[component].ravel())
    confused = [] if background_only else np.flatnonzero(taken >= CONFUSION_SHARE * taken.sum())
    reach = further & np.isin(current, [0, *confused]) & connected_at(answer_object, point)
    if held is not None:
        reach &= ~held
    if open_face is not None and (reach & open_face).any():
        pieces, _ = ndi.label(reach, structure=_CONNECTIVITY)
        cut = np.unique(pieces[open_face & reach])
        reach &= ~np.isin(pieces, cut)
    return reach


def connected_at(region: np.ndarray, point: Sequence[int]) -> np.ndarray | None:
    """The 26-connected component of ``region`` holding ``point`` (None if it is outside).

    Parameters
    ----------
    region : ndarray of bool
        The voxels that may be connected.
    point : sequence of int
        A voxel (z, y, x) of ``region``'s grid.
    """
    point = tuple(int(p) for p in point)
    if not region[point]:
        return None
    labelled, _ = ndi.label(region, structure=_CONNECTIVITY)
    return labelled == labelled[point]


def within_voxel(mask: np.ndarray, point: Sequence[int], voxel: Sequence[float]) -> bool:
    """Does ``mask`` hold a voxel within the ellipsoid of semi-axes ``voxel`` (voxels per
    axis) centred on ``point``?

    Parameters
    ----------
    mask : ndarray of bool
        The voxels looked for.
    point : sequence of int
        The centre (z, y, x).
    voxel : sequence of float
        Semi-axes in voxels of ``mask``'s grid (one engine voxel: 1.5 on a 1 mm case
        for a 1.5 mm network; 0.37 across 4 mm slices).
    """
    radii = np.maximum(np.asarray(voxel, float), 1e-6)
    reach = np.floor(radii).astype(int)
    lo = np.maximum(np.asarray(point) - reach, 0)
    hi = np.minimum(np.asarray(point) + reach + 1, mask.shape)
    offsets = np.ogrid[tuple(slice(int(a - p), int(b - p)) for a, b, p in zip(lo, hi, point))]
    inside = sum((o / r) ** 2 for o, r in zip(offsets, radii)) <= 1.0
    return bool((mask[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))] & inside).any())


def surroundings_fill(current: np.ndarray, label: int) -> np.ndarray:
    """For each voxel, the nearest label other than ``label`` (what surrounds it).

    Voxels of other labels keep their own value. Used when an engine has no
    class probabilities to say where removed voxels belong.

    Parameters
    ----------
    current : ndarray of int
        Labels of a box.
    label : int
        The label whose voxels take their surroundings' value.
    """
    inside = current == label
    if not inside.any():
        return current.copy()
    if inside.all():
        return np.zeros_like(current)
    indices = ndi.distance_transform_edt(inside, return_distances=False, return_indices=True)
    return current[tuple(indices)]


def change_reaches_open_face(current: np.ndarray, answer: np.ndarray, label: int, click: Click,
                             box: tuple[slice, ...], shape: Sequence[int]) -> bool:
    """Does the click's connected change touch a face of ``box`` inside the volume (so the
    engine should look at a larger box)?

    Parameters
    ----------
    current, answer : ndarray of int
        The box's labels now and the engine's answer for it.
    label : int
        The clicked label.
    click : Click
        The newest click (volume coordinates).
    box : tuple of slice
        The box in the volume.
    shape : sequence of int
        The volume's shape.
    """
    local = [p - s.start for p, s in zip(click.position, box)]
    region = ((answer == label) & (current != label)) if click.positive else \
        ((current == label) & (answer != label))
    component = connected_at(region, local)
    return component is not None and touches_open_face(component, box, shape)
