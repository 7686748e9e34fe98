"""The onnx backend: what it needs (onnx and onnxruntime, one error naming those missing), ``auto`` kept on torch,
an export that fails as one error, and a model card's precision giving way to the fp32 that onnxruntime runs.

onnx and onnxruntime are optional and usually absent: most tests stand in for them (modules in ``sys.modules``, a
session that runs the torch network); the last ones need the real packages and skip without them."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
import torch

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_network, tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from devolens.predict import _engine
from devolens.predict.segment import NucleiPredictor


def _tiny():
    return tiny_network(3)


def _packages(monkeypatch, *present: str) -> None:
    """Make exactly ``present`` of onnx / onnxruntime importable (empty stand-in modules; the others fail)."""
    import importlib.machinery

    for name in ("onnx", "onnxruntime"):
        module = None
        if name in present:
            module = types.ModuleType(name)
            module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # (torch._dynamo looks modules up by spec)
        monkeypatch.setitem(sys.modules, name, module)


class _TorchSession:
    """Stands in for an onnxruntime session: runs the float network with torch."""

    def __init__(self, model):
        self.model = model

    def run(self, names, feeds):
        with torch.inference_mode():
            return [self.model(torch.from_numpy(feeds["x"])).float().numpy()]


@pytest.fixture
def fake_onnx(monkeypatch):
    """Both packages 'installed', the session a :class:`_TorchSession` (no export)."""
    _packages(monkeypatch, "onnx", "onnxruntime")
    monkeypatch.setattr(_engine.ImageNetwork, "_onnx_session", lambda self: _TorchSession(self.model))


@pytest.mark.parametrize("present,missing", [(("onnxruntime",), "onnx"), (("onnx",), "onnxruntime"),
                                             ((), "onnx and onnxruntime")])
def test_onnx_backend_names_every_missing_package(monkeypatch, present, missing):
    """onnxruntime alone passed the check, and the export then failed with torch's traceback (onnx missing)."""
    _packages(monkeypatch, *present)
    assert _engine.onnx_missing() == [p for p in ("onnx", "onnxruntime") if p not in present]
    assert not _engine.onnxruntime_available()
    with pytest.raises(DevolensError) as info:
        NucleiPredictor(_tiny(), backend="onnx")
    message = str(info.value)
    assert f"missing here: {missing};" in message
    assert 'pip install "devolens[onnx]"' in message and "'torch'" in message and "\n" not in message
    # auto: torch, silently, whatever is missing
    assert NucleiPredictor(_tiny(), backend="auto", precision="fp32").network.backend == "torch"


def test_auto_takes_onnx_only_where_torch_would_run_fp32(fake_onnx):
    """auto chose onnxruntime (fp32) whenever it imported, though slower than torch's int8/bf16 (and refused a bf16
    asked for): now only in place of torch's fp32, which it runs about twice as fast."""
    assert _engine.onnxruntime_available()
    auto = NucleiPredictor(_tiny(), backend="auto", precision="bf16", scale=1.0)
    assert (auto.network.backend, auto.network.precision) == ("torch", "bf16")
    for options in ({"precision": "fp32"}, {"fast": False}):
        auto = NucleiPredictor(_tiny(), backend="auto", scale=1.0, **options)
        assert (auto.network.backend, auto.network.precision) == ("onnx", "fp32")
    onnx = NucleiPredictor(_tiny(), backend="onnx", scale=1.0)
    assert onnx.network.backend == "onnx" and onnx.network.precision == "fp32"
    assert onnx.predict(blob_frame(64, 64)).labels.shape == (64, 64)


def test_auto_falls_back_to_torch_where_the_export_fails(monkeypatch):
    _packages(monkeypatch, "onnx", "onnxruntime")
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("unsupported op")))
    auto = NucleiPredictor(_tiny(), backend="auto", precision="fp32", scale=1.0)
    assert (auto.network.backend, auto.network.precision) == ("torch", "fp32")
    assert auto.predict(blob_frame(64, 64)).labels.shape == (64, 64)


def test_an_export_that_fails_is_one_error_at_construction(monkeypatch):
    """An operation the exporter cannot write came out of the first prediction as torch's traceback."""
    _packages(monkeypatch, "onnx", "onnxruntime")

    def export(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::frobnicate' to ONNX opset version 17 is not supported.\n"
                           "Please feel free to request support")

    monkeypatch.setattr(torch.onnx, "export", export)
    with pytest.raises(DevolensError) as info:
        NucleiPredictor(_tiny(), backend="onnx").predict(blob_frame(64, 64))
    message = str(info.value)
    assert "could not be exported to ONNX" in message and "aten::frobnicate" in message
    assert "request support" not in message and "'torch'" in message


