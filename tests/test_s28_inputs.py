"""Broken and odd inputs found by user walkthroughs: one line naming the problem, never a traceback, and no reading
made up from nothing (truncated weights, a damaged AceTree zip member, non-finite recipe values, bad simulator
parameters, run.json's epoch sentence, a database error's second line, absurd identify coordinates, flat frames
read as an embryo, infinite live/dead pixels read as saturated, a folder of subfolders)."""

from __future__ import annotations

import json
import math
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from _train_data import make_pairs, tiny_recipe
from _zoo_helpers import shipped
from devolens.errors import DevolensError


def _main(args: list[str], capsys) -> tuple[int, str]:
    from devolens.cli import main

    code = main(args)
    return code, capsys.readouterr().err


# ------------------------------------------------------------------ 1, 5: truncated safetensors; run.json's epochs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-epoch run on tiny data (its recipe, data and run folders)."""
    from devolens.train.trainer import train

    root = tmp_path_factory.mktemp("s28run")
    data = make_pairs(root / "data", groups=3, per_group=4, size=64)
    rec = tiny_recipe(train={"epochs": 2, "batch_size": 4, "threads": 1, "overlay_samples": 0})
    (root / "rec.yaml").write_text(yaml.safe_dump(rec))
    train(rec, data, root / "run")
    return root


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        if p.is_file():
            (dst / p.name).write_bytes(p.read_bytes())
    return dst


@pytest.mark.parametrize("keep", [0, 5, 100, 100_000])
def test_a_truncated_safetensors_file_is_named_as_damaged(tiny_run, tmp_path, keep):
    from devolens.io.tensors import load_tensors

    cut = tmp_path / "best.safetensors"
    cut.write_bytes((tiny_run / "run" / "best.safetensors").read_bytes()[:keep])
    for framework in ("pt", "np"):
        with pytest.raises(DevolensError, match="damaged or incomplete .an interrupted copy") as err:
            load_tensors(cut, framework=framework)
        assert err.value.path == cut and "\n" not in str(err.value)


def test_evaluate_and_resume_on_truncated_weights_give_one_line(tiny_run, tmp_path, capsys):
    run = _copy_run(tiny_run / "run", tmp_path / "run_tr")
    whole = (tiny_run / "run" / "best.safetensors").read_bytes()
    (run / "best.safetensors").write_bytes(whole[:1_000_000])
    code, err = _main(["evaluate", str(run), "--data", str(tiny_run / "data")], capsys)
    assert code == 2 and "best.safetensors: this safetensors file is damaged or incomplete" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    ckpt = (tiny_run / "run" / "checkpoint.safetensors").read_bytes()
    (run / "checkpoint.safetensors").write_bytes(ckpt[:5])
    code, err = _main(["train", str(tiny_run / "rec.yaml"), "--data", str(tiny_run / "data"), "--out", str(run),
                       "--resume", "--epochs", "3"], capsys)
    assert code == 2 and "checkpoint.safetensors: this safetensors file is damaged or incomplete" in err
    assert "Traceback" not in err


def test_run_json_names_its_own_best_epoch(tiny_run):
    from devolens.train.trainer import _ordinal

    summary = json.loads((tiny_run / "run" / "run.json").read_text())
    best = summary["best_epoch"]
    assert f"best_epoch {best} is the {_ordinal(best + 1)} epoch" in summary["epoch_numbering"]
    assert [_ordinal(n) for n in (1, 2, 3, 4, 9, 11, 12, 13, 21, 22, 23, 101, 111, 112)] == [
        "1st", "2nd", "3rd", "4th", "9th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th", "112th"]


# ------------------------------------------------------------------ 2: a damaged member of an AceTree zip


def test_a_damaged_acetree_zip_member_is_named(tmp_path):
    from devolens.io.tables import read_table

    zpath = tmp_path / "lineage.zip"
    line = "1, 1, -1, -1, -1, 300, 250, 15.0, 20, ABa, 65535, 0, 0, 0, , 0, 0, 0, 0, 0, 0,"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for t in (1, 2, 3):
            zf.writestr(f"nuclei/t{t:03d}-nuclei", "\n".join([line] * 40) + "\n")
    with zipfile.ZipFile(zpath) as zf:
        info = zf.getinfo("nuclei/t002-nuclei")
    data = bytearray(zpath.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start] = 0x07  # a deflate block of the reserved type: zlib's "invalid block type"
    zpath.write_bytes(bytes(data))
    with pytest.raises(DevolensError, match="zip member nuclei/t002-nuclei is damaged .*invalid block type") as err:
        read_table(zpath)
    assert err.value.path == zpath


