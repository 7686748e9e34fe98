"""``devolens --quiet`` (``-q``, ``DEVOLENS_QUIET=1``): stderr keeps only the lines that begin ``error:``,
``warning:`` or ``note:``; no progress bar, summary line or tip. stdout, Python's warnings, the exit code and the
files written are as without it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _cli_helpers import command  # noqa: F401  (fixture)
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.cli import _common
from devolens.errors import DevolensError


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _chatty(out, *, fail: bool = False) -> None:
    """A command body that says one of each kind of message, drives a progress bar and answers on stdout."""
    with _common.progress_bar("zz-working") as cb:
        cb(1, 2)
        cb(2, 2)
    _common.console.print(f"2 frames -> {out}")  # a summary line
    _common.console.print("read zz.tif: 2 time points")
    _common.console.print("tip: --zz does more")
    _common.console.print("developmental clock: 1.00 per frame\n[yellow]note:[/] that is far: zz")  # as the clock says
    _common.console.print("warning: zz.png: converted")  # as `tile make` shows a library warning
    _common.note("zz left out")
    _common.out.print("answer: 42")  # the command's answer, on stdout
    if fail:
        raise DevolensError("zz failed")


@pytest.mark.parametrize("fail", [False, True])
def test_quiet_keeps_warnings_notes_errors_and_stdout_only(command, tmp_path, capsys, monkeypatch, fail):  # noqa: F811
    monkeypatch.setattr(_common.console, "_force_terminal", True)  # a terminal: the progress bar is drawn
    command["body"] = lambda out: _chatty(out, fail=fail)
    args = ["zz-test", "--out", str(tmp_path / "o")]

    loud_code = main(args)
    loud = capsys.readouterr()
    quiet_code = main(["-q", *args])
    quiet = capsys.readouterr()

    assert loud_code == quiet_code == (2 if fail else 0)
    assert "zz-working" in loud.err and "2 frames ->" in loud.err and "tip:" in loud.err  # without -q: unchanged
    assert quiet.out == loud.out == "answer: 42\n"
    assert "zz-working" not in quiet.err  # no progress bar, though stderr is a terminal
    assert _lines(quiet.err) == ["note: that is far: zz", "warning: zz.png: converted", "note: zz left out"] + (
        ["error: zz failed"] if fail else []), quiet.err
    assert not _common.quiet()  # main puts it back: the next run of a program calling main says everything


def test_env_var_makes_it_quiet(command, tmp_path, capsys, monkeypatch):  # noqa: F811
    command["body"] = lambda out: (_common.console.print(f"1 frame -> {out}"), _common.note("zz"))
    args = ["zz-test", "--out", str(tmp_path / "o")]
    monkeypatch.setenv("DEVOLENS_QUIET", "1")
    assert main(args) == 0
    assert _lines(capsys.readouterr().err) == ["note: zz"]
    monkeypatch.setenv("DEVOLENS_QUIET", "0")
    assert main(args) == 0
    assert "1 frame ->" in capsys.readouterr().err


def test_quiet_after_the_command_says_where_it_goes(tmp_path, capsys):
    """``devolens segment nuclei ... -q``: a usage error (exit 2) that says to give it before the command."""
    table = tmp_path / "t.csv"
    table.write_text("embryo,time,cell,x,y,z,size\ne,1,ABa,1,2,3,4\n")
    assert main(["lineage", "populations", str(table), "--out", str(tmp_path / "p.csv"), "-q"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error: No such option: -q") and "devolens --quiet lineage populations ..." in err


def test_quiet_lineage_keeps_its_answer_on_stdout_and_its_note(tmp_path, capsys):
    """A real command: ``lineage populations`` on a table saved twice over: its summary line (stderr, as every
    command's) goes unsaid, the note on the copies stays; stdout (empty) and the CSV are the same."""
    rows = "".join(f"e,{t},{c},{x},2,3,4\n" for t in (1, 2, 3) for c, x in (("ABa", 1), ("ABp", 5), ("P1", 9)))
    table = tmp_path / "t.csv"
    table.write_text("embryo,time,cell,x,y,z,size\n" + rows + rows)
    assert main(["lineage", "populations", str(table), "--out", str(tmp_path / "a.csv")]) == 0
    loud = capsys.readouterr()
    assert main(["--quiet", "lineage", "populations", str(table), "--out", str(tmp_path / "b.csv")]) == 0
    quiet = capsys.readouterr()
    assert quiet.out == loud.out == "" and "wrote" in loud.err and "wrote" not in quiet.err
    notes = [line for line in _lines(loud.err) if line.startswith("note:")]
    assert notes and _lines(quiet.err) == notes
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_quiet_segment_says_its_notes_only_and_records_them_all(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """``segment nuclei`` of a plain multi-page TIFF: the summary line goes unsaid, the note that its pages were
    read as time points stays, and segment.json carries the same notes either way."""
    import tifffile

    img = tmp_path / "plain.tif"
    tifffile.imwrite(img, np.zeros((3, 32, 48), np.uint8), photometric="minisblack")  # pages only: axes QYX
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "a")]) == 0
    loud = capsys.readouterr()
    assert main(["-q", "segment", "nuclei", str(img), "--out", str(tmp_path / "b")]) == 0
    quiet = capsys.readouterr()
    assert "3 frames, " in loud.err and "carry no axis labels" in loud.err  # the summary and the note, without -q
    notes = [line for line in _lines(loud.err) if line.startswith("note:")]
    assert notes and _lines(quiet.err) == notes
    assert quiet.out == loud.out == ""
    records = [json.loads((tmp_path / d / "segment.json").read_text()) for d in "ab"]
    assert records[0]["notes"] == records[1]["notes"] and records[0]["notes"]


def test_a_magnification_left_unjudged_is_a_note():
    """``--diameter auto``/``each`` that could not judge the images (the library's DiameterWarning) is a ``note:``,
    which --quiet keeps; a resize it decided is a summary, said as before."""
    from devolens.cli.predict import _estimate_note, _estimates_note
    from devolens.predict.sizing import DiameterEstimate

    unjudged = DiameterEstimate(diameter=None, magnification=1.0, per_image=[1.0], trusted=0)
    judged = DiameterEstimate(diameter=40.8, magnification=1.23, per_image=[1.23], trusted=1, resize=0.87)
    assert _estimate_note(unjudged, "nuclei").startswith("note: diameter auto: a quick threshold count found fewer")
    assert _estimate_note(judged, "nuclei").startswith("diameter auto: the images look 1.2x")
    assert _estimates_note([judged, unjudged], "nuclei").startswith("note: diameter each: 1 of 2 images resized")
    assert _estimates_note([judged, judged], "nuclei").startswith("diameter each: 2 of 2 images resized")


def test_rich_console_quiet_filter_drops_tables_and_keeps_markup_notes(monkeypatch, capsys):
    """The filter reads a line's words as the console prints them (markup read), and never takes a table for a
    warning."""
    from rich.table import Table

    monkeypatch.setattr(_common.console, "warnings_only", True)
    table = Table("a")
    table.add_row("note: in a cell")
    _common.console.print(table)
    _common.console.print("[yellow]note:[/] kept", "too")
    _common.console.print("  warning: indented, kept")
    _common.console.print("noted: not a note")
    _common.console.print()
    assert capsys.readouterr().err == "note: kept too\n  warning: indented, kept\n"
