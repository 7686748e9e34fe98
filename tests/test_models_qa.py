"""Models of your own, QA sweep: ``--scale`` and a card's ``input.scale`` bounded like a recipe's ``data.scale``,
an exported folder given to ``models export``, messages worded for each command (non-segmentation and damaged
runs), a membrane run asked to segment nuclei, the weights' file mode, ``models show RUN`` in the human form,
and a weights file given as ``--model``."""

from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pytest

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.models import zoo
from devolens.models.export import card_from_run, check_scale, export_run, named_kind, scale_bounds


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch boundary-target run of a recipe named 'test' (says no kind) on tiny disc images."""
    from devolens.train.trainer import train

    root = tmp_path_factory.mktemp("qa_run")
    data = make_pairs(root / "data", groups=3, per_group=2, size=64)
    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34, "normalize": "percentile"},
                      model={"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [8, 8, 8]},
                      loss={"name": "ce_dice"}, train={"epochs": 1, "batch_size": 4, "threads": 1, "monitor": "val_f1"})
    train(rec, data, root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    import imageio.v3 as iio

    from _train_data import disc_frame

    img, _ = disc_frame(np.random.default_rng(1), size=64)
    path = tmp_path_factory.mktemp("qa_img") / "frame.png"
    iio.imwrite(path, img)
    return path


def _edited(run, dest, edit):
    """A copy of ``run`` whose best.json is ``edit(config)`` (written as JSON; a str is written as it is)."""
    shutil.copytree(run, dest)
    cfg = edit(json.loads((dest / "best.json").read_text()))
    (dest / "best.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return dest


def _renamed(cfg, name):
    cfg["recipe"]["name"] = name
    return cfg


def _error(capsys) -> str:
    """The one ``error:`` line of the last command (no traceback, nothing else on stderr)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------------------- 1: scale bounds
def test_scale_bounds_are_the_recipes():
    from devolens.train.recipe import SCHEMA

    field = SCHEMA["data"]["scale"]
    assert scale_bounds() == (field.low, field.high) == (0.01, 8.0)
    assert check_scale(0.01) == 0.01 and check_scale(8) == 8.0
    for bad in (float("inf"), float("-inf"), float("nan"), 0, -1, 1000, 8.01, "0.5", None, True):
        with pytest.raises(DevolensError, match="scale must be a number from 0.01 to 8"):
            check_scale(bad)


@pytest.mark.parametrize("scale", ["inf", "1000", "0", "-1", "nan"])
def test_export_refuses_a_scale_out_of_bounds_before_any_work(run, tmp_path, capsys, scale):
    assert main(["models", "export", str(run), "--to", str(tmp_path / "exp"), "--scale", scale]) == 2
    assert "--scale must be a number from 0.01 to 8" in _error(capsys)
    assert not (tmp_path / "exp").exists()
    # options first: a bad --scale is reported even when the run is no run at all
    assert main(["models", "export", str(tmp_path / "nope"), "--to", str(tmp_path / "exp"), "--scale", scale]) == 2
    assert "--scale" in _error(capsys)


@pytest.mark.parametrize("value, shown", [("Infinity", "inf"), ("1000", "1000"), ("0", "0"), ('"half"', "'half'"),
                                          ("NaN", "nan"), ("null", "None")])
def test_a_folder_card_with_a_scale_out_of_bounds_is_refused(run, image, tmp_path, capsys, value, shown):
    exp = tmp_path / "exp"
    export_run(run, exp, scale=0.5)
    text = (exp / "card.json").read_text()
    assert '"scale": 0.5' in text
    (exp / "card.json").write_text(text.replace('"scale": 0.5', f'"scale": {value}'))
    with pytest.raises(DevolensError, match=rf"card\.json: input\.scale must be .*got {shown}"):
        zoo.card(exp)
    assert main(["segment", "nuclei", str(image), "--model", str(exp), "--out", str(tmp_path / "seg")]) == 2
    err = _error(capsys)
    assert str(exp / "card.json") in err and "input.scale" in err and not (tmp_path / "seg").exists()


