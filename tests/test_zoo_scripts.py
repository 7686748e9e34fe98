"""The zoo's data-preparation script (scripts/zoo_data.py): training folders from render output, one process or
several (the GPU stage cut its crops with --workers)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """The same simulated embryo rendered into two folders (as the training renders render each embryo several
    times): the second folder's frames must keep names of their own."""
    from devolens.cli import main

    root = tmp_path_factory.mktemp("renders")
    for k in range(2):
        assert main(["render", "--simulate", "1", "--out", str(root / f"r{k}"), "--every", "12", "--pose", "random",
                     "--vary", "frame", "--grey", "--seed", "5", "--size", "192", "256"]) == 0
    return [root / "r0", root / "r1"]


def _folder(out: Path) -> tuple[pd.DataFrame, dict]:
    df = pd.read_csv(out / "frames.csv", keep_default_na=False)
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return df, files


def test_zoo_data_names_and_workers(renders, tmp_path):
    zd = _script("zoo_data")
    n1 = zd.prepare("nuclei", tmp_path / "one", renders, scale=0.5, crop=64, seed=1)
    n2 = zd.prepare("nuclei", tmp_path / "w1", renders, scale=0.5, crop=64, seed=1, workers=1)
    n3 = zd.prepare("nuclei", tmp_path / "w2", renders, scale=0.5, crop=64, seed=1, workers=2)
    df, files = _folder(tmp_path / "one")
    assert n1 == n2 == n3 == len(df) == 2 * len(pd.read_csv(renders[0] / "frames.csv"))
    # the same embryo from the second folder keeps both renders: its frames get the folder's name
    names = [Path(f).stem for f in df["file"]]
    assert len(set(names)) == len(names)
    assert sum(n.endswith("_r1") for n in names) == len(names) // 2
    # several processes: the output does not depend on their number
    assert _folder(tmp_path / "w1")[1] == _folder(tmp_path / "w2")[1]
    # crops at the working scale, labels beside them
    for f in df["file"][:3]:
        lab = tifffile.imread(tmp_path / "one" / "labels" / (Path(f).stem + "_labels.tif"))
        assert lab.shape == (64, 64) and lab.dtype == np.uint16


def _zoo_copy(tmp_path: Path, name: str) -> Path:
    """A copy of the package zoo's nuclei and population cards and weights (no size models: small)."""
    import shutil

    from devolens.models import zoo

    for model in ("nuclei", "population"):
        (tmp_path / name / model).mkdir(parents=True)
        for f in ("card.json", "weights.safetensors"):
            shutil.copy(zoo.ZOO_DIR / model / f, tmp_path / name / model / f)
    return tmp_path / name


def test_zoo_compare_reports_card_and_tensor_differences(tmp_path, capsys):
    import json

    from safetensors.numpy import load_file, save_file

    zc = _script("zoo_compare")
    a, b = _zoo_copy(tmp_path, "a"), _zoo_copy(tmp_path, "b")
    assert zc.main([str(a), str(b)]) == 0
    card = json.loads((b / "nuclei" / "card.json").read_text())
    ref = card["input"]["diameter"]["reference"]
    card["input"]["diameter"]["reference"] = round(ref + 0.3, 1)
    card["postprocess"]["split_seeds"] = 1  # true -> 1: equal to Python, not to the card's reader
    card["summary"] += " (staged)"
    (b / "nuclei" / "card.json").write_text(json.dumps(card))
    tensors = load_file(str(b / "population" / "weights.safetensors"))
    key = sorted(k for k, v in tensors.items() if v.dtype.kind == "f")[0]
    tensors[key] = tensors[key].copy()
    tensors[key].flat[0] = np.nan
    save_file(tensors, str(b / "population" / "weights.safetensors"))
    capsys.readouterr()
    assert zc.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert f"card.input.diameter.reference: {ref} -> {round(ref + 0.3, 1)}" in out
    assert "card.postprocess.split_seeds: True -> 1" in out
    assert f"weights.safetensors:{key}: NaN or infinite values differ" in out
    assert zc.main([str(a), str(b), "--models", "nuclei", "--ignore-text", "--rtol", "0.01"]) == 1  # split_seeds
    assert "(text, ignored)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no such folder"):
        zc.main([str(a), str(tmp_path / "missing")])


