"""Review of the session's mends: population's first rerun after an upgrade keeps what the older run never wrote;
an infinite pixel no longer blanks a [0, 1] float well; is_flat decides an ordinary frame from a coarse sample;
simulator parameters take a null size curve and ``_comment`` keys; file and embryo names that differ only in case
get distinct outputs; render's workers fork on Linux only."""

from __future__ import annotations

import json
import multiprocessing
import shlex
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from _cli_helpers import blob_frame
from _render_helpers import make_table
from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main


def _frame(h=48, w=70, seed=0):
    return blob_frame(h, w, seed, rgb=False)


def _folder(path: Path, n=3) -> Path:
    from devolens.io.images import write_png

    path.mkdir()
    for i in range(n):
        write_png(_frame(seed=i), path / f"t{i + 1:03d}.png")
    return path


# ------------------------------------------------------------------ 1: a record of an older devolens


def _legacy(record: Path, args: list[str] | None, skip_flagged=None) -> None:
    """Make ``record`` look as an older devolens wrote it: no ``plot``/``curation`` keys; ``command``: the CLI's
    line for ``args`` (None: a library call's bare ``devolens population``)."""
    old = json.loads(record.read_text())
    del old["plot"], old["curation"]
    old["command"] = "devolens population" if args is None else shlex.join(["devolens", "population", *args])
    old["options"]["skip_flagged"] = skip_flagged
    record.write_text(json.dumps(old, indent=1) + "\n")


@pytest.mark.parametrize("case", ["no-plot", "library"])
def test_population_rerun_after_an_upgrade_keeps_what_the_old_run_never_wrote(tiny_zoo, tmp_path, case):
    src = _folder(tmp_path / "in")
    out = tmp_path / "stale" / "st.csv"
    out.parent.mkdir()
    args = [str(src), "--out", str(out), "--no-plot"]
    assert main(["population", *args]) == 0
    _legacy(out.with_suffix(".json"), args if case == "no-plot" else None)
    (out.parent / "st.curation.csv").write_text("the user's own report\n")
    (out.parent / "st.png").write_bytes(b"the user's own picture")
    assert main(["population", *args]) == 0
    assert (out.parent / "st.curation.csv").read_text() == "the user's own report\n"
    assert (out.parent / "st.png").read_bytes() == b"the user's own picture"
    assert json.loads(out.with_suffix(".json").read_text())["plot"] is None


def test_population_rerun_after_an_upgrade_removes_what_the_old_run_wrote(tiny_zoo, tmp_path):
    """A record that proves its plot (a command line without --no-plot) and its report (--skip-flagged auto)."""
    src = _folder(tmp_path / "in")
    out = tmp_path / "st.csv"
    assert main(["population", str(src), "--out", str(out), "--skip-flagged", "auto"]) == 0
    assert (tmp_path / "st.png").is_file() and (tmp_path / "st.curation.csv").is_file()
    _legacy(out.with_suffix(".json"), [str(src), "--out", str(out), "--skip-flagged", "auto"], skip_flagged="auto")
    assert main(["population", str(src), "--out", str(out), "--no-plot"]) == 0
    assert not (tmp_path / "st.png").exists() and not (tmp_path / "st.curation.csv").exists()


# ------------------------------------------------------------------ 2: an infinite pixel in a [0, 1] float well


def test_count_stats_leaves_non_finite_values_out():
    from devolens.predict.tiled import count_stats

    a = np.full((2, 8, 8), 0.5, np.float32)
    a[1, 3] = np.inf
    assert count_stats(a) == (0.5, False)  # the largest finite value: a [0, 1] image, scaled x65535
    a[1, 3] = np.nan
    assert count_stats(a) == (0.5, False)
    b = np.full((2, 8, 8), 300.0, np.float32)
    assert count_stats(b) == (300.0, True)
    b[0, 0, 0] = -np.inf
    assert count_stats(b) == (300.0, False)


