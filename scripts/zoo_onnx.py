"""Write a zoo segmentation model's ONNX graphs: its int8 network (onnxruntime's) and its float encoder.

Usage (needs the optional onnx and onnxruntime: ``pip install "devolens[onnx]"``)::

    python scripts/zoo_onnx.py nuclei --renders runs/zoo/render/calib_L2 runs/zoo/render/calib_sim [--frames 48]

Writes into ``src/devolens/models/zoo/<name>/`` (``--zoo``):

- ``onnx_int8.onnx`` + ``onnx_int8.safetensors``: the fp32 network (BatchNorm folded, as the predictors run it)
  exported with torch's TorchScript exporter (opset 17), then quantized by onnxruntime: static, QDQ, weights int8 per
  output channel with a 7-bit range (``reduce_range``: no overflow in the u8 x s8 multiply-adds of CPUs without
  VNNI), activations uint8 per tensor, calibrated (min-max) on the clean frames of ``--renders`` (renders of
  TRAINING embryos or fresh simulated ones, never the held-out embryos), each prepared exactly as at inference
  (channel, resize, percentile normalisation, content box, padding) -- the frames scripts/zoo_int8.py calibrates
  PyTorch's int8 network on; the decoder's ``Shape`` nodes then read the quantized maps (no dequantization of whole
  maps to read their sizes);
- ``onnx_encoder.onnx``: the float encoder up to its two deepest stages (the size model's features), exported
  without folding BatchNorm so that its tensors are the shipped ``weights.safetensors`` tensors, by name.

Each graph file holds the structure only: tensors of 128 bytes or more are external references, read at load time
from the safetensors file the card names (devolens.predict._ort). The card gets an ``onnx`` entry (files, scheme,
calibration, command, versions, the external tensors' names; with ``--metrics``, the held-out metrics measured with
``benchmarks/eval_zoo.py nuclei --diameter auto --backend onnx``) and card.md is rewritten. Re-run after shipping new
weights or int8 calibration frames; then measure and add the metrics::

    python benchmarks/eval_zoo.py nuclei --diameter auto --backend onnx --json runs/zoo/eval_nuclei_onnx.json
    python scripts/zoo_onnx.py nuclei --metrics runs/zoo/eval_nuclei_onnx.json --metrics-only
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def externalise(model, keep_inline: int) -> tuple[object, dict[str, np.ndarray]]:
    """Move every initializer of ``model`` (an onnx ModelProto) of at least ``keep_inline`` bytes out of it: the
    model then refers to them as external data, and they are returned by name."""
    from onnx import TensorProto, external_data_helper, numpy_helper

    out = {}
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.nbytes < keep_inline:
            continue
        out[init.name] = np.ascontiguousarray(arr)
        init.CopyFrom(numpy_helper.from_array(arr, init.name))  # raw_data, which set_external_data needs
        external_data_helper.set_external_data(init, location="tensors.safetensors")
        init.ClearField("raw_data")
        init.data_location = TensorProto.EXTERNAL
    return model, out


def calibration_reader(arrays: list[np.ndarray]):
    """An onnxruntime ``CalibrationDataReader`` over ``arrays``, each the input ``x`` of one pass (also
    benchmarks/bench_onnx_int8.py's)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Frames(CalibrationDataReader):
        def __init__(self):
            self.it = iter(arrays)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"x": x}

    return Frames()