def test_zoo_carry_copies_or_lists_what_a_staged_card_lacks(tmp_path, capsys):
    import json

    zc = _script("zoo_carry")
    a, b = _zoo_copy(tmp_path, "a"), _zoo_copy(tmp_path, "b")
    card = json.loads((b / "nuclei" / "card.json").read_text())
    gone = card["metrics"].pop("hot_pixels_heldout")
    del card["int8"]["metrics"]
    (b / "nuclei" / "card.json").write_text(json.dumps(card))
    assert zc.main([str(a), str(b), "--list-only"]) == 0
    out = capsys.readouterr().out
    assert "nuclei: metrics.hot_pixels_heldout (not measured on these weights" in out
    assert "nuclei: int8.metrics (not measured" in out and "population: nothing missing" in out
    assert "hot_pixels_heldout" not in json.loads((b / "nuclei" / "card.json").read_text())["metrics"]  # listed only
    assert zc.main([str(a), str(b)]) == 0
    after = json.loads((b / "nuclei" / "card.json").read_text())
    assert after["metrics"]["hot_pixels_heldout"] == gone
    assert after == json.loads((a / "nuclei" / "card.json").read_text())
    assert "hot_pixels_heldout" in (b / "nuclei" / "card.md").read_text()


def test_zoo_ship_update_drops_metrics_measured_on_the_previous_weights(tmp_path, capsys):
    import json

    zs = _script("zoo_ship")
    zoo_dir = _zoo_copy(tmp_path, "z")
    tables = tmp_path / "tables.safetensors"
    tables.write_bytes((zoo_dir / "population" / "weights.safetensors").read_bytes())
    assert json.loads((zoo_dir / "population" / "card.json").read_text())["metrics"]
    zs.ship("population", tables, zoo_dir / "population", None, update=True)
    card = json.loads((zoo_dir / "population" / "card.json").read_text())
    assert card["metrics"] == {} and "dropped the card's metrics" in capsys.readouterr().out
    assert card["clock"]  # the rest of the card is kept
    measured = tmp_path / "m.json"
    measured.write_text(json.dumps({"total_mae_heldout": {"value": 1.0, "how": "test"}}))
    zs.ship("population", tables, zoo_dir / "population", measured, update=True)
    assert json.loads((zoo_dir / "population" / "card.json").read_text())["metrics"] == json.loads(measured.read_text())


def test_zoo_robustness_writes_the_cards_figures_and_refuses_partial_runs(tmp_path):
    import json

    zr = _script("zoo_robustness")
    zoo_dir = _zoo_copy(tmp_path, "z")
    ev = tmp_path / "eval"
    ev.mkdir()
    row = lambda f: {"f1": f, "precision": 0.9, "recall": 0.7, "count_bias": -1.0}  # noqa: E731
    (ev / "nuclei.json").write_text(json.dumps({"as rendered": row(0.71), zr.BRIGHT: row(0.72), zr.HOT: row(0.73)}))
    (ev / "nuclei_none.json").write_text(json.dumps({"as rendered": row(0.74), zr.BRIGHT: row(0.75)}))
    (ev / "nuclei_outliers0.json").write_text(json.dumps({"as rendered": row(0.76), zr.HOT: row(0.77)}))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from eval_robustness import changes

    names = list(changes(np.random.default_rng(0)))
    (ev / "population.json").write_text(json.dumps({n: {"A": 0.1, "total": 0.01 * i} for i, n in enumerate(names)}))
    # the nuclei card needs its backdrop reader (a size model's section) for the backdrop figure
    assert zr.main(["--zoo", str(zoo_dir), "--eval", str(ev)]) == 0
    nuc = json.loads((zoo_dir / "nuclei" / "card.json").read_text())
    assert nuc["metrics"]["hot_pixels_heldout"]["value"] == {"with_outlier_removal": 0.73, "without": 0.77,
                                                            "as_rendered": 0.71}
    assert nuc["input"]["diameter"]["auto"]["backdrop"]["heldout_f1_backdrop"]["value"] == {
        "with the backdrop reader": 0.72, "--diameter none": 0.75, "as rendered": 0.71}
    pop = json.loads((zoo_dir / "population" / "card.json").read_text())
    assert pop["metrics"]["acquisition_changes_total_heldout"]["value"] == {n: 0.01 * i for i, n in enumerate(names)}
    (ev / "nuclei_outliers0.json").write_text(json.dumps({"as rendered": row(0.76)}))  # ran with a narrower --only
    with pytest.raises(SystemExit, match="no figures for 'hot pixels"):
        zr.main(["--zoo", str(zoo_dir), "--eval", str(ev)])


