"""Speed, a question for the 3x target: would onnxruntime's int8 run the nuclei network as fast as PyTorch's?

`segment nuclei` imports PyTorch (about 4 s of the command's 13-14 s on an AVX2-only AMD EPYC, fiftieth session)
and runs the network in PyTorch's int8 (7-bit activations on such a CPU). onnxruntime imports in well under a
second. This script measures, in one process and on the same prepared frames of the benchmark movie:

- the import time of ``torch`` and of ``onnxruntime``, each in fresh interpreters (best of ``--imports``);
- the shipped nuclei network, ms per frame at a batch of ``--batch``: PyTorch int8 (the command's default on a CPU
  with int8 instructions), PyTorch fp32, onnxruntime fp32 (the network exported with ``dynamo=False``) and
  onnxruntime int8 (static, QDQ and QOperator, per-channel weights, ``reduce_range`` 7-bit weights; calibrated on
  every 7th frame of the movie: for speed only, its accuracy is not measured here);
- how far each int8 network's logits lie from the fp32 network's (max and mean absolute difference).

It changes nothing in devolens: a torch-free `segment nuclei` (ONNX int8 network, size model and post-processing
without PyTorch) does not exist; this measures whether it would be worth building.

With ``--command N`` it also runs the whole command on the benchmark movie N times each way, in fresh processes:
``devolens -q segment nuclei VIDEO --backend onnx`` with the onnxruntime int8 (QDQ) network patched in place of the
backend's own fp32 export, against the default command (PyTorch int8). Beside each run's wall time it prints the
seconds the network's forward passes took inside the command (where the post-processing, writing and decoding
threads share the cores with it), and the torch-free estimate: the onnxruntime run's time less ``import torch``
(which that run still pays, before its first frame; an upper bound of what leaving PyTorch out would save).

Usage (needs the optional onnx and onnxruntime: ``pip install "devolens[onnx]"``)::

    python benchmarks/bench_onnx_int8.py [--batch 8] [--repeats 7] [--imports 3] [--threads 2] [--command 0]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_segment import _video  # noqa: E402  (the benchmark movie, rendered once under runs/zoo/)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from zoo_onnx import calibration_reader  # noqa: E402  (onnxruntime's reader over calibration frames)


def _import_time(module: str, runs: int) -> float:
    """Best wall time of ``import module`` in a fresh interpreter, minus an empty interpreter's start."""
    def best(code: str) -> float:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - t0)
        return min(times)

    return best(f"import {module}") - best("pass")


