"""Shared fixtures: small real files and generator cases."""
from __future__ import annotations

import numpy as np
import pytest


def rotation(degrees_z: float, degrees_x: float) -> np.ndarray:
    """A 3x3 rotation about z then x (an oblique acquisition)."""
    z, x = np.deg2rad(degrees_z), np.deg2rad(degrees_x)
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    return rx @ rz


def make_affine(kind: str) -> np.ndarray:
    """RAS, LPS-stored and oblique-with-flip voxel-to-world matrices."""
    spacing = np.array([0.9, 1.1, 2.5])
    affine = np.eye(4)
    if kind == "ras":
        affine[:3, :3] = np.diag(spacing)
        affine[:3, 3] = [-40.0, -60.0, -20.0]
    elif kind == "lps":
        affine[:3, :3] = np.diag([-1.0, -1.0, 1.0]) * spacing
        affine[:3, 3] = [40.0, 60.0, -20.0]
    elif kind == "oblique":
        affine[:3, :3] = rotation(20.0, 12.0) @ np.diag([-1.0, 1.0, 1.0]) @ np.diag(spacing)
        affine[:3, 3] = [31.5, -12.25, 7.0]
    else:
        raise ValueError(kind)
    return affine


@pytest.fixture(params=["ras", "lps", "oblique"])
def affine(request) -> np.ndarray:
    return make_affine(request.param)


@pytest.fixture(scope="session")
def small_case():
    """A generated case at 3 mm (fast), shared by the session."""
    from napari_medseg.sample import generate_case

    return generate_case(11, spacing=3.0)
