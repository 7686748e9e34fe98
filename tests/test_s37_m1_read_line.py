"""``devolens population`` says how it reads a TIFF stack (the ``read NAME: axes ...`` line, as ``segment nuclei``
says it) before the work: before the ``--skip-flagged auto`` curation pass, the first ``progress:`` line and the
summary line, and once (not again after the run). Each reading of the fake clock is 4 s after the one before, so that
``progress:`` lines are printed: no test depends on the wall clock."""

from __future__ import annotations

import json

import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from test_s36_m13_progress import _named_stack as _stack  # noqa: E402  (a TCYX OME-TIFF, channel 1 "H2B-GFP")

from devolens.cli import _common, main

READ = "read s.ome.tif: axes TCYX, shape (8, 2, 48, 64): 8 time points; channel 1 (H2B-GFP) of 2"


@pytest.fixture
def ticking(monkeypatch):
    """The progress lines' clock, 4 s later at each reading; ``progress:`` lines on."""
    now = [0.0]

    def tick() -> float:
        now[0] += 4
        return now[0]

    monkeypatch.setattr(_common, "_clock", tick)
    monkeypatch.setenv("DEVOLENS_PROGRESS", "lines")


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("auto", [False, True], ids=["plain", "skip-flagged-auto"])
def test_population_says_how_the_stack_is_read_before_the_work(tiny_zoo, tmp_path, capsys, ticking,  # noqa: F811
                                                              auto):
    path = _stack(tmp_path / "s.ome.tif", t=8)
    out = tmp_path / "p.csv"
    args = ["population", str(path), "--channel", "1", "--out", str(out), "--no-plot", "--batch-size", "1",
            "--diameter", "none"]
    assert main(args + (["--skip-flagged", "auto"] if auto else [])) == 0
    lines = _err_lines(capsys)
    progress = [line for line in lines if line.startswith("progress:")]
    summary = next(i for i, line in enumerate(lines) if f"-> {out}" in line and not line.startswith("progress:"))
    assert progress, lines  # (the fake clock: the work shows its progress)
    assert lines[0] == READ, lines  # before any progress (the curation pass's too) and before the summary line
    assert lines.count(READ) == 1 and summary > 0, lines  # not again after the run
    if auto:
        assert progress[0].startswith("progress: curating ") and progress[-1].startswith("progress: population ")
    # the record keeps the same reading
    assert json.loads(out.with_suffix(".json").read_text())["stack"]["read"] == READ.split(": ", 1)[1]


def test_population_says_how_a_folders_stack_is_read_before_the_work(tiny_zoo, tmp_path, capsys,  # noqa: F811
                                                                    ticking):
    folder = tmp_path / "movie"
    folder.mkdir()
    _stack(folder / "s.ome.tif", t=8)
    out = tmp_path / "p.csv"
    assert main(["population", str(folder), "--channel", "1", "--out", str(out), "--no-plot",
                 "--batch-size", "1", "--diameter", "none"]) == 0
    lines = _err_lines(capsys)
    line = "read each TIFF stack like the first, s.ome.tif: " + READ.split(": ", 1)[1]
    assert lines[0] == line and lines.count(line) == 1, lines


def test_population_read_line_follows_the_option_checks_and_quiet(tiny_zoo, tmp_path, capsys):  # noqa: F811
    path = _stack(tmp_path / "s.ome.tif", t=8)
    # a --channel out of range: the error alone, no line saying the stack is read with it
    assert main(["population", str(path), "--channel", "2", "--out", str(tmp_path / "e.csv"), "--no-plot",
                 "--skip-flagged", "auto"]) == 2
    err = capsys.readouterr().err
    assert "read s.ome.tif" not in err and "--channel 2 is out of range" in err
    assert not (tmp_path / "e.csv").exists()
    # --quiet: no line
    assert main(["-q", "population", str(path), "--channel", "1", "--out", str(tmp_path / "q.csv"), "--no-plot",
                 "--diameter", "none"]) == 0
    assert "read s.ome.tif" not in capsys.readouterr().err


def test_run_population_announces_through_its_caller_only(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """The library prints nothing of its own: the line goes to ``announce``, once, before the first frame's
    progress."""
    from devolens.cli.predict import run_population

    path = _stack(tmp_path / "s.ome.tif", t=8)
    said: list = []
    df = run_population(path, tmp_path / "p.csv", channel=1, diameter="none", batch_size=1,
                        progress=lambda done, total: said.append(("progress", done)),
                        announce=lambda text: said.append(("read", text)))
    assert said[0] == ("read", READ) and [s for s in said if s[0] == "read"] == [("read", READ)], said
    assert any(s[0] == "progress" for s in said)
    assert df.attrs["stack"]["read"] == READ.split(": ", 1)[1]
    assert "read s.ome.tif" not in capsys.readouterr().err
