"""Session 42: the records say what made the numbers. ``--precision fp32`` runs population's whole-frame count regressor
in fp32 too (it ran bf16 autocast whatever --precision said), and population's record says the regressor's arithmetic;
``livedead.json`` records the precision, backend and device the network ran as, as ``segment.json`` does; the records
of segment, population, livedead and identify give each input's sha256 and size (identify: also the AuxInfo its
z scale came from); ``int8_activations`` says whether int8 ran with 8- or 7-bit activations; ``evaluate``'s JSON
records the command, versions, absolute paths, the weights' sha256 and the data's fingerprint; ``render --simulate``
records each simulated embryo's seed."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from _cli_helpers import blob_frame
from _livedead_helpers import weights  # noqa: F401  (fixture)
from _train_data import train_tiny_run
from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _frames(folder: Path, n: int = 3) -> Path:
    from devolens.io.images import write_png

    folder.mkdir()
    for i in range(n):
        write_png(blob_frame(seed=i), folder / f"t{i + 1:03d}.png")
    return folder


# ------------------------------------------------------------------ 1. population's regressor under --precision
def _with_regressor(root: Path) -> None:
    """The tiny zoo's population model given a whole-frame regressor of the total (random weights), as the shipped
    card has one."""
    import torch
    from safetensors.numpy import load_file, save_file

    from devolens.models import zoo
    from devolens.models.architectures import build_regressor

    torch.manual_seed(0)
    net = build_regressor(1, 1, width=8).eval()
    folder = root / "population"
    arrays = dict(load_file(str(folder / "weights.safetensors")))
    arrays.update({f"total_regressor.{k}": v.numpy().astype(np.float32) for k, v in net.state_dict().items()})
    save_file(arrays, str(folder / "weights.safetensors"))
    card = json.loads((folder / "card.json").read_text())
    card["total_regressor"] = {"config": net.devolens_config, "weight_calibration": 0.5, "input_size": [32, 48]}
    (folder / "card.json").write_text(json.dumps(card))
    zoo.card.cache_clear()


@pytest.fixture
def native_bf16(monkeypatch):
    """A CPU with native bf16 (AVX-512 BF16/AMX), whatever this one has: the regressor's default arithmetic there."""
    import devolens.models.quantize as quantize

    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: True)


def test_without_native_bf16_the_regressor_runs_fp32_by_default(tiny_zoo, monkeypatch):
    """A CPU without native bf16 (AVX2 only) emulates it, slower than fp32: the default (and auto) runs fp32 there;
    bf16 asked for is kept."""
    import devolens.models.quantize as quantize
    from devolens.models import load
    from devolens.predict.population import _regressor_fast

    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: False)
    assert _regressor_fast("auto", True) is False and _regressor_fast("int8", True) is False
    assert _regressor_fast("bf16", True) is True
    _with_regressor(tiny_zoo)
    assert load("population").regressor_precision == "fp32"
    assert load("population", precision="bf16").regressor_precision == "bf16"


