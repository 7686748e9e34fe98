"""int8 inference for the zoo's U-Nets on CPU (static post-training quantization).

A zoo network is quantized when it is loaded, from its fp16 safetensors weights and the
activation quantization parameters stored in its card (``card["int8"]["activations"]``);
no quantized or pickled model is ever saved. Weights are quantized per output channel
(symmetric int8), activations per tensor (unsigned 8-bit, a scale and a zero point each)
with the ranges measured once on calibration renders of training embryos
(:func:`calibrate`, run by ``scripts/zoo_int8.py``).

The int8 network is built directly from PyTorch's quantized modules and operators (no
graph tracing: it costs a few milliseconds at load time) and mirrors
:class:`devolens.models.unet_lite.UnetLite` step by step, with every activation named
after the module that makes it (``encoder.layer1.0.conv1``, ``encoder.layer1.0.add``,
``decoder.blocks.0.cat``...). The convolutions run on oneDNN's int8 kernels (VNNI on
AVX-512 CPUs): on the 2-core development machine the nuclei network is about twice as fast
as bf16 autocast (see ``benchmarks/RESULTS.md``); on x86 CPUs with AVX2 but no VNNI they run with 7-bit
activations (:func:`int8_reduced_here`), about 3x as fast as fp32 there, with the same F1. Where the oneDNN engine is missing (e.g.
ARM builds of PyTorch) :func:`int8_supported` is False and the predictors keep bf16/fp32.

Examples
--------
With a float network ``unet`` and an iterable ``batches`` of prepared inputs (not run by doctest)::

    from devolens.models.quantize import calibrate, quantize
    params = calibrate(unet, batches)        # {activation name: [scale, zero_point]}
    qnet = quantize(unet, params)            # float in, float logits out
"""

from __future__ import annotations

import threading
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:  # (annotations only: torch is imported where a network runs, not with this module)
    import torch
    from torch import nn

from devolens.errors import DevolensError, option
from devolens.predict.devices import DeviceWarning

#: Quantized engine used for int8 inference (oneDNN: VNNI int8 kernels with 8-bit activations; AVX2 ones with 7-bit).
ENGINE = "onednn"


class CardPrecision(str):
    """A precision that a model card chose, not the user (the population card's ``nuclei_precision``: the
    arithmetic its calibration was fitted in), as the card's loader passes it on: ``CardPrecision("bf16")``.

    It compares and prints as the plain name. :func:`resolve_precision` runs it where it can run and, where it
    cannot (the onnx backend runs fp32), gives way with a :class:`PrecisionWarning`, where a precision the user
    gave is refused.
    """

    __slots__ = ()


class PrecisionWarning(DeviceWarning):
    """The network runs in another arithmetic than its model card chose (:class:`CardPrecision`), so its results
    can differ slightly from the card's metrics; or in int8 asked for on a CPU with neither VNNI/AMX
    (:func:`int8_fast_here`) nor x86 AVX2 (:func:`int8_reduced_here`), where it was never measured. The CLI prints it as one ``note:`` line (as a
    :class:`~devolens.predict.devices.DeviceWarning`)."""


