"""The population model's total regressor trained on a lent GPU (fifty-fifth session): the scripts that make and
stage it, run on the CPU at a tiny size. scripts/gpu_population_total.sh renders, gathers with
``zoo_population.py --gather --gather-from`` and trains with ``gpu_train.py`` (a population task: frames without label
images); ``zoo_swap_total.py`` stages the result in a copy of the zoo."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_zoo_scripts import _script  # noqa: E402


@pytest.fixture(scope="module")
def gathered(tmp_path_factory):
    """Two renders of simulated embryos gathered for training, a third for validation; one training frame marked
    as an artifact (dropped by the gather, as the renders' own artifacts are)."""
    from devolens.cli import main

    root = tmp_path_factory.mktemp("pop")
    for name, seed in (("a", 5), ("b", 6), ("v", 7)):
        assert main(["render", "--simulate", "1", "--out", str(root / name), "--every", "20", "--pose", "random",
                     "--vary", "frame", "--grey", "--seed", str(seed), "--size", "96", "128"]) == 0
    frames = pd.read_csv(root / "b" / "frames.csv", keep_default_na=False)
    frames.loc[0, "artifact"] = "blur"
    frames.to_csv(root / "b" / "frames.csv", index=False)
    zp = _script("zoo_population")
    zp.gather(root / "data", dirs=[root / "a", root / "b"])
    zp.gather(root / "val", dirs=[root / "v"])
    return root


def test_gather_from_takes_the_folders_given_and_drops_artifacts(gathered):
    df = pd.read_csv(gathered / "data" / "frames.csv", keep_default_na=False)
    a = pd.read_csv(gathered / "a" / "frames.csv", keep_default_na=False)
    b = pd.read_csv(gathered / "b" / "frames.csv", keep_default_na=False)
    assert len(df) == len(a) + len(b) - 1 and (df["artifact"] == "").all()
    assert set(df["file"].str.split("__").str[0]) == {"frames/a", "frames/b"}
    assert (df["total"].to_numpy() > 0).all()
    for f in df["file"]:
        assert (gathered / "data" / f).is_file()


def test_gather_from_on_the_command_line(gathered, tmp_path):
    out = tmp_path / "g"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "zoo_population.py"), "--gather", str(out),
                        "--gather-from", str(gathered / "v")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(out / "frames.csv")) == len(pd.read_csv(gathered / "v" / "frames.csv"))


def test_the_engine_reads_an_all_empty_artifact_column_without_a_warning(gathered):
    """Frames.csv of renders without artifacts: pandas reads the empty column as floats; dropping artifacts then
    warned (Pandas4Warning: a string fill value for floats, an error in pandas 4)."""
    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import build_data

    rec = resolved(load_recipe(ROOT / "recipes" / "population_total_gpu.yaml"))
    rec["data"]["val_fraction"] = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bundle = build_data(rec, gathered / "val")
    assert len(bundle.train) + len(bundle.val) == len(pd.read_csv(gathered / "val" / "frames.csv"))


def _tiny_recipe(path: Path) -> Path:
    rec = yaml.safe_load((ROOT / "recipes" / "population_total_gpu.yaml").read_text())
    rec["data"]["size"] = [32, 48]
    rec["model"]["width"] = 8
    rec["train"].update(batch_size=4, amp="none", num_workers=0)
    path.write_text(yaml.safe_dump(rec))
    return path


@pytest.fixture(scope="module")
def trained(gathered, tmp_path_factory):
    """scripts/gpu_train.py on the gathered population folders, on the CPU (it kept only frames with a label image,
    so a population task had no data)."""
    root = tmp_path_factory.mktemp("run")
    gt = _script("gpu_train")
    argv = ["gpu_train.py", str(_tiny_recipe(root / "tiny.yaml")), "--data", str(gathered / "data"),
            "--val", str(gathered / "val"), "--out", str(root / "run"), "--minutes", "3", "--epochs", "1",
            "--workers", "0", "--device", "cpu", "--probe-seconds", "0.3", "--copy-to", str(root / "copy")]
    old = sys.argv
    gt._device_rate = functools.partial(gt._device_rate, steps=1)
    try:
        sys.argv = argv
        gt.main()
    finally:
        sys.argv = old
    return root / "copy"


def test_gpu_train_trains_a_population_task(trained, gathered):
    best = json.loads((trained / "best.json").read_text())
    assert best["recipe"]["task"] == "population" and best["recipe"]["data"]["size"] == [32, 48]
    n_val = len(pd.read_csv(gathered / "val" / "frames.csv"))
    n_train = len(pd.read_csv(gathered / "data" / "frames.csv"))
    assert best["recipe"]["data"]["val_fraction"] == pytest.approx(n_val / (n_val + n_train))
    history = pd.read_csv(trained / "history.csv")
    assert len(history) == 1 and np.isfinite(history["val_mae"]).all()


