"""Models of your own, s41: what a run segments is judged by its recipe's ``model.init``, ``augment.preset`` and its
data's render kind before its name (train's tip, ``models export`` and ``--model RUN`` alike); ``models export RUN
--to nuclei`` says that ``--model nuclei`` is the shipped model; an exported card says what ``--prune-top`` dropped,
carries the run's note that a validating image copies a training one into its limits, names the tune study of a
trial rather than showing a command as run, and the epochs a resumed run trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.models import zoo
from devolens.models import export
from devolens.models.export import card_from_run, card_md


def _run(root: Path, folder: str = "run", *, name: str = "cells_lab", init=None, preset: str = "nuclei",
         record: dict | None = None, train: dict | None = None, epoch: int = 0) -> Path:
    """A training run's folder without training: best.json (a boundary-target segmentation config of recipe
    ``name``), best.safetensors (one small tensor: enough for models export) and, given ``record``, run.json."""
    from devolens.io.tensors import save_tensors
    import torch

    run = root / folder
    run.mkdir(parents=True)
    save_tensors({"w": torch.zeros(2, 2)}, run / "best.safetensors", metadata={"format": "pt"})
    recipe = {"name": name, "task": "segmentation", "model": {"init": init, "distance_head": False},
              "augment": {"preset": preset}, "train": {"epochs": 2, **(train or {})},
              "validate": {"instances": "watershed", "postprocess": {"threshold": 0.5}}}
    (run / "best.json").write_text(json.dumps({
        "task": "segmentation", "recipe": recipe, "epoch": epoch, "monitor": "val_f1", "value": 0.9,
        "metrics": {"val_f1": 0.9},
        "input": {"channels": 1, "size": None, "scale": 1.0, "normalize": "percentile", "target": "boundary"},
        "model": {"kind": "segmentation", "encoder_depth": 4}}))
    if record is not None:
        (run / "run.json").write_text(json.dumps(record))
    return run


def _record(data: Path, **over) -> dict:
    """A run.json of one session of ``devolens train`` on the data folder ``data``."""
    rec = {"epochs_done": 2, "n_train": 10, "n_val": 4, "n_active": 10, "notes": [],
           "command": "devolens train r.yaml --data d --out run",
           "sessions": [{"from_epoch": 0, "command": "devolens train r.yaml --data d --out run"}],
           "data": {"path": str(data), "samples": 14, "fingerprint": "f" * 32}}
    rec.update(over)
    return rec


# ---------------------------------------------------------------------------- 1: what a run segments
def test_a_membrane_fine_tune_named_otherwise_is_a_membrane_run(tmp_path):
    """recipes/membrane.yaml renamed `cells_lab` (init zoo:membrane, preset membrane): train's tip, models export and
    --model RUN took it for nuclei (only 'membrane' in the recipe's name made a membrane run)."""
    mem = _run(tmp_path, name="cells_lab", init="zoo:membrane", preset="membrane")
    assert card_from_run(mem)["task"] == "membrane"  # the default kind: train's tip and models export
    assert export.judged_kind(mem) == ("membrane", "model.init zoo:membrane and augment.preset membrane")
    with pytest.raises(DevolensError, match=r"a membrane run \(by its model.init zoo:membrane.*not a nuclei model"):
        zoo.card(mem, "nuclei")  # segment nuclei --model RUN
    assert zoo.card(mem, "membrane")["task"] == "membrane"
    # the reverse: a nuclei fine-tune named lab_model is no membrane model
    nuc = _run(tmp_path, "nuc", name="lab_model", init="zoo:nuclei")
    with pytest.raises(DevolensError, match="a nuclei run .*not a membrane model"):
        card_from_run(nuc, "membrane")
    # the preset alone, and the data's render kind alone, say so too
    only_preset = _run(tmp_path, "p", name="lab", preset="membrane")
    assert card_from_run(only_preset)["task"] == "membrane"
    render = tmp_path / "render"
    render.mkdir()
    (render / "render.json").write_text(json.dumps({"kind": "membrane"}))
    from_render = _run(tmp_path, "r", name="lab", record=_record(render))
    assert export.judged_kind(from_render)[0] == "membrane" and card_from_run(from_render)["task"] == "membrane"


def test_the_name_decides_where_it_says_the_other_kind_and_nothing_said_takes_either(tmp_path):
    # a membrane network started from the nuclei weights: its name says membrane
    mixed = _run(tmp_path, "mixed", name="my_membrane", init="zoo:nuclei")
    assert card_from_run(mixed)["task"] == "membrane"
    # a recipe that says nothing (preset nuclei is what 'auto' resolves to): either kind, nuclei by default
    plain = _run(tmp_path, "plain", name="lab")
    assert export.judged_kind(plain) == (None, "") and card_from_run(plain)["task"] == "nuclei"
    assert card_from_run(plain, "membrane")["task"] == "membrane"


def test_export_notes_an_override_of_the_judged_kind(tmp_path, capsys):
    mem = _run(tmp_path, name="cells_lab", init="zoo:membrane", preset="membrane")
    assert main(["models", "export", str(mem), "--to", str(tmp_path / "as_nuclei"), "--kind", "nuclei"]) == 0
    err = capsys.readouterr().err
    assert "note: the run is a membrane run (by its model.init zoo:membrane" in err and "exported as nuclei" in err
    assert main(["models", "export", str(mem), "--to", str(tmp_path / "m")]) == 0
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["task"] == "membrane" and card["predictor"].endswith("MembranePredictor")


def test_trains_tip_names_the_judged_kind(tmp_path, capsys):
    from devolens.cli.train import _how_to_use

    _how_to_use(_run(tmp_path, name="cells_lab", init="zoo:membrane", preset="membrane"))
    out = capsys.readouterr()
    assert "devolens segment membrane INPUT --model" in out.out + out.err


# ---------------------------------------------------------------------------- 2: --to a shipped model's name
def test_exporting_to_a_shipped_models_name_says_which_model_is_which(tmp_path, monkeypatch, capsys):
    run = _run(tmp_path, name="my_nuclei", init="zoo:nuclei")
    monkeypatch.chdir(tmp_path)
    assert main(["models", "export", str(run), "--to", "nuclei"]) == 0
    err = capsys.readouterr().err
    assert "--model ./nuclei --out DIR" in err
    assert "`--model nuclei` (and load('nuclei')) means the shipped nuclei model" in err
    text = (tmp_path / "nuclei" / "card.md").read_text()
    assert "load('./nuclei')" in text and "--model ./nuclei" in text
    assert main(["models", "export", str(run), "--to", "mine"]) == 0  # another name: no note
    assert "shipped" not in capsys.readouterr().err


# ---------------------------------------------------------------------------- 3: the card's facts
def test_a_pruned_runs_card_says_what_was_dropped(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    run = _run(tmp_path, name="my_nuclei", init="zoo:nuclei", epoch=3,
               train={"epochs": 4, "prune_top": 20.0, "prune_after": 2, "prune_restart": True},
               record=_record(data, epochs_done=4, n_active=8))
    (run / "pruned.csv").write_text("rank,sample,mean_loss\n1,a.png,1.3\n2,b.png,0.9\n")
    card = card_from_run(run)
    text = card["training_data"]
    assert "split 10 for training, 4 for validation" in text
    assert "the 2 highest-loss training samples were dropped (20 %" in text
    assert "trained afresh on the other 8" in text and "learned from those 8 alone" in text
    assert card["trained"]["pruned"]["samples"] == 2 and card["trained"]["pruned"]["trained_on"] == 8
    # pruned of nothing (an empty pruned.csv): nothing said
    (run / "pruned.csv").write_text("rank,sample,mean_loss\n")
    assert "dropped" not in card_from_run(run)["training_data"]


def test_a_copy_across_the_split_is_in_the_cards_limits(tmp_path):
    import pandas as pd

    from devolens.data.datasets import split_copies

    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir()
    (data / "train" / "a.png").write_bytes(b"same bytes")
    (data / "test" / "b.png").write_bytes(b"same bytes")
    notes = split_copies(pd.DataFrame({"image": [str(data / "train" / "a.png")]}),
                         pd.DataFrame({"image": [str(data / "test" / "b.png")]}), data)
    assert notes  # the trainer's own note
    run = _run(tmp_path, name="my_nuclei", record=_record(data, notes=["some other note", *notes]))
    card = card_from_run(run)
    assert "test/b.png = train/a.png" in card["limits"] and "read too high" in card["limits"]
    assert "some other note" not in card["limits"]
    assert "test/b.png = train/a.png" in card_md(card)


def test_a_tune_trials_card_names_its_study_not_a_command(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    study = tmp_path / "tu1"
    (study / "trials").mkdir(parents=True)
    (study / "best.json").write_text(json.dumps({"study": "my_nuclei", "trial": 1}))
    (study / "trials.csv").write_text("number,value\n1,0.9\n")
    record = _record(data, command=None, sessions=[{"from_epoch": 0, "command": None}])
    run = _run(study / "trials", "trial_0001", name="my_nuclei", record=record)
    card = card_from_run(run)
    assert "devolens train" not in card["command"]
    assert card["command"].startswith("# trial 1 of the devolens tune study 'my_nuclei' in ")
    assert card["trained"]["tune"] == {"trial": 1, "folder": str(study.resolve()), "study": "my_nuclei"}
    # a run of the Python API elsewhere keeps its equivalent command
    api = _run(tmp_path, "api", record=record)
    assert card_from_run(api)["command"].startswith("devolens train <recipe: the card's>")


def test_a_resumed_runs_card_records_the_epochs_trained(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    run = _run(tmp_path, name="my_nuclei", epoch=1, record=_record(data, epochs_done=4))
    card = card_from_run(run)
    assert card["trained"]["epochs"] == 4 and card["recipe"]["train"]["epochs"] == 2
    assert "trained 4 epochs" in card["trained"]["epochs_note"] and "(the 2nd)" in card["trained"]["epochs_note"]
    assert "The run trained 4 epochs" in card_md(card)
    same = _run(tmp_path, "same", name="my_nuclei", record=_record(data, epochs_done=2))
    assert card_from_run(same)["trained"]["epochs"] == 2 and "epochs_note" not in card_from_run(same)["trained"]


def test_evaluate_judges_a_runs_kind_as_export_does(tmp_path):
    import json

    from devolens.train.evaluate import _run_kind

    recipe = {"name": "cells_lab", "model": {"init": "zoo:membrane"}, "augment": {"preset": "nuclei"}}
    (tmp_path / "best.json").write_text(json.dumps({"recipe": recipe}))
    # (a recipe that sets no preset is stored with 'nuclei': the fine-tune from the membrane model is a membrane run)
    assert _run_kind(tmp_path, recipe) == "membrane"
