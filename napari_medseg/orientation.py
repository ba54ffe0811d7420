"""Anatomical placement of layers in napari and the orientation letters (no Qt).

Every napari-medseg layer is placed in one world frame from its file's full
affine: napari world axes are (inferior, posterior, left) in millimetres. With
napari's screen conventions (rows grow downwards, columns to the right) this
frame shows, with no camera change:

* axial slices with anterior up and the patient's right on the screen's left,
* coronal and sagittal slices with superior up,

that is, the radiological convention. The neurological convention mirrors the
horizontal screen axis (napari's ``camera.orientation2d``), so world
coordinates, clicks and exports stay the same in both. Files stored RAS, LPS
(any axis order and flips) land on the same world positions for the same
anatomy.

An oblique file (voxel axes rotated from the scanner axes) is shown on its
nearest anatomical axes, rotated about its centre, as ITK-SNAP does: napari's
2D slicing drops rotation out of the slice plane, so a truly rotated layer
would show one voxel plane while a click edits another. The layer metadata
keeps the exact affine, so exports stay voxel-exact.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# the letter each world axis grows towards, and the letter it comes from
WORLD_AXES = ("I", "P", "L")
_OPPOSITE = {"I": "S", "P": "A", "L": "R", "S": "I", "A": "P", "R": "L"}
RADIOLOGICAL, NEUROLOGICAL = "radiological", "neurological"
CONVENTIONS = (RADIOLOGICAL, NEUROLOGICAL)
# RAS+ millimetres (NIfTI world) -> napari world (I, P, L)
_RAS_TO_WORLD = np.array([[0, 0, -1, 0], [0, -1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], float)
# napari data index (z, y, x) -> NIfTI voxel index (i, j, k) = (x, y, z)
_ZYX_TO_IJK = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)


def obliquity_degrees(affine: np.ndarray) -> float:
    """The largest angle between a voxel axis and its nearest scanner axis.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel-to-RAS affine.
    """
    import nibabel as nib

    return float(np.degrees(np.max(nib.affines.obliquity(np.asarray(affine, float)))))


def nearest_orthogonal(affine: np.ndarray, shape_zyx: Sequence[int]) -> np.ndarray:
    """The axis-aligned affine closest to ``affine``, with the same voxel centre.

    Each voxel axis keeps its length and points along its nearest RAS axis
    (nibabel's ``io_orientation``); the grid's centre stays where ``affine``
    puts it. An axis-aligned affine comes back unchanged.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel-to-RAS affine, possibly oblique.
    shape_zyx : sequence of int
        The grid's shape (z, y, x).
    """
    import nibabel as nib

    matrix = np.asarray(affine, float)
    lengths = np.linalg.norm(matrix[:3, :3], axis=0)
    linear = np.zeros((3, 3))
    for voxel_axis, (ras_axis, sign) in enumerate(nib.orientations.io_orientation(matrix)):
        linear[int(ras_axis), voxel_axis] = sign * lengths[voxel_axis]
    centre_ijk = (np.asarray(shape_zyx, float)[::-1] - 1) / 2
    centre_ras = matrix[:3, :3] @ centre_ijk + matrix[:3, 3]
    aligned = np.eye(4)
    aligned[:3, :3], aligned[:3, 3] = linear, centre_ras - linear @ centre_ijk
    return aligned


def display_affine(affine: np.ndarray, shape_zyx: Sequence[int]) -> np.ndarray:
    """The napari layer affine for a file's voxel-to-RAS ``affine``.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        NIfTI convention: voxel ``(i, j, k)`` to RAS+ mm (a `Volume`'s affine).
    shape_zyx : sequence of int
        The grid's shape ``(z, y, x)`` (an oblique grid turns about its centre).

    Returns
    -------
    ndarray of shape (4, 4)
        Maps a napari data index ``(z, y, x)`` to world ``(I, P, L)`` mm,
        axis order, flips, spacing and origin included.
    """
    aligned = nearest_orthogonal(affine, shape_zyx)
    return _RAS_TO_WORLD @ aligned @ _ZYX_TO_IJK


def placement(affine: np.ndarray, shape_zyx: Sequence[int]) -> dict:
    """Layer keyword arguments that place data of this shape with this file affine.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel-to-RAS affine.
    shape_zyx : sequence of int
        The data's shape; its last three entries are (z, y, x).
    """
    return {"affine": display_affine(affine, tuple(shape_zyx)[-3:])}


def horizontal_direction(convention: str) -> str:
    """napari's ``camera.orientation2d`` horizontal entry for a display convention.

    Parameters
    ----------
    convention : str
        ``"radiological"`` (patient right on screen left) or ``"neurological"``.

    Raises
    ------
    ValueError
        For any other convention.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown display convention {convention!r}: use one of {CONVENTIONS}")
    return "right" if convention == RADIOLOGICAL else "left"


def view_letters(displayed: Sequence[int], orientation2d: Sequence[str],
                 world_ndim: int = 3) -> dict[str, str]:
    """The anatomical letter at each canvas edge for a 2D view.

    Parameters
    ----------
    displayed : sequence of int
        napari's ``dims.displayed``: the (row, column) world axes on screen.
    orientation2d : sequence of str
        napari's ``camera.orientation2d``: ``('down' | 'up', 'right' | 'left')``,
        the screen direction in which the row and column axes grow.
    world_ndim : int
        Number of world dimensions (the anatomical axes are the last three).

    Returns
    -------
    dict
        ``{'top', 'bottom', 'left', 'right'}`` to letters such as ``'A'``; an
        edge whose axis is not anatomical gets ``''``.
    """
    row_axis, column_axis = (int(a) - (world_ndim - 3) for a in list(displayed)[-2:])
    vertical, horizontal = orientation2d
    row_grows = WORLD_AXES[row_axis] if 0 <= row_axis < 3 else ""
    column_grows = WORLD_AXES[column_axis] if 0 <= column_axis < 3 else ""
    bottom, top = (row_grows, _OPPOSITE.get(row_grows, "")) if vertical == "down" else (
        _OPPOSITE.get(row_grows, ""), row_grows)
    right, left = (column_grows, _OPPOSITE.get(column_grows, "")) if horizontal == "right" \
        else (_OPPOSITE.get(column_grows, ""), column_grows)
    return {"top": top, "bottom": bottom, "left": left, "right": right}
