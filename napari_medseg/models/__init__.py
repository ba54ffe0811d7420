"""Models: network definitions, the model-folder spec, safe loading, device choice.

torch is imported only when a model is built or loaded.
"""
from napari_medseg.models.device import available_devices, choose_device
from napari_medseg.models.loading import LoadedModel, load_model, save_model, sha256_of
from napari_medseg.models.registry import builtin_models, resolve_model
from napari_medseg.models.spec import ModelSpec, parse_spec, read_spec

__all__ = [
    "LoadedModel",
    "ModelSpec",
    "available_devices",
    "builtin_models",
    "choose_device",
    "load_model",
    "parse_spec",
    "read_spec",
    "resolve_model",
    "save_model",
    "sha256_of",
]