def test_a_folder_card_that_is_no_object_is_refused(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "card.json").write_text("[1, 2]")
    with pytest.raises(DevolensError, match="not a model card"):
        zoo.card(tmp_path / "m")


# ---------------------------------------------------------------------------- 2: an exported folder as the source
def test_exporting_an_exported_folder_says_so(run, tmp_path, capsys):
    exp = tmp_path / "exp"
    export_run(run, exp)
    assert main(["models", "export", str(exp), "--to", str(tmp_path / "again")]) == 2
    err = _error(capsys)
    assert "already an exported model" in err and "copy the folder" in err and "no card.json" not in err
    assert not (tmp_path / "again").exists()
    weights = tmp_path / "w.safetensors"
    shutil.copy(run / "best.safetensors", weights)
    assert main(["models", "export", str(weights), "--to", str(tmp_path / "again")]) == 2
    assert "a weights file" in _error(capsys)
    assert main(["models", "export", str(tmp_path / "nope"), "--to", str(tmp_path / "again")]) == 2
    err = _error(capsys)
    assert "not a training run: no such folder" in err and "model folder" not in err  # export takes runs only


# ---------------------------------------------------------------------------- 3: messages worded for the command
def test_non_segmentation_and_damaged_runs_are_worded_for_each_command(run, image, tmp_path, capsys):
    cases = {
        "population": (lambda c: {**c, "task": "population"},
                       # (a count run is used by `population --model`, shown and exported since the 56th session:
                       # this one, a segmentation run's best.json relabelled, is no count regressor)
                       {"show": "best.json describes no count regressor (model kind 'segmentation')", "export":
                        "best.json describes no count regressor (model kind 'segmentation')",
                        "segment": "best.json describes no count regressor (model kind 'segmentation')"}),
        "notask": (lambda c: {k: v for k, v in c.items() if k != "task"}, "best.json names no task"),
        "list": (lambda c: [c], "best.json is not a checkpoint's config"),
        "broken": (lambda c: "{broken", "best.json is not valid JSON"),
        "nokind": (lambda c: {**c, "model": {}}, "describes no segmentation network"),
        "badinput": (lambda c: {**c, "input": 3}, "'input' is not a mapping"),
    }
    for name, (edit, expected) in cases.items():
        folder = _edited(run, tmp_path / name, edit)
        commands = {"show": ["models", "show", str(folder)],
                    "export": ["models", "export", str(folder), "--to", str(tmp_path / "x")],
                    "segment": ["segment", "nuclei", str(image), "--model", str(folder), "--out", str(tmp_path / "s")]}
        for command, argv in commands.items():
            assert main(argv) == 2, (name, command)
            err = _error(capsys)
            want = expected[command] if isinstance(expected, dict) else expected
            assert want in err and str(folder) in err and "None run" not in err, (name, command, err)
            assert not (tmp_path / "x").exists() and not (tmp_path / "s").exists()
    half = tmp_path / "half"
    shutil.copytree(run, half)
    (half / "best.safetensors").unlink()
    with pytest.raises(DevolensError, match="best.safetensors is missing"):
        card_from_run(half)


# ---------------------------------------------------------------------------- 4: what a run segments
def test_a_membrane_run_is_not_used_for_nuclei_unless_exported_so(run, image, tmp_path, capsys):
    mem = _edited(run, tmp_path / "mem", lambda c: _renamed(c, "membrane"))
    assert named_kind(mem) == "membrane" and named_kind(run) is None
    assert card_from_run(mem)["task"] == "membrane"  # the train tip, models export and --model agree
    with pytest.raises(DevolensError, match="a membrane run .* not a nuclei model"):
        zoo.card(mem, "nuclei")
    assert main(["segment", "nuclei", str(image), "--model", str(mem), "--out", str(tmp_path / "seg")]) == 2
    err = _error(capsys)
    assert "devolens segment membrane" in err and "--kind nuclei" in err and not (tmp_path / "seg").exists()
    assert zoo.card(mem, "membrane")["task"] == "membrane"
    # a nuclei-named run asked for membranes likewise; a run whose recipe's name says neither takes either kind
    nuc = _edited(run, tmp_path / "nuc", lambda c: _renamed(c, "my_nuclei"))
    with pytest.raises(DevolensError, match="a nuclei run"):
        card_from_run(nuc, "membrane")
    assert card_from_run(run, "membrane")["task"] == "membrane" and card_from_run(run, "nuclei")["task"] == "nuclei"
    # models export --kind is the deliberate override, said in a note
    assert main(["models", "export", str(mem), "--to", str(tmp_path / "as_nuclei"), "--kind", "nuclei"]) == 0
    err = capsys.readouterr().err
    assert "note: the run's recipe is named for membrane; exported as nuclei" in err
    assert json.loads((tmp_path / "as_nuclei" / "card.json").read_text())["task"] == "nuclei"
    assert main(["models", "export", str(mem), "--to", str(tmp_path / "k"), "--kind", "cells"]) == 2
    assert "--kind must be one of nuclei, membrane" in _error(capsys) and not (tmp_path / "k").exists()


