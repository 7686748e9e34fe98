"""Where the networks run: ``cpu``, ``cuda`` (the first CUDA GPU), ``cuda:N`` (the GPU numbered N) or ``auto``.

Light on purpose: :func:`device_name` checks a name without importing PyTorch (the CLI checks its
``--device`` before the input opens); :func:`resolve_device` imports it to ask for a GPU.
"""

from __future__ import annotations

from devolens.errors import DevolensError

__all__ = ["DEVICES", "PRECISIONS", "BACKENDS", "device_name", "check_precision", "check_backend", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda")
#: the networks' arithmetic (``auto``: int8 where the CPU runs it well, else bf16; see models.quantize)
PRECISIONS = ("auto", "int8", "bf16", "fp32")
#: what runs them (onnx needs the optional onnxruntime)
BACKENDS = ("torch", "onnx", "auto")


def check_precision(precision: str, option: str = "precision") -> None:
    """Raise a :class:`DevolensError` unless ``precision`` is one of :data:`PRECISIONS` (``option`` names the setting)."""
    if precision not in PRECISIONS:
        raise DevolensError(f"{option} must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, got {precision!r}")


def check_backend(backend: str, option: str = "backend") -> None:
    """Raise a :class:`DevolensError` unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise DevolensError(f"{option} must be {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}, got {backend!r}")


def device_name(name: str, option: str = "device") -> str:
    """``name`` checked and in canonical form (``option`` names the setting in the error).

    Raises
    ------
    DevolensError
        An unknown name.
    """
    canonical = str(name).strip().lower()
    index = canonical[5:] if canonical.startswith("cuda:") else None
    if canonical not in DEVICES and not (index and index.isascii() and index.isdigit()):
        raise DevolensError(f"{option} must be auto, cpu, cuda or cuda:N (the GPU numbered N), got {name!r}")
    return canonical if index is None else f"cuda:{int(index)}"


def resolve_device(name: str = "auto", option: str = "device") -> str:
    """A device name as the networks take it: ``cpu``, ``cuda`` or ``cuda:N``; ``auto`` is a CUDA GPU when
    PyTorch sees one, else the CPU.

    Raises
    ------
    DevolensError
        An unknown name, ``cuda`` where PyTorch sees no CUDA GPU, or ``cuda:N`` beyond the GPUs it sees.
    """
    import torch

    canonical = device_name(name, option)
    if canonical == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if canonical.startswith("cuda") and not torch.cuda.is_available():
        raise DevolensError(f"{option} {canonical!r}: PyTorch sees no CUDA GPU here (this build or machine has none); "
                            "use 'auto' or 'cpu'")
    if canonical.startswith("cuda:") and int(canonical[5:]) >= torch.cuda.device_count():
        raise DevolensError(f"{option} {canonical!r}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s), numbered "
                            "from 0")
    return canonical