@pytest.mark.skipif(not shipped("livedead"), reason="needs the shipped livedead model")
def test_an_infinite_pixel_does_not_blank_a_unit_float_well(tmp_path, capsys):
    from devolens.predict.livedead import LiveDeadPredictor

    assert main(["simulate", "well", "--size", "1200x1200", "--seed", "1", "--out", str(tmp_path / "w.tif"),
                 "--labels", str(tmp_path / "wl.tif")]) == 0
    unit = tifffile.imread(tmp_path / "w.tif").astype(np.float32) / 65535
    for name, value in (("inf", np.inf), ("zero", 0.0)):
        a = unit.copy()
        a[1, 600:604] = value  # 4 rows of Draq7
        tifffile.imwrite(tmp_path / f"{name}.tif", a)
    pred = LiveDeadPredictor.load("livedead")
    counts = {}
    for name in ("inf", "zero"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            counts[name] = pred.predict_file(tmp_path / f"{name}.tif", tmp_path / name)
        said = " ".join(str(w.message) for w in caught)
        assert "blank" not in said
        assert ("4,800 pixels hold no number" in said) == (name == "inf")
    assert counts["inf"] == counts["zero"] and counts["zero"]["live"] > 100
    assert (tmp_path / "inf" / "labels.tif").read_bytes() == (tmp_path / "zero" / "labels.tif").read_bytes()


# ------------------------------------------------------------------ 3: is_flat from a coarse sample


def _is_flat_reference(image) -> bool:
    """is_flat as first written (a full pass over every channel), its tolerance relative to the frame's magnitude
    alone since the forty-fifth session (a float frame in units of 1e-300 with nuclei in it is not flat)."""
    a = np.asarray(image)
    if a.size == 0 or a.ndim < 2 or a.dtype.kind not in "biuf":
        return False
    planes = a.reshape(a.shape[0] * a.shape[1], -1)
    lo, hi = planes.min(axis=0).astype(np.float64), planes.max(axis=0).astype(np.float64)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return False
    return bool(np.all(hi - lo <= 1e-6 * np.maximum(np.abs(hi), np.abs(lo))))


def test_is_flat_decides_a_varying_frame_from_a_coarse_sample(monkeypatch):
    from devolens.predict import population

    seen = []
    real = population._channel_range

    def spy(a):
        seen.append(a.shape)
        return real(a)

    monkeypatch.setattr(population, "_channel_range", spy)
    frame = np.random.default_rng(0).integers(0, 255, (512, 752, 3), dtype=np.uint8)
    assert population.is_flat(frame) is False and seen == [(16, 24, 3)]
    seen.clear()
    assert population.is_flat(np.full((512, 752, 3), 7, np.uint8)) is True and len(seen) == 2


def test_is_flat_is_unchanged():
    from devolens.predict.population import is_flat

    rng = np.random.default_rng(1)
    cases = []
    for base in (0.0, 7.0, 1e6, -1e9, 3e12):
        for step in (0.5e-6, 1e-6, 1.5e-6, 2e-6, 2.5e-6, 1.0):
            for shape in ((64, 96), (64, 96, 3), (65, 33, 2)):
                a = np.full(shape, base, np.float64)
                a[tuple(int(rng.integers(0, s)) for s in shape)] += step * max(1.0, abs(base))
                a[0, 0] += step * max(1.0, abs(base))  # in the coarse sample
                cases += [a, a.astype(np.float32)]
    for bad in (np.nan, np.inf, -np.inf):
        a = np.full((64, 64, 3), 5.0)
        a[3, 5, 1] = bad
        b = a.copy()
        b[0, 0, 0] = bad
        cases += [a, b]
    cases += [np.zeros((40, 40), bool), np.eye(40, dtype=bool), np.full((2, 2, 3), 255, np.uint8),
              np.zeros((0, 5)), np.arange(4), np.full((10, 10), 2**62, np.int64)]
    assert [is_flat(c) for c in cases] == [_is_flat_reference(c) for c in cases]


# ------------------------------------------------------------------ 4: simulator parameters


def test_a_null_size_curve_is_the_power_law():
    from devolens.lineage.simulate import load_params, simulate_embryo

    off = load_params({"size": {"curve_n": None, "curve_size": None}})
    assert off["size"]["curve_n"] is None and off["size"]["curve_size"] is None
    empty = {"size": {"curve_n": [], "curve_size": []}}
    assert simulate_embryo(2, n_cells=30, params=off).equals(simulate_embryo(2, n_cells=30, params=empty))


def test_comment_keys_are_ignored(tmp_path):
    from devolens.errors import DevolensError
    from devolens.lineage.simulate import load_params

    file = tmp_path / "p.json"
    file.write_text(json.dumps({"_comment": "slower cycles", "cycle": {"_why": "a test", "growth": 0.5,
                                                                      "by_group": {"_note": "none"}}}))
    p = load_params(file)
    assert p["cycle"]["growth"] == 0.5 and "_comment" not in p and "_why" not in p["cycle"]
    assert "_note" not in p["cycle"]["by_group"]
    with pytest.raises(DevolensError, match="unknown simulator parameter comment"):
        load_params({"comment": "no underscore"})


def test_the_shipped_parameters_and_a_fit_load_as_overrides(tmp_path):
    from devolens.lineage.fit import fit_simulator_params
    from devolens.lineage.simulate import PARAMS_PATH, load_params, simulate_embryo

    assert load_params(PARAMS_PATH) == load_params()
    fitted = fit_simulator_params([simulate_embryo(s, n_cells=60) for s in range(2)], calibrate=False)
    file = tmp_path / "fitted.json"
    file.write_text(json.dumps(fitted, indent=1) + "\n")  # as benchmarks/fit_simulator.py writes it
    p = load_params(file)
    assert p["size"]["curve_n"] == fitted["size"]["curve_n"]
    assert simulate_embryo(0, n_cells=30, params=p).groupby("time").size().iloc[-1] >= 30


# ------------------------------------------------------------------ 5: names that differ only in case


def test_stems_differing_in_case_get_whole_names(tiny_zoo, tmp_path):
    from devolens.io.images import write_png

    src = tmp_path / "in"
    src.mkdir()
    write_png(_frame(seed=1), src / "A.png")
    tifffile.imwrite(src / "a.tif", _frame(seed=2))
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg")]) == 0
    labels = sorted(p.name for p in (tmp_path / "seg" / "labels").iterdir())
    assert labels == ["A.png_labels.tif", "a.tif_labels.tif"]
    assert list(pd.read_csv(tmp_path / "seg" / "counts.csv")["frame"]) == ["A.png", "a.tif"]
    # stems that differ: as before
    other = tmp_path / "in2"
    other.mkdir()
    write_png(_frame(seed=1), other / "A.png")
    tifffile.imwrite(other / "b.tif", _frame(seed=2))
    assert main(["segment", "nuclei", str(other), "--out", str(tmp_path / "seg2")]) == 0
    assert sorted(p.name for p in (tmp_path / "seg2" / "labels").iterdir()) == ["A_labels.tif", "b_labels.tif"]


def _embryo(name: str, seed: int) -> pd.DataFrame:
    t = make_table(n_times=3, n_cells=6, seed=seed)
    t["embryo"] = name
    return t


def test_embryo_names_differing_in_case_get_distinct_files(tmp_path):
    from devolens.render.dataset import render_dataset

    df = render_dataset([_embryo("Emb", 1), _embryo("emb", 2)], tmp_path / "r", size=(32, 48), times=[1])
    assert list(df["file"]) == ["frames/Emb_0_t001.png", "frames/emb_1_t001.png"]
    labels = sorted(p.name for p in (tmp_path / "r" / "labels").iterdir())
    assert labels == ["Emb_0_t001_labels.tif", "emb_1_t001_labels.tif"]
    df = render_dataset([_embryo("Emb", 1), _embryo("Other", 2)], tmp_path / "s", size=(32, 48), times=[1])
    assert list(df["file"]) == ["frames/Emb_t001.png", "frames/Other_t001.png"]  # names that differ: as before


# ------------------------------------------------------------------ 6: render's workers fork on Linux only


@pytest.mark.parametrize("platform, method", [("darwin", "spawn"), ("linux", "fork")])
def test_render_workers_fork_on_linux_only(tmp_path, monkeypatch, platform, method):
    from devolens.render import dataset

    asked = []
    real = multiprocessing.get_context

    def context(name=None):
        asked.append(name)
        return real(name)

    monkeypatch.setattr(multiprocessing, "get_context", context)
    monkeypatch.setattr(dataset, "sys", types.SimpleNamespace(platform=platform))
    table = make_table(n_times=4, n_cells=6, seed=3)
    one = dataset.render_dataset(table, tmp_path / "one", size=(32, 48), seed=2)
    two = dataset.render_dataset(table, tmp_path / "two", size=(32, 48), seed=2, workers=2)
    assert asked == [method] and one.equals(two)
    for f in one["file"]:
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes()
    assert sys.platform  # the real module untouched


def test_tiling_reads_a_unit_float_well_with_an_infinite_pixel_as_scaled(tmp_path):
    """`tile make`'s reader: one +inf pixel made a [0, 1] float image read as whole counts (nearly black)."""
    from devolens.data.tiling import _to_uint16

    rng = np.random.default_rng(0)
    img = rng.random((2, 40, 50)).astype(np.float32)
    bad = img.copy()
    bad[1, 5, 7], bad[0, 9, 9], bad[0, 3, 3] = np.inf, np.nan, -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want, got = _to_uint16(img, tmp_path / "w.tif"), _to_uint16(bad, tmp_path / "w.tif")
    assert got[1, 5, 7] == 65535 and got[0, 9, 9] == 0 and got[0, 3, 3] == 0
    got[1, 5, 7], got[0, 9, 9], got[0, 3, 3] = want[1, 5, 7], want[0, 9, 9], want[0, 3, 3]
    np.testing.assert_array_equal(got, want)
    assert want.max() > 60000  # scaled x65535, not read as counts of 0 and 1
