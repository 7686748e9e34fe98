"""Help pages and the Python API as a user reads them (a walkthrough of ``--help`` and ``help()``).

- Help paragraphs hand-wrapped at ~110 columns kept their single newlines through typer's rich help, so at 80
  columns every such newline left a short ragged line (``render --help``: "instance labels 1..K)," then a new line);
  the app now joins them (devolens.cli.reflow_help), keeping paragraph breaks and lines laid out on purpose.
- ``render --size`` states its range; ``load``/``predict`` state the library's default diameter (None) beside the
  command's (``--diameter auto``), the cards' "Use" example loads as the command runs, ``diameter="none"`` is None,
  ``load(name, kind=...)`` refuses a kind its card contradicts, the listing speaks of the project's targets and
  ``help(devolens)`` points to the entry points.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import devolens
from devolens.cli import _LAID_OUT, _reflow_app_help, app, main, reflow_help
from devolens.errors import DevolensError


def _commands(command, path=()):
    """Every command and group path under ``command``, itself first."""
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


PATHS = list(_commands(typer.main.get_command(app)))


def _help(path, capsys, monkeypatch, columns: int) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    code = main([*path, "--help"])
    out = capsys.readouterr().out
    assert code == 0, out
    return out.splitlines()


def _ragged_description(lines: list[str], columns: int) -> list[str]:
    """The pairs of lines of the help's description (between the usage line and the first panel) where the next
    line's first word would have fitted on the line before it: a newline kept inside a paragraph. The description
    is drawn with one column of padding each side, so a line holds ``columns - 2`` characters."""
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("╭")), len(lines))
    text = [line[1:].rstrip() for line in lines[start:end]]
    ragged = []
    for here, after in zip(text, text[1:]):
        if not here or not after or _LAID_OUT.match(after):  # a paragraph's end, or a line laid out on purpose
            continue
        if len(here) + 1 + len(after.split()[0]) <= columns - 2:
            ragged.append(f"{here!r} / {after!r}")
    return ragged


def _ragged_commands(lines: list[str]) -> list[str]:
    """The same for the Commands panel: a row's description continued on the next row (the command column
    blank) whose first word would have fitted on the row before it. The column's width is at least its longest
    line, so a word that fits within that fits the column (no false alarm)."""
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("╭─ Commands"))
    except StopIteration:
        return []
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("╰"))
    rows = [line[1:-1] for line in lines[start + 1:end]]  # inside the box's sides
    first = rows[0]
    name_end = len(first) - len(first.lstrip())
    name_end += len(first.split()[0])
    column = name_end + len(first[name_end:]) - len(first[name_end:].lstrip())  # where the descriptions start
    texts = [(row[:column].strip(), row[column:].rstrip()) for row in rows]
    width = max(len(text) for _, text in texts)
    ragged = []
    for (_, here), (name, after) in zip(texts, texts[1:]):
        if name or not after or not here:
            continue
        if len(here) + 1 + len(after.split()[0]) <= width:
            ragged.append(f"{here!r} / {after!r}")
    return ragged


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "devolens")
def test_help_paragraphs_fill_the_width(path, capsys, monkeypatch):
    """At 80 columns no paragraph of a help page (its description, or a group's command list) breaks a line before
    the width is filled: a word that fitted on a line is never pushed to the next by a newline of the source."""
    lines = _help(path, capsys, monkeypatch, 80)
    assert _ragged_description(lines, 80) == []
    assert _ragged_commands(lines) == []


def test_the_criterion_finds_a_kept_newline():
    """The criterion itself: a hand-wrapped newline kept at 80 columns is found, a paragraph that fills is not."""
    assert _ragged_description(["Usage: x", " " + "a" * 60 + " b,", " c d e", ""], 80) != []
    assert _ragged_description(["Usage: x", " " + "a" * 75, " word here", "", " " + "x" * 70, " - a list item"],
                               80) == []


def test_wide_help_keeps_paragraph_breaks(capsys, monkeypatch):
    """At 200 columns render's help is four paragraphs (the summary and three), each on its own line or lines: the
    blank lines between paragraphs are kept, only the newlines inside them go."""
    lines = _help(("render",), capsys, monkeypatch, 200)
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next(i for i, line in enumerate(lines) if line.lstrip().startswith("╭"))
    text = "\n".join(line.strip() for line in lines[start:end]).strip()
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 4
    assert "uint16 instance labels 1..K), DIR/frames.csv" in paragraphs[1].replace("\n", " ")


def test_laid_out_lines_keep_their_lines():
    """Lists, indented examples, shell lines, ``devolens ...`` command lines, a ``\\b`` paragraph and what
    follows ``\\f`` keep their line breaks; the prose around them is joined."""
    text = ("Summary line.\n\nProse wrapped\nby hand here.\nExamples:\n- one item\n* another\n  indented example\n"
            "$ devolens x\ndevolens tile stats tiles.h5\n1. first\n\n\bkept\nas laid out\n\fhidden\nlines")
    assert reflow_help(text) == (
        "Summary line.\n\nProse wrapped by hand here. Examples:\n- one item\n* another\n  indented example\n"
        "$ devolens x\ndevolens tile stats tiles.h5\n1. first\n\n\bkept\nas laid out\n\fhidden\nlines")
    assert reflow_help(None) is None and reflow_help("") == ""


def test_a_commands_examples_keep_their_lines_in_its_help():
    """Through the app (as every devolens command's help is mended): an example list keeps one example a line at
    any width, while the paragraph above it fills the line."""
    demo = typer.Typer(rich_markup_mode="rich")

    @demo.command("one")
    def one() -> None:
        """Do one thing.

        A paragraph hand-wrapped at a narrow width
        that the help should join into one line.

        Examples:
          devolens one --fast
          devolens one --slow
        """

    @demo.command("two")
    def two() -> None:
        """Do another."""

    _reflow_app_help(demo)
    result = CliRunner().invoke(demo, ["one", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    lines = [line.strip() for line in result.output.splitlines()]
    assert "A paragraph hand-wrapped at a narrow width that the help should join into one line." in lines
    assert "devolens one --fast" in lines and "devolens one --slow" in lines


def test_render_size_help_states_its_range(capsys, monkeypatch):
    """``render --size``'s help says the range its error enforces (16 to 8192 a side)."""
    from devolens.cli.render import MAX_SIZE, MIN_SIZE

    text = " ".join(line.strip("│ ") for line in _help(("render",), capsys, monkeypatch, 200))
    assert (MIN_SIZE, MAX_SIZE) == (16, 8192)
    assert "each 16 to 8192, e.g. --size 256 256" in text
    assert main(["render", "--simulate", "1", "--size", "8", "8", "--out", "unused"]) == 2
    assert "--size must be within 16..8192 pixels" in capsys.readouterr().err


def test_the_docstrings_state_the_default_diameter():
    """``help(load)`` and the predictors' ``predict`` say the library's default diameter (None: no resizing) and the
    command's (``--diameter auto``, ``diameter="auto"``)."""
    from devolens.models import load
    from devolens.predict.segment import MembranePredictor, NucleiPredictor

    for doc in (inspect.getdoc(load), inspect.getdoc(NucleiPredictor.predict), inspect.getdoc(MembranePredictor.predict)):
        flat = " ".join(doc.split())
        assert "None" in flat and "--diameter auto" in flat and 'diameter="auto"' in flat
    assert "is None by default here" in " ".join(inspect.getdoc(load).split())


@pytest.mark.parametrize("name", ["nuclei", "membrane", "population"])
def test_the_cards_use_example_loads_as_the_command_runs(name):
    """The shipped card's "Use" example loads with ``diameter='auto'``, the command's default, and is the text the
    card writer makes (scripts rewrite card.md with it)."""
    from devolens.models import zoo
    from devolens.models.export import card_md

    md = (zoo.ZOO_DIR / name / "card.md").read_text(encoding="utf-8")
    assert f"model = load('{name}', diameter='auto')" in md
    use = md.split("## Use\n", 1)[1].split("\n```\n", 1)[0]
    card = json.loads((zoo.ZOO_DIR / name / "card.json").read_text(encoding="utf-8"))
    assert card_md(card).split("## Use\n", 1)[1].split("\n```\n", 1)[0] == use


def test_diameter_none_word_is_none():
    """``"none"`` (any case, spaces around it), the command's word, is None for load, a call and the property."""
    from devolens.models import load
    from devolens.predict.segment import none_word

    assert none_word(" NoNe ") is None and none_word("auto") == "auto" and none_word(9) == 9
    model = load("nuclei", diameter="None")
    assert model.diameter is None and not model.auto
    model.diameter = "auto"
    assert model.auto
    model.diameter = "NONE"
    assert model.diameter is None and not model.auto
    result = model.predict(np.zeros((64, 64), np.float32), diameter=" none ")
    assert result.labels.shape == (64, 64)
    assert load("population", diameter="none").diameter is None


def test_load_refuses_a_kind_its_card_contradicts():
    """``kind`` says what a training run segments; a shipped model's card fixes its task, and a kind against it is
    refused in one line (it was ignored: the nuclei predictor came back for kind="membrane")."""
    from devolens.models import load

    with pytest.raises(DevolensError) as err:
        load("nuclei", kind="membrane")
    message = str(err.value)
    assert "\n" not in message and "'nuclei' model" in message and "kind='membrane'" in message
    assert type(load("nuclei", kind="nuclei")).__name__ == "NucleiPredictor"


def test_the_listing_speaks_of_the_projects_targets(capsys, monkeypatch):
    """``devolens models`` and its ``--json`` help say "the project's target", not an issue users never saw."""
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "the project's target" in out and "issue" not in out
    assert "issue" not in " ".join(_help(("models",), capsys, monkeypatch, 200))


def test_help_devolens_points_to_the_entry_points():
    """``help(devolens)`` names ``devolens.models.load`` and the main entry points, not only the layers."""
    doc = devolens.__doc__
    for name in ("devolens.models.load", 'diameter="auto"', "devolens.io.tables.read_table",
                 "devolens.io.frames.iter_path_frames", "devolens --help", "Layers"):
        assert name in doc
