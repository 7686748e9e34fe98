"""Progress without a terminal (Slurm, nohup, a CI log): ``progress:`` lines on stderr now and then, after the
work has run 10 s, instead of nothing until the end; ``DEVOLENS_PROGRESS=auto|bar|lines|off``. A fake clock
(``_common._clock``) gives the times: no test depends on the wall clock."""

from __future__ import annotations

import pytest

from _cli_helpers import command  # noqa: F401  (fixture)
from devolens.cli import _common, main


class FakeClock:
    """A clock that reads ``now``, moved by the test's command body."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(_common, "_clock", fake)
    monkeypatch.delenv("DEVOLENS_PROGRESS", raising=False)  # auto (tests/conftest.py sets "bar")
    return fake


def _segmenting(clock: FakeClock, steps, total=140):
    """A command body: ``progress_bar("segment")`` called with ``done`` at ``seconds`` after the work began, for
    each ``(seconds, done)`` of ``steps``, then the command's summary line."""
    def body(out):
        start = clock.now
        with _common.progress_bar("segment") as cb:
            for seconds, done in steps:
                clock.now = start + seconds
                cb(done, total)
        _common.console.print(f"{total} frames -> {out}")
    return body


#: 140 frames in 50 s: the model loads for 2 s, then 3.5 frames a second, 2 a second after 12 s
STEPS = [(2, 0), (9.9, 20), (12, 35), (30, 60), (41.9, 79), (42, 80), (50, 100), (71.9, 139), (72, 140)]
LINES = ["progress: segment 35/140 (25%), 0:00:12 elapsed, ~0:00:30 left",
         "progress: segment 80/140 (57%), 0:00:42 elapsed, ~0:00:30 left",
         "progress: segment 140/140 (100%), 0:01:12 elapsed"]


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_lines_without_a_terminal_at_10_s_then_every_30_s(command, clock, tmp_path, capsys):  # noqa: F811
    command["body"] = _segmenting(clock, STEPS)
    out = tmp_path / "o"
    assert main(["zz-test", "--out", str(out)]) == 0
    # the first line once 10 s have passed, then none for 30 s; the time left from the pace since the first call
    # (not the 2 s of loading); nothing more at the end: the summary follows
    assert _err_lines(capsys) == [*LINES, f"140 frames -> {out}"]


def test_a_quick_run_prints_no_line(command, clock, tmp_path, capsys):  # noqa: F811
    command["body"] = _segmenting(clock, [(0, 0), (5, 70), (9.9, 140)])
    out = tmp_path / "o"
    assert main(["zz-test", "--out", str(out)]) == 0
    assert _err_lines(capsys) == [f"140 frames -> {out}"]  # as before: the summary only


@pytest.mark.parametrize("setting", ["auto", "lines", "LINES"])
def test_none_under_quiet(command, clock, tmp_path, capsys, monkeypatch, setting):  # noqa: F811
    monkeypatch.setenv("DEVOLENS_PROGRESS", setting)
    command["body"] = _segmenting(clock, STEPS)
    assert main(["-q", "zz-test", "--out", str(tmp_path / "o")]) == 0
    assert _err_lines(capsys) == []


@pytest.mark.parametrize("setting", ["off", "bar"])
def test_none_when_off_or_bar_without_a_terminal(command, clock, tmp_path, capsys, monkeypatch,  # noqa: F811
                                                setting):
    monkeypatch.setenv("DEVOLENS_PROGRESS", setting)
    command["body"] = _segmenting(clock, STEPS)
    out = tmp_path / "o"
    assert main(["zz-test", "--out", str(out)]) == 0
    assert _err_lines(capsys) == [f"140 frames -> {out}"]


