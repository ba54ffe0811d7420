"""The packaged MNI ICBM152 anatomy (tissue probability maps at 1.5 mm)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ANATOMY_DIR = Path(__file__).parent / "anatomy"
TISSUES = ("csf", "gm", "wm", "t1")


@dataclass(frozen=True, eq=False)
class Anatomy:
    """Tissue maps ``[Z, Y, X]`` in 0..1 (``csf``, ``gm``, ``wm``, template ``t1``)."""

    maps: dict[str, np.ndarray]
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (z, y, x) in mm."""
        from napari_medseg.io import spacing_from_affine

        return spacing_from_affine(self.affine)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape (Z, Y, X)."""
        return self.maps["wm"].shape  # type: ignore[return-value]


@lru_cache(maxsize=1)
def load_anatomy() -> Anatomy:
    """Read the packaged tissue maps once (cached)."""
    from napari_medseg.io import read_volume

    paths = [ANATOMY_DIR / f"icbm152_2009a_{name}_1.5mm.nii.gz" for name in TISSUES]
    volume = read_volume(paths, channel_names=TISSUES)
    maps = {name: np.clip(volume.data[i] / 255.0, 0, 1).astype(np.float32)
            for i, name in enumerate(TISSUES)}
    return Anatomy(maps=maps, affine=volume.affine)
