"""Where the networks run: ``cpu``, ``cuda`` (the first CUDA GPU) or ``auto``.

Light on purpose: :func:`device_name` checks a name without importing PyTorch (the CLI checks its
``--device`` before the input opens); :func:`resolve_device` imports it to ask for a GPU.
"""

from __future__ import annotations

from devolens.errors import DevolensError

__all__ = ["DEVICES", "device_name", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda")


def device_name(name: str, option: str = "device") -> str:
    """``name`` checked and in canonical form (``option`` names the setting in the error).

    Raises
    ------
    DevolensError
        An unknown name.
    """
    canonical = str(name).strip().lower()
    if canonical not in DEVICES:
        raise DevolensError(f"{option} must be auto, cpu or cuda, got {name!r}")
    return canonical


def resolve_device(name: str = "auto", option: str = "device") -> str:
    """A device name as the networks take it: ``cpu`` or ``cuda``; ``auto`` is a CUDA GPU when
    PyTorch sees one, else the CPU.

    Raises
    ------
    DevolensError
        An unknown name, or ``cuda`` where PyTorch sees no CUDA GPU.
    """
    import torch

    canonical = device_name(name, option)
    if canonical == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if canonical == "cuda" and not torch.cuda.is_available():
        raise DevolensError(f"{option} 'cuda': PyTorch sees no CUDA GPU here (this build or machine has none); "
                            "use 'auto' or 'cpu'")
    return canonical