@pytest.mark.parametrize("setting", [None, "auto", "bar"])
def test_bar_on_a_terminal_unchanged(command, clock, tmp_path, capsys, monkeypatch, setting):  # noqa: F811
    monkeypatch.setattr(_common.console, "_force_terminal", True)
    if setting is not None:
        monkeypatch.setenv("DEVOLENS_PROGRESS", setting)
    command["body"] = _segmenting(clock, STEPS)
    assert main(["zz-test", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "segment" in err and "140/140" in err  # rich's bar, with its count
    assert "progress:" not in err


def test_off_on_a_terminal_draws_no_bar(command, clock, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr(_common.console, "_force_terminal", True)
    monkeypatch.setenv("DEVOLENS_PROGRESS", "off")
    command["body"] = _segmenting(clock, STEPS)
    out = tmp_path / "o"
    assert main(["zz-test", "--out", str(out)]) == 0
    assert _err_lines(capsys) == [f"140 frames -> {out}"]


def test_lines_asked_for_on_a_terminal(command, clock, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr(_common.console, "_force_terminal", True)
    monkeypatch.setenv("DEVOLENS_PROGRESS", " lines ")
    command["body"] = _segmenting(clock, STEPS)
    out = tmp_path / "o"
    assert main(["zz-test", "--out", str(out)]) == 0
    assert _err_lines(capsys) == [*LINES, f"140 frames -> {out}"]  # no bar


def test_a_bad_value_is_auto_with_one_warning(command, clock, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr(_common, "_said_progress_env", set())
    monkeypatch.setenv("DEVOLENS_PROGRESS", "yes")
    command["body"] = _segmenting(clock, STEPS)
    out = tmp_path / "o"
    assert main(["zz-test", "--out", str(out)]) == 0
    warning = "warning: DEVOLENS_PROGRESS=yes is not one of auto, bar, lines, off: progress is shown as for auto"
    assert _err_lines(capsys) == [warning, *LINES, f"140 frames -> {out}"]
    assert main(["zz-test", "--out", str(out)]) == 0  # once a process
    assert _err_lines(capsys) == [*LINES, f"140 frames -> {out}"]


def test_unknown_total_fractions_and_hours(clock, capsys):
    folder = _common._ProgressLines("segment", clock)  # frames not counted beforehand (segment: -1; curate: 0)
    clock.now += 12
    folder(35, -1)
    assert _err_lines(capsys) == ["progress: segment 35 done, 0:00:12 elapsed"]
    clock.now += 30
    folder(36.96, 0)
    assert _err_lines(capsys) == ["progress: segment 36.9 done, 0:00:42 elapsed"]
    plate = _common._ProgressLines("segmenting wells", clock)  # a giant well's windows as a fraction of the wells
    clock.now += 12
    plate(2.5, 8)
    assert _err_lines(capsys) == ["progress: segmenting wells 2.5/8 (31%), 0:00:12 elapsed"]  # no pace yet
    clock.now += 90_000
    plate(4, 8)
    assert _err_lines(capsys) == ["progress: segmenting wells 4/8 (50%), 25:00:12 elapsed, ~66:40:00 left"]


def test_curate_frames_says_its_progress(clock, tmp_path, capsys, monkeypatch):
    """A real command (``curate frames``, no model), each reading of the clock 4 s after the one before."""
    import imageio.v3 as iio

    from curate_synth import synth_sequence

    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(synth_sequence(12, seed=5), start=1):
        iio.imwrite(folder / f"t{t:03d}.png", frame)

    def ticking() -> float:
        clock.now += 4
        return clock.now

    monkeypatch.setattr(_common, "_clock", ticking)
    out = tmp_path / "r.csv"
    assert main(["curate", "frames", str(folder), "--out", str(out)]) == 0
    lines = _err_lines(capsys)
    # frame 1 at 4 s (the pace from there: 4 s a frame), frame 3 at 12 s, frame 11 at 44 s
    assert lines[:2] == ["progress: curate 3/12 (25%), 0:00:12 elapsed, ~0:00:36 left",
                         "progress: curate 11/12 (91%), 0:00:44 elapsed, ~0:00:04 left"], lines
    assert lines[2].startswith("12 frames, ") and len(lines) == 3 and out.exists()