# ------------------------------------------------------------------ 3: non-finite numbers in a recipe


@pytest.mark.parametrize("text, key", [
    ("optimizer:\n  lr: .nan\n", "optimizer.lr"),
    ("optimizer:\n  lr: .inf\n", "optimizer.lr"),
    ("optimizer:\n  lr: nan\n", "optimizer.lr"),  # a string, converted
    ("optimizer:\n  weight_decay: -.inf\n", "optimizer.weight_decay"),
    ("augment:\n  overrides: {noise: .nan}\n", "augment.overrides.noise"),
    ("loss:\n  class_weights: [1.0, .inf]\n", "loss.class_weights[1]"),
])
def test_recipe_refuses_non_finite_numbers_by_key(tmp_path, text, key):
    from devolens.train.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("name: x\n" + text)
    with pytest.raises(DevolensError, match=f"{key.replace('[', '.').replace(']', '.')}: expected a finite number"):
        load_recipe(path)


# ------------------------------------------------------------------ 4: simulator parameters


@pytest.mark.parametrize("over, match", [
    ({"zscale": None}, "simulator parameter zscale = None: must be a number > 0"),
    ({"start": None}, "simulator parameter start = None"),
    ({"zscal": 5.0}, "unknown simulator parameter zscal .did you mean zscale"),
    ({"physics": {"itrations": 3}}, "unknown simulator parameter physics.itrations .did you mean physics.iterations"),
    ({"embryo": {"maj": [600.0]}}, "simulator parameter embryo.maj = .600.0.: must be a list of 2 numbers"),
    ({"apoptosis": {"ABa": {"p": None}}}, "simulator parameter apoptosis.ABa"),
    ({"default_n_cells": 1e9}, "simulator parameter default_n_cells"),
])
def test_simulator_parameters_refused_by_key(over, match):
    from devolens.lineage.simulate import load_params

    with pytest.raises(DevolensError, match=match):
        load_params(over)


def test_simulator_parameters_still_taken():
    from devolens.lineage.simulate import load_params

    p = load_params({"radial": None, "physics": {"jitter": 0.0, "envelope_cells": 150}})
    assert p["radial"] is None and p["physics"]["jitter"] == 0.0


def test_an_embryo_that_cannot_reach_the_cells_asked_is_refused(tmp_path, capsys):
    from devolens.lineage.simulate import simulate_embryo

    with pytest.raises(DevolensError, match="stops at 1 cell .*short of the 10 cells asked for"):
        simulate_embryo(0, n_cells=10, params={"p0_life": 1e308})
    assert len(simulate_embryo(0, n_times=3, params={"p0_life": 1e308})) == 3  # time points asked: given
    f = tmp_path / "p.json"
    f.write_text('{"zscale": null}')
    code, err = _main(["simulate", "embryo", "--params", str(f), "--cells", "10", "--out", str(tmp_path / "e.csv")],
                      capsys)
    assert code == 2 and "zscale" in err and "Traceback" not in err and not (tmp_path / "e.csv").exists()


# ------------------------------------------------------------------ 6: a database error in one line


def test_tune_storage_error_is_one_line(tmp_path, capsys):
    pytest.importorskip("optuna")
    data = make_pairs(tmp_path / "data", groups=3, per_group=3, size=64)
    rec = tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                      tune={"trials": 1, "space": {"optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}})
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(rec))
    url = f"sqlite:///{tmp_path / 'missing' / 'x.db'}"
    code, err = _main(["tune", str(tmp_path / "r.yaml"), "--data", str(data), "--out", str(tmp_path / "t"),
                       "--storage", url], capsys)
    assert code == 2 and "cannot open study" in err and "unable to open database file" in err
    assert len(err.strip().splitlines()) == 1 and "Background on this error" not in err


# ------------------------------------------------------------------ 8: absurd identify coordinates


@pytest.mark.parametrize("col, value", [("x", 1e308), ("z", -1e300), ("size", 1e200), ("size", math.inf)])
def test_identify_refuses_absurd_coordinates(col, value):
    from devolens.predict.identity import prepare_clouds

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"embryo": "e", "time": np.repeat([1, 2], 10), "x": rng.uniform(100, 500, 20),
                          "y": rng.uniform(100, 500, 20), "z": rng.uniform(5, 30, 20), "size": 20.0})
    prepare_clouds(table)  # as it is: fine
    table.loc[3, col] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        with pytest.raises(DevolensError, match=f"column '{col}' holds .* .row 3.: positions and sizes beyond"):
            prepare_clouds(table)


# ------------------------------------------------------------------ 9: flat frames in population