def _autocasts(monkeypatch) -> list:
    """The dtypes of every torch.autocast entered from now on (until ``monkeypatch`` is undone)."""
    import torch

    seen: list = []
    real = torch.autocast

    def recording(*args, **kwargs):
        seen.append(kwargs.get("dtype"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "autocast", recording)
    return seen


def test_precision_fp32_runs_the_population_regressor_in_fp32(tiny_zoo, native_bf16):
    """The regressor's ``fast`` came from ``fast`` alone: --precision fp32 still ran it under bf16 autocast, so totals
    differed from --no-fast's while the record said fp32."""
    import torch

    from devolens.models import load

    _with_regressor(tiny_zoo)
    frame = blob_frame(seed=3)
    pred = load("population", precision="fp32")
    assert pred.network is not None and pred.fast is False and pred.regressor_precision == "fp32"
    patch = pytest.MonkeyPatch()
    try:
        seen = _autocasts(patch)
        fp32 = pred.predict(frame)
    finally:
        patch.undo()
    assert torch.bfloat16 not in seen  # (the nuclei network runs fp32 too: no autocast at all)
    assert fp32 == load("population", fast=False).predict(frame)  # the same numbers as --no-fast
    seen = []
    patch = pytest.MonkeyPatch()
    try:  # (the default: the regressor under bf16 autocast, as the card's figures were measured)
        seen = _autocasts(patch)
        load("population").predict(frame)
    finally:
        patch.undo()
    assert torch.bfloat16 in seen


@pytest.mark.parametrize("options, expected", [({}, "bf16"), ({"fast": False}, "fp32"), ({"precision": "bf16"}, "bf16"),
                                               ({"precision": "auto"}, "bf16"),
                                               ({"precision": "auto", "fast": False}, "fp32")])
def test_the_population_regressor_keeps_its_arithmetic_otherwise(tiny_zoo, native_bf16, options, expected):
    """The default (the card's figures are measured so), --no-fast and --precision bf16 are as before."""
    from devolens.models import load

    _with_regressor(tiny_zoo)
    pred = load("population", **options)
    assert pred.regressor_precision == expected and pred.fast is (expected == "bf16")


def test_regressor_fast_by_precision(native_bf16):
    from devolens.predict.population import _regressor_fast

    assert _regressor_fast("fp32", True) is False and _regressor_fast("FP32", True) is False
    assert _regressor_fast("bf16", True) is True and _regressor_fast("bf16", False) is True
    for precision in ("auto", "int8"):  # int8 is the nuclei network's: the regressor as fast says
        assert _regressor_fast(precision, True) is True and _regressor_fast(precision, False) is False


def test_the_population_record_says_the_regressors_arithmetic_and_the_inputs(tiny_zoo, tmp_path, monkeypatch,
                                                                             native_bf16):
    from devolens.provenance import file_sha256

    _with_regressor(tiny_zoo)
    src = _frames(tmp_path / "movie")
    for precision, regressor in (("fp32", "fp32"), ("auto", "bf16")):
        out = tmp_path / f"{precision}.csv"
        assert main(["population", str(src), "--out", str(out), "--no-plot", "--precision", precision]) == 0
        record = json.loads(out.with_suffix(".json").read_text())
        assert record["regressor_precision"] == regressor
        assert "int8_activations" in record and record["int8_activations"] is None  # (no int8 in the tiny card)
        entry, = record["inputs"]
        assert entry["path"] == str(src.absolute()) and entry["files"] == 3
        assert entry["sha256"] == file_sha256(src)  # the folder holds its frames alone
        assert entry["bytes"] == sum(p.stat().st_size for p in src.iterdir())


# ------------------------------------------------------------------ 2. livedead.json: what the network ran as
def _well(h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(100, 300, size=(2, h, w)).astype(np.uint16)
    yy, xx = np.mgrid[:h, :w]
    for cy, cx, dead in ((30, 30, False), (60, 90, True), (70, 40, False)):
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 < 36
        img[0][blob] = 3000
        if dead:
            img[1][blob] = 3000
    return img


def test_livedead_json_records_the_precision_backend_and_device(weights, tmp_path):  # noqa: F811
    """livedead.json said only options.precision "auto"; segment.json says what ran."""
    from devolens.predict.livedead import LiveDeadPredictor

    tifffile.imwrite(tmp_path / "w.tif", _well(), metadata={"axes": "CYX"})
    for precision in ("fp32", "auto"):
        out = tmp_path / precision
        assert main(["segment", "livedead", str(tmp_path / "w.tif"), "--out", str(out), "--model", str(weights),
                     "--precision", precision, "--no-overlay", "--window", "64", "--overlap", "16"]) == 0
        record = json.loads((out / "livedead.json").read_text())
        ran = LiveDeadPredictor.load(weights, precision=precision).precision
        assert record["options"]["precision"] == precision and record["precision"] == ran != "auto"
        assert record["backend"] == "torch" and record["device"] == "cpu" and record["int8_activations"] is None
        entry, = record["inputs"]
        assert entry == {"path": str((tmp_path / "w.tif").absolute()), "bytes": (tmp_path / "w.tif").stat().st_size,
                         "sha256": _sha(tmp_path / "w.tif"), "sha256_of": "file bytes"}


def test_a_plate_records_its_wells_digest(weights, tmp_path):  # noqa: F811
    from devolens.provenance import files_sha256

    plate = tmp_path / "plate"
    plate.mkdir()
    for name in ("A1", "A2"):
        tifffile.imwrite(plate / f"{name}.tif", _well(), metadata={"axes": "CYX"})
    (plate / "notes.txt").write_text("not a well")  # no well: not in the digest
    out = tmp_path / "o"
    assert main(["segment", "livedead", str(plate), "--out", str(out), "--model", str(weights), "--no-overlay",
                 "--precision", "fp32", "--window", "64", "--overlap", "16"]) == 0
    record = json.loads((out / "livedead.json").read_text())
    entry, = record["inputs"]
    assert entry["files"] == 2 and entry["sha256"] == files_sha256(plate, [plate / "A1.tif", plate / "A2.tif"])
    assert record["precision"] == "fp32" and record["device"] == "cpu"


@pytest.mark.skipif(not shipped("livedead"), reason="livedead weights not shipped")
def test_livedead_json_says_which_int8_ran(tmp_path):
    from devolens.predict.livedead import LiveDeadPredictor
    from devolens.provenance import int8_activations

    tifffile.imwrite(tmp_path / "w.tif", _well(), metadata={"axes": "CYX"})
    assert main(["segment", "livedead", str(tmp_path / "w.tif"), "--out", str(tmp_path / "o"), "--no-overlay"]) == 0
    record = json.loads((tmp_path / "o" / "livedead.json").read_text())
    pred = LiveDeadPredictor.load("livedead")
    assert record["precision"] == pred.precision
    assert record["int8_activations"] == int8_activations(pred)
    assert (record["int8_activations"] in (7, 8)) == (pred.precision == "int8")


# ------------------------------------------------------------------ 3. int8_activations
def test_int8_activations_reads_the_network_built():
    from devolens.models import quantize
    from devolens.provenance import int8_activations

    def net(precision, built=None):
        return SimpleNamespace(precision=precision, _network=SimpleNamespace(_int8=built))

    assert int8_activations(net("bf16")) is None and int8_activations(net("fp32")) is None
    assert int8_activations(None) is None
    assert int8_activations(net("int8", SimpleNamespace(reduce_range=True))) == 7
    assert int8_activations(net("int8", SimpleNamespace(reduce_range=False))) == 8
    mp = pytest.MonkeyPatch()
    try:  # not built yet (no frame run): as quantize would build it here
        mp.setattr(quantize, "int8_fast_here", lambda: True)
        assert int8_activations(net("int8")) == 8
        mp.setattr(quantize, "int8_fast_here", lambda: False)
        assert int8_activations(net("int8")) == 7
    finally:
        mp.undo()


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_segment_json_says_which_int8_ran(tmp_path):
    from devolens.io.images import write_png
    from devolens.models import quantize

    write_png(blob_frame(96, 140, seed=1), tmp_path / "f.png")
    assert main(["segment", "nuclei", str(tmp_path / "f.png"), "--out", str(tmp_path / "o"), "--diameter",
                 "none"]) == 0
    record = json.loads((tmp_path / "o" / "segment.json").read_text())
    if record["precision"] == "int8":
        assert record["int8_activations"] == (8 if quantize.int8_fast_here() else 7)
    else:
        assert record["int8_activations"] is None


# ------------------------------------------------------------------ 4. segment.json and identify's inputs
def test_segment_json_records_the_inputs_sha256(tiny_zoo, tmp_path):
    from devolens.io.images import write_png
    from devolens.provenance import file_sha256

    write_png(blob_frame(seed=5), tmp_path / "one.png")
    assert main(["segment", "nuclei", str(tmp_path / "one.png"), "--out", str(tmp_path / "a")]) == 0
    record = json.loads((tmp_path / "a" / "segment.json").read_text())
    assert record["inputs"] == [{"path": str((tmp_path / "one.png").absolute()),
                                 "bytes": (tmp_path / "one.png").stat().st_size, "sha256": _sha(tmp_path / "one.png"),
                                 "sha256_of": "file bytes"}]
    assert "int8_activations" in record
    src = _frames(tmp_path / "frames", n=2)
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "b")]) == 0
    entry, = json.loads((tmp_path / "b" / "segment.json").read_text())["inputs"]
    assert entry["files"] == 2 and entry["sha256"] == file_sha256(src)
    (src / "readme.txt").write_text("no frame")  # not read: not in the digest
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "segment.json").read_text())["inputs"][0]["sha256"] == entry["sha256"]