def test_zoo_compare_equal_nan_tensors_are_the_same(tmp_path, capsys):
    from safetensors.numpy import save_file

    zc = _script("zoo_compare")
    a, b = _zoo_copy(tmp_path, "a"), _zoo_copy(tmp_path, "b")
    for folder in (a, b):
        save_file({"x": np.array([1.0, np.nan, np.inf, -np.inf], np.float32)}, str(folder / "nuclei" / "extra.safetensors"))
    assert zc.main([str(a), str(b), "--models", "nuclei"]) == 0
    save_file({"x": np.array([1.0, np.nan, -np.inf, -np.inf], np.float32)}, str(b / "nuclei" / "extra.safetensors"))
    assert zc.main([str(a), str(b), "--models", "nuclei"]) == 1
    assert "NaN or infinite values differ" in capsys.readouterr().out


def test_eval_robustness_reads_a_staged_zoo(tmp_path, monkeypatch):
    import argparse

    from devolens.models import zoo

    monkeypatch.setattr(zoo, "ZOO_DIR", zoo.ZOO_DIR)  # restored after the test
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import eval_robustness

    stage = _zoo_copy(tmp_path, "stage")
    try:
        assert eval_robustness._model(argparse.Namespace(zoo=None, model="nuclei")) == "nuclei"
        assert eval_robustness._model(argparse.Namespace(zoo=stage / "nuclei", model="nuclei")) == str(stage / "nuclei")
        assert zoo.ZOO_DIR != stage
        assert eval_robustness._model(argparse.Namespace(zoo=stage, model="population")) == "population"
        assert zoo.ZOO_DIR == stage  # the population model's nuclei model comes from the stage too
    finally:
        zoo.card.cache_clear()


def test_zoo_ship_templates_match_the_shipped_cards():
    """The fixed parts zoo_ship.py writes (and --update rewrites) say what the shipped cards say: a card edited
    without its template would lose the edit at the next ship."""
    import json

    from devolens.models import zoo

    zs = _script("zoo_ship")
    for name, template in zs.CARDS.items():
        card = json.loads((zoo.ZOO_DIR / name / "card.json").read_text())
        for key in zs.UPDATED + ("limits", "summary", "predictor", "metrics_setting"):
            if key in template:
                assert card[key] == template[key], f"{name}: {key}"