def test_zoo_swap_total_stages_the_run_and_keeps_the_rest(trained, tmp_path):
    from safetensors.numpy import load_file

    from devolens.models import zoo
    from devolens.provenance import file_sha256

    shipped = ROOT / "src" / "devolens" / "models" / "zoo" / "population"
    out = tmp_path / "stage"
    swap = [sys.executable, str(ROOT / "scripts" / "zoo_swap_total.py"), str(trained), "--out", str(out)]
    r = subprocess.run(swap + ["--weight", "0.2", "--note", "tiny"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "population" / "card.json").read_text())
    spec = card["total_regressor"]
    assert spec["config"]["width"] == 8 and spec["input_size"] == [32, 48] and spec["weight_calibration"] == 0.2
    assert spec["trained"] == "tiny" and "the weight 0.2 is given" in spec["measured"]
    assert card["weights_sha256"] == file_sha256(out / "population" / "weights.safetensors")
    new, old = load_file(str(out / "population" / "weights.safetensors")), load_file(str(shipped / "weights.safetensors"))
    run = load_file(str(trained / "best.safetensors"))
    assert {k for k in new if not k.startswith("total_regressor.")} == {k for k in old if not k.startswith("total_regressor.")}
    for k in new:
        if k.startswith("total_regressor."):
            np.testing.assert_array_equal(new[k], run[k[len("total_regressor."):]].astype(np.float16))
        else:
            np.testing.assert_array_equal(new[k], old[k])
    for name in ("nuclei", "identity"):
        assert (out / name).resolve() == (shipped.parent / name).resolve()
    before = zoo.ZOO_DIR
    try:
        zoo.use_folder(out)
        pred = zoo.load("population", diameter=None)
        assert tuple(pred.input_size) == (32, 48) and pred.total_weight == 0.2
        row = pred.predict(np.zeros((96, 128), np.uint8) + np.arange(128, dtype=np.uint8))
        assert np.isfinite(row["total"])
    finally:
        zoo.use_folder(before)
    r = subprocess.run(swap, capture_output=True, text=True, cwd=ROOT)  # the staged folder exists: refused
    assert r.returncode != 0 and "exists" in r.stderr
    r = subprocess.run(swap[:3] + ["--out", str(tmp_path / "s2"), "--weight", "1.5"], capture_output=True, text=True)
    assert r.returncode != 0 and "between 0 and 1" in r.stderr and not (tmp_path / "s2").exists()


def test_population_total_needed_reads_letters_off_the_table_at_a_noisy_true_total(gathered, capsys):
    """benchmarks/population_total_needed.py: at s = 0 the letters are the table's at the true total (the total exact),
    and a larger error of the total costs the letters more."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_ptn", ROOT / "benchmarks" / "population_total_needed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--val", str(gathered / "v"), "--sigmas", "0", "0.3", "--draws", "3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0.")]
    exact, noisy = ([float(v) for v in r.strip("|").split("|")[1:9]] for r in rows)
    assert exact[0] == 0.0 and noisy[0] > 0.1
    assert sum(noisy[1:]) > sum(exact[1:])


@pytest.mark.parametrize("one", [True, False])
def test_the_late_reading_pattern_matches_its_note(one):
    """eval_zoo.py and choose_total_weight.py hold back population's late-reading note by its words
    (``LATE_MESSAGE``): the pattern must keep matching the note itself, and nothing else of the library's."""
    import re

    from devolens.predict.population import LATE_MESSAGE, late_message

    assert re.match(LATE_MESSAGE, late_message(3, 312.4, one))
    assert not re.match(LATE_MESSAGE, "frame 3 (from 0) reads no signal")


def test_eval_zoo_holds_back_the_late_note_and_nothing_else():
    import importlib.util

    from devolens.errors import DevolensWarning
    from devolens.predict.population import late_message

    spec = importlib.util.spec_from_file_location("_ez", ROOT / "benchmarks" / "eval_zoo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from devolens.errors import DiameterWarning
    from devolens.predict.notes import _ignored

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with mod._sizes_unsaid():
            assert _ignored(DiameterWarning)  # the size checks still skipped (their filter first)
            warnings.warn(late_message(0, 300.0, False), DevolensWarning)
            warnings.warn("another note", DevolensWarning)
    assert [str(w.message) for w in seen] == ["another note"]


def test_gather_refuses_held_out_renders_a_used_folder_and_non_renders(gathered, tmp_path):
    zp = _script("zoo_population")
    held = tmp_path / "held"
    held.mkdir()
    frames = pd.read_csv(gathered / "v" / "frames.csv", keep_default_na=False)
    frames.assign(embryo="20241010_JIM767_25_L3").to_csv(held / "frames.csv", index=False)
    with pytest.raises(SystemExit, match="held-out embryo 20241010_JIM767_25_L3"):
        zp.gather(tmp_path / "g1", dirs=[held])
    with pytest.raises(SystemExit, match="is not empty"):
        zp.gather(gathered / "data", dirs=[gathered / "v"])
    with pytest.raises(SystemExit, match="no frames.csv"):
        zp.gather(tmp_path / "g2", dirs=[tmp_path])
    with pytest.raises(SystemExit, match="--gather-extra"):
        zp.gather(tmp_path / "g3", extra=["trf_*"], dirs=[gathered / "v"])
    assert not any((tmp_path / g).exists() for g in ("g1", "g2", "g3"))


def test_zoo_swap_total_refuses_what_is_no_count_regressor_run(trained, tmp_path):
    script = [sys.executable, str(ROOT / "scripts" / "zoo_swap_total.py")]
    r = subprocess.run(script + [str(tmp_path / "nowhere"), "--out", str(tmp_path / "s")], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "no best.json" in r.stderr and "Traceback" not in r.stderr
    other = tmp_path / "unet"
    other.mkdir()
    best = json.loads((trained / "best.json").read_text())
    best["model"]["kind"] = "segmentation"
    (other / "best.json").write_text(json.dumps(best))
    r = subprocess.run(script + [str(other), "--out", str(tmp_path / "s")], capture_output=True, text=True)
    assert r.returncode != 0 and "not a count regressor" in r.stderr and not (tmp_path / "s").exists()


def test_population_total_needed_refuses_no_draws(gathered):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_ptn2", ROOT / "benchmarks" / "population_total_needed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as err:
        mod.main(["--val", str(gathered / "v"), "--draws", "0"])
    assert err.value.code == 2
