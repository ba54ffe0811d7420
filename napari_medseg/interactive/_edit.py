"""The rule every click obeys: change only what the click is about.

An engine answers a click with a label map for a box around it (what it
thinks every voxel of the box should be). The session does not take that
answer wholesale: as MONAI's VISTA3D merges only the connected component
under a click, a click edits only the region that is

- connected (26-neighbourhood) to the clicked voxel, and
- where the answer disagrees with the current mask in the click's own
  direction: a positive click for label L only adds L (voxels the answer
  calls L that are not L yet), a negative click only removes L (voxels of L
  the answer gives to another label).

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


def local_edit(current: np.ndarray, answer: np.ndarray, label: int, point: Sequence[int],
               positive: bool, protect: bool = False) -> np.ndarray:
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
    if component is not None:
        after[component] = label if positive else answer[component]
    return after


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
