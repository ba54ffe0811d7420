"""Uncertainty: MC dropout, flip TTA and fold-ensemble samples, decomposition,
calibration against a reference, and suggestions of where to click next.

Names load on first use (``lazy_loader``): the dock asks `default_method` when it
opens, on the GUI thread, without importing torch and SciPy's statistics.
"""
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "_calibration": ["auroc", "expected_calibration_error"],
    "_choices": ["METHODS", "default_method"],
    "_estimate": ["UncertaintyResult", "calibration_figures", "estimate_uncertainty"],
    "_measures": ["decompose", "entropy"],
    "_sampling": ["draw_samples", "flip_sets", "has_dropout", "resolve_methods"],
    "_suggest": ["suggest_clicks"],
})
