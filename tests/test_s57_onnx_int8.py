"""The nuclei model's shipped onnxruntime graphs (scripts/zoo_onnx.py, devolens.predict._ort): ``backend="onnx"``
runs onnxruntime's int8 network from them and the size model's encoder in onnxruntime, with onnxruntime alone (no
onnx, no export); the graphs' tensors load from safetensors; the files travel with the card (sha256, export).

These need onnxruntime (the ``onnx`` extra; the ``dev`` extra installs it too) and skip without it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from devolens.errors import DevolensError  # noqa: E402
from devolens.models import zoo  # noqa: E402
from devolens.predict import _ort  # noqa: E402

FOLDER = Path(zoo.__file__).parent / "nuclei"


def _card() -> dict:
    return json.loads((FOLDER / "card.json").read_text(encoding="utf-8"))


def _embryo(seed: int = 0, n: int = 40, size: int = 320) -> np.ndarray:
    """A grey uint8 frame of ``n`` blurred nuclei, about 27 px wide (near the card's reference size), apart."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    img = np.zeros((size, size), np.float32)
    centres: list[tuple[float, float]] = []
    while len(centres) < n:  # apart from one another: separate nuclei, as the size model counts them
        y, x = rng.uniform(0.1, 0.9, 2) * size
        if any(np.hypot(y - cy, x - cx) < 34 for cy, cx in centres):
            continue
        centres.append((y, x))
        r = rng.uniform(12, 15)
        img = np.maximum(img, ((yy - y) ** 2 + (xx - x) ** 2 < r * r) * rng.uniform(0.6, 1.0))
    img = gaussian_filter(img, 2.0) + rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def predictors():
    onnx = zoo.load("nuclei", backend="onnx", precision="int8", diameter=None)
    fp32 = zoo.load("nuclei", precision="fp32", diameter=None)
    return onnx, fp32


def test_the_card_names_its_graphs_and_their_tensors():
    card = _card()
    for which in _ort.GRAPHS:
        graph, tensors = _ort.onnx_files(card, which)
        assert (FOLDER / graph).is_file() and (FOLDER / tensors).is_file()
        assert card["onnx"][which]["external"]
    # the graphs and the int8 tensors are recorded beside the size models, so that a copy is checked
    for name in ("onnx_int8.onnx", "onnx_int8.safetensors", "onnx_encoder.onnx"):
        assert name in card["files_sha256"]
    from safetensors.numpy import load_file

    # the encoder's tensors are the shipped weights, by name: no second copy of them
    assert set(card["onnx"]["encoder"]["external"]) <= set(load_file(FOLDER / "weights.safetensors"))
    assert set(card["onnx"]["int8"]["external"]) == set(load_file(FOLDER / "onnx_int8.safetensors"))
    assert "python scripts/zoo_onnx.py nuclei" in card["onnx"]["command"]


def test_the_onnx_backend_runs_the_shipped_int8_graph_without_the_onnx_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # no exporter: the shipped graph needs onnxruntime only
    pred = zoo.load("nuclei", backend="onnx", precision="int8", diameter=None)
    assert (pred.network.backend, pred.network.precision) == ("onnx", "int8")
    result = pred.predict(_embryo())
    assert 30 <= result.count <= 50  # (40 discs drawn)


def test_int8_graph_probabilities_lie_near_the_fp32_networks(predictors):
    onnx, fp32 = predictors
    img = _embryo(1)
    a, b = onnx.predict(img), fp32.predict(img)
    assert a.probability.shape == b.probability.shape == img.shape
    assert np.abs(a.probability - b.probability).mean() < 0.02
    assert abs(a.count - b.count) <= 2


def test_the_size_model_reads_the_encoder_graph_as_the_fp32_encoder(predictors, monkeypatch):
    from devolens.predict import sizing

    onnx, fp32 = predictors
    img = _embryo(2)
    assert onnx.network.onnx_encoder and not fp32.network.onnx_encoder
    calls = []
    real = type(onnx.network).encoder_features
    monkeypatch.setattr(type(onnx.network), "encoder_features", lambda self, x: calls.append(x.shape) or real(self, x))
    a, b = sizing.style_features(onnx, img), sizing.style_features(fp32, img)
    assert calls, "the onnx predictor's features came from torch"
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_auto_on_the_onnx_backend_takes_int8_on_x86_with_avx2_or_vnni(monkeypatch):
    from devolens.models import quantize

    for flags, int8 in (({"avx2", "fma"}, True), ({"avx512_vnni"}, True), ({"avx512f", "avx512bw"}, False),
                        (set(), False)):
        monkeypatch.setattr(quantize, "_cpu_flags", lambda f=frozenset(flags): f)
        monkeypatch.setattr(quantize, "int8_fast_here", lambda f=flags: bool(f & {"avx512_vnni"}))
        assert quantize.ort_int8_here() is int8
    monkeypatch.setattr(quantize, "ort_int8_here", lambda: True)
    assert zoo.load("nuclei", backend="onnx").network.precision == "int8"
    _fp32_export(fast=False)  # (--no-fast: fp32)
    monkeypatch.setattr(quantize, "ort_int8_here", lambda: False)
    _fp32_export()  # a CPU without int8 instructions: fp32


def _fp32_export(**options) -> None:
    """The onnx backend in fp32 runs torch's export of the network, which needs the onnx package."""
    if _onnx_installed():
        assert zoo.load("nuclei", backend="onnx", **options).network.precision == "fp32"
    else:
        with pytest.raises(DevolensError, match="onnx to export the network in fp32.*precision"):
            zoo.load("nuclei", backend="onnx", **options)


def _onnx_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnx") is not None


def _copy(tmp_path: Path) -> tuple[Path, dict]:
    folder = tmp_path / "nuclei"
    shutil.copytree(FOLDER, folder)
    return folder, _card()


def test_a_missing_tensors_file_is_one_error(tmp_path):
    folder, card = _copy(tmp_path)
    (folder / "onnx_int8.safetensors").unlink()
    with pytest.raises(DevolensError, match="cannot read the model's ONNX int8 graph"):
        _ort.session(folder, card, "int8")


def test_tensors_that_do_not_fit_the_graph_are_one_error(tmp_path):
    from safetensors.numpy import load_file, save_file

    folder, card = _copy(tmp_path)
    tensors = load_file(folder / "onnx_int8.safetensors")
    first = card["onnx"]["int8"]["external"][0]
    save_file({k: v for k, v in tensors.items() if k != first}, folder / "onnx_int8.safetensors")
    with pytest.raises(DevolensError, match="lacks 1 of the tensors"):
        _ort.session(folder, card, "int8")
    tensors[first] = np.zeros((3, 3), tensors[first].dtype)  # another shape
    save_file(tensors, folder / "onnx_int8.safetensors")
    with pytest.raises(DevolensError, match="onnxruntime cannot load the model's ONNX int8 graph"):
        _ort.session(folder, card, "int8")
    with pytest.raises(DevolensError, match="ships no ONNX int8 graph"):
        _ort.session(folder, {"onnx": {}}, "int8")


def test_an_exported_model_keeps_its_graphs(tmp_path):
    from devolens.models.export import export_shipped

    out = tmp_path / "mine"
    export_shipped("nuclei", out)
    for name in ("onnx_int8.onnx", "onnx_int8.safetensors", "onnx_encoder.onnx"):
        assert (out / name).read_bytes() == (FOLDER / name).read_bytes()
    pred = zoo.load(str(out), backend="onnx", precision="int8", diameter=None)
    assert pred.network.precision == "int8"


def _write(path: Path, img: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, img)


_BLOCKED = r'''
import importlib.abc, sys


class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked in this test")


sys.meta_path.insert(0, NoTorch())
from devolens.cli import main

code = main(sys.argv[1:])
assert "torch" not in sys.modules
sys.exit(code)
'''


@pytest.mark.slow
def test_segment_with_the_onnx_backend_never_imports_torch(tmp_path):
    """The whole command, with torch unimportable: the int8 graph, the size model's encoder graph (--diameter auto,
    the default) and test-time views in NumPy; the labels are those of the same predictor in a process with torch."""
    import subprocess

    import tifffile

    img = _embryo(3)
    _write(tmp_path / "embryo.png", img)
    out = tmp_path / "out"
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(zoo.__file__).parents[3])}
    done = subprocess.run([sys.executable, "-c", _BLOCKED, "-q", "segment", "nuclei", str(tmp_path / "embryo.png"),
                           "--out", str(out), "--backend", "onnx", "--precision", "int8", "--tta", "2",
                           "--threads", "1"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    labels = tifffile.imread(next((out / "labels").glob("*_labels.tif")))
    pred = zoo.load("nuclei", backend="onnx", precision="int8", tta=2)
    assert np.array_equal(labels > 0, pred.predict(img, diameter="auto").labels > 0)
    assert int(labels.max()) == pred.predict(img, diameter="auto").count


def test_threads_reach_the_onnx_session(tmp_path, monkeypatch):
    """--threads reached torch only, after the predictor (and its onnx session) was built: 1 asked, 2 used."""
    from devolens.cli import main

    seen = []
    real = _ort.session
    monkeypatch.setattr(_ort, "session", lambda folder, card, which, threads=1: seen.append((which, threads))
                        or real(folder, card, which, threads))
    _write(tmp_path / "embryo.png", _embryo(4))
    assert main(["-q", "segment", "nuclei", str(tmp_path / "embryo.png"), "--out", str(tmp_path / "o"),
                 "--backend", "onnx", "--precision", "int8", "--threads", "1", "--diameter", "none"]) == 0
    assert ("int8", 1) in seen
    assert _ort.THREADS == 1
    assert main(["-q", "segment", "nuclei", str(tmp_path / "embryo.png"), "--out", str(tmp_path / "p"),
                 "--backend", "onnx", "--precision", "int8", "--diameter", "none"]) == 0
    assert _ort.THREADS is None  # (a later command without --threads: its own choice, not the earlier one's)


def test_the_torch_network_is_built_only_when_asked_for(monkeypatch):
    from devolens.predict import _engine

    built = []
    real = _engine.load_zoo_network
    monkeypatch.setattr(_engine, "load_zoo_network", lambda *a: built.append(1) or real(*a))
    monkeypatch.setattr("devolens.predict.segment.load_zoo_network", _engine.load_zoo_network)
    pred = zoo.load("nuclei", backend="onnx", precision="int8")
    pred.predict(_embryo(5), diameter="auto")  # (the encoder graph reads the size model's features)
    assert built == []
    model = pred.network.model  # asked for: built once, for this network and its views
    assert built == [1] and pred.network.at_scale(0.25).model is model
    # fp32 on the onnx backend is torch's export of the network: built at once
    if _onnx_installed():
        zoo.load("nuclei", backend="onnx", precision="fp32")
        assert built == [1, 1]


def test_the_record_says_onnxruntime_ran_its_int8_graph(tmp_path):
    """segment.json said int8_activations 7 on an AVX2 CPU (PyTorch's reduced grid) for onnxruntime's graph, whose
    activations are uint8 everywhere, and named torch's version only."""
    import importlib.metadata

    from devolens.cli import main

    _write(tmp_path / "embryo.png", _embryo(6))
    assert main(["-q", "segment", "nuclei", str(tmp_path / "embryo.png"), "--out", str(tmp_path / "o"),
                 "--backend", "onnx", "--precision", "int8", "--diameter", "none"]) == 0
    record = json.loads((tmp_path / "o" / "segment.json").read_text())
    assert (record["backend"], record["precision"], record["int8_activations"]) == ("onnx", "int8", 8)
    assert record["onnxruntime"] == importlib.metadata.version("onnxruntime")
    assert main(["-q", "segment", "nuclei", str(tmp_path / "embryo.png"), "--out", str(tmp_path / "t"),
                 "--diameter", "none"]) == 0
    assert json.loads((tmp_path / "t" / "segment.json").read_text())["onnxruntime"] is None


def test_a_damaged_graph_file_is_named_as_the_onnx_backends(tmp_path):
    from devolens.models.export import export_shipped

    out = tmp_path / "mine"
    export_shipped("nuclei", out)
    data = bytearray((out / "onnx_int8.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (out / "onnx_int8.safetensors").write_bytes(bytes(data))
    with pytest.warns(Warning, match="ONNX file .*onnx_int8.safetensors.*the onnx backend's results"):
        zoo.load(str(out), backend="onnx", precision="int8")


def test_a_hand_edited_onnx_entry_is_refused_in_one_line(tmp_path):
    from devolens.models.export import export_shipped

    out = tmp_path / "mine"
    export_shipped("nuclei", out)
    card = json.loads((out / "card.json").read_text())
    card["onnx"]["int8"]["tensors"] = "../x.safetensors"
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(DevolensError, match="onnx.int8 entry is not valid"):
        zoo.load(str(out), backend="onnx", precision="int8")


def test_an_int8_graph_made_from_other_weights_is_refused(tmp_path):
    """New weights shipped without scripts/zoo_onnx.py run again: the int8 graph would run the old network."""
    folder, card = _copy(tmp_path)
    assert card["onnx"]["weights_sha256"] == card["weights_sha256"]  # (the shipped graph: made from these weights)
    card["weights_sha256"] = "0" * 64
    with pytest.raises(DevolensError, match="made from other weights"):
        _ort.session(folder, card, "int8")
    _ort.session(folder, card, "encoder")  # (the encoder graph reads the weights themselves)
