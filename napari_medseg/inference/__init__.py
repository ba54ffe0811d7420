"""Inference: sliding-window prediction, resampling, fold ensembles, device fallback."""
from napari_medseg.inference._predict import (
    Prediction, channels_for_model, model_grid_shape, predict, prepare_input, resample)
from napari_medseg.inference._sliding import (
    gaussian_importance, inputs_per_pass, sliding_window, window_starts)

__all__ = ["Prediction", "channels_for_model", "gaussian_importance", "inputs_per_pass",
           "model_grid_shape", "predict", "prepare_input", "resample", "sliding_window",
           "window_starts"]
