"""Forty-eighth session, the model zoo's cards and their tools:

1. the livedead card's limits name its worst recorded well (seed 11, outside the 24 held-out wells: 0.506 dead read
   as 0.119), measured again on the shipped weights, and written by scripts/eval_livedead.py (only for those weights);
2. ``benchmarks/eval_zoo.py --limit`` spreads its frames over each folder, and an empty set's F1 is n/a (JSON null),
   not 1.000;
3. a model whose weights are not those its card records (``weights_sha256``) loads with a ``WeightsWarning`` (the
   commands' ``warning:`` line; a shipped model's: reinstall), in the words of ``models show``; exports load quietly;
4. the identity card's mirror limit gives the figures of the current model, with how they were measured;
5. ``models export`` of a shipped model gives each kind's command;
6. ``devolens models`` shows fractions to 3 decimals.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.models import zoo
from devolens.models.export import export_shipped

ROOT = Path(__file__).resolve().parents[1]


def _script(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _card(name: str) -> tuple[dict, str]:
    folder = zoo.ZOO_DIR / name
    return json.loads((folder / "card.json").read_text()), (folder / "card.md").read_text()


# ----------------------------------------------------------------------------- 1. livedead's worst well
def test_livedead_limits_name_the_seed_11_well_outside_the_held_out_wells():
    """The shipped card's limits (card.json, card.md: what `models show` prints) say the seed-11 well's failure and
    its size, the commands that measure it, and that the well is none of the 24 held-out ones; the script's fixed
    text is the card's."""
    ev = _script(ROOT / "scripts" / "eval_livedead.py", "_s48_eval_livedead")
    card, md = _card("livedead")
    limit = ev.UNSEEN_WELL_LIMIT
    assert card["limits"][-1] == limit and f"- {limit}\n" in md
    for words in ("`devolens simulate well --seed 11", "1902 live, 1950 dead", "0.506", "1747 live, 237 dead (0.119)",
                  "`devolens segment livedead w11.tif --out seg11`", "none of the 24 held-out wells",
                  "seeds 9000-9023", "small dead nuclei", "without a warning"):
        assert words in limit, words
    # said for the weights it was measured on: the shipped ones
    assert card["weights_sha256"] == ev.UNSEEN_WELL_WEIGHTS == zoo.weights_sha256("livedead")


def test_livedead_seed_11_limit_is_left_out_for_other_weights(tmp_path):
    """scripts/eval_livedead.py writes the limit only for the weights it was measured on."""
    ev = _script(ROOT / "scripts" / "eval_livedead.py", "_s48_eval_livedead_other")
    card, _ = _card("livedead")
    cfg = {"model": card["architecture"], **card["training"]}
    metrics = {k: v["value"] for k, v in card["metrics"].items() if not isinstance(v["value"], dict)} | {"wells": 24}
    sp = card["metrics"]["fraction_dead_error_per_well"]["value"]
    other = tmp_path / "weights.safetensors"
    other.write_bytes(b"other weights")
    built = ev.livedead_card(cfg, metrics, list(ev.SEEN_WELLS), sp, ev.TRAIN_WELLS, "bf16", "2700x3600",
                             weights=other)
    assert ev.UNSEEN_WELL_LIMIT not in built["limits"] and len(built["limits"]) == len(card["limits"]) - 1
    shipped = ev.livedead_card(cfg, metrics, list(ev.SEEN_WELLS), sp, ev.TRAIN_WELLS, "bf16", "2700x3600")
    assert shipped["limits"] == card["limits"]


# ----------------------------------------------------------------------------- 2. eval_zoo's --limit and empty sets
def test_eval_zoo_limit_spreads_its_frames_over_the_folder(tmp_path, monkeypatch):
    """--limit over half a folder's frames kept its first frames only (stride 1): the frames are now spread evenly
    from the first to the last."""
    ez = _script(ROOT / "benchmarks" / "eval_zoo.py", "_s48_eval_zoo")
    df = pd.DataFrame({"file": [f"f{i}.png" for i in range(10)], "total": range(10)})
    assert list(ez._spread(df, 6)["total"]) == [0, 2, 4, 5, 7, 9]
    assert list(ez._spread(df, 2)["total"]) == [0, 9] and list(ez._spread(df, 1)["total"]) == [0]
    assert ez._spread(df, 10) is df and ez._spread(df, None) is df
    d = tmp_path / "val"
    d.mkdir()
    pd.DataFrame({"file": [f"f{i}.png" for i in range(12)], "artifact": "", "total": range(12)}).to_csv(
        d / "frames.csv", index=False)
    monkeypatch.setattr(ez, "LIMIT", 8)
    totals = [int(r["total"]) for _, r in ez._frames([d])]
    assert len(totals) == 8 and totals[0] == 0 and totals[-1] == 11 and max(np.diff(totals)) == 2


