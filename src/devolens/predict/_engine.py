"""Shared inference engine of the image predictors (private).

One place for: loading zoo weights, the working resolution, padding to the network's
multiple, batching, the CPU fast path (int8 or bf16 autocast + channels_last), the optional
onnxruntime backend, and sliding-window tiling for images larger than ``tile`` pixels.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from devolens.errors import DevolensError, option
from devolens.models.quantize import PrecisionNetwork, resolve_precision
from devolens.predict.devices import check_backend, resolve_device
from devolens.predict.postprocess import Prepared, check_channel, prep_key, prepare_image, resize_image

if TYPE_CHECKING:  # (annotations only: the onnx backend's int8 network runs without torch)
    import torch


#: the optional packages the onnx backend needs: ``onnx`` (torch.onnx.export's TorchScript exporter writes the
#: network with it; this exporter, ``dynamo=False``, needs no onnxscript) and ``onnxruntime`` (runs it); the
#: ``onnx`` extra installs both (``pip install "devolens[onnx]"``)
ONNX_PACKAGES = ("onnx", "onnxruntime")


def onnx_missing(packages: Sequence[str] = ONNX_PACKAGES) -> list[str]:
    """The ``packages`` (of :data:`ONNX_PACKAGES`) that cannot be imported here (empty: the onnx backend can run)."""
    import importlib

    missing = []
    for name in packages:
        try:
            importlib.import_module(name)
        except Exception:  # (not installed, or an install that fails to import: as unusable)
            missing.append(name)
    return missing


def onnxruntime_available() -> bool:
    """True when the onnx backend can run: every package of :data:`ONNX_PACKAGES` (onnxruntime, and onnx for the
    export) can be imported. (Not onnxruntime alone: without onnx the export failed with torch's traceback.)"""
    return not onnx_missing()


def check_onnx_backend(device: str = "cpu", export: bool = True, shipped: bool = False) -> None:
    """Raise a one-line :class:`DevolensError` unless the onnx backend can run here on ``device`` (a resolved name).

    ``export=False``: onnxruntime alone is needed (a model's shipped int8 graph, devolens.predict._ort); else onnx
    too (torch's exporter writes the fp32 network with it). ``shipped``: the model ships an int8 graph, which runs
    with onnxruntime alone at ``precision="int8"`` (said where onnx is what is missing).

    Raises
    ------
    DevolensError
        Naming every missing package of :data:`ONNX_PACKAGES` and the command that installs them, or a GPU
        ``device`` (onnxruntime runs the network on the CPU).
    """
    torch_backend = option("backend", "'torch'", cli_value="torch")
    missing = onnx_missing(ONNX_PACKAGES if export else ("onnxruntime",))  # (importing onnx takes 0.2 s)
    if missing:
        needed = " and ".join(ONNX_PACKAGES) if export else "onnxruntime"
        why = "" if export else " (to run the model's int8 graph)"
        if export and shipped and missing == ["onnx"]:
            why = (f" (onnx to export the network in fp32; the model's int8 graph runs with onnxruntime alone: "
                   f"{option('precision', repr('int8'), cli_value='int8')})")
        raise DevolensError(f"{option('backend', repr('onnx'), cli_value='onnx')} needs the optional "
                            f"package{'s' if export else ''} {needed}{why}, missing here: {' and '.join(missing)}; "
                            f"install {'them' if export else 'it'} with pip install \"devolens[onnx]\", or use "
                            f"{torch_backend} (the default)")
    if str(device) != "cpu":
        raise DevolensError(f"{option('backend', repr('onnx'), cli_value='onnx')} runs the network on the CPU "
                            f"(onnxruntime's CPU provider), not on {device}: give it with "
                            f"{option('device', repr('cpu'), cli_value='cpu')}, or use {torch_backend} for the GPU")


def load_zoo_network(folder: str | Path, card: dict) -> torch.nn.Module:
    """Rebuild the network of a zoo card and load its fp16 safetensors weights (as fp32).

    U-Nets with a ResNet18/34 encoder are rebuilt in plain torch
    (:mod:`devolens.models.unet_lite`, same parameter names and outputs as smp); other
    architectures are built with segmentation-models-pytorch.

    Raises
    ------
    DevolensError
        If the weights file is missing or does not match the card's architecture.
    """
    from devolens.models.unet_lite import build_lite
    from devolens.models.zoo import load_weights

    config = dict(card["architecture"])
    model = build_lite(config)  # plain torch: no smp/timm import (about 2 s per process)
    if model is None:
        from devolens.models.architectures import build_from_config

        model = build_from_config(config)
    weights = Path(folder)
    if weights.suffix != ".safetensors":  # a folder: the zoo's weights.safetensors, a training run's best.safetensors
        weights = weights / card.get("weights_file", "weights.safetensors")
    model = load_weights(model, weights)
    if hasattr(model, "fuse_batchnorm"):
        model.fuse_batchnorm()  # inference only: BatchNorm folded into the convolutions
    return model


CONTENT_LEVEL = 0.05  # normalised intensity (0-1) of an 8x8 block mean that counts as signal
CONTENT_MARGIN = 16  # working-resolution pixels of context kept around the signal
# a content box's sides are rounded up to a multiple of this many working pixels (more context, never
# less): the frames of a movie then fall into a few box shapes, which batch together and which a
# process meets for the first time (slow) less often
CONTENT_QUANTUM = 64


class _Lazies(dict):
    """What an :class:`ImageNetwork` builds on first use (``"ort"``: the onnx session; ``"empty"``: the empty image's
    probabilities), with the ``lock`` they are built under: one for the network and its :meth:`~ImageNetwork.at_scale`
    views, which share it.

    Pickled (a predictor sent to a Dask or joblib worker, to a spawned process) or deep-copied, it leaves out the lock
    and the onnx sessions, neither of which can be pickled (``cannot pickle '_thread.lock'``): the copy has a lock of its
    own and builds the session again on first use. (Views pickled together share one copy, as before.)"""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()

    def __reduce__(self):  # (the onnx sessions, "ort" and "ort_encoder", are built again)
        return type(self), (), None, None, iter([(k, v) for k, v in self.items() if not k.startswith("ort")])


class ImageNetwork:
    """Runs a fully-convolutional network on single-channel images of any size.

    Parameters
    ----------
    model : torch.nn.Module or None
        Maps ``(N, C, H, W)`` to ``(N, K, H, W)`` logits; ``H, W`` multiples of ``multiple``. None with
        ``model_loader``: built by it where it is needed (not on the onnx backend running a shipped int8 graph,
        where torch is then never imported; :attr:`model` builds it on first use).
    model_loader : callable, optional
        Returns the model (a zoo predictor's: :func:`load_zoo_network` of its folder).
    onnx_graphs : (folder, card), optional
        A zoo model's shipped ONNX graphs (card ``onnx``, :mod:`devolens.predict._ort`): the onnx backend runs its
        int8 graph (``precision`` int8, or auto on an x86 CPU with VNNI/AMX or AVX2) and reads the size model's
        features from its encoder graph.
    in_channels : int
        Channels the network expects (the grey image is repeated when > 1).
    scale : float
        Working resolution relative to the input image (0.5: the image is halved before the
        network and the outputs are brought back to the input size).
    multiple : int
        Network input sides are padded up to a multiple of this many pixels.
    tile : int or None
        Working-resolution images with a side above this are processed by overlapping
        ``tile x tile`` windows (stride ``tile - overlap``) and blended; a multiple of ``multiple``, at least two
        (the windows are the network's input: another side is refused, naming the nearest that fit).
    overlap : int
        Overlap of neighbouring tiles, pixels (working resolution).
    batch_size : int
        Images (or tiles) per forward pass.
    fast : bool
        CPU fast path: bf16 autocast and channels_last memory format (or int8, see
        ``precision``). False: plain fp32.
    precision : {"auto", "int8", "bf16", "fp32"}
        Arithmetic of the network on CPU. ``"int8"``: statically quantized network
        (:mod:`devolens.models.quantize`) built from ``int8_params``; about twice as fast as
        bf16 on AVX-512 VNNI CPUs, with the accuracy the card states for it. ``"auto"``:
        int8 when ``fast`` and ``int8_params`` are given, this PyTorch supports it and the
        CPU has 8-bit dot-product instructions (VNNI/AMX) or AVX2 without native bf16 (7-bit activations there),
        else bf16 when ``fast`` and the CPU has native bf16, else fp32
        (:func:`~devolens.models.quantize.resolve_precision`). On other devices the network runs in fp32 unless ``"bf16"`` is asked for.
    int8_params : dict, optional
        Activation scales and zero points of the int8 network (a card's ``int8.activations``).
    backend : {"torch", "onnx", "auto"}
        ``"onnx"`` runs onnxruntime on the CPU: a model's shipped int8 graph (``onnx_graphs``; onnxruntime alone), or
        the network exported to ONNX, in fp32 (optional
        packages onnx and onnxruntime, ``pip install "devolens[onnx]"``; an error naming those missing).
        ``"auto"``: onnx where torch would run fp32 on the CPU (``precision="fp32"``, ``fast=False``, or a CPU
        without int8/bf16 instructions) and those packages are installed, else torch: onnxruntime's fp32 was
        measured about twice as fast as torch's, as fast as torch's bf16, slower than its default int8.
    channel : str
        Channel selection for colour input (see :func:`to_single_channel`).
    percentiles : (float, float)
        Robust normalisation percentiles (see :func:`normalize_percentile`).
    flatten : float
        Remove the smooth background before the normalisation, with an opening this many
        working-resolution pixels wide (see :func:`flatten_background`); 0: not.
    outliers : float
        Replace bright single-pixel outliers (hot pixels) exceeding all their neighbours by more
        than this fraction of the image's range (see :func:`remove_outliers`); 0: not.
    activation : {"softmax", "sigmoid", "softmax_distance"}
        Turns logits into probabilities (``softmax_distance``: softmax over all channels but
        the last, a distance head's sigmoid on the last).
    device : {"cpu", "cuda", "auto"}
        Where the network runs (``auto``: a CUDA GPU when PyTorch sees one).
    crop : bool
        Run the network only on the box that holds the signal (plus a margin of context)
        when that saves at least a tenth of the pixels; the rest gets the network's answer
        for an empty image (background). An embryo in a movie frame rarely fills it. Each image
        gets its own box, so its result is the same alone and in any batch (on a CUDA GPU to
        within the last bits: cuDNN picks its algorithms by the batch's shape, so a few pixels
        at a tie can change sides).
    tta : {1, 2, 4}
        Test-time augmentation: mean probabilities over the image and its horizontal flip
        (2), and its vertical and double flips (4); costs that many forward passes.
    """

    def __init__(
        self,
        model: torch.nn.Module | None,
        *,
        in_channels: int = 1,
        scale: float = 1.0,
        multiple: int = 32,
        tile: int | None = 1024,
        overlap: int = 64,
        batch_size: int = 8,
        fast: bool = True,
        backend: str = "torch",
        channel: str = "auto",
        percentiles: Sequence[float] = (1.0, 99.8),
        flatten: float = 0.0,
        outliers: float = 0.0,
        activation: str = "softmax",
        device: str = "cpu",
        crop: bool = True,
        tta: int = 1,
        precision: str = "auto",
        int8_params: dict | None = None,
        onnx_graphs: tuple[Path, dict] | None = None,
        model_loader: Callable[[], Any] | None = None,
    ):
        # every option is checked here, before anything is built: a wrong type is no number of pixels or a switch
        # ("4" would be read as 4, 2.5 as 2, "no" as True), and 0 where a count is asked is no count
        from devolens.checks import whole
        from devolens.predict.segment import check_scale  # (here: segment imports this module)

        scale = check_scale(scale)  # a number > 0 (a DevolensValueError for no number: float("x") raised ValueError)
        multiple = whole(multiple, "multiple", 1, floats=True)
        batch_size = whole(batch_size, "batch_size", 1, floats=True)
        for name, value in (("fast", fast), ("crop", crop)):
            if not isinstance(value, (bool, np.bool_)):  # "no" and "False" are true values
                raise DevolensError(f"{name} must be True or False, got {value!r}")
        check_backend(backend)
        device = resolve_device(device)
        from devolens.models.quantize import ort_int8_chosen
        from devolens.predict._ort import onnx_files

        shipped_int8 = bool(onnx_graphs) and onnx_files(onnx_graphs[1], "int8") is not None
        if backend == "onnx" and onnx_graphs and not shipped_int8 and "int8" in (onnx_graphs[1].get("onnx") or {}):
            # (a card edited by hand: its graph would be passed over for the export, with a message about onnx)
            raise DevolensError("the card's onnx.int8 entry is not valid (graph and tensors: file names inside the "
                                "model's folder); copy the model's folder again (devolens models export)",
                                path=onnx_graphs[0])
        if backend == "onnx":  # onnxruntime and the CPU here; onnx too where the network is exported (below)
            check_onnx_backend(device, export=not shipped_int8)
        if model is None and model_loader is None:
            raise DevolensError("ImageNetwork needs a model (or a model_loader)")
        # the torch network, unless onnxruntime's shipped int8 graph runs (then built only where asked for: model)
        if model is None and not (backend == "onnx" and shipped_int8 and ort_int8_chosen(precision, fast, device)):
            model = model_loader()
        self._model_loader = model_loader
        self._model = None if model is None else model.eval().to(device)
        self.in_channels = int(in_channels)
        self.scale = float(scale)
        self.multiple = multiple
        # tile: None (whole images) or a side of at least two multiples
        self.tile = whole(tile, "tile", 2 * multiple, floats=True, none=True)
        if self.tile is not None and self.tile % multiple:
            # as a multiple that is not the network's: refused, not rounded (a tile of 250 with stride 32 failed
            # deep inside PyTorch, a shape error on the first image larger than the tile)
            low = self.tile // multiple * multiple  # (>= 2 multiples: whole's bound)
            raise DevolensError(f"tile must be a multiple of {multiple} pixels (the network's multiple: its stride, "
                                f"the card's input.multiple), got {tile!r}: give {low} or {low + multiple}")
        # (an overlap as large as the tile still advances by the network's multiple)
        self.overlap = whole(overlap, "overlap", 0, floats=True)
        self.batch_size = batch_size
        self.fast = bool(fast) and device == "cpu"
        self.device = device
        check_channel(channel)
        self.channel = channel
        self.percentiles = tuple(float(p) for p in percentiles)
        if self.percentiles and not (len(self.percentiles) == 2 and 0 <= self.percentiles[0] < self.percentiles[1] <= 100):
            raise DevolensError(f"percentiles must be (low, high) with 0 <= low < high <= 100, got {percentiles}")
        if not (np.isfinite(flatten) and flatten >= 0):
            raise DevolensError(f"flatten must be >= 0 pixels (0: off), got {flatten}")
        self.flatten = float(flatten)
        if not (np.isfinite(outliers) and outliers >= 0):
            raise DevolensError(f"outliers must be >= 0 (a fraction of the image's range; 0: off), got {outliers}")
        self.outliers = float(outliers)
        self.activation = activation
        # auto: torch, unless torch would run fp32 on the CPU (below)
        self.backend = "onnx" if backend == "onnx" else "torch"
        # what is built on first use (the onnx session, the empty image's probabilities), in one dict that
        # at_scale's views share with this network: built once for all of them, under the lock
        self._lazy: dict[str, Any] = _Lazies()
        self.crop = bool(crop)
        self.tta = whole(tta, "tta", 1, floats=True)
        if self.tta not in (1, 2, 4):
            raise DevolensError(f"tta must be 1, 2 or 4 views, got {tta}")
        # a zoo model's shipped ONNX graphs (model folder, card): onnxruntime's int8 network and the float encoder
        self.onnx_graphs = onnx_graphs
        self._encoder_graph = bool(onnx_graphs) and onnx_files(onnx_graphs[1], "encoder") is not None
        self.precision = resolve_precision(self._model, precision, int8_params, fast=self.fast, device=self.device,
                                           multiple=self.multiple, backend=self.backend, onnx_int8=shipped_int8)
        if self._model is None:  # onnxruntime's int8 graph, and no torch network
            from devolens.models.zoo import note_loaded

            self._network = None
            note_loaded()  # (as PrecisionNetwork does: a process forked from now on is guarded)
        else:  # (onnxruntime's int8 runs the shipped graph: torch's network stays the float one)
            torch_precision = "fp32" if self.backend == "onnx" else self.precision
            self._network = PrecisionNetwork(self._model, torch_precision, int8_params, device)
            self._model = self._network.model
        if self.backend == "onnx":  # exported now: an export that fails does so before any output is written
            check_onnx_backend(device, export=self.precision != "int8", shipped=shipped_int8)
            self._lazy["ort"] = self._onnx_session()
        elif backend == "auto" and self.device == "cpu" and self.precision == "fp32" and onnxruntime_available():
            # measured (segment nuclei, 140 video frames, end to end, 2 cores): onnxruntime's fp32 in 22-29 s, torch's
            # fp32 in 45-49 s, its bf16 in 29 s, its int8 (the default where the CPU has VNNI) in 17-19 s: auto takes
            # onnx only in place of torch's fp32
            try:
                self._lazy["ort"] = self._onnx_session()
                self.backend = "onnx"
            except DevolensError:  # a network the exporter cannot write: torch, as asked (auto)
                pass

    @property
    def model(self) -> "torch.nn.Module":
        """The float torch network (built on first use where onnxruntime's shipped int8 graph runs: the size model's
        features without the encoder graph, the export, a caller's own use)."""
        if self._model is None:
            with self._lazy_lock:
                if "model" not in self._lazy:  # (shared with the at_scale views)
                    self._lazy["model"] = self._model_loader().eval().to(self.device)
            return self._lazy["model"]
        return self._model

    @model.setter
    def model(self, value: "torch.nn.Module") -> None:
        self._model = value

    @property
    def _lazy_lock(self) -> threading.Lock:
        """The lock :attr:`_lazy` is built under (its own: it travels with it to the views, a fresh one in a copy)."""
        return self._lazy.lock

    # ------------------------------------------------------------------ preprocessing
    @property
    def prep_key(self) -> tuple:
        """``(channel, scale, percentiles, flatten, outliers)``: how :meth:`prepare` prepares an image."""
        return prep_key(self.channel, self.scale, self.percentiles, self.flatten, self.outliers)

    def at_scale(self, scale: float) -> "ImageNetwork":
        """This network at another working ``scale``: the same model, settings and caches, its own scale
        (a stream segmented at its own magnification leaves this network's scale, and other streams', alone;
        and keeps its own when this network's changes later)."""
        import copy

        view = copy.copy(self)
        view.scale = float(scale)
        return view

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Input image -> normalised single-channel float32 at the working resolution
        (:func:`~devolens.predict.postprocess.prepare_image`)."""
        return prepare_image(image, *self.prep_key)

    def prepare_frame(self, image: np.ndarray) -> Prepared:
        """``image`` prepared as :meth:`prepare` prepares it, with what the preparation found beside the array
        (:class:`~devolens.predict.postprocess.Prepared`: its ``extra["specks"]``, saturated specks left out of the
        brightness scale), in one preparation."""
        return Prepared(image, self.prep_key)

    # ------------------------------------------------------------------ forward
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W) float32 (sides multiples of ``multiple``) -> (N, K, H, W) probabilities."""
        if self.backend == "onnx":
            return self._run_numpy(batch)
        import torch

        from devolens.models.zoo import fork_guard

        fork_guard()
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))[:, None]
        if self.in_channels > 1:
            x = x.expand(-1, self.in_channels, -1, -1)
        logits = self._logits(x)
        probs = self._activate(logits)
        if self.tta > 1:  # test-time augmentation: mean probabilities over flipped views
            views = [(3,), (2,), (2, 3)][: self.tta - 1]
            for dims in views:
                probs += torch.flip(self._activate(self._logits(torch.flip(x, dims))), dims)
            probs /= float(len(views) + 1)
        return probs.numpy()

    def _run_numpy(self, batch: np.ndarray) -> np.ndarray:
        """:meth:`_run` on the onnx backend, in NumPy (float32 throughout, as torch's): no torch."""
        x = np.ascontiguousarray(batch, dtype=np.float32)[:, None]
        if self.in_channels > 1:
            x = np.repeat(x, self.in_channels, axis=1)
        probs = self._activate_numpy(self._run_onnx(x))
        if self.tta > 1:  # test-time augmentation: mean probabilities over flipped views
            views = [(3,), (2,), (2, 3)][: self.tta - 1]
            for dims in views:
                flipped = self._run_onnx(np.ascontiguousarray(np.flip(x, dims)))
                probs += np.flip(self._activate_numpy(flipped), dims)
            probs /= np.float32(len(views) + 1)
        return probs

    def _activate_numpy(self, logits: np.ndarray) -> np.ndarray:
        """:meth:`_activate` in NumPy, float32."""
        from scipy.special import expit, softmax

        logits = logits.astype(np.float32, copy=False)
        if self.activation == "softmax_distance":  # classes, then a distance head
            return np.concatenate([softmax(logits[:, :-1], axis=1), expit(logits[:, -1:])], axis=1).astype(np.float32)
        out = softmax(logits, axis=1) if self.activation == "softmax" else expit(logits)
        return out.astype(np.float32, copy=False)

    def _activate(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        if self.activation == "softmax_distance":  # classes, then a distance head
            return torch.cat([torch.softmax(logits[:, :-1], dim=1), torch.sigmoid(logits[:, -1:])], dim=1)
        return torch.softmax(logits, dim=1) if self.activation == "softmax" else torch.sigmoid(logits)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Raw network output (float32, CPU) for a prepared (N, C, H, W) batch."""
        import torch

        if self.backend == "onnx":
            return torch.from_numpy(self._run_onnx(x.contiguous().numpy()))
        return self._network(x.to(self.device)).cpu()

    def _run_onnx(self, x: np.ndarray) -> np.ndarray:
        with self._lazy_lock:
            if "ort" not in self._lazy:
                self._lazy["ort"] = self._onnx_session()
        return self._lazy["ort"].run(["y"], {"x": x.astype(np.float32, copy=False)})[0]

    def _onnx_session(self):
        """The network exported to ONNX (in memory) in an onnxruntime session.

        Raises
        ------
        DevolensError
            If the network cannot be exported (an operation torch's ONNX exporter cannot write) or onnxruntime
            cannot load the export: one line saying so, with the exporter's own first line.
        """
        import io
        import warnings

        if self.precision == "int8":  # onnxruntime's int8 network, shipped with the model (devolens.predict._ort)
            from devolens.predict import _ort

            return _ort.session(*self.onnx_graphs, "int8", threads=_ort.threads())
        import onnxruntime as ort
        import torch

        from devolens.predict import _ort

        buffer = io.BytesIO()  # exported in memory: no temporary file left behind (one was, per run)
        dummy = torch.zeros(1, self.in_channels, 64, 64)
        try:
            with warnings.catch_warnings():  # the exporter's notes on tracing are for its developers, not ours
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    self.model.float().to(memory_format=torch.contiguous_format), dummy, buffer,
                    input_names=["x"], output_names=["y"], dynamo=False,
                    dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}},
                )
            options = ort.SessionOptions()
            # torch's thread count (--threads, OMP_NUM_THREADS), and idle threads that sleep rather than spin: spinning
            # ones took the CPU from the post-processing and writing threads beside the network (the CLI sets
            # OMP_WAIT_POLICY=PASSIVE for torch's): 140 video frames end to end in 81-85 s instead of 107-113 s on a
            # loaded 2-core machine, 43 s instead of 55 s on a quieter one
            options.intra_op_num_threads = _ort.threads()
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        except MemoryError:
            raise  # (the CLI's own message)
        except Exception as exc:  # not a user's mistake, but nothing a traceback would help them with either
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            step = "exported to ONNX" if not buffer.getvalue() else "loaded by onnxruntime"
            raise DevolensError(f"{option('backend', repr('onnx'), cli_value='onnx')}: this network could not be "
                                f"{step} ({type(exc).__name__}: {first[:300]}); run it with "
                                f"{option('backend', repr('torch'), cli_value='torch')} (the default)") from exc

    @property
    def onnx_encoder(self) -> bool:
        """True when the size model's features come from the model's shipped float encoder in onnxruntime: the onnx
        backend, and a model that ships that graph (card ``onnx.encoder``)."""
        return self.backend == "onnx" and self._encoder_graph

    def encoder_features(self, x: np.ndarray) -> list[np.ndarray]:
        """The encoder's two deepest stages for a prepared ``(1, C, H, W)`` float32 batch (sides multiples of
        ``multiple``), from the shipped encoder graph in onnxruntime (one thread: the size model's estimate runs
        beside the decoding and preparation threads)."""
        with self._lazy_lock:
            if "ort_encoder" not in self._lazy:
                from devolens.predict import _ort

                self._lazy["ort_encoder"] = _ort.session(*self.onnx_graphs, "encoder", threads=1)
        return self._lazy["ort_encoder"].run(None, {"x": x})

    def _pad(self, arr: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        h, w = arr.shape[-2:]
        m = self.multiple
        H, W = -(-h // m) * m, -(-w // m) * m
        if (H, W) == (h, w):
            return arr, (h, w)
        pad = [(0, 0)] * (arr.ndim - 2) + [(0, H - h), (0, W - w)]
        return np.pad(arr, pad, mode="reflect" if min(h, w) > 1 else "edge"), (h, w)

    def probabilities_working(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Probabilities ``(K, h, w)`` at the working resolution for prepared images."""
        out: list[np.ndarray | None] = [None] * len(prepared)
        # whole images, grouped by padded shape, batched
        groups: dict[tuple[int, int], list[int]] = {}
        tiled: list[int] = []
        for i, arr in enumerate(prepared):
            if self.tile is not None and max(arr.shape) > self.tile:
                tiled.append(i)
                continue
            m = self.multiple
            key = (-(-arr.shape[0] // m) * m, -(-arr.shape[1] // m) * m)
            groups.setdefault(key, []).append(i)
        # each image is cropped to its own content box, so its result does not depend on the images beside
        # it (batch size, a frame alone or in its folder: the network's output for one image is the same in
        # any batch); images whose boxes pad to the same shape share a forward pass
        for idx in groups.values():
            boxes: dict[tuple[int, int], list[tuple[int, tuple[int, int, int, int]]]] = {}
            for i in idx:
                h, w = prepared[i].shape
                box = self._content_box([prepared[i]]) if self.crop else (0, h, 0, w)
                m = self.multiple
                shape = (-(-(box[1] - box[0]) // m) * m, -(-(box[3] - box[2]) // m) * m)
                boxes.setdefault(shape, []).append((i, box))
            for members in boxes.values():
                for start in range(0, len(members), self.batch_size):
                    chunk = members[start : start + self.batch_size]
                    probs = self._run(np.stack([self._pad(prepared[i][y0:y1, x0:x1])[0] for i, (y0, y1, x0, x1) in chunk]))
                    for j, (i, (y0, y1, x0, x1)) in enumerate(chunk):
                        h, w = prepared[i].shape
                        if (y0, y1, x0, x1) == (0, h, 0, w):
                            out[i] = probs[j, :, :h, :w]
                        else:  # outside the content box: the network's answer for an empty image
                            full = np.empty((probs.shape[1], h, w), np.float32)
                            full[:] = self._empty_probabilities()[:, None, None]
                            full[:, y0:y1, x0:x1] = probs[j, :, : y1 - y0, : x1 - x0]
                            out[i] = full
        for i in tiled:
            out[i] = self._tiled(prepared[i])
        return out  # type: ignore[return-value]

    def _content_box(self, images: Sequence[np.ndarray], quantise: bool = True) -> tuple[int, int, int, int]:
        """Smallest box (``y0, y1, x0, x1``, working pixels) holding the signal of all
        ``images`` (same shape, normalised 0-1) plus a margin, on the network's grid, or
        the whole image when the box would not save a tenth of the pixels.

        Signal = 8x8 blocks whose mean exceeds ``CONTENT_LEVEL`` (a twentieth of the
        normalised range): a dim nucleus fills enough of a block to pass, isolated noise
        does not. The
        margin (``CONTENT_MARGIN`` pixels) gives the network the context it had in training,
        so results inside the box are the same as on the whole image, and time is not spent
        on the black surround of an embryo in a movie frame. The box's sides are then rounded up
        to a multiple of ``CONTENT_QUANTUM`` pixels, so that a movie's frames share a few shapes
        (not with ``quantise=False``: the size model averages its features over the signal's own box).
        """
        import cv2

        h, w = images[0].shape
        b = 8
        hb, wb = -(-h // b), -(-w // b)  # partial blocks at the bottom and right edges count too
        if hb < 2 or wb < 2:
            return 0, h, 0, w
        hit = np.zeros((hb, wb), bool)
        for img in images:
            full = np.pad(img, ((0, hb * b - h), (0, wb * b - w))) if (hb * b, wb * b) != (h, w) else img
            # 8x8 block means (OpenCV's area resize by an integer factor: the same means, 5x faster)
            hit |= cv2.resize(np.ascontiguousarray(full, np.float32), (wb, hb), interpolation=cv2.INTER_AREA) > CONTENT_LEVEL
        if not hit.any():
            return 0, h, 0, w
        rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
        m = CONTENT_MARGIN
        y0, y1 = self._grow(rows[0] * b - m, (rows[-1] + 1) * b + m, h)
        x0, x1 = self._grow(cols[0] * b - m, (cols[-1] + 1) * b + m, w)
        if quantise:
            y0, y1 = self._quantise(y0, y1, h)
            x0, x1 = self._quantise(x0, x1, w)

        def padded(k: int) -> int:
            return -(-k // self.multiple) * self.multiple

        if padded(y1 - y0) * padded(x1 - x0) > 0.9 * padded(h) * padded(w):  # too little to gain
            return 0, h, 0, w
        return y0, y1, x0, x1

    def _grow(self, lo: int, hi: int, n: int) -> tuple[int, int]:
        """``[lo, hi)`` widened to the network's grid (``multiple`` pixels), inside ``[0, n)``.

        On the grid, the pixels inside the box pass through the same pooling windows as in
        the whole image, so the network's output there is the same but for the context
        beyond the margin.
        """
        m = self.multiple
        lo = max(int(lo), 0) // m * m
        hi = min(-(-max(int(hi), lo + 1) // m) * m, n)
        return lo, hi

    def _quantise(self, lo: int, hi: int, n: int) -> tuple[int, int]:
        """``[lo, hi)`` (on the network's grid) widened about its middle to a multiple of
        ``CONTENT_QUANTUM`` pixels, inside ``[0, n)``; against an edge of the image it is widened
        away from that edge, ending at the edge (its start stays on the grid)."""
        m = self.multiple
        q = -(-max(CONTENT_QUANTUM, m) // m) * m
        size = -(-(hi - lo) // q) * q
        if size >= n:
            return 0, n
        lo = max(0, lo - (size - (hi - lo)) // 2 // m * m)
        if lo + size <= n:
            return lo, lo + size
        return (n - size) // m * m, n

    def _empty_probabilities(self) -> np.ndarray:
        """(K,) probabilities the network gives in the middle of an empty (all-zero) image."""
        if "empty" not in self._lazy:
            probs = self._run(np.zeros((1, 4 * self.multiple, 4 * self.multiple), np.float32))
            self._lazy["empty"] = probs[0, :, 2 * self.multiple, 2 * self.multiple].astype(np.float32)
        return self._lazy["empty"]

    def _tiled(self, arr: np.ndarray) -> np.ndarray:
        """Sliding-window inference with linear blending of overlaps."""
        h, w = arr.shape
        t = self.tile
        stride = max(self.multiple, t - self.overlap)
        padded, _ = self._pad(arr) if (h < t or w < t) else (arr, (h, w))
        ph, pw = padded.shape
        if ph < t or pw < t:  # pad small sides up to a full tile
            padded = np.pad(padded, [(0, max(0, t - ph)), (0, max(0, t - pw))], mode="reflect")
            ph, pw = padded.shape
        ys = list(range(0, max(1, ph - t + 1), stride))
        xs = list(range(0, max(1, pw - t + 1), stride))
        if ys[-1] + t < ph:
            ys.append(ph - t)
        if xs[-1] + t < pw:
            xs.append(pw - t)
        ramp = np.minimum(np.arange(t) + 1, np.arange(t)[::-1] + 1).astype(np.float32)
        ramp = np.minimum(ramp / max(1, self.overlap // 2), 1.0)
        weight = np.outer(ramp, ramp) + 1e-3
        acc = None
        wsum = np.zeros((ph, pw), dtype=np.float32)
        coords = [(y, x) for y in ys for x in xs]
        for start in range(0, len(coords), self.batch_size):
            chunk = coords[start : start + self.batch_size]
            probs = self._run(np.stack([padded[y : y + t, x : x + t] for y, x in chunk]))
            if acc is None:
                acc = np.zeros((probs.shape[1], ph, pw), dtype=np.float32)
            for (y, x), p in zip(chunk, probs):
                acc[:, y : y + t, x : x + t] += p * weight
                wsum[y : y + t, x : x + t] += weight
        return (acc / wsum)[:, :h, :w]


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Group an iterable into lists of ``size`` items (the last may be shorter), lazily."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def to_input_size(probs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bring ``(K, h, w)`` probabilities back to the input ``shape`` (bilinear)."""
    if probs.shape[-2:] == tuple(shape):
        return probs
    return np.clip(resize_image(probs, shape), 0.0, 1.0)


ProgressFn = Callable[[int, int], None] | None
