"""`devolens train` for a beginner: a run that segment and models export cannot use is said so at the end (with the
reason they give), the help's example recipe makes a run they can use, Ctrl-C prints the real command that goes on
(shell-quoted), and a recipe not found says where the shipped recipes are."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from _train_data import make_pairs, make_render_like, tiny_recipe
from test_train_walkthrough26 import _fake_run  # a folder that looks like a run with a checkpoint
from devolens.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, got.out, got.err


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=3, per_group=2, size=64)


def _recipe(tmp_path: Path, **over) -> Path:
    path = tmp_path / "recipe.yaml"
    rec = tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0}, **over)
    path.write_text(yaml.safe_dump(rec))
    return path


def _run_of_recipe(recipe: Path, out: Path) -> Path:
    """A run folder whose best.json is what training ``recipe`` writes (:func:`model_config`), without training."""
    import json

    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import model_config

    rec = resolved(load_recipe(recipe))
    out.mkdir(parents=True)
    cfg = model_config(rec, 0, monitor="val_f1", value=0.5, metrics={},
                       model={"kind": "segmentation", **rec["model"]})
    (out / "best.json").write_text(json.dumps(cfg))
    (out / "best.safetensors").write_bytes(b"")
    return out


# ------------------------------------------------------------------- 1. a run segment cannot use is said so
def test_a_run_segment_cannot_use_gets_a_note_with_the_reason(pairs, tmp_path, capsys):
    """The tiny recipe's fixed resize (data.size): training used to end with no word, and segment --model RUN and
    models export then refused the run."""
    from devolens.errors import DevolensError
    from devolens.models.export import card_from_run

    recipe = _recipe(tmp_path, data={"target": "semantic", "channels": 1, "size": [32, 32], "val_fraction": 0.34})
    run = tmp_path / "Mein Modell"
    code, _, err = _run(["train", recipe, "--data", pairs, "--out", run, "--no-plots"], capsys)
    assert code == 0
    with pytest.raises(DevolensError) as refused:
        card_from_run(run)
    notes = [line for line in err.splitlines() if "cannot use" in line]  # (the split's note before it)
    assert notes == [f"note: {run}: `devolens segment` and `devolens models export` cannot use it: "
                     f"{refused.value.message}"]
    assert err.splitlines()[-1] == notes[0]  # at the end, after the results
    assert "data.size" in notes[0] and "tip:" not in err


def test_a_usable_run_in_a_folder_with_brackets_gets_its_tip_whole(pairs, tmp_path, capsys):
    recipe = _recipe(tmp_path, name="tiny_nuclei", data={"target": "boundary", "channels": 1, "val_fraction": 0.34},
                     loss={"name": "ce_dice"})
    run = tmp_path / "run [v2]"
    code, _, err = _run(["train", recipe, "--data", pairs, "--out", run, "--no-plots"], capsys)
    assert code == 0 and "cannot use" not in err
    tip = " ".join(err.split())
    assert f"devolens segment nuclei INPUT --model {shlex.quote(str(run))} --out DIR" in tip  # rich kept [v2]


def test_a_population_run_gets_the_population_tip(tmp_path, capsys):
    data = make_render_like(tmp_path / "data", embryos=3, per_embryo=2, size=32)
    recipe = tmp_path / "pop.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(
        task="population", model={"width": 8}, loss={"name": "poisson"}, augment={"preset": "none"},
        data={"channels": 1, "counts": ["total"], "val_fraction": 0.34},
        train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0})))
    code, _, err = _run(["train", recipe, "--data", data, "--out", tmp_path / "run", "--no-plots"], capsys)
    # (no tip before the fifty-sixth session: no command used a count run)
    assert code == 0 and "cannot use" not in err and "devolens segment" not in err
    assert "tip: `devolens population INPUT --model" in " ".join(err.split())


# ------------------------------------------------------------------- the help's example
def _help(capsys) -> str:
    code, out, _ = _run(["train", "--help"], capsys)
    assert code == 0
    return " ".join(out.replace("│", " ").split())


def test_the_help_examples_are_recipes_whose_runs_segment_can_use(tmp_path, capsys):
    from devolens.models.export import card_from_run

    text = _help(capsys)
    example = re.search(r"Example: `devolens train (recipes/\S+\.yaml) --data", text)
    argument = re.search(r"Recipe YAML file \(e\.g\. (recipes/\S+\.yaml)\)", text)
    assert example and argument
    for i, name in enumerate({example.group(1), argument.group(1)}):
        assert card_from_run(_run_of_recipe(ROOT / name, tmp_path / f"run{i}"))["task"] == "nuclei"


def test_the_tiny_recipe_makes_runs_segment_refuses_and_its_header_says_so(tmp_path):
    """The check above can fail: the tiny recipe, once the help's example, makes runs segment refuses."""
    from devolens.errors import DevolensError
    from devolens.models.export import card_from_run

    recipe = ROOT / "recipes" / "tiny_nuclei.yaml"
    with pytest.raises(DevolensError, match="data.size"):
        card_from_run(_run_of_recipe(recipe, tmp_path / "run"))
    header = " ".join(line.lstrip("# ") for line in recipe.read_text().splitlines() if line.startswith("#"))
    assert "the demo" not in header and "seconds" not in header
    assert "not for segmenting" in header and "finetune_own_nuclei.yaml" in header