def shapes_from_quantized(model) -> int:
    """Rewire every ``Shape`` node that reads a dequantized tensor to read the quantized one (the same shape): the
    decoder's sizes are read off feature maps, and onnxruntime otherwise dequantized (and transposed out of its NHWC
    layout) eight whole maps per pass only to read their shapes. Returns the number rewired."""
    made_by = {out: node for node in model.graph.node for out in node.output}
    rewired = 0
    for node in model.graph.node:
        source = made_by.get(node.input[0]) if node.op_type == "Shape" else None
        if source is not None and source.op_type == "DequantizeLinear":
            node.input[0] = source.input[0]
            rewired += 1
    return rewired


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="zoo segmentation model (nuclei)")
    ap.add_argument("--renders", type=Path, nargs="+", default=[], help="render folders of training embryos")
    ap.add_argument("--zoo", type=Path, default=ROOT / "src" / "devolens" / "models" / "zoo")
    ap.add_argument("--frames", type=int, default=48, help="calibration frames (spread over the folders)")
    ap.add_argument("--metrics", type=Path, default=None,
                    help="eval_zoo.py JSON measured with --backend onnx (held-out renders) for the card; "
                         "with --metrics-only, only these are written into the card")
    ap.add_argument("--metrics-command", default="python benchmarks/eval_zoo.py nuclei --diameter auto --backend onnx",
                    help="the command that measured --metrics (for the card)")
    ap.add_argument("--metrics-only", action="store_true", help="only add --metrics to the card's onnx.int8")
    a = ap.parse_args()
    if a.metrics_only:
        from devolens.models.export import write_card

        folder = a.zoo / a.name
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        card["onnx"]["int8"]["metrics"] = json.loads(a.metrics.read_text(encoding="utf-8"))
        card["onnx"]["int8"]["metrics_command"] = a.metrics_command
        write_card(card, folder)
        print(f"onnxruntime int8 metrics -> {folder / 'card.json'}")
        return

    if not a.renders:
        raise SystemExit("give --renders (render folders of training embryos)")
    import onnx
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from safetensors.numpy import load_file, save_file
    from zoo_int8 import calibration_frames

    from devolens.io.images import read_image
    from devolens.models import zoo
    from devolens.models.export import write_card
    from devolens.models.unet_lite import build_lite
    from devolens.predict._ort import EXTERNAL_BYTES, session
    from devolens.provenance import file_sha256
    from devolens.models.zoo import load_weights

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's notes on tensors it leaves in float
    warnings.filterwarnings("ignore")  # the TorchScript exporter's deprecation and tracing notes
    folder = a.zoo / a.name
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    pred = zoo.load(a.name, precision="fp32")
    net = pred.network
    files = calibration_frames(a.renders, a.frames)

    def prepared(f: Path) -> np.ndarray:
        prep = net.prepare(read_image(f))
        y0, y1, x0, x1 = net._content_box([prep])
        padded, _ = net._pad(prep[y0:y1, x0:x1])
        x = np.ascontiguousarray(padded, dtype=np.float32)[None, None]
        return np.repeat(x, net.in_channels, axis=1) if net.in_channels > 1 else x

    calibration = [prepared(f) for f in files]
    dummy = torch.from_numpy(calibration[0])
    axes = {"x": {0: "n", 2: "h", 3: "w"}}
    with tempfile.TemporaryDirectory() as tmp:
        f32, pre, q8 = (str(Path(tmp) / n) for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        torch.onnx.export(net.model.float().eval().to(memory_format=torch.contiguous_format), dummy, f32,
                          input_names=["x"], output_names=["y"], opset_version=17, dynamo=False,
                          dynamic_axes={**axes, "y": {0: "n", 2: "h", 3: "w"}})
        quant_pre_process(f32, pre)
        quantize_static(pre, q8, calibration_reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        quantized = onnx.load(q8)
        rewired = shapes_from_quantized(quantized)
        int8_graph, int8_tensors = externalise(quantized, EXTERNAL_BYTES)

    # the float encoder, BatchNorm not folded: its tensors are weights.safetensors's, by name
    unfused = load_weights(build_lite(dict(card["architecture"])), folder / "weights.safetensors").eval()

    class Deepest(torch.nn.Module):  # the encoder's two deepest stages, as devolens.predict.sizing reads them
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, x):
            feats = self.encoder(x)
            return feats[-2], feats[-1]

    buffer = io.BytesIO()
    torch.onnx.export(Deepest(unfused.encoder), dummy, buffer, input_names=["x"], output_names=["f3", "f4"],
                      opset_version=17, dynamo=False, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.EVAL, dynamic_axes=axes)
    encoder_graph, encoder_tensors = externalise(onnx.load_from_string(buffer.getvalue()), 0)
    shipped = load_file(folder / "weights.safetensors")
    for name, arr in encoder_tensors.items():  # the graph's tensors must be the shipped ones, read as fp32
        if name not in shipped or not np.array_equal(shipped[name].astype(np.float32), arr):
            raise SystemExit(f"the encoder's tensor {name} is not weights.safetensors's")

    onnx.save(int8_graph, folder / "onnx_int8.onnx")
    save_file(int8_tensors, folder / "onnx_int8.safetensors")
    (folder / "onnx_int8.safetensors").chmod(0o644)  # (safetensors writes 0600: the package's files are read by all)
    onnx.save(encoder_graph, folder / "onnx_encoder.onnx")
    versions = {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "torch": torch.__version__.split("+")[0]}
    card["onnx"] = {
        "int8": {
            "graph": "onnx_int8.onnx", "tensors": "onnx_int8.safetensors", "external": list(int8_tensors),
            "scheme": "onnxruntime static quantization, QDQ: weights int8 per output channel (symmetric, 7-bit range), "
                      "activations uint8 per tensor (min-max), of the fp32 network with BatchNorm folded; the "
                      "decoder's Shape nodes read the quantized maps",
            "calibration": f"{len(files)} clean frames of " + ", ".join(d.name for d in a.renders)
                           + " (renders of training embryos / fresh simulated embryos; held-out embryos never used)",
        },
        "encoder": {
            "graph": "onnx_encoder.onnx", "tensors": "weights.safetensors", "external": list(encoder_tensors),
            "outputs": "the encoder's two deepest stages (f3, f4), fp32, for the size model",
        },
        # the weights the int8 graph was quantized from: another card's weights (a later ship) refuse it
        # (devolens.predict._ort.session) until this script runs again
        "weights_sha256": file_sha256(folder / "weights.safetensors"),
        "command": f"python scripts/zoo_onnx.py {a.name} --renders " + " ".join(str(d) for d in a.renders)
                   + f" --frames {a.frames}",
        "versions": versions,
    }
    if a.metrics is not None:
        card["onnx"]["int8"]["metrics"] = json.loads(a.metrics.read_text(encoding="utf-8"))
        card["onnx"]["int8"]["metrics_command"] = a.metrics_command
    write_card(card, folder)
    # both graphs load from the written files, and the int8 network's logits lie near the fp32 network's
    int8 = session(folder, card, "int8")
    x = calibration[-1]
    with torch.inference_mode():
        ref = net.model(torch.from_numpy(x)).numpy()
    diff = np.abs(int8.run(["y"], {"x": x})[0] - ref)
    feats = session(folder, card, "encoder").run(None, {"x": x})
    with torch.inference_mode():
        want = [t.numpy() for t in net.model.encoder(torch.from_numpy(x))[-2:]]  # (the predictors', folded)
    enc = max(float(np.abs(f - w).max()) for f, w in zip(feats, want))
    print(f"{folder / 'onnx_int8.onnx'}: {rewired} Shape nodes read quantized maps; {len(int8_tensors)} external "
          "tensors "
          f"({sum(t.nbytes for t in int8_tensors.values()) / 1e6:.1f} MB); logits vs fp32 on a calibration frame: "
          f"max {diff.max():.3f}, mean {diff.mean():.4f}")
    print(f"{folder / 'onnx_encoder.onnx'}: {len(encoder_tensors)} tensors of weights.safetensors; features vs "
          f"PyTorch's fp32 encoder: max {enc:.2e}")


if __name__ == "__main__":
    main()
