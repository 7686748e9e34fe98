"""Fine-tuning a shipped model on one's own data (a user walkthrough): recipes that start from a zoo
model validate with that model's post-processing, a run used as a model falls back to it, and the
starting weights are scored before the first epoch."""

import json
from pathlib import Path

import pytest
import yaml

from devolens.models import zoo
from devolens.models.export import card_from_run, zoo_init_name
from devolens.train.recipe import load_recipe

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))
#: recipes of past training stages, kept as they ran (the nuclei card's command names them): nuclei_gpu.yaml is
#: the nineteenth session's GPU stage, which picked its epochs before the card gained isolated_fraction
HISTORICAL = {"nuclei_gpu.yaml"}


def _zoo_recipes():
    out = []
    for path in RECIPES:
        if yaml.safe_load(path.read_text()).get("task") == "identity":  # not a devolens train recipe
            continue
        rec = load_recipe(path)
        name = zoo_init_name((rec.get("model") or {}).get("init"))
        if name is not None:
            out.append((path, rec, name))
    return out


def test_own_data_recipes_start_from_the_zoo():
    names = {p.name for p, _, _ in _zoo_recipes()}
    assert "finetune_own_nuclei.yaml" in names and "nuclei_finetune2.yaml" in names


@pytest.mark.parametrize("path,rec,name", _zoo_recipes(), ids=lambda x: x.name if isinstance(x, Path) else "")
def test_every_recipe_from_a_zoo_model_validates_with_its_cards_postprocess(path, rec, name):
    """So that the best epoch is picked (and `segment --model RUN` segments) as the shipped model does;
    a recipe adding a distance head seeds from that head, whose settings are its own."""
    if rec["model"].get("distance_head"):
        assert rec["validate"]["postprocess"], path.name
        return
    if path.name in HISTORICAL:  # a past training stage's recipe as it ran (a shipped card's reproduction command)
        assert rec["validate"]["instances"] == "watershed" and rec["validate"]["postprocess"], path.name
        return
    card = zoo.card(name)
    assert rec["validate"]["instances"] == "watershed", path.name
    assert rec["validate"]["postprocess"] == card["postprocess"], path.name


def test_zoo_init_names():
    assert zoo_init_name("zoo:nuclei") == "nuclei"
    assert zoo_init_name("src/devolens/models/zoo/nuclei") == "nuclei"
    assert zoo_init_name(str(zoo.ZOO_DIR / "membrane" / "weights.safetensors")) == "membrane"
    assert zoo_init_name("runs/zoo/nuclei_v2/best.safetensors") is None
    assert zoo_init_name(None) is None


def _fake_run(root: Path, init, postprocess=None, name="my_nuclei", distance=False) -> Path:
    run = root / f"run_{name}_{bool(postprocess)}_{distance}"
    run.mkdir(parents=True)
    (run / "best.safetensors").write_bytes(b"x")
    recipe = {"name": name, "model": {"init": init, "distance_head": distance},
              "validate": {"instances": "watershed", "postprocess": postprocess or {}}}
    (run / "best.json").write_text(json.dumps({
        "task": "segmentation", "recipe": recipe,
        "input": {"channels": 1, "size": None, "scale": 0.5, "normalize": "percentile", "target": "boundary"},
        "model": {"kind": "segmentation", "encoder_depth": 4}}))
    return run


def test_a_run_from_zoo_weights_without_postprocess_uses_the_zoo_cards(tmp_path):
    card = card_from_run(_fake_run(tmp_path, "zoo:nuclei"))
    assert card["postprocess"] == zoo.card("nuclei")["postprocess"]
    assert "zoo model 'nuclei'" in card["postprocess_note"] and "validate.postprocess" in card["postprocess_note"]
    # the recipe's own settings win, with no note
    own = card_from_run(_fake_run(tmp_path, "zoo:nuclei", {"threshold": 0.4}))
    assert own["postprocess"] == {"threshold": 0.4} and "postprocess_note" not in own
    # no zoo start, another kind, or a distance head: nothing borrowed
    assert card_from_run(_fake_run(tmp_path, "runs/x/best.safetensors", name="plain"))["postprocess"] == {}
    mem = card_from_run(_fake_run(tmp_path, "zoo:nuclei", name="my_membrane"))
    assert mem["task"] == "membrane" and mem["postprocess"] == {}
    dist = card_from_run(_fake_run(tmp_path, "zoo:nuclei", name="dist", distance=True))
    assert dist["postprocess"] == {} and "postprocess_note" not in dist


def test_a_membrane_run_from_the_membrane_model_uses_its_card(tmp_path):
    card = card_from_run(_fake_run(tmp_path, "zoo:membrane", name="my_membrane"))
    assert card["postprocess"] == zoo.card("membrane")["postprocess"] and card["postprocess_note"]


# ----------------------------------------------------------------------------- 2. the starting weights' score
@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    from _train_data import make_pairs, tiny_recipe
    from devolens.train.trainer import train

    root = tmp_path_factory.mktemp("start")
    pairs = make_pairs(root / "pairs", groups=3, per_group=4, size=64)
    rec = tiny_recipe()
    res = train(rec, pairs, root / "base")
    assert "start" not in json.loads((root / "base" / "run.json").read_text())  # no init: no extra validation
    assert res.start_value is None and res.start_note is None
    return pairs, rec, res