# ------------------------------------------------------------------- 2. Ctrl-C: the command that goes on
def test_interrupted_train_prints_the_real_resume_command_quoted(pairs, tmp_path, capsys, monkeypatch):
    import devolens.train.trainer as trainer

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train", stop)
    (tmp_path / "my recipes").mkdir()
    recipe = _recipe(tmp_path / "my recipes")
    run = _fake_run(tmp_path / "Modell [3]", epoch=4)
    code, _, err = _run(["train", recipe, "-d", pairs, "-o", run, "--resume", "--epochs", "9", "--no-plots"], capsys)
    assert code == 130 and "error: interrupted" in err
    line = next(line for line in err.splitlines() if "last checkpoint (epoch 4)" in line)  # one line, not folded
    command = line[line.index("(devolens train") + 1:line.rindex(")")]
    assert shlex.split(command) == ["devolens", "train", str(recipe), "--data", str(pairs), "--out", str(run),
                                    "--resume", "--epochs", "9", "--no-plots"]
    assert "RECIPE" not in line and "DATA" not in line


# ------------------------------------------------------------------- 3. a recipe not found
@pytest.mark.parametrize("command", ["train", "tune"])
def test_a_recipe_not_found_names_the_shipped_one(tmp_path, capsys, monkeypatch, command):
    import devolens.cli.train as cli_train

    monkeypatch.setattr(cli_train, "_shipped_recipes", lambda: ROOT / "recipes")
    monkeypatch.chdir(tmp_path)  # outside the repository: recipes/ is not here
    code, _, err = _run([command, "recipes/tiny_nuclei.yaml", "--data", tmp_path, "--out", tmp_path / "run"], capsys)
    assert code == 2
    assert " ".join(err.split()) == (f"error: recipes/tiny_nuclei.yaml: recipe not found; the shipped "
                                     f"tiny_nuclei.yaml is {ROOT / 'recipes' / 'tiny_nuclei.yaml'}")
    code, _, err = _run([command, "mine.yaml", "--data", tmp_path, "--out", tmp_path / "run"], capsys)
    assert code == 2 and f"the shipped recipes are in {ROOT / 'recipes'}" in " ".join(err.split())


def test_an_installed_copy_says_the_recipes_are_in_the_repository(tmp_path, capsys, monkeypatch):
    import devolens.cli.train as cli_train

    monkeypatch.setattr(cli_train, "_shipped_recipes", lambda: None)
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["train", "recipes/tiny_nuclei.yaml", "--data", tmp_path, "--out", tmp_path / "run"], capsys)
    err = " ".join(err.split())
    assert code == 2 and "recipe not found; the shipped recipes are in recipes/ of the devolens repository" in err
    assert err.count("error:") == 1 and "Traceback" not in err


def test_the_shipped_recipes_are_found_from_a_checkout_only(tmp_path, monkeypatch):
    import devolens
    import devolens.cli.train as cli_train

    checkout = tmp_path / "checkout"
    (checkout / "src" / "devolens").mkdir(parents=True)
    (checkout / "recipes").mkdir()
    (checkout / "recipes" / "finetune_own_nuclei.yaml").write_text("task: segmentation\n")
    monkeypatch.setattr(devolens, "__file__", str(checkout / "src" / "devolens" / "__init__.py"))
    assert cli_train._shipped_recipes() == (checkout / "recipes").resolve()
    site = tmp_path / "lib" / "python3.11" / "site-packages" / "devolens"
    site.mkdir(parents=True)
    monkeypatch.setattr(devolens, "__file__", str(site / "__init__.py"))
    assert cli_train._shipped_recipes() is None
