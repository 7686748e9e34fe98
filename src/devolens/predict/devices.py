"""Where the networks run: ``cpu``, ``cuda`` (the first CUDA GPU), ``cuda:N`` (the GPU numbered N) or ``auto``.

Light on purpose: :func:`device_name` checks a name without importing PyTorch (the CLI checks its
``--device`` before the input opens); :func:`resolve_device` imports it to ask for a GPU.
"""

from __future__ import annotations

import os
import re
import sys
import warnings

from devolens.errors import DevolensError, DevolensWarning

__all__ = ["DEVICES", "PRECISIONS", "BACKENDS", "DeviceWarning", "device_name", "check_precision", "check_backend",
           "resolve_device", "native_bf16", "gpu_label"]

DEVICES = ("auto", "cpu", "cuda")
#: the networks' arithmetic (``auto``: int8 where the CPU runs it well, else bf16 where native, else fp32; see
#: models.quantize.resolve_precision)
PRECISIONS = ("auto", "int8", "bf16", "fp32")
#: what runs them (onnx needs the optional onnx and onnxruntime: pip install "devolens[onnx]")
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
        An unknown name (``mps`` and ``gpu`` with a word on what to give instead: Apple GPUs are not used).
    """
    canonical = str(name).strip().lower()
    index = canonical[5:] if canonical.startswith("cuda:") else None
    if canonical not in DEVICES and not (index and index.isascii() and index.isdigit()):
        kind = canonical.split(":", 1)[0]
        hint = ("; Apple GPUs (MPS) are not supported: on a Mac the networks run on the CPU (cpu or auto)"
                if kind == "mps" else
                "; for an NVIDIA GPU give cuda (Apple GPUs, MPS, are not supported)" if kind == "gpu" else "")
        raise DevolensError(f"{option} must be auto, cpu, cuda or cuda:N (the GPU numbered N), got {name!r}{hint}")
    return canonical if index is None else f"cuda:{int(index)}"


#: where PyTorch's CUDA 12.6 wheels are: its builds for the oldest GPUs (capability 5.0 to 7.0, which its CUDA 13
#: builds dropped) and drivers (CUDA 13 needs driver 580 or newer)
OLDER_GPU_INDEX = "https://download.pytorch.org/whl/cu126"


class DeviceWarning(DevolensWarning):
    """``auto`` found a CUDA GPU that this PyTorch build cannot run and chose the CPU (the message says how to use
    the GPU). The CLI prints it as one ``note:`` line, once per command however often the device is resolved."""


def _install_hint(torch, build: str) -> str:
    """How to install ``build`` (words: "a CUDA build of PyTorch"): the same version from PyTorch's CUDA 12.6
    wheels, which run the oldest GPUs and drivers (README, "On a GPU")."""
    version = str(torch.__version__).split("+")[0]
    return (f"install {build} in a new environment, e.g. pip install torch=={version} torchvision "
            f"--index-url {OLDER_GPU_INDEX} (README, 'On a GPU')")


def _no_gpu(torch) -> str:
    """Why PyTorch sees no CUDA GPU, as far as it can be told: a CPU-only build, no GPU or too old a driver for
    this build's CUDA, or ``CUDA_VISIBLE_DEVICES`` hiding them."""
    hip = getattr(torch.version, "hip", None)
    if torch.version.cuda is None and not hip:
        if sys.platform == "darwin":
            return "PyTorch sees no CUDA GPU: macOS has none (Apple GPUs, MPS, are not supported)"
        return (f"PyTorch sees no CUDA GPU: this PyTorch is a CPU-only build "
                f"({_install_hint(torch, 'a CUDA build of PyTorch')})")
    built, maker = (f"CUDA {torch.version.cuda}", "NVIDIA") if torch.version.cuda else (f"ROCm {hip}", "AMD")
    why = (f"PyTorch (built for {built}) sees no CUDA GPU it can use: no {maker} GPU here, or its driver is too old "
           "for this build")
    hidden = _visible()
    hidden = f", or CUDA_VISIBLE_DEVICES={hidden} hides it" if hidden is not None else ""
    return f"{why}{hidden} (README, 'On a GPU')"


def _visible() -> str | None:
    """``CUDA_VISIBLE_DEVICES`` as the user would write it ('' when set empty), None when unset: it hides GPUs
    and renumbers those it shows from 0."""
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    return None if hidden is None else (hidden or "''")


