"""The help pages show an on/off switch with no value and an argument by its name, as in the usage line, whatever
typer is installed (typer 0.29 showed ``--resume <bool>``, ``--help <bool>``, ``{recipe}`` and ``<list[Path]>``:
devolens.cli._common._help_style)."""

from __future__ import annotations

import re

import pytest
import typer

from devolens.cli import app, main


def _commands(command, path=()):
    """(command path, click command) of every command and group under ``command``, itself first."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))
#: typer >= 0.29 (the one these pages were written against) names an argument's row by its display name and shows
#: types as <path>; older typer lays the panels out otherwise (recipe PATH) and showed no <bool> to begin with
PANEL_29 = hasattr(typer.core.TyperOption, "display_type_rich")
panel_29 = pytest.mark.skipif(not PANEL_29, reason="typer < 0.29 lays out the help panels otherwise")


def _help(path, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # one line per row: no name or type folded
    code = main([*path, "--help"])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def _usage(text: str) -> str:
    return next(line for line in text.splitlines() if "Usage:" in line)


def _arguments(command) -> list:
    return [p for p in command.params if getattr(p, "param_type_name", "") == "argument"]


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "devolens" for p, _ in COMMANDS])
def test_help_page_shows_no_bool_or_braces(path, command, capsys, monkeypatch):
    text = _help(path, capsys, monkeypatch)
    assert "<bool>" not in text  # switches (--help, --quiet, --resume, --plots/--no-plots) take no value
    assert "list[" not in text  # a list by its items' type: IMAGES... <path>, --labels <path>
    assert "{" not in _usage(text)  # RECIPE, [TABLE], IMAGES...: not {recipe}
    assert not re.search(r"\{\w+\}", text)  # nor in the Arguments panel (JSON in a help text has quotes)
    for argument in _arguments(command):
        name = argument.metavar or argument.name.upper()
        assert re.search(rf"[\s\[]{re.escape(name)}\b", _usage(text)), (name, _usage(text))
        if PANEL_29:
            assert re.search(rf"│\s+\*?\s*{re.escape(name)}\b", text), name  # its row: the same name


@panel_29
def test_train_help_switches_and_argument(capsys, monkeypatch):
    text = _help(["train"], capsys, monkeypatch)
    assert "devolens train [OPTIONS] RECIPE" in _usage(text)
    assert re.search(r"│\s+\*\s+RECIPE\s+<path>\s+Recipe YAML", text)
    assert re.search(r"│\s+--resume\s+Continue the run", text)  # nothing between the switch and its help
    assert re.search(r"│\s+--plots\s+--no-plots\s+Write history", text)
    assert re.search(r"│\s+--help\s+-h\s+Show this message", text)
    assert re.search(r"│\s+--epochs\s+<int>\s+Total epochs", text)  # an option with a value keeps its type


@panel_29
def test_optional_and_repeated_arguments_in_usage(capsys, monkeypatch):
    assert "devolens render [OPTIONS] [TABLE]" in _usage(_help(["render"], capsys, monkeypatch))
    assert "devolens lineage cliffs [OPTIONS] TABLE..." in _usage(_help(["lineage", "cliffs"], capsys, monkeypatch))
    text = _help(["tile", "make"], capsys, monkeypatch)
    assert "devolens tile make [OPTIONS] IMAGES..." in _usage(text)
    assert re.search(r"│\s+\*\s+IMAGES\.\.\.\s+<path>\s+Images to tile", text)
    assert re.search(r"│\s+--labels\s+<path>\s+Label images", text)


def test_switches_still_parse(tmp_path, capsys):
    train = typer.main.get_command(app).commands["train"]
    args = ["r.yaml", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    with train.make_context("train", [*args, "--resume", "--no-plots"]) as ctx:
        assert ctx.params["resume"] is True and ctx.params["plots"] is False
    with train.make_context("train", list(args)) as ctx:
        assert ctx.params["resume"] is False and ctx.params["plots"] is True
    # a switch takes no value: "true" after it is an extra argument, as before
    assert main(["train", *args, "--resume", "true"]) == 2
    assert "extra arguments (true)" in capsys.readouterr().err


@panel_29
def test_missing_argument_named_as_in_usage(capsys):
    assert main(["train"]) == 2
    assert "Missing argument 'RECIPE'" in capsys.readouterr().err


def test_no_module_imports_click_directly():
    """typer 0.26+ vendors click (typer._click) and does not depend on it: cli/tiles.py imported click for two
    annotations, so a fresh install without another package pulling click in could not start the CLI."""
    import re
    from pathlib import Path

    import devolens

    root = Path(devolens.__file__).parent
    found = [str(p.relative_to(root)) for p in root.rglob("*.py")
             if re.search(r"^\s*(import click\b|from click\b)", p.read_text(encoding="utf-8"), re.M)]
    assert found == []
