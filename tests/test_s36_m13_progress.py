"""Progress of a command whose work has two passes (``--skip-flagged auto``: the curation pass, then the frames
segmented): the curation pass is a phase of its own (its own label, count and pace), and a count that goes down
or a total that changes on the same callback starts the pace again, so that the time left is the second pass's.
A fake clock (``_common._clock``) gives the times: no test depends on the wall clock."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from test_s35_progress import FakeClock, clock  # noqa: F401  (the fake clock and its fixture)

from devolens.cli import _common, main


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def _two_passes(clock: FakeClock, cb, start: float, first: bool = True, second: bool = True) -> None:
    """200 frames curated at 4 a second, then 190 segmented at 1 a second (the first at 54 s: the model loads),
    reported on the one callback ``cb``, as ``--skip-flagged auto`` did."""
    for done in range(1, 201) if first else ():
        clock.now = start + done * 0.25
        cb(done, 200)
    for done in range(1, 191) if second else ():
        clock.now = start + 53 + done
        cb(done, 190)


def test_a_count_that_goes_down_starts_the_pace_again(clock, capsys):
    lines = _common._ProgressLines("segment nuclei", clock)
    start = clock.now
    _two_passes(clock, lines, start)
    said = _err_lines(capsys)
    # at 10 and 40 s: the curation's; at 70 s, the 17th frame segmented: 173 left at the segmentation's 1 a
    # second (the pace since the curation's first call said ~0:09:38)
    assert said[:3] == ["progress: segment nuclei 40/200 (20%), 0:00:10 elapsed, ~0:00:40 left",
                        "progress: segment nuclei 160/200 (80%), 0:00:40 elapsed, ~0:00:10 left",
                        "progress: segment nuclei 17/190 (8%), 0:01:10 elapsed, ~0:02:53 left"], said


def test_a_total_that_changes_starts_the_pace_again(clock, capsys):
    """A quick pass of 5, then one of 40 counted by batches of 8: the count goes up, the total changes."""
    lines = _common._ProgressLines("segment", clock)
    start = clock.now
    for done in range(1, 6):  # 5 frames in 0.5 s
        clock.now = start + done * 0.1
        lines(done, 5)
    for k, done in enumerate(range(8, 41, 8), start=1):  # 8 frames every 8 s from 9 s
        clock.now = start + 1 + 8 * k
        lines(done, 40)
    # at 17 s (16/40): the pace since 8/40 at 9 s, 1 frame a second: 24 left (the 5-frame pass's pace: ~0:00:27)
    assert _err_lines(capsys)[0] == "progress: segment 16/40 (40%), 0:00:17 elapsed, ~0:00:24 left"


def test_the_curation_pass_is_a_phase_of_its_own(clock, capsys, monkeypatch):
    monkeypatch.setenv("DEVOLENS_PROGRESS", "lines")
    start = clock.now
    with _common.progress_bar("segment nuclei") as cb:
        with _common.progress_phase(cb, "curating") as curating:
            _two_passes(clock, curating, start, second=False)
        _two_passes(clock, cb, start, first=False)
    assert _err_lines(capsys)[:4] == [
        "progress: curating 40/200 (20%), 0:00:10 elapsed, ~0:00:40 left",
        "progress: curating 160/200 (80%), 0:00:40 elapsed, ~0:00:10 left",
        "progress: segment nuclei 17/190 (8%), 0:01:10 elapsed, ~0:02:53 left",
        "progress: segment nuclei 47/190 (24%), 0:01:40 elapsed, ~0:02:23 left"]


def test_a_plain_callback_is_given_as_it_is():
    calls = []

    def cb(done, total):
        calls.append((done, total))

    with _common.progress_phase(cb, "curating") as inner:
        assert inner is cb
    with _common.progress_phase(None, "curating") as inner:
        assert inner is None


def test_the_bar_shows_the_curation_pass_on_its_own_row(clock, capsys, monkeypatch):
    monkeypatch.setattr(_common.console, "_force_terminal", True)
    start = clock.now
    with _common.progress_bar("segment nuclei") as cb:
        with _common.progress_phase(cb, "curating") as curating:
            _two_passes(clock, curating, start, second=False)
        _two_passes(clock, cb, start, first=False)
        rows = [(t.description, t.completed, t.total) for t in cb.prog.tasks]
    assert rows == [("curating", 200, 200), ("segment nuclei", 190, 190)]
    err = capsys.readouterr().err
    assert "curating" in err and "200/200" in err and "190/190" in err


def test_the_bar_starts_again_when_the_count_goes_down(clock, monkeypatch):
    """Two passes on one callback (a library's, no phases): the second pass's row has its own time and pace."""
    monkeypatch.setattr(_common.console, "_force_terminal", True)
    monkeypatch.setenv("DEVOLENS_PROGRESS", "off")  # the same bar, not drawn
    start = clock.now
    with _common.progress_bar("segment") as cb:
        _two_passes(clock, cb, start, second=False)
        for done in range(1, 18):  # at 70 s, 17 of 190 segmented, 1 a second since the first at 54 s
            clock.now = start + 53 + done
            cb(done, 190)
        task = cb.prog.tasks[0]
        # its time and pace the second pass's (rich's pace over the last 30 s held the curation's 4 a second)
        assert task.elapsed == pytest.approx(16) and task.time_remaining == pytest.approx(173)


# ------------------------------------------------------------------------------------------------ the commands
def _named_stack(path, t: int = 12):
    """A TCYX OME-TIFF of ``t`` time points: channel 0 ("noise") noise, channel 1 ("H2B-GFP") bright blobs."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:48, :64]
    nuclei = np.zeros((t, 48, 64), np.float32)
    for k in range(t):
        for _ in range(6):
            cy, cx = rng.uniform(6, 42), rng.uniform(6, 58)
            nuclei[k] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 12.0)
    data = np.stack([rng.integers(0, 200, (t, 48, 64)), 200 + 3000 * np.clip(nuclei, 0, 1)], axis=1)
    tifffile.imwrite(path, data.astype(np.uint16), ome=True,
                     metadata={"axes": "TCYX", "Channel": {"Name": ["noise", "H2B-GFP"]}})
    return path