def test_is_flat():
    from devolens.predict.population import is_flat

    assert is_flat(np.full((8, 8), 7, np.uint8)) and is_flat(np.full((8, 8, 3), [1, 2, 3], np.uint8))
    assert is_flat(np.full((8, 8), 0.25, np.float32))
    one = np.full((8, 8), 7, np.uint8)
    one[3, 3] = 8
    assert not is_flat(one) and not is_flat(np.eye(8))
    nan = np.full((8, 8), np.nan)  # no finite pixel: no signal either (session 33); one finite among NaN is not flat
    part = nan.copy()
    part[1, 1], part[2, 2] = 0.0, 1.0
    assert is_flat(nan) and not is_flat(part)


@pytest.mark.skipif(not shipped("population") or not shipped("nuclei"), reason="needs the shipped population model")
def test_a_flat_frame_reads_as_a_black_one():
    from devolens.models import load

    pop = load("population", diameter=None)
    black = pop.predict(np.zeros((512, 752), np.uint8))
    for value in (7, 255):
        assert pop.predict(np.full((512, 752), value, np.uint8)) == black
    frames = [np.full((512, 752), 7, np.uint8), np.zeros((512, 752), np.uint8)]
    rows = list(pop.predict_iter(frames))
    assert [r["flat"] for r in rows] == [True, True] and pop.flat_frames == [0, 1]



def test_population_names_the_flat_frames(tmp_path, capsys):
    import imageio.v3 as iio

    frames = tmp_path / "frames"
    frames.mkdir()
    iio.imwrite(frames / "a_flat.png", np.full((256, 376), 200, np.uint8))
    rng = np.random.default_rng(0)
    iio.imwrite(frames / "b_noise.png", rng.integers(0, 40, (256, 376), dtype=np.uint8))
    code, err = _main(["population", str(frames), "--out", str(tmp_path / "p.csv"), "--no-plot"], capsys)
    assert code == 0
    assert "note: 1 frame (a_flat) holds no signal" in err and "b_noise) holds no signal" not in err
    assert "2 frames (a_flat, b_noise)" not in err  # (noise is a signal: it may get other notes, not this one)
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == ["frame", "A", "E", "M", "P", "C", "D", "Z", "total"]

# ------------------------------------------------------------------ 10: NaN and infinite live/dead pixels


@pytest.fixture(scope="module")
def float_wells(tmp_path_factory):
    import tifffile

    from devolens.render.wells import simulate_well

    root = tmp_path_factory.mktemp("wells")
    img = simulate_well(seed=3, size=(600, 800), dead_fraction=0.1).image.astype(np.float32)
    out = {}
    for name, value in (("zero", 0.0), ("inf", np.inf), ("nan", np.nan)):
        a = img.copy()
        a[1, 300:304, :] = value  # a stripe across the Draq7 channel
        tifffile.imwrite(root / f"{name}.tif", a)
        out[name] = a
    return root, out


@pytest.mark.skipif(not shipped("livedead"), reason="needs the shipped livedead model")
def test_non_finite_livedead_pixels_read_as_missing(float_wells, tmp_path):
    from devolens.predict.livedead import LiveDeadPredictor

    root, arrays = float_wells
    pred = LiveDeadPredictor.load("livedead")
    results = {}
    for name in ("zero", "inf", "nan"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results[name] = pred.predict_file(root / f"{name}.tif", tmp_path / name)
        said = " ".join(str(w.message) for w in caught)
        assert ("3,200 pixels hold no number (NaN or infinite; 3,200 in the Draq7 channel)" in said) == (name != "zero")
    assert results["inf"] == results["zero"] == results["nan"]
    assert (tmp_path / "inf" / "labels.tif").read_bytes() == (tmp_path / "zero" / "labels.tif").read_bytes()
    with warnings.catch_warnings(record=True) as caught:  # an array: the same
        warnings.simplefilter("always")
        counts = pred.predict(arrays["inf"], probabilities=False).counts
    assert counts == pred.predict(arrays["zero"], probabilities=False).counts
    assert any("3,200 pixels hold no number" in str(w.message) for w in caught)


# ------------------------------------------------------------------ 11: a folder of subfolders


def test_a_folder_of_subfolders_names_them(tmp_path):
    from devolens.io.frames import iter_path_frames

    for name in ("b", "a", "c", ".hidden"):
        (tmp_path / "movie" / name).mkdir(parents=True)
    with pytest.raises(DevolensError, match=r"no image files .* in this folder; it holds 3 subfolders: a, b, c "
                                            r"\(give one of them\)"):
        iter_path_frames(tmp_path / "movie")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DevolensError, match=r"in this folder$"):
        iter_path_frames(tmp_path / "empty")