def test_input_entry_of_a_file_and_a_folder(tmp_path):
    from devolens.provenance import file_sha256, input_entry

    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.bin").write_bytes(b"x" * 3_000_000)  # over one block
    (tmp_path / "d" / "sub" / "b.bin").write_bytes(b"yz")
    one = input_entry(tmp_path / "d" / "a.bin")
    assert one["sha256"] == _sha(tmp_path / "d" / "a.bin") and one["bytes"] == 3_000_000 and "files" not in one
    both = input_entry(tmp_path / "d")
    assert both["files"] == 2 and both["bytes"] == 3_000_002 and both["sha256"] == file_sha256(tmp_path / "d")
    assert input_entry(tmp_path / "d", [tmp_path / "d" / "a.bin"])["files"] == 1


def _epic(folder: Path) -> Path:
    from _lineage_builders import write_cd

    folder.mkdir()
    rows = []
    for t in range(1, 5):
        for k, cell in enumerate(("ABa", "ABp", "EMS", "P2")):
            rows.append((cell, t, 4.0 + k, 300 + 40 * k + t, 250 + 20 * k, 60, -5))
    cd = write_cd(folder / "CD20240101_TEST_L1.csv", rows)
    (folder / "20240101_TEST_L1AuxInfo.csv").write_text(
        "name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"
        "20240101_TEST_L1,0.5,-24.2,380,384,598,396,48.4,39.5,4.86,89,5.7471,PDR\n")
    (folder / "TIME20240101_TEST_L1.csv").write_text(
        "".join(f"20240101_TEST_L1\t{t}\t{90 * (t - 1)}\t90\n" for t in range(1, 5)))
    return cd


