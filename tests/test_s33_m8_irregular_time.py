"""Time in irregular real units (session 33, m8): a CD table whose time column holds acquisition seconds, 89-97 apart
(as EPIC's TIME files give them), has no regular step (io.tables.time_step), and the readers counted every second
between two rows as a hole ("time points 1-88, 90-178, ... (and 12110 more) have no rows"). They now read one time
point per time given (io.tables.irregular_time), with one note, and say as holes only a missing acquisition, in the
table's own times; lineage cliffs counts a lone time point's distance in such time points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _lineage_builders import growth_rows, run_cli, write_acetree_zip, write_cd
from devolens.io.tables import read_table, time_step

#: The start of the note on time in irregular units.
IRREGULAR = "time is in irregular units (median step "


def jittered_seconds(n: int, seed: int = 0) -> np.ndarray:
    """Acquisition seconds of ``n`` time points: ``round(90 * k + noise)``, the noise up to 4 s either way."""
    rng = np.random.default_rng(seed)
    return np.rint(90 * np.arange(1, n + 1) + rng.uniform(-4, 4, n)).astype(np.int64)


def seconds_cd(path, seconds, rows=None):
    """A CD table of :func:`growth_rows` (cells growing one a time point) at the times ``seconds`` (time point k at
    ``seconds[k - 1]``)."""
    rows = growth_rows(len(seconds)) if rows is None else rows
    return write_cd(path, [(c, int(seconds[t - 1]), z, x, y, s, b) for c, t, z, x, y, s, b in rows])


def test_the_rule():
    from devolens.io.tables import IrregularTime, irregular_time

    sec = jittered_seconds(40)
    assert time_step(sec) == 1  # no regular step...
    found = irregular_time(sec)  # ... but seconds, one time point each
    d = np.diff(sec)
    assert found == IrregularTime(step=float(np.median(d)), low=int(d.min()), high=int(d.max()))
    assert found.missing([90, 120, 180, 275, 1000]).tolist() == [0, 0, 1, 2, 10]
    # a step of 90 found in 85 % of the differences, the rest 91: irregular too (its "holes" were each 91 s one)
    mostly = np.r_[0, np.cumsum(np.where(np.arange(40) % 7 == 3, 91, 90))]
    assert time_step(mostly) == 90 and irregular_time(mostly).step == 90
    for regular in (range(0, 3600, 90), [0, 90, 180, 270, 450, 540], range(1, 141), [1, 4, 7, 10, 13, 17, 19, 22],
                    [1, 2, 3, 5, 6], [0, 90, 181]):  # steps, time points numbered 1, 2, 3..., too short to tell
        assert irregular_time(regular) is None, regular
    wide = [0, 90, 150, 270, 390, 430, 520]  # differences 40-120 apart: no time point each
    assert irregular_time(wide) is None


def test_a_table_in_acquisition_seconds_is_read_without_holes(tmp_path, capsys):
    sec = jittered_seconds(120)  # (more time points than seconds between two: the "holes" were not left out)
    table = seconds_cd(tmp_path / "CDseconds.csv", sec)
    assert read_table(table).attrs["notes"] == [
        f"time is in irregular units (median step {np.median(np.diff(sec)):g}, {np.diff(sec).min()}-"
        f"{np.diff(sec).max()} apart: acquisition times in seconds?): read as one time point per time given, a gap of "
        "over 1.5 steps as time points missing"]
    for argv in (["lineage", "populations", str(table), "--out", str(tmp_path / "pops.csv")],
                 ["lineage", "convert", str(table), "--out", str(tmp_path / "tidy.csv")],
                 ["lineage", "cliffs", str(table)]):
        code, out, err = run_cli(argv, capsys)
        assert code == 0, err
        assert err.count("note: ") == 1 and f"note: {IRREGULAR}" in err and "no rows" not in err, err
    pops = pd.read_csv(tmp_path / "pops.csv")
    assert pops["time"].tolist() == sec.tolist()  # one row per time given, at its own time
    assert pops["total"].tolist() == [20 + t for t in range(1, 121)]
    again = read_table(tmp_path / "tidy.csv")  # the tidy table written reads alike
    assert [n for n in again.attrs["notes"] if "no rows" in n] == []


def test_a_missing_acquisition_is_said_in_the_tables_times(tmp_path):
    sec = jittered_seconds(30)
    holes = sec[[k for k in range(30) if k not in (9, 20, 21)]]  # time points 10, 21 and 22 lost
    notes = read_table(seconds_cd(tmp_path / "CDholes.csv", holes)).attrs["notes"]
    assert len(notes) == 2 and notes[0].startswith(IRREGULAR)
    assert notes[1] == (f"3 time points have no rows (1 between times {sec[8]} and {sec[10]}, 2 between times "
                        f"{sec[19]} and {sec[22]}): the table skips them (rows deleted when the table was edited?)")
    one = read_table(seconds_cd(tmp_path / "CDhole.csv", np.delete(sec, 9))).attrs["notes"]
    assert one[1] == (f"1 time point between times {sec[8]} and {sec[10]} has no rows: the table skips it (rows "
                      "deleted when the table was edited?)")


def test_acetree_files_numbered_in_seconds(tmp_path):
    """Nuclei files named by their acquisition second: an empty one and a lost one said in those times."""
    sec = jittered_seconds(12)
    nucleus = [(1, 10, 20, 5.0, 12, "ABa")]
    frames = {int(t): ([] if k in (3, 4) else nucleus) for k, t in enumerate(sec) if k != 8}
    notes = read_table(write_acetree_zip(tmp_path / "seconds.zip", frames)).attrs["notes"]
    assert notes[0].startswith(IRREGULAR)
    assert notes[-1] == (f"1 time point between times {sec[7]} and {sec[9]} has no nuclei file and the nuclei files "
                         f"of time points {sec[3]}-{sec[4]} are empty: the table skips them (files lost when the "
                         "series was copied or zipped?)")


def test_cliffs_in_acquisition_seconds(tmp_path, capsys):
    """A cliff is said at the table's own times; a stray time is counted in the table's time points, one per median
    step (it was counted in seconds: "93500 time points after")."""
    sec = jittered_seconds(40)
    rows = [r for r in growth_rows(40) if r[1] <= 30 or r[0] in ("ABal", "ABar")]  # 50 cells, then 2
    table = seconds_cd(tmp_path / "CDcliff.csv", sec, rows)
    code, out, err = run_cli(["lineage", "cliffs", str(table)], capsys)
    assert code == 0 and "no rows" not in err
    assert f"cliff after time {sec[29]}: 50 -> 2 cells at time {sec[30]}" in out

    stray = sec[-1] + 900 * 90  # 900 time points after the last
    rows = growth_rows(40) + [("ABa", 41, 1.0, 5, 5, 10, 0)]
    table = seconds_cd(tmp_path / "CDstray.csv", np.r_[sec, stray], rows)
    step = float(np.median(np.diff(sec)))
    code, out, err = run_cli(["lineage", "cliffs", str(table)], capsys)
    assert (f"time {stray} stands alone, {int((stray - sec[-1]) // step)} time points after time {sec[-1]} (1 cell)"
            in out), out
    assert code == 0 and err.count("note: ") == 1 and err.startswith(f"note: {IRREGULAR}"), err


def test_real_acquisition_times(shared_data, tmp_path, capsys):
    """A real CD table with its time column set to the seconds of its TIME file."""
    epic = shared_data / "epic"
    if not (epic / "TIME20241107_JIM767_25_L1.csv").exists():
        pytest.skip("no TIME file in the shared data")
    cd = pd.read_csv(epic / "CD20241107_JIM767_25_L1.csv")
    times = pd.read_csv(epic / "TIME20241107_JIM767_25_L1.csv", sep="\t", header=None)
    seconds = dict(zip(times[1], times[2]))
    table = tmp_path / "CDL1_seconds.csv"  # (no TIME file beside it)
    cd.assign(time=cd["time"].map(seconds)).to_csv(table, index=False)
    code, out, err = run_cli(["lineage", "cliffs", str(table)], capsys)
    assert code == 0
    assert err.count("note: ") == 1 and err.startswith(f"note: {IRREGULAR}90, 90-91 apart"), err
    assert f"cliff after time {seconds[149]}: 392 -> 105 cells at time {seconds[150]}" in out  # (149 -> 150)