def _timed(fn, repeats: int, batch: int) -> tuple[float, float]:
    """Best and median ms per frame of ``fn`` (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) / batch * 1e3, statistics.median(times) / batch * 1e3


#: run in a fresh interpreter: argv = [MODEL or "", TIMES_FILE, devolens arguments...]; the network's forward
#: passes timed (and, given a MODEL, onnxruntime's int8 network in place of the onnx backend's fp32 export), the
#: total rewritten after each pass (the command leaves by os._exit, which runs no exit handler)
_IN_COMMAND = r'''
import sys, time
model, times = sys.argv[1], sys.argv[2]
import devolens.predict._engine as engine
if model:
    import onnxruntime as ort

    def session(self):
        options = ort.SessionOptions()  # as the backend's own session
        options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    engine.ImageNetwork._onnx_session = session
spent = {"s": 0.0, "frames": 0}
logits = engine.ImageNetwork._logits

def timed(self, x):
    t = time.perf_counter()
    out = logits(self, x)
    spent["s"] += time.perf_counter() - t
    spent["frames"] += int(x.shape[0])
    with open(times, "w") as f:
        f.write(repr(spent))
    return out

engine.ImageNetwork._logits = timed
from devolens.cli import run
sys.argv = ["devolens", *sys.argv[3:]]
run()
'''


def _in_command(model: bytes, runs: int, threads: int, t_torch: float) -> None:
    """The whole command on the benchmark movie, ``runs`` times each way (alternating): onnxruntime's int8 network
    (``model``, QDQ) patched into the onnx backend, against the default command; wall times and in-command network
    seconds, and the torch-free estimate (module docstring)."""
    video = _video(0)
    code = _IN_COMMAND.replace("THREADS", str(threads))
    walls: dict[str, list[float]] = {"onnxruntime int8": [], "PyTorch int8 (default)": []}
    nets: dict[str, list[float]] = {k: [] for k in walls}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "int8.onnx"
        path.write_bytes(model)
        for _ in range(runs):
            for name in walls:
                ort_run = name.startswith("onnx")
                out, times = Path(tmp) / "out", Path(tmp) / "times.txt"
                times.unlink(missing_ok=True)
                shutil.rmtree(out, ignore_errors=True)
                cmd = [sys.executable, "-c", code, str(path) if ort_run else "", str(times), "-q", "segment",
                       "nuclei", str(video), "--out", str(out), "--threads", str(threads)]
                cmd += ["--backend", "onnx"] if ort_run else []
                t = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
                walls[name].append(time.perf_counter() - t)
                nets[name].append(ast.literal_eval(times.read_text())["s"])
    print(f"the whole command on {video.parent.name}/{video.name}, {runs} runs each (best / median):")
    for name in walls:
        print(f"  {name:24s} {min(walls[name]):6.2f} / {statistics.median(walls[name]):6.2f} s; its network "
              f"{min(nets[name]):5.2f} / {statistics.median(nets[name]):5.2f} s of it")
    best = min(walls["onnxruntime int8"])
    print(f"torch-free estimate: {best:.2f} s - import torch {t_torch:.2f} s = {best - t_torch:.2f} s, against the "
          f"default command's {min(walls['PyTorch int8 (default)']):.2f} s (best)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8, help="frames per forward pass (the command's default: 8)")
    ap.add_argument("--repeats", type=int, default=7, help="timed passes of each network (best and median)")
    ap.add_argument("--imports", type=int, default=3, help="fresh interpreters per import time (best)")
    ap.add_argument("--threads", type=int, default=2, help="threads of both runtimes (the command uses the cores)")
    ap.add_argument("--command", type=int, default=0, metavar="N",
                    help="also run the whole command N times each way (the default command and with onnxruntime's "
                         "int8 network; module docstring)")
    args = ap.parse_args()
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        # skipped, not failed: `make bench` runs every bench_*.py, and these packages are optional
        print(f"skipped: needs {' and '.join(missing)} (pip install \"devolens[onnx]\")")
        return

    t_torch = _import_time("torch", args.imports)
    t_ort = _import_time("onnxruntime", args.imports)

    import logging
    import warnings

    import imageio.v3 as iio
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from devolens.models import load

    torch.set_num_threads(args.threads)
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's notes on tensors it leaves in float
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # (the TorchScript exporter's, chosen here)
    int8, fp32 = load("nuclei").network, load("nuclei", precision="fp32").network
    frames = list(iio.imiter(_video(0)))
    prepared = [int8.prepare(f) for f in frames]  # the command's preparation at the card's working scale
    h = max(p.shape[0] for p in prepared)
    w = max(p.shape[1] for p in prepared)
    h, w = -(-h // int8.multiple) * int8.multiple, -(-w // int8.multiple) * int8.multiple

    def padded(ps):
        return np.stack([np.pad(p, ((0, h - p.shape[0]), (0, w - p.shape[1])), mode="edge") for p in ps])[:, None]

    # a late batch (the most nuclei), and calibration frames that are not in it
    x = padded(prepared[-args.batch:]).astype(np.float32)
    calib = [padded([p]).astype(np.float32) for p in prepared[:-args.batch:7]]
    xt = torch.from_numpy(x)
    print(f"{len(frames)} frames of the benchmark movie, network input {h}x{w}, batch {args.batch}, "
          f"{args.threads} threads; PyTorch {torch.__version__} ({int8.precision}), onnxruntime {ort.__version__}")

    with torch.inference_mode():
        ref = fp32._network(xt).float().numpy()
        out_t8 = int8._network(xt).float().numpy()
        ms = {"torch int8": _timed(lambda: int8._network(xt), args.repeats, args.batch),
              "torch fp32": _timed(lambda: fp32._network(xt), args.repeats, args.batch)}

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    with tempfile.TemporaryDirectory() as tmp:
        f32, pre, q8 = (str(Path(tmp) / n) for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        torch.onnx.export(fp32.model.eval(), xt[:1], f32, input_names=["x"], output_names=["y"], opset_version=17,
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}}, dynamo=False)
        quant_pre_process(f32, pre)

        sessions = {"fp32": ort.InferenceSession(f32, opts, providers=["CPUExecutionProvider"])}
        for fmt in (QuantFormat.QDQ, QuantFormat.QOperator):
            quantize_static(pre, q8, calibration_reader(calib), quant_format=fmt, per_channel=True, reduce_range=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            sessions[f"int8 {fmt.name}"] = ort.InferenceSession(q8, opts, providers=["CPUExecutionProvider"])
            if fmt == QuantFormat.QDQ:
                qdq = Path(q8).read_bytes()  # for --command
    outs = {}
    for name, session in sessions.items():
        outs[f"onnxruntime {name}"] = session.run(None, {"x": x})[0]
        ms[f"onnxruntime {name}"] = _timed(lambda s=session: s.run(None, {"x": x}), args.repeats, args.batch)
    # the PyTorch int8 network again, after the others (a machine that slowed or sped up shows here)
    with torch.inference_mode():
        ms["torch int8 (again)"] = _timed(lambda: int8._network(xt), args.repeats, args.batch)

    print(f"import torch {t_torch:.2f} s, import onnxruntime {t_ort:.2f} s (fresh interpreters, best of "
          f"{args.imports}, an empty interpreter's start subtracted)")
    for name, (best, med) in ms.items():
        print(f"  {name:26s} {best:6.1f} ms/frame best, {med:6.1f} median")
    t8 = min(ms["torch int8"][0], ms["torch int8 (again)"][0])
    for name in ("onnxruntime int8 QDQ", "onnxruntime int8 QOperator"):
        print(f"{name} vs PyTorch int8: {t8 / ms[name][0]:.2f}x (best vs best; > 1: faster)")
    for name, out in (("torch int8", out_t8), *((n, o) for n, o in outs.items() if "int8" in n)):
        d = np.abs(out - ref)
        print(f"  {name} logits vs fp32: max {d.max():.2f}, mean {d.mean():.3f}")
    if args.command > 0:
        _in_command(qdq, args.command, args.threads, t_torch)

if __name__ == "__main__":
    main()