def test_a_session_that_fails_to_load_is_one_error(monkeypatch):
    _packages(monkeypatch, "onnx", "onnxruntime")

    def session(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 10 : INVALID_GRAPH : opset 99 unknown")

    class SessionOptions:
        def add_session_config_entry(self, key, value):
            pass

    monkeypatch.setattr(sys.modules["onnxruntime"], "SessionOptions", SessionOptions, raising=False)
    monkeypatch.setattr(sys.modules["onnxruntime"], "InferenceSession", session, raising=False)
    monkeypatch.setattr(torch.onnx, "export", lambda model, dummy, buffer, **kw: buffer.write(b"graph"))
    with pytest.raises(DevolensError, match="could not be loaded by onnxruntime .*INVALID_GRAPH"):
        NucleiPredictor(_tiny(), backend="onnx")


def test_onnx_backend_on_a_gpu_device_is_refused(fake_onnx, monkeypatch):
    """onnxruntime runs on the CPU: a GPU device with it was a torch error (the network on the GPU, the export's
    input on the CPU)."""
    monkeypatch.setattr(_engine, "resolve_device", lambda device: "cuda")
    with pytest.raises(DevolensError, match="runs the network on the CPU .*not on cuda"):
        NucleiPredictor(_tiny(), backend="onnx", device="cuda")


def test_a_cards_precision_gives_way_on_the_onnx_backend_a_users_is_refused(fake_onnx):
    """The population card's nuclei_precision (bf16) was refused with the onnx backend as if the user had asked."""
    from devolens.models.quantize import CardPrecision, PrecisionWarning, resolve_precision

    model = _tiny()
    for asked in ("bf16", "int8"):
        with pytest.warns(PrecisionWarning, match=f"fp32, not in the {asked} its model card sets"):
            got = resolve_precision(model, CardPrecision(asked), {"input": [0.1, 0]}, fast=True, device="cpu",
                                    multiple=16, backend="onnx")
        assert got == "fp32"
        with pytest.raises(DevolensError, match=f"'{asked}' is not available"):
            resolve_precision(model, asked, {"input": [0.1, 0]}, fast=True, device="cpu", multiple=16, backend="onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the card's bf16 runs as such on torch: nothing to say
        assert resolve_precision(model, CardPrecision("bf16"), None, fast=True, device="cpu", multiple=16) == "bf16"
    # through the predictor, as the population model passes its card's precision to the nuclei model
    with pytest.warns(PrecisionWarning):
        pred = NucleiPredictor(_tiny(), backend="onnx", precision=CardPrecision("bf16"))
    assert pred.network.precision == "fp32"


def test_cli_onnx_without_onnx_is_one_error_line_and_no_output(tiny_zoo, tmp_path, monkeypatch, capsys):
    """The walkthrough: onnxruntime installed, onnx not: `segment nuclei --backend onnx` ended in torch's
    OnnxExporterError traceback; `--backend auto` the same."""
    from devolens.cli import main
    from devolens.io.images import write_png

    _packages(monkeypatch, "onnxruntime")
    frame = tmp_path / "f.png"
    write_png(blob_frame(64, 64), frame)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(frame), "--out", str(out), "--backend", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "missing here: onnx;" in err and "devolens[onnx]" in err
    assert [line for line in err.splitlines() if line.startswith("error:")] and not out.exists()
    assert main(["segment", "nuclei", str(frame), "--out", str(out), "--backend", "auto"]) == 0
    import json

    assert json.loads((out / "segment.json").read_text())["backend"] == "torch"


# ---------------------------------------------------------------------------- with the real packages
def test_real_onnx_backend_matches_torch_fp32():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    image = blob_frame(96, 128)
    onnx = NucleiPredictor(_tiny(), backend="onnx", scale=1.0).predict(image)
    ref = NucleiPredictor(_tiny(), backend="torch", precision="fp32", scale=1.0).predict(image)
    assert np.abs(onnx.probability - ref.probability).max() < 1e-4
    assert np.array_equal(onnx.labels, ref.labels)


def test_real_onnx_session_uses_torchs_threads_without_spinning(monkeypatch):
    """onnxruntime's own default (every core, idle threads spinning) took the CPU from the threads that post-process
    and write beside the network: end to end 107-113 s for 140 video frames, 81-85 s with these options."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        pred = NucleiPredictor(_tiny(), backend="onnx", scale=1.0)
    finally:
        torch.set_num_threads(threads)
    options = pred.network._lazy["ort"].get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"




def test_population_cards_bf16_gives_way_on_the_onnx_backend(tiny_zoo, fake_onnx, monkeypatch):
    """`devolens population --backend onnx` was refused ("precision 'bf16' is not available with the onnx
    backend"): the population card's nuclei_precision, which the user never gave."""
    import json

    from devolens.models import load, zoo
    import devolens.models.quantize as q
    from devolens.models.quantize import PrecisionWarning

    monkeypatch.setattr(q, "bf16_fast_here", lambda: True)  # (else fp32 anyway: test_s39_cpu_arith)
    card = tiny_zoo / "population" / "card.json"
    card.write_text(json.dumps({**json.loads(card.read_text()), "nuclei_precision": "bf16"}))
    zoo.card.cache_clear()
    with pytest.warns(PrecisionWarning, match="not in the bf16 its model card sets"):
        pop = load("population", backend="onnx")
    assert pop.precision == "fp32"
    with pytest.raises(DevolensError, match="'bf16' is not available"):  # the user's bf16: refused
        load("population", backend="onnx", precision="bf16")
    assert load("population").precision == "bf16"  # torch: the card's bf16, as before