def test_zoo_drop_head_keeps_the_three_class_network(tmp_path):
    """A network trained with a distance head, its 4th channel dropped: the same 3-class logits, loadable as a
    3-class network, the config saying so; a network without the head is refused."""
    import json

    import torch

    from devolens.models.architectures import build_model, load_model, save_model

    torch.manual_seed(0)
    net = build_model(classes=4, decoder_channels=[16, 8], encoder_depth=2).eval()
    recipe = {"model": {"arch": "unet", "distance_head": True}}
    save_model(net, tmp_path / "run" / "best.safetensors", config={"recipe": recipe, "epoch": 3})
    drop = _script("zoo_drop_head")
    cfg = drop.drop_head(tmp_path / "run" / "best.safetensors", tmp_path / "out" / "w.safetensors")
    three, saved = load_model(tmp_path / "out" / "w.safetensors")
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(three(x), net(x)[:, :3])
    assert saved["model"]["classes"] == 3 and saved["recipe"]["model"]["distance_head"] is False
    assert saved == json.loads(json.dumps(cfg)) and "distance head" in saved["derived_from"]
    assert "devolens_unit" not in saved  # the source pair's id is not the new weights' (devolens.io.together)
    with pytest.raises(SystemExit, match="not a 3-class network with a distance head"):
        drop.drop_head(tmp_path / "out" / "w.safetensors", tmp_path / "again.safetensors")


@pytest.mark.slow
def test_gpu_train_sizes_a_run_to_its_budget_on_the_cpu(tmp_path, monkeypatch, capsys):
    """scripts/gpu_train.py (the lent GPU's training driver) end to end on the CPU: probes, a run sized to the
    budget with --epochs, best and last weights copied out, the run's recipe naming the split --val gave."""
    import functools
    import json

    from _train_data import make_pairs

    data, val = (make_pairs(tmp_path / "data", groups=2, per_group=6),
                 make_pairs(tmp_path / "val", groups=1, per_group=1, seed=1))
    gt = _script("gpu_train")
    # in this process (no second import of torch and the networks), and the device probe timed over 1 step after its
    # 3 warm-up steps instead of 20: on this CPU its rate (~5 samples/s) sizes each epoch to its whole pass of 2
    # batches either way (the budget holds dozens of batches an epoch), and the 20 steps took 30-45 s
    monkeypatch.setattr(gt, "_device_rate", functools.partial(gt._device_rate, steps=1))
    monkeypatch.setattr(sys, "argv", [
        "gpu_train.py", str(ROOT / "recipes" / "tiny_nuclei.yaml"),
        "--data", str(data), "--val", str(val), "--out", str(tmp_path / "run"), "--minutes", "5",
        "--epochs", "2", "--workers", "0", "--device", "cpu", "--probe-seconds", "0.5",
        "--copy-to", str(tmp_path / "copy")])
    monkeypatch.chdir(ROOT)
    gt.main()  # a refusal would be a SystemExit
    stdout = capsys.readouterr().out
    assert "2 epochs of" in stdout and "note:" not in stdout
    assert {p.name for p in (tmp_path / "copy").iterdir()} >= {"best.safetensors", "best.json", "last.safetensors",
                                                               "history.csv"}
    history = pd.read_csv(tmp_path / "copy" / "history.csv")  # each epoch's time, its parts apart
    parts = history["validation_seconds"] + history["loader_seconds"]
    assert len(history) == 2 and (history["validation_seconds"] > 0).all() and (history["loader_seconds"] > 0).all()
    assert (parts < history["seconds"]).all()
    recipe = json.loads((tmp_path / "copy" / "last.json").read_text())["recipe"]
    assert recipe["train"]["epochs"] == 2 and recipe["data"]["val_fraction"] == pytest.approx(1 / 13, rel=1e-9)