# ---------------------------------------------------------------------------- 5: file modes
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_exported_weights_get_the_usual_permissions(run, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        export_run(run, tmp_path / "exp")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "exp").iterdir()}
    assert modes == {"weights.safetensors": mode, "card.json": mode, "card.md": mode}


# ---------------------------------------------------------------------------- 6: models show RUN
def test_models_show_prints_a_run_as_people_read_a_card(run, tmp_path, capsys):
    assert main(["models", "show", str(run)]) == 0
    text = " ".join(capsys.readouterr().out.split())  # as rich wrapped it at the console's width
    assert not text.startswith("{") and "Known limits" in text and "validation split" in text
    assert "devolens segment nuclei INPUT --model" in text  # how to use it, as an exported folder's card says
    assert main(["models", "show", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "nuclei"
    export_run(run, tmp_path / "exp")  # an exported folder: its card.md, as before
    assert main(["models", "show", str(tmp_path / "exp")]) == 0
    assert "Known limits" in capsys.readouterr().out


# ---------------------------------------------------------------------------- 7: --model with a weights file
def test_a_weights_file_as_model_says_what_model_takes(run, image, tmp_path, capsys):
    weights = tmp_path / "x.safetensors"
    shutil.copy(run / "best.safetensors", weights)
    for given in (weights, tmp_path / "missing.safetensors"):
        assert main(["segment", "nuclei", str(image), "--model", str(given), "--out", str(tmp_path / "seg")]) == 2
        err = _error(capsys)
        assert "--model takes a zoo name" in err and "not a weights file" in err and "models export" in err
        assert "in the zoo" not in err and not (tmp_path / "seg").exists()
    with pytest.raises(DevolensError, match="no such model folder"):
        zoo.card(str(tmp_path / "no_such_dir"))
    with pytest.raises(DevolensError, match="no model named 'no_such_model' in the zoo"):
        zoo.card("no_such_model")


def test_load_names_an_unknown_option():
    from devolens.errors import DevolensError
    from devolens.models import zoo

    with pytest.raises(DevolensError, match=r"unknown option 'threshold' \(post-processing options go in postprocess"):
        zoo.load("nuclei", threshold=2)
    with pytest.raises(DevolensError, match="unknown option 'bogus'"):
        zoo.load("nuclei", bogus=1)


def test_use_folder_reads_a_staged_copy_of_the_zoo(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "ZOO_DIR", zoo.ZOO_DIR)  # restored after the test
    stage = tmp_path / "zoo"
    (stage / "nuclei").mkdir(parents=True)
    card = json.loads((zoo.ZOO_DIR / "nuclei" / "card.json").read_text())
    card["summary"] = "staged copy"
    (stage / "nuclei" / "card.json").write_text(json.dumps(card))
    try:
        zoo.card("nuclei")  # cached from the package
        assert zoo.use_folder(stage) == stage
        assert zoo.available() == ["nuclei"]
        assert zoo.card("nuclei")["summary"] == "staged copy"  # not the cached card of the package's
        with pytest.raises(DevolensError, match="no such zoo folder"):
            zoo.use_folder(tmp_path / "missing")
    finally:
        zoo.card.cache_clear()
