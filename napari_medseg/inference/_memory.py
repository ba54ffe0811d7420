"""Memory estimates, so a case too large for this machine is refused up front."""
from __future__ import annotations

import numpy as np

_FLOAT = 4


def available_memory_bytes() -> int:
    """Memory available to this process now (psutil: Linux, macOS and Windows alike)."""
    import psutil

    return int(psutil.virtual_memory().available)


def inference_memory_bytes(case_shape, model_shape, n_channels: int, n_classes: int,
                           keep_probabilities: bool) -> int:
    """Peak host memory of one prediction at full (float32) precision.

    One input channel on the case grid (`prepare_input` reads the contrasts one
    at a time), the input, the accumulators (output and weights) and the fold
    mean on the model grid, the probabilities (or just the labels) on the case grid.

    Parameters
    ----------
    case_shape, model_shape : sequence of int
        The case grid and the model grid.
    n_channels, n_classes : int
        Input contrasts and output classes.
    keep_probabilities : bool
        Whether the probabilities are kept on the case grid (else only the labels).
    """
    case_voxels = int(np.prod(case_shape))
    model_voxels = int(np.prod(model_shape))
    model_grid = model_voxels * _FLOAT * (n_channels + 2 * n_classes + 1)
    case_grid = case_voxels * _FLOAT  # one contrast at a time
    case_grid += case_voxels * (_FLOAT * n_classes if keep_probabilities else _FLOAT + 1)
    return model_grid + case_grid
