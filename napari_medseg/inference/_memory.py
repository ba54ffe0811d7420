"""Memory estimates, so a case too large for this machine is refused up front."""
from __future__ import annotations

import os

import numpy as np

_FLOAT = 4


def available_memory_bytes() -> int:
    """Memory available to this process now (Linux ``MemAvailable``; else total)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def inference_memory_bytes(case_shape, model_shape, n_channels: int, n_classes: int,
                           keep_probabilities: bool) -> int:
    """Peak host memory of one prediction at full (float32) precision.

    Input on both grids, the accumulators (output and weights) and the fold
    mean on the model grid, the probabilities (or just the labels) on the case grid.
    """
    case_voxels = int(np.prod(case_shape))
    model_voxels = int(np.prod(model_shape))
    model_grid = model_voxels * _FLOAT * (n_channels + 2 * n_classes + 1)
    case_grid = case_voxels * _FLOAT * n_channels
    case_grid += case_voxels * (_FLOAT * n_classes if keep_probabilities else _FLOAT + 1)
    return model_grid + case_grid