def test_a_fine_tune_scores_its_start_and_says_when_no_epoch_beat_it(base_run, tmp_path, capsys):
    from devolens.cli import main

    pairs, rec, base = base_run
    init = str(base.run_dir / "best.safetensors")
    worse = {**rec, "model": {**rec["model"], "init": init}, "optimizer": {"name": "sgd", "lr": 5.0, "weight_decay": 0.0},
             "train": {**rec["train"], "epochs": 1}}
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(worse))
    out = tmp_path / "tuned"
    main(["train", str(recipe), "--data", str(pairs), "--out", str(out), "--no-plots"])
    text = capsys.readouterr()
    summary = json.loads((out / "run.json").read_text())
    start = summary["start"]
    # the starting weights are the base run's best: the same score on the same validation split
    assert start["value"] == pytest.approx(base.best_value, abs=1e-4) and start["init"] == init
    assert any("starting weights" in n for n in summary["notes"])
    verdict = start["not_beaten"]
    assert verdict.startswith("no epoch beat the starting weights") and "optimizer.lr" in verdict
    assert verdict in summary["notes"] and verdict in (text.out + text.err).replace("\n", " ").replace("  ", " ")
    trained = card_from_run(out, "nuclei")["trained"]
    assert trained["start_value"] == start["value"] and trained["note"] == verdict and trained["init"] == init


def test_a_fine_tune_that_beats_its_start_says_nothing(base_run, tmp_path):
    from devolens.train.trainer import _start_verdict, train

    assert _start_verdict("zoo:nuclei", "val_f1", "max", 0.64, 0.70, 3) is None
    line = _start_verdict("zoo:nuclei", "val_f1", "max", 0.642, 0.638, 0)
    assert "keep the zoo model 'nuclei'" in line and "0.6420" in line and "epoch 1" in line
    assert _start_verdict("x", "val_loss", "min", 0.5, 0.4, 1) is None
    # a tie is no loss: F1 0.0 before and after, or within 1e-6, says nothing; worse by more does
    assert _start_verdict("x", "val_f1", "max", 0.0, 0.0, 1) is None
    assert _start_verdict("x", "val_f1", "max", 0.5, 0.5 - 5e-7, 1) is None
    assert _start_verdict("x", "val_loss", "min", 0.5, 0.5 + 5e-7, 1) is None
    assert _start_verdict("x", "val_f1", "max", 0.5, 0.5 - 2e-6, 1).startswith("no epoch beat")
    assert _start_verdict("x", "val_loss", "min", 0.5, 0.5 + 2e-6, 1).startswith("no epoch beat")
    pairs, rec, base = base_run
    res = train({**rec, "model": {**rec["model"], "init": str(base.run_dir / "best.safetensors")},
                 "optimizer": {"name": "adam", "lr": 1e-6, "weight_decay": 0.0}}, pairs, tmp_path / "gentle", epochs=1)
    assert res.start_value == pytest.approx(base.best_value, abs=1e-4)
    assert len(res.history) == 1  # the start is no history.csv row


def test_a_resumed_fine_tune_keeps_its_start_without_scoring_it_again(base_run, tmp_path):
    from devolens.train.trainer import train

    pairs, rec, base = base_run
    worse = {**rec, "model": {**rec["model"], "init": str(base.run_dir / "best.safetensors")},
             "optimizer": {"name": "sgd", "lr": 5.0, "weight_decay": 0.0}}
    first = train(worse, pairs, tmp_path / "run", epochs=1)
    said: list[str] = []
    again = train(worse, pairs, tmp_path / "run", epochs=2, resume=True, info=said.append)
    assert not any("starting weights" in s for s in said)  # read back from run.json, not scored again
    assert again.start_value == first.start_value and len(again.history) == 2
    start = json.loads((tmp_path / "run" / "run.json").read_text())["start"]
    assert start["value"] == first.start_value and (start.get("not_beaten") is None) == (again.start_note is None)


def test_a_resumed_fine_tune_keeps_its_starting_weights_notes(base_run, tmp_path):
    from devolens.train import trainer as T

    pairs, rec, base = base_run
    worse = {**rec, "model": {**rec["model"], "init": str(base.run_dir / "best.safetensors")},
             "optimizer": {"name": "sgd", "lr": 5.0, "weight_decay": 0.0}}
    T.train(worse, pairs, tmp_path / "run", epochs=1)
    before = json.loads((tmp_path / "run" / "run.json").read_text())
    said = [n for n in before["notes"] if "starting weights" in n]
    assert said  # the start's score (and, when no epoch beat it, the verdict)
    # a verdict said before the resume that stays: kept once; one that no longer holds: dropped
    start = dict(before["start"])
    start["not_beaten"] = "no epoch beat the starting weights (an earlier verdict)"
    before["start"] = start
    (tmp_path / "run" / "run.json").write_text(json.dumps(before))
    again = T.train(worse, pairs, tmp_path / "run", epochs=2, resume=True)
    after = json.loads((tmp_path / "run" / "run.json").read_text())
    assert said[0] in after["notes"] and after["notes"].count(said[0]) == 1
    assert "no epoch beat the starting weights (an earlier verdict)" not in after["notes"]
    if again.start_note is not None:
        assert after["notes"].count(again.start_note) == 1 and after["start"]["not_beaten"] == again.start_note
    else:
        assert "not_beaten" not in after["start"]
    assert again.notes == after["notes"]
