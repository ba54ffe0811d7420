"""Device choice: CUDA, then Apple MPS, then CPU."""
from __future__ import annotations

from napari_medseg.errors import InputError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def available_devices() -> list[str]:
    """Devices torch can use here, best first (always ends with ``'cpu'``)."""
    import torch

    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return [*devices, "cpu"]


def choose_device(request: str = "auto"):
    """Resolve ``'auto'``/``'cuda'``/``'mps'``/``'cpu'`` to a ``torch.device``.

    Raises
    ------
    InputError
        When the requested device is not available here, naming those that are.
    """
    import torch

    request = request.lower()
    if request not in DEVICE_CHOICES:
        raise InputError(f"unknown device {request!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    available = available_devices()
    if request == "auto":
        return torch.device(available[0])
    if request not in available:
        raise InputError(f"device {request!r} is not available on this machine; available: "
                         f"{', '.join(available)} (or 'auto')")
    return torch.device(request)
