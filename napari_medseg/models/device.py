"""Device and precision choice: CUDA, then Apple MPS, then CPU; reduced precision
where the hardware computes it natively."""
from __future__ import annotations

import sys
from pathlib import Path

from napari_medseg.errors import InputError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "avx_vnni_bf16"}  # x86 CPUs with native bf16


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when this CPU computes bfloat16 natively (AVX-512 BF16 or AMX; Apple M2+).

    On a CPU without it, bf16 autocast is emulated and many times slower
    than float32 (39x measured on an AMD EPYC without AVX-512 BF16).
    """
    if sys.platform == "darwin":
        import subprocess

        answer = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"],
                                capture_output=True, text=True, check=False)
        return answer.stdout.strip() == "1"
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return bool(_BF16_FLAGS & set(flags))


def check_precision(precision: str) -> None:
    """Refuse a precision name that is not one of `PRECISIONS`.

    Parameters
    ----------
    precision : str
        A name the user gave.

    Raises
    ------
    InputError
        Naming the choices.
    """
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")


def emulated_bf16_warning(precision: str, device_type: str) -> str | None:
    """One line for the user when ``precision`` asks for bfloat16 on a CPU that only
    emulates it (many times slower than float32 there), else None.

    Parameters
    ----------
    precision : str
        The precision the user chose.
    device_type : str
        The type of the device the network will run on (``'cpu'``, ``'cuda'``, ``'mps'``).
    """
    if precision != "bfloat16" or device_type != "cpu" or cpu_has_native_bf16():
        return None
    return ("bfloat16 is emulated on this CPU (it has no AVX-512 BF16 or AMX) and runs "
            "many times slower than float32: choose auto or float32")


def autocast_dtype(precision: str, device):
    """The autocast dtype for ``precision`` on ``device`` (None: plain float32).

    ``auto``: bfloat16 on a CPU with native bf16, else float32; on CUDA
    bfloat16 where supported, else float16; float16 on MPS.

    Parameters
    ----------
    precision : str
        ``auto``, ``float32``, ``bfloat16`` or ``float16``.
    device : torch.device
        Where the network runs.

    Raises
    ------
    InputError
        For an unknown precision, or float16 on the CPU (slow there: use
        bfloat16 or float32).
    """
    import torch

    check_precision(precision)
    kind = torch.device(device).type
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "float16":
        if kind == "cpu":
            raise InputError("float16 is slow on the CPU: choose bfloat16 (on CPUs with native "
                             "bf16) or float32")
        return torch.float16
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else None


def autocast_context(device, dtype):
    """``torch.autocast`` on ``device``'s type with ``dtype`` (what `autocast_dtype`
    returned), or a no-op context for None (float32).

    Parameters
    ----------
    device : torch.device
        Where the network runs.
    dtype : torch.dtype or None
        The reduced precision, or None.
    """
    from contextlib import nullcontext

    import torch

    return nullcontext() if dtype is None else torch.autocast(torch.device(device).type,
                                                              dtype=dtype)


def place_network(network, device, autocast=None) -> None:
    """Move ``network`` to ``device``, in the weight layout its arithmetic runs fastest in.

    Under bf16 autocast on the CPU the 3D weights are stored channels-last:
    oneDNN's bf16 convolutions then run without reordering them, 1.16-1.18x
    faster end to end on an AVX-512 BF16 CPU with labels unchanged
    (BENCHMARKS.md, "Inference engine against MONAI"). The values are the
    same, so float32 runs afterwards are unaffected. A callable without
    ``to`` (a plain function) is left as it is.

    Parameters
    ----------
    network : torch.nn.Module or callable
        A fold network.
    device : torch.device
        Where it runs.
    autocast : torch.dtype, optional
        What `autocast_dtype` returned for this run.
    """
    import torch

    if not hasattr(network, "to"):
        return
    network.to(device)
    if autocast is torch.bfloat16 and torch.device(device).type == "cpu":
        network.to(memory_format=torch.channels_last_3d)


def precision_name(dtype) -> str:
    """The name of an `autocast_dtype` answer: ``'float32'`` for None (no autocast).

    Parameters
    ----------
    dtype : torch.dtype or None
        What `autocast_dtype` returned.
    """
    return str(dtype).removeprefix("torch.") if dtype is not None else "float32"


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

    Parameters
    ----------
    request : str
        ``auto`` takes CUDA, then Apple MPS, then the CPU; any other name must be
        available here.

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
