"""Session 45's leftovers: identify's refusal of a model of another kind names it as the commands do (livedead's
card's task is a sentence); an EPIC TIME file whose seconds are infinite, NaN, negative or go backwards cannot be
read (ignored with a note beside a table, refused when given); `models export` takes --to's lock at its checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _lineage_builders import write_cd
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io import atomic
from devolens.io.tables import read_epic, read_epic_time, read_table
from test_s45_folder_lock import HOLD  # (another run holding a folder's lock)

SRC = Path(__file__).resolve().parents[1] / "src"


# ----------------------------------------------------------------------------- 1: identify --model livedead
@pytest.mark.parametrize("model, task", [("livedead", "livedead"), ("nuclei", "nuclei")])
def test_identify_refuses_a_model_of_another_kind_as_segment_does(tmp_path, capsys, model, task):
    """Was: "model 'livedead' is not an identity model (task 'Live/dead classification of ...')", the card's
    sentence quoted as its kind."""
    table = tmp_path / "pos.csv"
    table.write_text("time,x,y,z\n1,10,10,5\n1,30,12,6\n1,20,30,7\n1,40,35,8\n", encoding="utf-8")
    out = tmp_path / "id.csv"
    assert main(["identify", str(table), "--out", str(out), "--model", model]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"error: model '{model}' is a '{task}' model, not 'identity'" in err, err
    assert "Traceback" not in err and "task '" not in err and not out.exists()


# ----------------------------------------------------------------------------- 2: TIME files' seconds
#: TIME files whose seconds are no recording's clock: (content, the words of why it cannot be read)
BAD_SECONDS = {
    "inf": ("e\t1\t0\t0\ne\t2\tinf\t90\ne\t3\t180\t90\n",
            "column 'seconds' is not a finite number (line 2: inf): a TIME file's seconds must be finite"),
    "nan": ("e\t1\t0\t0\ne\t2\tNaN\t90\ne\t3\t180\t90\n", "column 'seconds' has a missing value (line 2)"),
    "negative": ("e\t1\t0\t0\ne\t2\t-90\t90\ne\t3\t180\t90\n",
                 "column 'seconds' is negative (line 2: -90): a TIME file's seconds count from the recording's start"),
    "backwards": ("e\t1\t0\t0\ne\t3\t100\t90\ne\t2\t180\t90\n",  # (time points out of order: sorted first)
                  "column 'seconds' goes backwards (line 2: 100 s at time point 3, after 180 s at time point 2, "
                  "line 3): a TIME file's seconds grow with the time points"),
}


@pytest.mark.parametrize("kind", sorted(BAD_SECONDS))
def test_a_time_file_with_no_clock_cannot_be_read(tmp_path, kind):
    content, why = BAD_SECONDS[kind]
    time = tmp_path / "TIMEe.csv"
    time.write_text(content)
    with pytest.raises(DevolensError) as exc:
        read_epic_time(time)
    assert str(exc.value) == f"{time}: {why}"


def test_time_files_in_order_are_read_as_before(tmp_path):
    """Out-of-order rows, equal seconds at two time points and a gap: read (only a step back is refused)."""
    time = tmp_path / "TIMEe.csv"
    time.write_text("e\t2\t90\t90\ne\t1\t0\t0\ne\t3\t90\t0\ne\t5\t270\t180\n")
    assert read_epic_time(time) == {"time_seconds": {1: 0.0, 2: 90.0, 3: 90.0, 5: 270.0}, "seconds_per_time": 90.0}


def _cd(folder: Path) -> Path:
    rows = [(f"N{i}", t, 4.0 + i % 5, 100 + 7 * i, 200 + 3 * (i % 9), 30, 0) for t in (1, 2, 3) for i in range(20)]
    return write_cd(folder / "CDe.csv", rows)


@pytest.mark.parametrize("kind", ["inf", "negative", "backwards"])
def test_such_a_time_file_beside_a_table_is_ignored_and_given_is_refused(tmp_path, kind):
    content, why = BAD_SECONDS[kind]
    cd = _cd(tmp_path)
    plain = read_table(cd)
    time = tmp_path / "TIMEe.csv"
    time.write_text(content)
    df = read_table(cd)
    assert df.equals(plain)
    assert df.attrs["time_seconds"] is None and df.attrs["seconds_per_time"] is None
    notes = [n for n in df.attrs.get("notes") or () if n.startswith(f"{time}:")]
    assert len(notes) == 1 and why in notes[0] and "ignored" in notes[0], df.attrs.get("notes")
    with pytest.raises(DevolensError, match="column 'seconds'"):
        read_epic(cd, time_file=time)


def test_the_real_time_files_are_read(tmp_path):
    """The EPIC recordings' own TIME files (skipped without the data): still read, about 90 s a time point."""
    data = Path(os.environ.get("DEVOLENS_DATA", "/work/shared/data")) / "epic"
    files = sorted(data.glob("TIME*.csv")) if data.is_dir() else []
    if not files:
        pytest.skip("no EPIC TIME files")
    for path in files:
        spt = read_epic_time(path)["seconds_per_time"]
        assert 60 < spt < 120, path


# ----------------------------------------------------------------------------- 3: models export's lock


class _Worked(DevolensError):
    """Raised by a patched first step of the export: the command went past its checks."""


@pytest.mark.skipif(not atomic.HAS_LOCKS, reason="no fcntl.flock: runs go on unlocked")
@pytest.mark.parametrize("source", ["run", "shipped"])
def test_models_export_is_refused_at_its_checks_when_another_run_writes_its_folder(tmp_path, monkeypatch, capsys,
                                                                                   source):
    """A second `models export X --to DIR` while another run holds DIR's lock: refused before the run is read or the
    shipped model copied (was: only when its staging began, after the weights were read)."""
    import devolens.models.export as export

    seen: list = []

    def work(*args, **kwargs):
        seen.append(args)
        raise _Worked("the export began")

    monkeypatch.setattr(export, "export_run", work)
    monkeypatch.setattr(export, "export_shipped", work)
    run = str(tmp_path / "run") if source == "run" else "nuclei"
    out = tmp_path / "exported"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline() == "held\n"
        code = main(["models", "export", run, "--to", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.splitlines()[-1] == (f"error: {out}: another devolens run is writing here "
                                                      f"(pid {holder.pid})"), err
        assert seen == [] and not out.exists()
    finally:
        holder.communicate("\n")
    assert holder.returncode == 0
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(".lock")] == []


def test_curate_line_counts_missing_frames_apart_from_the_flagged_ones():
    """A folder's missing frames (dropped rows: no frame read) are said apart: "8 frames, 3 flagged (...); 3 missing
    (dropped 3)", not "6 flagged" of 8 frames read (segment --skip-flagged then skips 3)."""
    import pandas as pd

    from devolens.cli.curate import _summary_line
    from devolens.curate.frames import summarize

    report = pd.DataFrame({"frame": [0, 1, 2, None, 3, None],
                           "flagged": [True, False, True, True, False, True],
                           "flag": ["red_line", "", "black", "dropped", "", "dropped"]})
    counts = summarize(report)
    assert counts["frames"] == 4 and counts["flagged"] == 4  # (the record's counts: every flagged row)
    assert _summary_line(report, counts) == "4 frames, 2 flagged (black 1, red_line 1); 2 missing (dropped 2)"
    clean = report[report["frame"].notna()]
    assert _summary_line(clean, summarize(clean)) == "4 frames, 2 flagged (black 1, red_line 1)"