def test_identify_records_the_table_and_the_auxinfo_it_read(tmp_path):
    from devolens.cli.identify import _table_inputs, _zscale_record
    from devolens.io.tables import read_positions

    cd = _epic(tmp_path / "epic")
    aux = tmp_path / "epic" / "20240101_TEST_L1AuxInfo.csv"
    df = read_positions(cd)
    z = _zscale_record(None, df, SimpleNamespace(attrs={}), cd)
    assert z["by"] == "table" and z["value"] == pytest.approx(5.7471)
    assert z["file"]["path"] == str(aux.absolute()) and z["file"]["sha256"] == _sha(aux)
    inputs = _table_inputs(cd, df.attrs)
    assert [e["path"] for e in inputs] == [str(p.absolute()) for p in (cd, aux, tmp_path / "epic" /
                                                                       "TIME20240101_TEST_L1.csv")]
    assert inputs[0]["sha256"] == _sha(cd) and inputs[0]["bytes"] == cd.stat().st_size
    # given on the command line: no file read for it
    assert "file" not in _zscale_record(3.0, df, SimpleNamespace(attrs={}), cd)


@pytest.mark.skipif(not shipped("identity"), reason="identity weights not shipped")
def test_identify_json_has_the_inputs(tmp_path, capsys):
    cd = _epic(tmp_path / "epic")
    out = tmp_path / "names.csv"
    assert main(["identify", str(cd), "--out", str(out), "--smooth", "none"]) == 0
    capsys.readouterr()
    record = json.loads((tmp_path / "names.json").read_text())
    assert record["inputs"][0]["sha256"] == _sha(cd) and len(record["inputs"]) == 3
    assert record["zscale"]["file"]["sha256"] == _sha(tmp_path / "epic" / "20240101_TEST_L1AuxInfo.csv")


