"""JSON text that every reader accepts: standard JSON has no NaN or infinity."""
from __future__ import annotations

import json
import math


def json_text(payload: object, indent: int | None = 2) -> str:
    """``payload`` as standard JSON text, ending in a newline.

    NaN and infinite floats (an AUROC without wrong voxels, the rank variance
    of one fold) become ``null``: Python's `json` would write them as ``NaN``
    and ``Infinity``, which JavaScript, jq and most other readers refuse.

    Parameters
    ----------
    payload : object
        Dicts, lists, tuples, strings, numbers, booleans and None.
    indent : int, optional
        Indentation, as in `json.dumps`.
    """
    return json.dumps(_finite(payload), indent=indent, allow_nan=False) + "\n"


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
