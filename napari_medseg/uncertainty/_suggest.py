"""Where to click next: connected regions of high uncertainty."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.measure import label, regionprops


def suggest_clicks(uncertainty: np.ndarray, clicked: Sequence[Sequence[float]] = (),
                   threshold: float | None = None, max_suggestions: int = 10,
                   min_voxels: int = 3) -> list[dict]:
    """Regions of high uncertainty ranked by size times mean uncertainty.

    Parameters
    ----------
    uncertainty : ndarray of shape (Z, Y, X)
        A map in [0, 1] (e.g. total uncertainty).
    clicked : sequence of (z, y, x)
        Voxel positions already clicked: regions containing one are skipped.
    threshold : float, optional
        Level defining "high"; default: the larger of 0.3 and the 99th
        percentile of the non-zero map.
    max_suggestions : int
        How many to return.
    min_voxels : int
        Smaller regions are ignored (noise).

    Returns
    -------
    list of dict
        ``{"point": (z, y, x) voxel of the region's peak, "size": voxels,
        "mean": mean uncertainty, "score": size * mean}``, best first.
    """
    values = np.asarray(uncertainty, dtype=np.float32)
    if threshold is None:
        nonzero = values[values > 0]
        threshold = max(0.3, float(np.percentile(nonzero, 99))) if nonzero.size else 0.3
    regions = label(values > threshold, connectivity=3)
    taken = {int(regions[tuple(int(round(c)) for c in point)]) for point in clicked
             if all(0 <= round(c) < n for c, n in zip(point, values.shape))}
    suggestions = []
    for region in regionprops(regions, intensity_image=values):
        if region.label in taken or region.area < min_voxels:
            continue
        coords = region.coords
        peak = coords[int(np.argmax(values[tuple(coords.T)]))]
        mean = float(region.intensity_mean)
        suggestions.append({"point": tuple(int(v) for v in peak), "size": int(region.area),
                            "mean": mean, "score": float(region.area * mean)})
    return sorted(suggestions, key=lambda s: s["score"], reverse=True)[:max_suggestions]