def test_eval_zoo_an_empty_set_has_no_f1(tmp_path, monkeypatch):
    """No frame over 200 cells: that set's F1 is n/a (JSON null), not prf's 1.000 for nothing to find."""
    import tifffile

    ez = _script(ROOT / "benchmarks" / "eval_zoo.py", "_s48_eval_zoo_empty")
    d = tmp_path / "val"
    (d / "labels").mkdir(parents=True)
    truth = np.zeros((8, 8), np.uint16)
    truth[1:4, 1:4], truth[5:7, 5:7] = 1, 2
    pd.DataFrame([{"file": f"f{i}.png", "artifact": "", "total": 2, "embryo": "e"} for i in range(2)]).to_csv(
        d / "frames.csv", index=False)
    for i in range(2):
        tifffile.imwrite(d / "labels" / f"f{i}_labels.tif", truth)

    class Result:
        labels, count = truth, 2

    class Fake:
        auto = False

        def predict_iter(self, images):
            for _ in images:
                yield Result()

    monkeypatch.setattr(ez, "_load", lambda *a, **k: Fake())
    monkeypatch.setattr(ez, "_framed_dirs", lambda: [])
    monkeypatch.setattr(ez, "_data_dir", lambda: tmp_path / "no_data")
    monkeypatch.setattr("devolens.io.images.read_image", lambda path: np.zeros((8, 8), np.uint8))
    metrics, md = ez.eval_nuclei(None, [d], threads=1)
    assert metrics["instance_f1_iou50_heldout_gt200"]["value"] is None
    assert "frames with > 200 cells (every 3rd, 0 frames): F1 n/a" in md
    assert metrics["instance_f1_iou50_heldout_le200"]["value"] == 1.0  # (two frames, all found)
    assert json.loads(json.dumps(metrics))["instance_f1_iou50_heldout_gt200"]["value"] is None
    assert ez._scores((0, 0, 0), 0) == {"precision": None, "recall": None, "f1": None}
    assert ez._said(float("nan"), ".2f") == "n/a" and ez._round(float("nan")) is None


