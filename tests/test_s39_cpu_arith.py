"""Session 39, the arithmetic chosen on CPUs without VNNI/AMX or native bf16 (an AVX2-only AMD EPYC): int8 runs there
with 7-bit activations (oneDNN's non-VNNI kernels saturate 16-bit sums of 8-bit products) and ``auto`` takes it (3x
faster than fp32, the same F1); int8 asked for on a CPU with neither VNNI/AMX nor AVX2 runs with a note; population's
nuclei run in fp32 rather than the card's bf16 where bf16 would be emulated (about 2x slower per frame)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

import devolens.models.quantize as q
from _cli_helpers import blob_frame
from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.models.quantize import PrecisionWarning, calibrate, int8_supported, resolve_precision
from devolens.models.unet_lite import UnetLite

needs_int8 = pytest.mark.skipif(not int8_supported(), reason="this PyTorch build has no oneDNN int8 engine")


def _net() -> UnetLite:
    torch.manual_seed(0)
    return UnetLite("resnet18", 1, 3, 3, (32, 16, 8)).eval().fuse_batchnorm()


def _params(net: UnetLite) -> dict:
    return calibrate(net, [torch.rand(1, 1, 32, 32)])


def _png(path: Path) -> Path:
    from devolens.io.images import write_png

    write_png(blob_frame(48, 70, seed=0, rgb=False), path)
    return path


# ------------------------------------------------------------------ 1. int8 without VNNI/AMX
@needs_int8
@pytest.mark.parametrize("bf16", [False, True])
def test_int8_on_a_cpu_neither_vnni_nor_avx2_runs_with_a_warning(monkeypatch, bf16):
    net = _net()
    params = _params(net)
    monkeypatch.setattr(q, "int8_fast_here", lambda: False)
    monkeypatch.setattr(q, "int8_reduced_here", lambda: False)
    monkeypatch.setattr(q, "bf16_fast_here", lambda: bf16)
    with pytest.warns(PrecisionWarning) as seen:
        assert resolve_precision(net, "int8", params, fast=True, device="cpu", multiple=32) == "int8"
    words = " ".join(str(seen[0].message).split())
    assert "measured on x86 CPUs with AVX2 or VNNI/AMX only" in words
    assert "may run slower than fp32" in words and "lose accuracy" in words
    assert f"precision='auto' picks {'bf16' if bf16 else 'fp32'} here" in words  # (Python's words: no flags)
    assert resolve_precision(net, "auto", params, fast=True, device="cpu", multiple=32) == ("bf16" if bf16 else "fp32")


@needs_int8
def test_avx2_without_native_bf16_takes_int8_with_seven_bit_activations(monkeypatch):
    net = _net()
    params = _params(net)
    monkeypatch.setattr(q, "int8_fast_here", lambda: False)
    monkeypatch.setattr(q, "int8_reduced_here", lambda: True)
    monkeypatch.setattr(q, "bf16_fast_here", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        assert resolve_precision(net, "auto", params, fast=True, device="cpu", multiple=32) == "int8"
        assert resolve_precision(net, "int8", params, fast=True, device="cpu", multiple=32) == "int8"
    assert resolve_precision(net, "auto", params, fast=False, device="cpu", multiple=32) == "fp32"
    seven = q.quantize(net, params)  # reduce_range by default without VNNI/AMX
    assert seven.reduce_range
    for name, (scale, zero) in params.items():  # the same range of values, on 0..127
        s7, z7 = seven.params[name]
        assert 0 <= z7 <= 127 and s7 == pytest.approx(scale * 255 / 127)
        assert (127 - z7) * s7 == pytest.approx((255 - zero) * scale, rel=0.02, abs=2 * s7)
    monkeypatch.setattr(q, "int8_fast_here", lambda: True)
    assert not q.quantize(net, params).reduce_range  # VNNI/AMX: the card's 8-bit activations
    x = torch.rand(1, 1, 32, 32)
    with torch.inference_mode():
        ref = net(x)
        err8 = (q.quantize(net, params, reduce_range=False)(x) - ref).abs().mean()
        err7 = (q.quantize(net, params, reduce_range=True)(x) - ref).abs().mean()
    assert err7 < 4 * err8 + 1e-6  # half as fine a grid: about twice the error, not a broken network


def test_seven_bit_keeps_the_range():
    scale, zero = q.seven_bit((0.02, 128))
    assert zero == 64 and scale == pytest.approx(0.02 * 255 / 127)
    assert q.seven_bit((0.5, 0)) == (pytest.approx(0.5 * 255 / 127), 0)


@needs_int8
def test_int8_with_vnni_or_chosen_by_auto_says_nothing(monkeypatch):
    net = _net()
    params = _params(net)
    monkeypatch.setattr(q, "int8_fast_here", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        assert resolve_precision(net, "int8", params, fast=True, device="cpu", multiple=32) == "int8"
        assert resolve_precision(net, "auto", params, fast=True, device="cpu", multiple=32) == "int8"


@needs_int8
@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model (int8 calibration)")
def test_cli_precision_int8_without_vnni_is_one_note(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(q, "int8_fast_here", lambda: False)
    monkeypatch.setattr(q, "int8_reduced_here", lambda: False)
    monkeypatch.setattr(q, "bf16_fast_here", lambda: False)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        _png(folder / f"f{i}.png")
    out = tmp_path / "out"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay", "--diameter", "none",
                 "--precision", "int8"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "measured on x86 CPUs" in line]
    assert len(notes) == 1 and notes[0].startswith("note: "), err
    assert "--precision int8 may run slower than fp32" in " ".join(err.split()) and "--precision auto picks fp32" in err
    assert json.loads((out / "segment.json").read_text())["precision"] == "int8"


# ------------------------------------------------------------------ 2. population's bf16 nuclei where bf16 is emulated
@pytest.fixture
def bf16_card(tiny_zoo):  # noqa: F811
    from devolens.models import zoo

    card = tiny_zoo / "population" / "card.json"
    card.write_text(json.dumps({**json.loads(card.read_text()), "nuclei_precision": "bf16"}))
    zoo.card.cache_clear()
    return tiny_zoo


def test_population_runs_fp32_where_bf16_is_emulated(bf16_card, monkeypatch):
    from devolens.models import load

    monkeypatch.setattr(q, "bf16_fast_here", lambda: True)
    assert load("population").precision == "bf16"  # the card's, where the CPU has native bf16
    monkeypatch.setattr(q, "bf16_fast_here", lambda: False)  # AVX2 only: emulated, ~2x slower than fp32
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        assert load("population").precision == "fp32"
        assert load("population", precision="auto").precision == "fp32"  # what the CLI passes
    assert load("population", precision="bf16").precision == "bf16"  # the user's choice is kept


def test_population_no_fast_is_fp32(bf16_card, monkeypatch):
    from devolens.models import load

    monkeypatch.setattr(q, "bf16_fast_here", lambda: True)
    assert load("population", fast=False).precision == "fp32"  # (it ran the card's bf16)


def test_population_record_names_the_fp32_it_ran(bf16_card, monkeypatch, tmp_path):
    monkeypatch.setattr(q, "bf16_fast_here", lambda: False)
    png = _png(tmp_path / "b.png")
    assert main(["population", str(png), "--out", str(tmp_path / "p.csv"), "--no-plot"]) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["precision"] == "fp32"
