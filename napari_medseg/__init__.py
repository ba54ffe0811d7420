"""napari-medseg: human-in-the-loop 3D medical image segmentation for napari.

The compute core (``io``, ``sample`` and the modules that follow) imports no Qt;
widgets live in ``napari_medseg._qt``. torch is imported lazily.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