def test_eval_livedead_card_is_written_from_the_per_well_measurement(tmp_path, monkeypatch):
    """scripts/eval_livedead.py writes the livedead card from an evaluation: the per-well spread (median, wells
    off by more than 0.05 / 0.10, the worst wells) in the metrics, headline and limits; --int8-card splices the
    int8 metrics into card.md before the limits, replacing an earlier int8 section."""
    import json

    from devolens.cli.models import HEADLINE_WORDS
    from devolens.models.architectures import build_model, save_model

    ev = _script("eval_livedead")
    per_well = [{"well": f"w{i}.tif", "true_fraction_dead": 0.3, "pred_fraction_dead": 0.3 + d}
                for i, d in enumerate([0.0, 0.01, -0.02, 0.06, -0.12, 0.03])]
    sp = ev.spread(per_well)
    assert sp["wells"] == 6 and sp["median_abs"] == 0.025 and sp["mean_abs"] == 0.04
    assert sp["wells_off_by_more_than_0.05"] == 2 and sp["wells_off_by_more_than_0.10"] == 1
    assert list(sp["worst"])[:2] == ["w4.tif", "w3.tif"] and sp["worst"]["w4.tif"] == {"true": 0.3, "predicted": 0.18}

    model = build_model("unet", "resnet18", in_channels=2, classes=3, decoder_channels=(8, 8, 8), encoder_depth=3)
    weights = save_model(model, tmp_path / "run" / "model.safetensors", {"steps": 3, "init": None}, fp16=True)
    zoo = tmp_path / "zoo" / "livedead"
    monkeypatch.setattr(ev, "ZOO", zoo)
    keys = ("pr_auc_live", "pr_auc_dead", "iou_live", "iou_dead", "object_f1_live", "object_f1_dead",
            "object_f1_any", "fraction_dead_mae")
    metrics = {k: 0.9 for k in keys} | {"wells": 6}
    ev.ship(str(weights), metrics, per_well, "test wells", "bf16", "270x360")
    card = json.loads((zoo / "card.json").read_text())
    assert (zoo / "weights.safetensors").read_bytes() == weights.read_bytes()
    assert card["metrics"]["fraction_dead_error_per_well"]["value"] == sp
    assert all(k in card["metrics"] and k in HEADLINE_WORDS for k in card["headline"])
    assert "by more than 0.10 in 1 of 6 wells" in card["limits"][-1]
    assert "bf16 network" in card["metrics"]["pr_auc_live"]["how"]

    def int8_eval(dead_error):
        out = tmp_path / "int8.json"
        out.write_text(json.dumps({"metrics": metrics, "per_well": [dict(w, pred_fraction_dead=0.3 + dead_error)
                                                                    for w in per_well], "precision": "int8"}))
        return str(out)

    with pytest.raises(SystemExit, match="no int8 section"):
        ev.int8_metrics(int8_eval(0.0))
    card["int8"] = {"engine": "onednn", "scheme": "s", "calibration": "c", "command": "x", "activations": {"a": [1, 0]}}
    (zoo / "card.json").write_text(json.dumps(card))
    ev.int8_metrics(int8_eval(0.2))
    ev.int8_metrics(int8_eval(0.07))  # a second run replaces the section
    md = (zoo / "card.md").read_text()
    assert md.count("## int8 inference") == 1 and md.index("## int8 inference") < md.index("## Limits")
    assert "off by more than 0.05 in 6 and by more than 0.10 in 0 of 6 wells" in md.split("## int8")[1]
    assert json.loads((zoo / "card.json").read_text())["int8"]["metrics"]["pr_auc_dead"] == 0.9
    assert "None" not in md.split("## int8")[1]
    bf16 = tmp_path / "bf16.json"
    bf16.write_text(json.dumps({"metrics": metrics, "per_well": per_well, "precision": "bf16"}))
    with pytest.raises(SystemExit, match="not int8"):
        ev.int8_metrics(str(bf16))


def _shipped(name: str) -> tuple[dict, str, str]:
    """A shipped card: card.json as a dict and the texts of card.json and card.md."""
    import json

    from devolens.models import zoo

    text = (zoo.ZOO_DIR / name / "card.json").read_text()
    return json.loads(text), text, (zoo.ZOO_DIR / name / "card.md").read_text()