# ------------------------------------------------------------------ 5. evaluate's provenance
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("ev42"))


def test_evaluate_json_records_how_its_metrics_were_made(tiny_run, tmp_path, monkeypatch, capsys):
    import shutil

    from devolens.provenance import version

    run, data = tiny_run
    run_json = json.loads((run / "run.json").read_text())
    monkeypatch.chdir(run.parent)
    argv = ["devolens", "evaluate", run.name, "--data", data.name]
    monkeypatch.setattr(sys, "argv", argv)
    assert main(argv[1:]) == 0
    saved = json.loads((run / f"eval_{data.name}.json").read_text())
    assert saved["run"] == run.name and saved["data"] == data.name  # (the keys kept, as given)
    assert saved["command"] == f"devolens evaluate {run.name} --data {data.name}"
    assert saved["devolens"] == version() and saved["torch"]
    assert saved["run_path"] == str(run.absolute()) and saved["data_path"] == str(data.absolute())
    assert saved["weights_path"] == str((run / "best.safetensors").absolute())
    assert saved["weights_sha256"] == _sha(run / "best.safetensors")
    assert saved["data_fingerprint"] == run_json["data"]["fingerprint"] == saved["run_data_fingerprint"]
    # a zoo model's folder given as --weights: its weights' sha256; no run's data fingerprint
    folder = tmp_path / "zoo_nuclei"
    folder.mkdir()
    shutil.copy(run / "best.safetensors", folder / "weights.safetensors")
    (folder / "card.json").write_text(json.dumps({"name": "mine", "task": "nuclei", "input": {"scale": 1.0}}))
    from devolens.train.evaluate import evaluate_run

    got = evaluate_run(run, data, weights=folder)
    assert got["weights_path"] == str((folder / "weights.safetensors").absolute())
    assert got["weights_sha256"] == _sha(folder / "weights.safetensors") and got["run_data_fingerprint"] is None
    assert got["command"] == "devolens evaluate" or got["command"].startswith("devolens evaluate")
    capsys.readouterr()


def test_evaluate_records_the_zoo_weights_sha256(tiny_run, tiny_zoo):
    """--weights zoo:NAME: the sha256 of the zoo model's weights file (a network of another shape is refused as
    before, after the record's weights are named: nothing to score here but the key)."""
    from devolens.models import zoo
    from devolens.train.evaluate import _provenance

    run, data = tiny_run
    got = _provenance(run, data, "zoo:nuclei", None, None, 4)
    assert got["weights_path"] == str((tiny_zoo / "nuclei" / "weights.safetensors").absolute())
    assert got["weights_sha256"] == zoo.weights_sha256("nuclei") == _sha(tiny_zoo / "nuclei" / "weights.safetensors")


# ------------------------------------------------------------------ 6. render --simulate: the seeds
def test_render_json_records_each_simulated_embryos_seed(tmp_path, capsys):
    from devolens.render.dataset import simulate_tables

    out = tmp_path / "r"
    assert main(["-q", "render", "--simulate", "2", "--sim-cells", "6", "--out", str(out), "--size", "48", "64",
                 "--every", "30"]) == 0
    record = json.loads((out / "render.json").read_text())
    tables = simulate_tables(2, seed=0, n_cells=6)
    assert [s["embryo"] for s in record["simulated"]] == [t["embryo"].iloc[0] for t in tables]
    for entry in record["simulated"]:
        assert entry["embryo"] == f"sim{entry['seed']}" and entry["embryo"] in record["embryos"]
        assert entry["command"] == f"devolens simulate embryo --seed {entry['seed']} --cells 6"
    assert main(["render", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "simN is `devolens simulate embryo --seed N`" in help_text.replace("│ ", "").replace(" │", "")
