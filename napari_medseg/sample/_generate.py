"""BraTS-like synthetic cases on real anatomy, deterministic by seed."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.io import LabelMap, Volume, write_image, write_labels
from napari_medseg.labels import label_names
from napari_medseg.sample._anatomy import Anatomy, load_anatomy
from napari_medseg.sample._contrasts import (
    CONTRASTS, AcquisitionSettings, class_fractions, synthesise)
from napari_medseg.sample._fields import smooth_field, warp
from napari_medseg.sample._tumour import mass_effect_mm, sample_tumour_params, tumour_labels

FILE_SUFFIX = {"T1": "t1", "T1ce": "t1ce", "T2": "t2", "FLAIR": "flair"}


@dataclass(frozen=True)
class PhantomSettings:
    """Ranges of the anatomical variation between cases.

    Attributes
    ----------
    rotation_deg : float
        Largest rotation about each axis.
    scale : float
        Largest relative change of head size per axis.
    elastic_mm : float
        Amplitude of the smooth random deformation.
    elastic_sigma_mm : float
        Its correlation length.
    acquisition : AcquisitionSettings
        Intensity, bias and noise ranges.
    """

    rotation_deg: float = 8.0
    scale: float = 0.06
    elastic_mm: float = 3.0
    elastic_sigma_mm: float = 20.0
    acquisition: AcquisitionSettings = field(default_factory=AcquisitionSettings)


@dataclass(frozen=True, eq=False)
class SyntheticCase:
    """A generated case: four contrasts, reference labels and what was drawn."""

    volume: Volume
    labels: LabelMap
    seed: int
    info: dict
    tissue: dict[str, np.ndarray] | None = None


def case_grid(anatomy: Anatomy, spacing: tuple[float, float, float]):
    """Shape and affine of the case grid at ``spacing`` over the anatomy's field of view.

    Parameters
    ----------
    anatomy : Anatomy
        The template anatomy.
    spacing : tuple of float
        Voxel size in mm (z, y, x).
    """
    source = np.asarray(anatomy.spacing)
    target = np.asarray(spacing, dtype=float)
    shape = tuple(int((n - 1) * s // t) + 1 for n, s, t in zip(anatomy.shape, source, target))
    affine = anatomy.affine @ np.diag([*(target / source)[::-1], 1.0])
    return shape, affine


@lru_cache(maxsize=1)
def _centre_candidates_mm() -> np.ndarray:
    """Anatomy positions (mm, z-y-x) deep in white matter where a tumour may sit."""
    anatomy = load_anatomy()
    maps = anatomy.maps
    brain = (maps["csf"] + maps["gm"] + maps["wm"]) > 0.5
    depth = ndi.distance_transform_edt(brain, sampling=anatomy.spacing)
    candidates = np.argwhere((maps["wm"] > 0.6) & (depth > 22.0))
    return candidates * np.asarray(anatomy.spacing)


def _random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    angles = np.deg2rad(rng.uniform(-max_deg, max_deg, size=3))
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        rotation = np.eye(3)
        rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
        matrix = rotation @ matrix
    return matrix


def _source_coordinates(shape, spacing, anatomy, params, settings, rng) -> np.ndarray:
    """Anatomy voxel coordinates ``[3, Z, Y, X]`` sampled by each case voxel."""
    step = np.asarray(spacing, dtype=float).reshape(3, 1, 1, 1)
    points = np.indices(shape, dtype=np.float32) * step
    centre = (np.asarray(shape) - 1).reshape(3, 1, 1, 1) * step / 2
    linear = _random_rotation(rng, settings.rotation_deg) @ np.diag(
        1.0 + rng.uniform(-settings.scale, settings.scale, size=3))
    moved = np.tensordot(linear, points - centre, axes=1) + centre
    sigma = settings.elastic_sigma_mm / float(np.mean(spacing))
    elastic = np.stack([smooth_field(shape, sigma, rng) for _ in range(3)]) * settings.elastic_mm
    moved = moved + elastic - mass_effect_mm(points, params)
    return moved / np.asarray(anatomy.spacing).reshape(3, 1, 1, 1)


def generate_case(seed: int, spacing: float | tuple[float, float, float] = 1.5,
                  settings: PhantomSettings | None = None,
                  with_tissue: bool = False) -> SyntheticCase:
    """Generate one BraTS-like case; the same seed gives the same case.

    Parameters
    ----------
    seed : int
        Seed of everything random in the case.
    spacing : float or tuple of float
        Output voxel size in mm (isotropic, or ``(z, y, x)``).
    settings : PhantomSettings, optional
        Ranges of anatomical and acquisition variation.
    with_tissue : bool
        Keep the warped tissue fractions (``csf``, ``gm``, ``wm``, float16) in
        ``case.tissue``: targets of anatomical structures for click training.

    Returns
    -------
    SyntheticCase
        Volume with channels T1, T1ce, T2, FLAIR and labels 1 NCR, 2 ED, 3 ET.

    Examples
    --------
    >>> case = generate_case(7, spacing=2.0)
    >>> case.volume.channel_names
    ('T1', 'T1ce', 'T2', 'FLAIR')
    """
    settings = settings or PhantomSettings()
    spacing_zyx = (float(spacing),) * 3 if np.isscalar(spacing) else tuple(map(float, spacing))
    rng = np.random.default_rng(seed)
    anatomy = load_anatomy()
    shape, affine = case_grid(anatomy, spacing_zyx)
    candidates = _centre_candidates_mm()
    centre_mm = candidates[rng.integers(len(candidates))] + rng.uniform(-2, 2, size=3)
    params = sample_tumour_params(rng, centre_mm)
    coordinates = _source_coordinates(shape, spacing_zyx, anatomy, params, settings, rng)
    warped = {name: warp(volume, coordinates) for name, volume in anatomy.maps.items()}
    labels = tumour_labels(shape, spacing_zyx, params, warped, rng)
    fractions = class_fractions(warped, labels)
    predicted_t1 = 0.30 * warped["csf"] + 0.62 * warped["gm"] + 0.85 * warped["wm"]
    brain = (warped["csf"] + warped["gm"] + warped["wm"]) > 0.1
    images, drawn = synthesise(fractions, warped["t1"] - predicted_t1, brain, spacing_zyx,
                               settings.acquisition, rng)
    volume = Volume(data=images, affine=affine, channel_names=CONTRASTS)
    info = {"seed": int(seed), "spacing_zyx": list(spacing_zyx), "tumour": params.as_dict(),
            "acquisition": drawn,
            "label_voxels": {name: int((labels == value).sum())
                             for value, name in label_names().items()}}
    return SyntheticCase(volume=volume, labels=LabelMap(labels, affine, label_names()),
                         seed=int(seed), info=info,
                         tissue={k: warped[k].astype(np.float16) for k in ("csf", "gm", "wm")}
                         if with_tissue else None)


def write_case(case: SyntheticCase, folder: str | Path, case_id: str,
               overwrite: bool = False) -> dict[str, Path]:
    """Write a case as NIfTI: one file per contrast, ``{id}_seg.nii.gz`` and ``{id}.json``.

    Images are stored as int16 scanner-like units (rounded), as MRI usually is.

    Parameters
    ----------
    case : SyntheticCase
        The case.
    folder : str or Path
        Output folder (created).
    case_id : str
        File name prefix.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    dict of str to Path
        ``{"T1": ..., "T1ce": ..., "T2": ..., "FLAIR": ..., "seg": ..., "info": ...}``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for index, contrast in enumerate(case.volume.channel_names):
        path = folder / f"{case_id}_{FILE_SUFFIX.get(contrast, contrast.lower())}.nii.gz"
        stored = np.clip(np.round(case.volume.data[index]), -32768, 32767).astype(np.int16)
        written[contrast] = write_image(path, stored, case.volume, overwrite)
    written["seg"] = write_labels(folder / f"{case_id}_seg.nii.gz", case.labels.data,
                                  case.volume, overwrite=overwrite)
    info_path = folder / f"{case_id}.json"
    info_path.write_text(json.dumps({"case_id": case_id, **case.info}, indent=2) + "\n",
                         encoding="utf-8")
    written["info"] = info_path
    return written


def case_files(folder: str | Path, case_id: str) -> tuple[list[Path], Path]:
    """Contrast files (T1, T1ce, T2, FLAIR order) and the reference of a written case.

    Parameters
    ----------
    folder : str or Path
        Where `write_case` wrote it.
    case_id : str
        The case.
    """
    folder = Path(folder)
    images = [folder / f"{case_id}_{FILE_SUFFIX[c]}.nii.gz" for c in CONTRASTS]
    return images, folder / f"{case_id}_seg.nii.gz"