def test_eval_livedead_writes_the_shipped_card_from_its_measurement(tmp_path, monkeypatch, capsys):
    """scripts/eval_livedead.py --zoo writes the whole livedead card: given the shipped card's measured values (the
    run's training JSON, the pooled metrics, the 24 held-out wells' spread, the int8 section) it writes the shipped
    card.json and card.md to the byte (commands as run, the held-out wells' limit, metrics_setting), so a rerun
    keeps the hand corrections; --zoo, zoo_int8.py and --int8-card in turn give the same card."""
    import json
    import shutil

    ev = _script("eval_livedead")
    card, text, md = _shipped("livedead")
    cfg = {"model": card["architecture"], **card["training"]}
    metrics = {k: v["value"] for k, v in card["metrics"].items() if not isinstance(v["value"], dict)} | {"wells": 24}
    sp = card["metrics"]["fraction_dead_error_per_well"]["value"]
    names = list(ev.SEEN_WELLS)
    built = ev.livedead_card(cfg, metrics, names, sp, ev.TRAIN_WELLS, "bf16", "2700x3600", card["int8"])
    assert json.dumps(built, indent=2) + "\n" == text
    assert ev.card_markdown(built) == md
    assert built["metrics_setting"]["command"] in ev.COMMANDS and ev.INT8_EVAL_COMMAND in ev.COMMANDS

    # --zoo on new weights: no int8 section yet, so no default figures (only how to measure them) ...
    fresh = ev.livedead_card(cfg, metrics, names, sp, ev.TRAIN_WELLS, "bf16", "2700x3600")
    assert "int8" not in fresh and "default_figures" not in fresh["metrics_setting"]
    assert fresh["metrics_setting"]["default_command"] == ev.INT8_EVAL_COMMAND
    assert "## int8 inference" not in ev.card_markdown(fresh) and "The default setting" not in ev.card_markdown(fresh)
    # ... zoo_int8.py adds the section and --int8-card its metrics (both through splice_int8_section): the shipped card
    fresh["int8"] = {k: v for k, v in card["int8"].items() if k != "metrics"}
    ev.splice_int8_section(tmp_path, fresh)
    assert "default_figures" not in json.loads((tmp_path / "card.json").read_text())["metrics_setting"]
    fresh["int8"] = card["int8"]
    ev.splice_int8_section(tmp_path, fresh)
    assert (tmp_path / "card.json").read_text() == text and (tmp_path / "card.md").read_text() == md

    # other held-out wells: the limit on the 24 wells' role is left out
    other = ev.livedead_card(cfg, metrics, [f"w{s}.tif" for s in range(9100, 9124)], sp, ev.TRAIN_WELLS, "bf16",
                             "2700x3600")
    assert ev.SEEN_WELLS_LIMIT not in other["limits"] and ev.SEEN_WELLS_NOTE not in ev.card_markdown(other)
    assert len(other["limits"]) == len(card["limits"]) - 1

    # --zoo with the zoo's own weights keeps their int8 section (calibrated on them)
    zoo_dir = tmp_path / "zoo" / "livedead"
    zoo_dir.mkdir(parents=True)
    from devolens.models import zoo

    for f in ("card.json", "card.md", "weights.safetensors"):
        shutil.copy(zoo.ZOO_DIR / "livedead" / f, zoo_dir / f)
    run = tmp_path / "run" / "model.safetensors"
    run.parent.mkdir()
    shutil.copy(zoo_dir / "weights.safetensors", run)
    run.with_suffix(".json").write_text(json.dumps(cfg))
    monkeypatch.setattr(ev, "ZOO", zoo_dir)
    per_well = [{"well": f"w{i}.tif", "true_fraction_dead": 0.3, "pred_fraction_dead": 0.31} for i in range(3)]
    ev.ship(str(run), metrics | {"wells": 3}, per_well, "", "bf16", "2700x3600")
    out = capsys.readouterr().out
    assert "kept the card's int8 section" in out and "limit on those wells' role is left out" in out
    again = json.loads((zoo_dir / "card.json").read_text())
    assert again["int8"] == card["int8"] and list(again)[-2:] == ["int8", "metrics_setting"]
    assert again["metrics_setting"] == card["metrics_setting"] and ev.TRAIN_WELLS in again["training_data"]


