"""Uncertainty: MC dropout, flip TTA and fold-ensemble samples, decomposition,
calibration against a reference, and suggestions of where to click next."""
from napari_medseg.uncertainty._calibration import auroc, expected_calibration_error
from napari_medseg.uncertainty._estimate import (
    UncertaintyResult, calibration_figures, estimate_uncertainty)
from napari_medseg.uncertainty._measures import decompose, entropy
from napari_medseg.uncertainty._sampling import (
    METHODS, default_method, draw_samples, flip_sets, has_dropout, resolve_methods)
from napari_medseg.uncertainty._suggest import suggest_clicks

__all__ = [
    "METHODS", "UncertaintyResult", "auroc", "calibration_figures", "decompose",
    "draw_samples", "entropy", "estimate_uncertainty", "expected_calibration_error",
    "default_method", "flip_sets", "has_dropout", "resolve_methods", "suggest_clicks",
]
