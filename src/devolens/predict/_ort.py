"""onnxruntime sessions of a zoo model's shipped ONNX graphs, built without PyTorch.

A zoo model may ship ONNX graphs beside its weights (card ``onnx``, written by ``scripts/zoo_onnx.py``):

- ``int8``: the whole network quantized by onnxruntime (static, QDQ, weights int8 per output channel with 7-bit
  range, activations uint8 per tensor, calibrated on renders of training embryos), run by ``backend="onnx"`` at
  ``precision="int8"``;
- ``encoder``: the network's float encoder up to its two deepest stages, for the size model's features
  (``--diameter auto``) under that backend.

The graph files hold the structure only: every tensor of 128 bytes or more is an external reference (the card's
``onnx.<graph>.external`` lists their names), filled at load time from the safetensors file the card names (the
int8 graph's own ``onnx_int8.safetensors``; the encoder's ``weights.safetensors``, the network's shipped fp16
weights, read as fp32). Tensors under 128 bytes (quantization
scales and zero points of single tensors, shape constants that onnxruntime's shape inference must read) stay inline.
Nothing here imports torch: ``import onnxruntime`` takes about 0.3 s where ``import torch`` takes about 4 s (an
AVX2-only CPU, fifty-third session).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devolens.errors import DevolensError

#: tensors at least this large (bytes) are external references in a shipped graph; smaller ones stay inline
#: (onnxruntime's shape inference reads small constants, and refuses external ones: "Cannot parse data from
#: external tensors")
EXTERNAL_BYTES = 128

#: the card's ``onnx`` entries that :func:`onnx_files` reads: graph file, tensors file
GRAPHS = ("int8", "encoder")

#: the sessions' threads as ``--threads`` set them (devolens.cli._common.apply_threads); None: :func:`threads` chooses
THREADS: int | None = None


def threads() -> int:
    """The intra-op threads of an onnxruntime session: ``--threads`` (:data:`THREADS`), else torch's count where torch
    is loaded (its ``torch.set_num_threads``, ``OMP_NUM_THREADS``), else ``OMP_NUM_THREADS``, else the CPUs this
    process may run on."""
    import os
    import sys

    if THREADS:
        return int(THREADS)
    if "torch" in sys.modules:
        return max(1, sys.modules["torch"].get_num_threads())
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def onnx_files(card: dict, which: str) -> tuple[str, str] | None:
    """``(graph file, tensors file)`` of the card's ``onnx.<which>`` entry (plain names inside the model folder), or
    None when the card ships no such graph."""
    entry = card.get("onnx", {}).get(which) if isinstance(card.get("onnx"), dict) else None
    if not isinstance(entry, dict):
        return None
    names = entry.get("graph"), entry.get("tensors")
    if not all(isinstance(n, str) and n and Path(n).name == n for n in names):
        return None
    return names  # type: ignore[return-value]


def session(folder: str | Path, card: dict, which: str, threads: int = 1):
    """An onnxruntime CPU session of the card's ``onnx.<which>`` graph, its external tensors read from the
    safetensors file the card names (fp16 tensors given to an fp32 graph as fp32).

    ``threads``: intra-op threads; idle ones sleep rather than spin (spinning ones took the CPU from the
    post-processing and writing threads beside the network).

    Raises
    ------
    DevolensError
        If the card ships no such graph, a file is missing or does not match the graph (one line).
    """
    import onnxruntime as ort
    from safetensors import safe_open

    names = onnx_files(card, which)
    if names is None:
        raise DevolensError(f"this model ships no ONNX {which} graph (its card has no onnx.{which})")
    made_from = card["onnx"].get("weights_sha256")
    if which == "int8" and made_from and card.get("weights_sha256") and made_from != card["weights_sha256"]:
        # (new weights shipped without the graph made again: it would run the old network)
        raise DevolensError("this model's ONNX int8 graph was made from other weights than its card's (onnx."
                            "weights_sha256); run scripts/zoo_onnx.py again, or use the torch backend", path=folder)
    folder = Path(folder)
    graph_file, tensors_file = (folder / n for n in names)
    try:
        graph = graph_file.read_bytes()
        wanted = card["onnx"][which].get("external")
        if not (isinstance(wanted, list) and all(isinstance(n, str) for n in wanted)):
            raise DevolensError(f"the card's onnx.{which} lists no external tensors; run scripts/zoo_onnx.py again",
                                path=folder)
        with safe_open(tensors_file, framework="numpy") as tensors:  # only the graph's (the encoder's of the weights)
            missing = [n for n in wanted if n not in tensors.keys()]
            if missing:
                raise DevolensError(f"{tensors_file.name} lacks {len(missing)} of the tensors of {graph_file.name} "
                                    f"(first: {missing[0]}); run scripts/zoo_onnx.py again", path=folder)
            arrays = [tensors.get_tensor(n) for n in wanted]
        # the graphs compute in fp32: fp16 tensors (the shipped weights) are read as fp32, as torch loads them
        values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a.astype(np.float32) if a.dtype == np.float16
                                                                        else a)) for a in arrays]
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # its warnings (unused initializers...) are for its developers
        options.add_external_initializers(wanted, values)
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except OSError as exc:
        raise DevolensError(f"cannot read the model's ONNX {which} graph: {exc.strerror or exc}",
                            path=getattr(exc, "filename", None) or folder) from None
    except DevolensError:
        raise
    except Exception as exc:  # onnxruntime's own: a graph and tensors that do not fit
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DevolensError(f"onnxruntime cannot load the model's ONNX {which} graph ({first[:300]})",
                            path=folder) from None