# ----------------------------------------------------------------------------- 3. weights that are not the card's
def _damaged(folder: Path) -> None:
    """One tensor of ``folder``'s weights zeroed (a replaced or damaged file)."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(folder / "weights.safetensors"))
    key = sorted(tensors)[5]
    tensors[key] = np.zeros_like(tensors[key])
    save_file(tensors, str(folder / "weights.safetensors"))


def test_loading_weights_its_card_does_not_record_warns(tmp_path, capsys):
    """A copy of the livedead model loads quietly (load, LiveDeadPredictor.load); with a tensor zeroed, both warn
    (WeightsWarning) that the card's figures do not describe the weights, `segment livedead --model COPY` prints
    it once as a warning: line, and `models show COPY` says the same words."""
    from devolens.models.zoo import WeightsWarning
    from devolens.predict.livedead import LiveDeadPredictor

    copy = tmp_path / "copy"
    export_shipped("livedead", copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeightsWarning)
        zoo.load(copy)
        LiveDeadPredictor.load(str(copy))
    _damaged(copy)
    card = zoo.card(copy)
    said = zoo.weights_mismatch(copy, card)
    assert said is not None and zoo.weights_sha256(copy) in said and card["weights_sha256"] in said
    assert "do not describe them" in said and "reinstall" not in said
    for loader in (zoo.load, LiveDeadPredictor.load):
        with pytest.warns(WeightsWarning) as caught:
            loader(str(copy))
        assert [str(w.message) for w in caught] == [said]
        assert caught[0].filename == __file__  # (the caller's line)

    from devolens.render.wells import simulate_well
    import tifffile

    well = tmp_path / "w.tif"
    tifffile.imwrite(well, simulate_well(seed=3, size=(64, 80)).image)
    capsys.readouterr()
    assert main(["segment", "livedead", str(well), "--out", str(tmp_path / "o"), "--model", str(copy),
                 "--window", "64", "--overlap", "16"]) == 0
    err = capsys.readouterr().err
    assert err.count(f"warning: {said}") == 1 and "WeightsWarning" not in err
    assert main(["models", "show", str(copy), "--json"]) == 0
    assert f"warning: {said}" in capsys.readouterr().err


def test_a_shipped_model_with_other_weights_is_a_damaged_install(tmp_path, monkeypatch):
    """Weights of the package's own zoo that are not its card's: reinstall devolens."""
    from devolens.models.zoo import WeightsWarning

    package = tmp_path / "zoo"
    shutil.copytree(zoo.ZOO_DIR / "identity", package / "identity")
    _damaged(package / "identity")
    monkeypatch.setattr(zoo, "PACKAGE_ZOO", package)
    monkeypatch.setattr(zoo, "ZOO_DIR", package)
    zoo.card.cache_clear()
    try:
        with pytest.warns(WeightsWarning, match="shipped identity model's weights .* damaged install.*reinstall "
                                                "devolens"):
            zoo.load("identity")
    finally:
        zoo.card.cache_clear()


def test_an_exported_run_and_the_shipped_models_load_quietly(tmp_path):
    """An exported training run's card records its weights' sha256 (models export writes it): it loads without a
    WeightsWarning, as do the shipped models."""
    from _train_data import train_tiny_run
    from devolens.models.export import export_run
    from devolens.models.zoo import WeightsWarning

    run, _ = train_tiny_run(tmp_path)
    export_run(run, tmp_path / "exp")
    card = json.loads((tmp_path / "exp" / "card.json").read_text())
    assert card["weights_sha256"] == zoo.weights_sha256(tmp_path / "exp")
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeightsWarning)
        zoo.load(tmp_path / "exp")
        zoo.load(run)  # (a run's card records none)
        for name in zoo.available():
            assert zoo.weights_mismatch(zoo.ZOO_DIR / name, zoo.card(name)) is None, name


# ----------------------------------------------------------------------------- 4. identity's mirror limit
def test_identity_mirror_limit_gives_the_current_figures_and_how():
    """The card's mirror limit quotes the current model's figures (0.962 / 0.944 -> 0.924 / 0.683; --mirror: 0.962 /
    0.944), not the twenty-third session's, with the commands; the script's text is the card's."""
    ti = _script(ROOT / "benchmarks" / "train_identity.py", "_s48_train_identity")
    card, md = _card("identity")
    limit = next(x for x in card["limits"] if x.startswith("A mirrored embryo"))
    assert limit.startswith(ti.MIRROR_LIMIT_START) and f"- {limit}\n" in md
    assert "founder 0.962 -> 0.924, depth-1 0.944 -> 0.683" in limit and "with --mirror: 0.962 / 0.944" in limit
    assert "0.951 -> 0.915" not in limit and "0.927 -> 0.689" not in limit
    assert "`devolens identify CD20241010_JIM767_25_L3.csv" in limit and "max(x) + min(x) - x" in limit
    assert "in-sample" in limit and "forty-eighth session" in limit


# ----------------------------------------------------------------------------- 5. models export's hints
@pytest.mark.parametrize("name,command", [
    ("livedead", "devolens segment livedead WELL --model {} --out DIR"),
    ("identity", "devolens identify TABLE --model {} --out NAMES.csv"),
    ("population", "devolens population INPUT --model {} --out COUNTS.csv"),
    ("nuclei", "devolens segment nuclei INPUT --model {} --out DIR"),
])
def test_models_export_of_a_shipped_model_gives_its_command(name, command, tmp_path, capsys):
    out = tmp_path / f"my_{name}"
    assert main(["models", "export", name, "--to", str(out)]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert f"use it with `{command.format(out)}`" in said and "devolens.models.load" not in said


# ----------------------------------------------------------------------------- 6. the listing's figures
def test_models_listing_shows_fractions_to_three_decimals():
    from devolens.cli.models import _fmt, _headline

    assert _fmt(0.9799) == "0.980" and _fmt(0.968) == "0.968" and _fmt(0.9996) == "1.000" and _fmt(0.05) == "0.050"
    assert _fmt(12.345) == "12.3" and _fmt(1234.6) == "1235" and _fmt(-0.5) == "-0.5" and _fmt(3) == "3"
    assert _headline("pr_auc_live", {"value": 0.9799}) == "PR-AUC, live nuclei: 0.980 (target >= 0.90: met)"
    assert _headline("count_mae_heldout_le200", {"value": 2.41}) == "count error per frame (mean, nuclei): 2.41"
