"""The uncertainty methods and the one a model allows, without torch.

The dock offers the methods when a model is chosen, on the GUI thread; the
sampling code (torch) loads with the first run, off it.
"""
from __future__ import annotations

METHODS = ("mc", "tta", "ensemble")


def default_method(spec) -> str:
    """The method ``auto`` stands for: what sampling the model allows.

    Parameters
    ----------
    spec : ModelSpec
        The model's description (no network is loaded).

    Returns
    -------
    str
        ``mc`` when the network has dropout; otherwise the fold ensemble when
        there are two or more folds (nnU-Net models have no dropout), else flip TTA.
    """
    if bool(spec.architecture.get("args", {}).get("dropout", True)):
        return "mc"
    return "ensemble" if len(spec.folds) > 1 else "tta"