READ = "read s.ome.tif: axes TCYX, shape (12, 2, 48, 64): 12 time points; channel 1 (H2B-GFP) of 2"


def test_segment_says_how_the_stack_is_read_before_the_work(tiny_zoo, tmp_path, capsys, monkeypatch):  # noqa: F811
    """``--skip-flagged auto``, each reading of the clock 4 s after the one before: the read line first, the
    curation pass under its own label, then the segmentation's."""
    path = _named_stack(tmp_path / "s.ome.tif")
    now = [0.0]

    def ticking() -> float:
        now[0] += 4
        return now[0]

    monkeypatch.setattr(_common, "_clock", ticking)
    monkeypatch.setenv("DEVOLENS_PROGRESS", "lines")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(path), "--channel", "1", "--out", str(out), "--no-overlay",
                 "--skip-flagged", "auto", "--batch-size", "1", "--diameter", "none"]) == 0
    lines = _err_lines(capsys)
    progress = [line for line in lines if line.startswith("progress:")]
    assert lines[0] == READ, lines  # before any progress: before the curation pass
    assert progress[0].startswith("progress: curating ") and progress[-1].startswith("progress: segment nuclei ")
    assert all(line.startswith(("progress: curating ", "progress: segment nuclei ")) for line in progress)
    assert lines.count(READ) == 1  # not again after the run
    assert json.loads((out / "segment.json").read_text())["stack"]["read"] == READ.split(": ", 1)[1]


def test_the_read_line_is_silenced_by_quiet_and_follows_the_option_checks(tiny_zoo, tmp_path,  # noqa: F811
                                                                           capsys):
    path = _named_stack(tmp_path / "s.ome.tif")
    assert main(["-q", "segment", "nuclei", str(path), "--channel", "1", "--out", str(tmp_path / "q"),
                 "--no-overlay", "--diameter", "none"]) == 0
    assert "read s.ome.tif" not in capsys.readouterr().err
    # a --channel out of range: the error alone, no line saying the stack is read with it
    assert main(["segment", "nuclei", str(path), "--channel", "2", "--out", str(tmp_path / "e"), "--no-overlay",
                 "--skip-flagged", "auto"]) == 2
    err = capsys.readouterr().err
    assert "read s.ome.tif" not in err and "--channel 2 is out of range" in err
