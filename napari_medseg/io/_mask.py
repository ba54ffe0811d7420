"""One rule for label masks, wherever one comes in (file, layer, array)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_medseg.errors import InputError, describe


def as_label_mask(data, source: object = "the mask", shape: Sequence[int] | None = None
                  ) -> np.ndarray:
    """A label mask checked and stored in the smallest type that holds it.

    The rule: a 3D array of integers (booleans, and floats that hold whole
    finite numbers, are accepted and converted), none negative, and, when
    ``shape`` is given, the image's shape voxel for voxel.

    Parameters
    ----------
    data : array_like
        The mask ``[Z, Y, X]``.
    source : object
        What the mask is (a path, or words such as ``"the reference"``), for messages.
    shape : sequence of int, optional
        The image's shape the mask must have.

    Returns
    -------
    ndarray
        ``uint8`` for labels below 256, ``uint16`` below 65536, else ``int32``;
        ``data`` itself when it already has that type.

    Raises
    ------
    InputError
        One line naming ``source``, the problem and the fix.
    """
    from napari_medseg.io._read import check_finite

    data = np.asarray(data)
    if data.ndim != 3:
        raise InputError(describe(source, f"a label mask must be 3D, got shape {data.shape}"))
    if shape is not None and data.shape != tuple(shape):
        raise InputError(describe(source, f"mask shape {data.shape} differs from the image "
                                  f"shape {tuple(shape)}",
                                  "Use the mask that belongs to this image"))
    if not (np.issubdtype(data.dtype, np.integer) or data.dtype == bool):
        check_finite(data, source)
        if not np.all(np.mod(data, 1) == 0):
            raise InputError(describe(source, f"holds fractional values ({data.dtype}), not "
                                      "integer labels", "Pass a label mask, not an image or "
                                      "probabilities (threshold them first)"))
    if data.size and data.min() < 0:
        raise InputError(describe(source, "holds negative labels", "Labels must be 0 or more"))
    top = int(data.max()) if data.size else 0
    return data.astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int32,
                       copy=False)