def _unfit_gpu(torch, device: str) -> tuple[str, str] | None:
    """``(what, fix)`` when this PyTorch build has no kernels for the CUDA GPU ``device`` (its first convolution
    would fail "no kernel image is available"), None when it has or that cannot be told.

    A build runs a GPU of capability X.Y with a binary for X.y (y <= Y: compatible within a major version) or PTX
    for a capability <= X.Y (compiled for the GPU as it loads). ROCm builds and builds that do not list their
    architectures are not judged."""
    if torch.version.cuda is None:
        return None
    try:
        archs = torch.cuda.get_arch_list()
        major, minor = torch.cuda.get_device_capability(device)
    except Exception:  # cannot tell: as before this check
        return None
    built = [m for m in (re.fullmatch(r"(sm|compute)_(\d+)([a-z]?)", a) for a in archs or ()) if m]
    if not built:
        return None
    have = 10 * int(major) + int(minor)
    for m in built:
        code, exact = int(m.group(2)), m.group(3) == "a"  # sm_90a, compute_90a: that capability only
        if m.group(1) == "compute" and (code == have if exact else code <= have):
            return None
        if m.group(1) == "sm" and code // 10 == major and code % 10 <= minor and (not exact or code == have):
            return None
    newer: dict[int, bool] = {}  # each capability built for, and whether its PTX also runs later GPUs ("8.0+")
    for m in built:
        code = int(m.group(2))
        newer[code] = newer.get(code, False) or (m.group(1) == "compute" and m.group(3) != "a")
    caps = ", ".join(f"{c // 10}.{c % 10}" + ("+" if newer[c] else "") for c in sorted(newer))
    what = (f"the GPU {gpu_label(device)} is not supported by this PyTorch {torch.__version__} "
            f"(built for CUDA {torch.version.cuda} and GPUs of capability {caps})")
    older = have >= 50 and have < min(newer)  # (PyTorch's CUDA 12.6 builds start at 5.0)
    fix = (_install_hint(torch, "a PyTorch build for this GPU") if older else
           "install a PyTorch build that supports it (https://pytorch.org/get-started/locally/)")
    return what, fix


def resolve_device(name: str = "auto", option: str = "device") -> str:
    """A device name as the networks take it: ``cpu``, ``cuda`` or ``cuda:N``; ``auto`` is a CUDA GPU when
    PyTorch sees one that this build can run, else the CPU (with a :class:`DeviceWarning` when there is a GPU it
    cannot run).

    Raises
    ------
    DevolensError
        An unknown name, ``cuda`` where PyTorch sees no CUDA GPU (saying why, as far as can be told), ``cuda:N``
        beyond the GPUs it sees, or a GPU this PyTorch build has no kernels for (too old or too new for it).
    """
    canonical = device_name(name, option)
    if canonical == "cpu":  # (without importing torch: the onnx backend's int8 network runs without it)
        return canonical
    import torch

    if canonical == "auto":
        if not torch.cuda.is_available():
            return "cpu"
        unfit = _unfit_gpu(torch, "cuda")
        if unfit is None:
            return "cuda"
        warnings.warn(f"{unfit[0]}: the networks run on the CPU; to use the GPU, {unfit[1]}", DeviceWarning,
                      stacklevel=2)
        return "cpu"
    if not torch.cuda.is_available():
        raise DevolensError(f"{option} {canonical!r}: {_no_gpu(torch)}; use 'auto' or 'cpu'")
    if canonical.startswith("cuda:") and int(canonical[5:]) >= torch.cuda.device_count():
        hidden = _visible()
        raise DevolensError(f"{option} {canonical!r}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s), numbered "
                            "from 0" + (f" (CUDA_VISIBLE_DEVICES={hidden} renumbers them from 0)"
                                        if hidden is not None else ""))
    unfit = _unfit_gpu(torch, canonical)
    if unfit is not None:
        raise DevolensError(f"{option} {canonical!r}: {unfit[0]}; {unfit[1]}, or use 'cpu'")
    return canonical


def native_bf16(device: str) -> bool:
    """Whether ``device`` (a name :func:`resolve_device` returned) does bf16 arithmetic natively.

    A CUDA GPU: capability 8.0 (Ampere) or newer; before it cuDNN has no bf16 convolutions, which then run
    emulated (slowly) or fail. The CPU: :func:`devolens.models.quantize.bf16_fast_here`. True where it cannot be
    told (ROCm, a query that fails): the choice made before this check."""
    if str(device) == "cpu":
        from devolens.models.quantize import bf16_fast_here

        return bf16_fast_here()
    import torch

    if getattr(torch.version, "hip", None):
        return True
    try:
        return torch.cuda.get_device_capability(device)[0] >= 8
    except Exception:
        return True


def gpu_label(device: str) -> str:
    """The CUDA GPU ``device`` in words for messages: its name and capability, e.g. ``Tesla T4 (CUDA capability
    7.5)`` (the device's name, or no capability, where PyTorch cannot tell)."""
    import torch

    try:
        name = torch.cuda.get_device_name(device)
    except Exception:
        name = str(device)
    try:
        major, minor = torch.cuda.get_device_capability(device)
    except Exception:
        return name
    return f"{name} (CUDA capability {major}.{minor})"