def _identity_table(md: str) -> tuple:
    """The shipped identity card.md's leave-one-embryo-out table as the script's ``res`` and ``mean``."""
    cols = ["founder_acc", "founder_f1", "depth1_acc", "depth1_f1", "founder_acc_none", "depth1_acc_none",
            "knn_founder_acc", "knn_founder_f1", "knn_depth1_acc", "knn_depth1_f1"]
    rows, mean = [], None
    for line in md.splitlines():
        f = [x.strip().strip("*") for x in line.strip("|").split("|")]
        if len(f) == 12 and f[1].isdigit():
            rows.append({"embryo": f[0], "cells": int(f[1]), "train_s": 0.0, **dict(zip(cols, map(float, f[2:])))})
        elif len(f) == 12 and f[0] == "mean":
            mean = pd.Series(dict(zip(cols, map(float, f[2:]))))
    assert len(rows) == 7 and mean is not None
    return pd.DataFrame(rows), mean


def test_train_identity_writes_the_shipped_card_from_its_measurement(capsys):
    """benchmarks/train_identity.py's card writer, given the shipped card's measured values (architecture, metrics,
    training record, command, the leave-one-embryo-out table), writes the shipped card.json (metrics_setting and
    limits included) and card.md (notes and provenance) to the byte; it says when the notes quote other figures
    than a new measurement's."""
    import json

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import train_identity as ti

    card, text, md = _shipped("identity")
    built = ti.zoo_card(card["architecture"], card["metrics"], card["training"], card["command"])
    assert json.dumps(built, indent=2) + "\n" == text
    assert built["metrics_setting"] == card["metrics_setting"] == ti.METRICS_SETTING
    res, mean = _identity_table(md)
    assert ti.card_markdown(built, res, mean) == md
    assert ti.stale_notes(mean) == []
    other = mean.copy()
    other["founder_acc_none"] = 0.871
    assert ti.stale_notes(other) == ["per-frame ensemble 0.871 / 0.745"]


def test_zoo_population_total_from_zoo_keeps_the_regressors_provenance(tmp_path, capsys):
    """scripts/zoo_population.py --total-from-zoo keeps the total regressor's spec as the card has it, its hand-added
    `measured` provenance included, says that the weight was not chosen again, and writes a `measured` of its own
    for a card without one; --total-run's spec gets one measured with its calibration."""
    import json

    zp = _script("zoo_population")
    card, _, _ = _shipped("population")
    zoo_dir = _zoo_copy(tmp_path, "z")
    tensors, spec = zp.kept_total_regressor(zoo_dir / "population")
    assert spec == card["total_regressor"] and list(spec)[-1] == "measured"
    assert tensors and all(k.startswith("total_regressor.") for k in tensors)
    out = " ".join(capsys.readouterr().out.split())
    w = card["total_regressor"]["weight_calibration"]
    # the shipped weight was chosen again on development renders (benchmarks/choose_total_weight.py): said so
    assert (f"weight_calibration {w} and validation_total_mae copied unchanged, last chosen by "
            "benchmarks/choose_total_weight.py") in out
    bare = dict(card, total_regressor={k: v for k, v in card["total_regressor"].items()
                                       if k not in ("measured", "chosen")})
    (zoo_dir / "population" / "card.json").write_text(json.dumps(bare))
    _, spec = zp.kept_total_regressor(zoo_dir / "population")
    assert f"weight_calibration {w} and validation_total_mae copied unchanged, not chosen again" in " ".join(
        capsys.readouterr().out.split())
    assert "runs/zoo/pop_total32" in spec["measured"] and f"the weight {w} was not chosen again" in spec["measured"]
    said = zp.measured_with(spec, {"chosen": "linear_all", "frames": 900, "embryos": 11})
    assert "linear_all, 900 frames of 11 training embryos" in said and "not chosen again" in said
    del bare["total_regressor"]
    (zoo_dir / "population" / "card.json").write_text(json.dumps(bare))
    with pytest.raises(SystemExit, match="no total_regressor"):
        zp.kept_total_regressor(zoo_dir / "population")