def _quiet() -> None:
    # PyTorch 2.14 marks quantized tensors as deprecated and warns on each new call site;
    # the int8 path checks that they work (int8_supported) and falls back to bf16 if not
    warnings.filterwarnings("ignore", message="torch.quantize_per_tensor, torch.quantize_per_channel",
                            category=UserWarning)


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where that file does not exist: off Linux)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=1)
def int8_fast_here() -> bool:
    """True when this CPU has 8-bit dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX): int8 runs with the
    card's 8-bit activations. Read from ``/proc/cpuinfo``; False where that file does not exist."""
    return bool(_cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


@lru_cache(maxsize=1)
def int8_reduced_here() -> bool:
    """True on an x86 CPU with AVX2 but without VNNI/AMX (:func:`int8_fast_here`), where oneDNN's int8 kernels add
    pairs of 8-bit products in 16 bits: they saturate with 8-bit activations, so int8 runs with 7-bit ones there
    (:func:`quantize`'s ``reduce_range``). Measured on an AVX2-only AMD EPYC (thirty-ninth session): the nuclei
    network 0.36 s a 752x512 frame against 1.2 s in fp32 (2.1 s in emulated bf16), held-out nuclei F1 0.814 with
    7-bit activations (0.813 on a VNNI CPU), the livedead network's PR-AUC as in fp32 (dead 0.937 against 0.936;
    0.80 with 8-bit activations). So ``precision="auto"`` takes int8 there too where bf16 is emulated (an AVX-512
    CPU without VNNI keeps bf16: int8 was not measured there). False off Linux: there int8 is never chosen
    automatically."""
    flags = _cpu_flags()
    return "avx2" in flags and not int8_fast_here()


def ort_int8_here() -> bool:
    """True on an x86 CPU with VNNI/AMX or AVX2, where ``precision="auto"`` on the onnx backend takes onnxruntime's
    int8 network (a model that ships one): measured on an AVX2-only AMD EPYC (fifty-seventh session; the held-out
    nuclei F1 as PyTorch's int8). Unlike :func:`int8_reduced_here` it does not ask for bf16 (onnxruntime runs no
    bf16 here), and it reads ``/proc/cpuinfo`` only: no torch."""
    return int8_fast_here() or "avx2" in _cpu_flags()


def ort_int8_chosen(precision: str, fast: bool, device: str) -> bool:
    """Whether the onnx backend runs a model's shipped int8 graph (where it ships one): ``"int8"`` asked for, or
    ``"auto"`` with ``fast`` on a CPU of :func:`ort_int8_here`; on the CPU only."""
    return str(device) == "cpu" and (precision == "int8" or (precision == "auto" and bool(fast) and ort_int8_here()))


@lru_cache(maxsize=1)
def bf16_fast_here() -> bool:
    """True when this CPU has native bf16 arithmetic for oneDNN (x86: AVX-512; ARM: the BF16 extension).

    Elsewhere (AVX2-only CPUs, Apple M1) bf16 autocast is emulated and several times slower than fp32
    (on an AVX2-only AMD EPYC: the nuclei network 2x, the magnification estimate's features 8x, a training step
    12x), so ``precision="auto"`` runs int8 or fp32 there, and the estimate's features, population's count regressor
    and ``train.amp: bf16`` run fp32 (explicit ``"bf16"`` still runs a predictor so). True where this
    PyTorch has no such check (the choice made before it was asked).
    """
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # (AttributeError/RuntimeError: no such operator in this build)
        return True


@lru_cache(maxsize=1)
def fp16_fast_here() -> bool:
    """True when PyTorch's CPU kernels have float16 arithmetic here (AVX512-FP16 or AMX-FP16 on x86, FP16
    arithmetic on ARM). Elsewhere fp16 autocast is emulated: a tiny U-Net's training step took 0.7-1.1 s in fp16
    against 0.05 s in fp32 (and 0.035 s in bf16) on an AMD EPYC with AVX512-BF16, with the same losses. False
    where this PyTorch has no such check (a build without oneDNN): fp32 then, unlike :func:`bf16_fast_here`,
    because emulated fp16 is far slower than emulated bf16."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


@lru_cache(maxsize=1)
def int8_supported() -> bool:
    """True when this PyTorch build can run the int8 networks: the oneDNN quantized engine
    is there and a small int8 convolution runs (checked once per process)."""
    import torch
    from torch import nn

    if ENGINE not in torch.backends.quantized.supported_engines:
        return False
    _quiet()
    try:
        previous = torch.backends.quantized.engine
        torch.backends.quantized.engine = ENGINE
        try:
            q = _quantized_conv(nn.Conv2d(2, 2, 3, padding=1), True, 0.1, 0)
            x = torch.quantize_per_tensor(torch.rand(1, 2, 8, 8), 0.01, 0, torch.quint8)
            q(x).dequantize()
        finally:
            torch.backends.quantized.engine = previous
    except Exception:  # removed or broken in this build: the predictors use bf16/fp32
        return False
    return True


def quantizable(model: nn.Module) -> bool:
    """True for networks this module can quantize: a :class:`UnetLite` with BatchNorm folded."""
    from torch import nn

    from devolens.models.unet_lite import UnetLite

    if not isinstance(model, UnetLite):
        return False
    return not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def _walk(model: nn.Module, x: torch.Tensor, conv: Callable, add_relu: Callable, cat: Callable) -> torch.Tensor:
    """The U-Net's forward pass with its convolutions, residual sums and skip joins
    delegated (float with observation, or int8); input sides on the ``2**depth`` grid."""
    import torch
    import torch.nn.functional as F

    enc = model.encoder
    features = []
    x = conv(enc.conv1, x, "encoder.conv1", True)
    features.append(x)
    if enc.depth >= 2 and isinstance(x, torch.Tensor):  # else a walk that only visits the modules
        x = F.max_pool2d(x, 3, 2, 1)
    for i in range(1, enc.depth):
        for j, block in enumerate(getattr(enc, f"layer{i}")):
            name = f"encoder.layer{i}.{j}"
            identity = x if block.downsample is None else conv(block.downsample[0], x, name + ".downsample", False)
            out = conv(block.conv1, x, name + ".conv1", True)
            out = conv(block.conv2, out, name + ".conv2", False)
            x = add_relu(out, identity, name + ".add")
        features.append(x)
    feats = features[::-1]
    x, skips = feats[0], feats[1:]
    for i, block in enumerate(model.decoder.blocks):
        if isinstance(x, torch.Tensor):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if i < len(skips):
            x = cat(x, skips[i], f"decoder.blocks.{i}.cat")
        x = conv(block.conv1[0], x, f"decoder.blocks.{i}.conv1", True)
        x = conv(block.conv2[0], x, f"decoder.blocks.{i}.conv2", True)
    return conv(model.segmentation_head[0], x, "segmentation_head", False)


def calibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, list[float]]:
    """Measure the int8 quantization parameters of every activation of ``model``.

    Parameters
    ----------
    model : UnetLite
        Float network in eval mode with BatchNorm folded (``fuse_batchnorm``); not modified.
    batches : iterable of Tensor
        ``(N, C, H, W)`` float32 inputs, preprocessed as at inference (sides on the
        network's grid). Use images of training embryos, never held-out ones.

    Returns
    -------
    dict
        Activation name (``"input"``, ``"encoder.conv1"``, ...) -> ``[scale, zero_point]``
        of its uint8 grid, chosen by a histogram observer (rare outliers are clipped to
        minimise the quantization error).
    """
    import torch

    from torch.ao.quantization.observer import HistogramObserver

    if not quantizable(model):
        raise DevolensError("int8 calibration needs a UnetLite network with BatchNorm folded")
    observers: dict[str, nn.Module] = {}

    def seen(name: str, t: torch.Tensor) -> torch.Tensor:
        if name not in observers:
            observers[name] = HistogramObserver(dtype=torch.quint8, reduce_range=False)
        observers[name](t.detach())
        return t

    def conv(module, x, name, relu):
        y = module(x)
        return seen(name, torch.relu(y) if relu else y)

    n = 0
    with torch.inference_mode():
        for batch in batches:
            _walk(model, seen("input", batch.float()), conv,
                  lambda a, b, name: seen(name, torch.relu(a + b)),
                  lambda a, b, name: seen(name, torch.cat([a, b], dim=1)))
            n += 1
    if n == 0:
        raise DevolensError("int8 calibration needs at least one batch of images")
    params = {}
    for name, obs in observers.items():
        scale, zero = obs.calculate_qparams()
        params[name] = [float(scale.reshape(-1)[0]), int(zero.reshape(-1)[0])]
    return params


def resolve_precision(model: nn.Module, precision: str, params: dict | None, *, fast: bool, device: str,
                      multiple: int, backend: str = "torch", onnx_int8: bool = False) -> str:
    """The arithmetic a predictor runs ``model`` in: ``"int8"``, ``"bf16"`` or ``"fp32"``.

    ``precision="auto"``: int8 when ``fast``, ``params`` (a card's ``int8.activations``) are
    given, the network is quantizable with inputs on its grid (``multiple`` a multiple of
    ``2**depth``), this PyTorch supports int8, the CPU has VNNI/AMX or is an x86 CPU with AVX2 and without
    native bf16 (read on Linux only; 7-bit activations there, :func:`int8_reduced_here`) and the torch CPU backend
    runs it; else bf16 when
    ``fast`` and the CPU has native bf16 (:func:`bf16_fast_here`), else fp32. Explicit ``"int8"`` needs all
    but the CPU condition (without it, it runs with a :class:`PrecisionWarning`); explicit
    ``"bf16"``/``"fp32"`` are kept. Other devices (GPUs):
    bf16 autocast for ``"bf16"`` or ``"auto"`` with ``fast``, else fp32; a GPU without native bf16
    (:func:`devolens.predict.devices.native_bf16`: before Ampere) runs ``"auto"`` in fp32 and refuses ``"bf16"``.

    Backend ``"onnx"``: ``onnx_int8`` (the model ships onnxruntime's int8 graph, devolens.predict._ort): int8 for
    ``"int8"`` and for ``"auto"`` with ``fast`` on an x86 CPU with VNNI/AMX or AVX2 (:func:`ort_int8_here`); else
    fp32 (onnxruntime runs the exported fp32 network). ``"bf16"``, and ``"int8"`` without the graph, given by the
    user are refused, but a :class:`CardPrecision` (a model card's choice, e.g. the population card's
    ``nuclei_precision``) gives way to fp32 with a :class:`PrecisionWarning`.

    Raises
    ------
    DevolensError
        An unknown precision, ``"int8"`` where it cannot run (the message says why), ``"bf16"`` on a GPU
        without native bf16, or ``"bf16"``/``"int8"`` asked for with the onnx backend.

    Warns
    -----
    PrecisionWarning
        A card's precision that the onnx backend cannot run: fp32 instead; or ``"int8"`` asked for on a CPU
        with neither VNNI/AMX (:func:`int8_fast_here`) nor x86 AVX2 (:func:`int8_reduced_here`), where its speed
        and accuracy were never measured.
    """
    from devolens.predict.devices import check_precision, gpu_label, native_bf16

    check_precision(precision)
    if backend == "onnx" and onnx_int8 and ort_int8_chosen(precision, fast, device):
        return "int8"  # onnxruntime's own int8 network (a shipped graph)
    if backend == "onnx" and isinstance(precision, CardPrecision) and precision in ("int8", "bf16"):
        # the card's choice, not the user's: onnxruntime runs the exported fp32 network, which the user asked for
        warnings.warn(f"{option('backend', repr('onnx'), cli_value='onnx')} runs the network in fp32, not in the "
                      f"{precision} its model card sets (the arithmetic of the card's calibration and metrics): "
                      f"results can differ slightly from {option('backend', repr('torch'), cli_value='torch')}'s",
                      PrecisionWarning, stacklevel=2)
        return "fp32"
    on_cpu = str(device) == "cpu"
    depth = getattr(getattr(model, "encoder", None), "depth", None)
    can_quantize = quantizable(model) and int(multiple) % (2 ** depth) == 0
    int8_ok = bool(params) and can_quantize and int8_supported() and on_cpu and backend == "torch"
    if precision == "int8":
        if not int8_ok:
            why = ("this model has no int8 calibration" if not params else
                   "the network cannot be quantized" if not can_quantize else
                   "int8 runs on the CPU torch backend only" if not on_cpu else
                   "this model ships no int8 ONNX graph for the onnx backend" if backend != "torch"
                   else "this PyTorch build has no oneDNN quantized engine")
            raise DevolensError(f"precision 'int8' is not available: {why}")
        if not (int8_fast_here() or int8_reduced_here()) and not isinstance(precision, CardPrecision):
            # neither VNNI/AMX nor x86 AVX2 (an ARM CPU, an older x86, a system without /proc/cpuinfo): int8's
            # speed and accuracy there were never measured: run, but say so
            instead = "bf16" if fast and bf16_fast_here() else "fp32"
            warnings.warn(f"int8 was measured on x86 CPUs with AVX2 or VNNI/AMX only, which this CPU is not known "
                          f"to be: {option('precision', repr('int8'), cli_value='int8')} may run slower than fp32 here "
                          f"and lose accuracy; {option('precision', repr('auto'), cli_value='auto')} picks {instead} "
                          "here", PrecisionWarning, stacklevel=2)
        return "int8"
    if backend == "onnx":  # onnxruntime runs the exported fp32 network (it was reported as bf16)
        if precision == "bf16":
            raise DevolensError(f"{option('precision', repr('bf16'), cli_value='bf16')} is not available with the "
                                f"onnx backend (onnxruntime runs a model's shipped int8 graph, or fp32): give "
                                f"{option('precision', repr('int8'), cli_value='int8')} or "
                                f"{option('precision', repr('fp32'), cli_value='fp32')} with it (or leave it out), "
                                f"or {option('backend', repr('torch'), cli_value='torch')} for bf16")
        return "fp32"
    if not on_cpu:  # GPUs: bf16 autocast where asked for (or auto with fast) and native, else fp32
        if precision == "bf16" or (precision == "auto" and fast):
            if native_bf16(device):
                return "bf16"
            if precision == "bf16":  # refused, not run emulated: slower than fp32 where cuDNN does not refuse it
                raise DevolensError(f"precision 'bf16' is not available on the GPU {gpu_label(device)}: "
                                    "it needs capability 8.0 (Ampere) or newer, "
                                    "without which cuDNN has no bf16 convolutions (they would run emulated, slowly, "
                                    "or fail); use fp32, the GPU's default")
        return "fp32"
    if precision == "auto":
        # (7-bit activations on AVX2 without native bf16; an AVX-512 CPU without VNNI keeps bf16, not measured)
        if fast and int8_ok and (int8_fast_here() or (int8_reduced_here() and not bf16_fast_here())):
            return "int8"
        return "bf16" if fast and bf16_fast_here() else "fp32"
    return precision


def _quantized_conv(conv: nn.Conv2d, relu: bool, scale: float, zero: int) -> nn.Module:
    import torch

    from torch.ao.nn import intrinsic as nni  # noqa: F401  (registers the fused modules)
    from torch.ao.nn.intrinsic import quantized as nniq
    from torch.ao.nn import quantized as nnq

    cls = nniq.ConvReLU2d if relu else nnq.Conv2d
    q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, groups=conv.groups, bias=True)
    w = conv.weight.detach().float()
    amax = w.abs().amax(dim=(1, 2, 3)).clamp_min(1e-8)
    qw = torch.quantize_per_channel(w, amax / 127.5, torch.zeros(len(amax), dtype=torch.long), 0, torch.qint8)
    bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(conv.out_channels)
    q.set_weight_bias(qw, bias)
    q.scale, q.zero_point = float(scale), int(zero)
    return q


@lru_cache(maxsize=1)
def _int8_unet_class() -> type:
    """:class:`Int8Unet`, defined on first use: importing this module does not import torch (the onnx backend's
    int8 network runs without it)."""
    import torch
    from torch import nn

    class Int8Unet(nn.Module):
        """int8 copy of a :class:`~devolens.models.unet_lite.UnetLite` (float in, float logits out).

        Build it with :func:`quantize`. Input sides must be multiples of ``2**encoder_depth``.
        """

        def __init__(self, model: nn.Module, params: dict[str, list[float]], reduce_range: bool = False):
            super().__init__()
            self._float = [model]  # structure only (a list: not registered as a submodule)
            self.reduce_range = bool(reduce_range)
            self.params = {k: seven_bit(v) if reduce_range else (float(v[0]), int(v[1])) for k, v in params.items()}
            self.convs = nn.ModuleDict()

            def build(module, x, name, relu):
                self.convs[name.replace(".", "_")] = _quantized_conv(module, relu, *self.params[name])
                return x

            _walk(model, None, build, lambda a, b, name: a, lambda a, b, name: a)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.float().contiguous(memory_format=torch.channels_last)
            q = torch.quantize_per_tensor(x, *self.params["input"], torch.quint8)

            def conv(module, t, name, relu):
                return self.convs[name.replace(".", "_")](t)

            def add_relu(a, b, name):
                return torch.ops.quantized.add_relu(a, b, *self.params[name])

            def cat(a, b, name):
                return torch.ops.quantized.cat([a, b], 1, *self.params[name])

            return _walk(self._float[0], q, conv, add_relu, cat).dequantize()

    return Int8Unet


def __getattr__(name: str):
    if name == "Int8Unet":  # (defined on first use: :func:`_int8_unet_class`)
        return _int8_unet_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def seven_bit(qparams) -> tuple[float, int]:
    """A uint8 grid's ``(scale, zero_point)`` spread over 0..127 instead: the same range of values in 7 bits."""
    scale, zero = float(qparams[0]), int(qparams[1])
    return scale * 255.0 / 127.0, int(round(zero * 127.0 / 255.0))


def quantize(model: nn.Module, params: dict[str, list[float]], reduce_range: bool | None = None) -> Int8Unet:
    """The int8 network of ``model`` with the activation ``params`` from :func:`calibrate`.

    ``reduce_range``: activations on a 7-bit grid (:func:`seven_bit`: the card's ranges, half as finely), as
    PyTorch's own x86 configurations do on CPUs without VNNI: there the int8 kernels add pairs of 8-bit products
    in 16 bits, which saturate with 8-bit activations (the livedead network's dead PR-AUC on an AVX2-only CPU 0.80
    against 0.94 in fp32; 0.94 with 7-bit activations). None (the default): where :func:`int8_fast_here` is False.

    Raises
    ------
    DevolensError
        If int8 is not supported here, the network is not a quantizable U-Net, or the
        parameters do not fit it (another architecture).
    """
    import torch

    if not int8_supported():
        raise DevolensError(f"int8 inference needs PyTorch's {ENGINE} quantized engine, missing in this build")
    if not quantizable(model):
        raise DevolensError("only UnetLite networks with BatchNorm folded can run in int8")
    needed: list[str] = ["input"]
    _walk(model, None, lambda m, x, name, relu: needed.append(name) or x,
          lambda a, b, name: needed.append(name) or a, lambda a, b, name: needed.append(name) or a)
    if set(needed) != set(params):
        missing = sorted(set(needed) - set(params))[:3]
        raise DevolensError(f"int8 parameters do not fit this network ({len(params)} stored, {len(needed)} needed; "
                            f"missing e.g. {missing})")
    torch.backends.quantized.engine = ENGINE  # the weights are packed for this engine
    if reduce_range is None:
        reduce_range = not int8_fast_here()
    return _int8_unet_class()(model, params, reduce_range=reduce_range).eval()


class PrecisionNetwork:
    """A float network run in the arithmetic :func:`resolve_precision` chose.

    ``"int8"``: the :class:`Int8Unet` built from ``int8_params`` on first use (a few
    milliseconds); ``"bf16"``: autocast with channels_last memory format; ``"fp32"``: as is.
    Called with an ``(N, C, H, W)`` float tensor on the network's device, it returns float32
    logits there. ``model`` is the float network (channels_last for bf16).
    """

    def __init__(self, model: nn.Module, precision: str, int8_params: dict | None = None, device: str = "cpu"):
        import torch

        self.precision = precision
        self.device = torch.device(device)
        self.model = model.to(memory_format=torch.channels_last) if precision == "bf16" else model
        self._int8_params = int8_params
        self._int8: nn.Module | None = None
        # threads that make their first predictions together build the int8 network once (each built its own)
        self._int8_lock = threading.Lock()
        from devolens.models.zoo import note_loaded

        note_loaded()  # a process forked from now on runs its networks in one thread (fork_guard)

    def __getstate__(self) -> dict:
        """Pickled (a predictor sent to a Dask or joblib worker, to a spawned process) or deep-copied without its
        lock (``cannot pickle '_thread.lock'``) and without the int8 network built on first use: PyTorch's
        quantized modules unpickled in a fresh process failed ('ConvReLU2d' object has no attribute
        '_backward_hooks'; an internal assertion and a hang in a spawned pool). The copy builds its own on first use,
        the same network from the same weights and scales."""
        state = dict(vars(self))
        state.pop("_int8_lock", None)
        state["_int8"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self._int8_lock = threading.Lock()
        from devolens.models.zoo import note_loaded

        note_loaded()  # (a process that received a predictor has a network too: its forks are guarded)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        from devolens.models.zoo import fork_guard

        fork_guard()
        with torch.inference_mode():
            if self.precision == "int8":
                if self._int8 is None:
                    with self._int8_lock:
                        if self._int8 is None:
                            self._int8 = quantize(self.model, self._int8_params)
                return self._int8(x)
            if self.precision == "bf16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    return self.model(x.contiguous(memory_format=torch.channels_last)).float()
            return self.model(x).float()
