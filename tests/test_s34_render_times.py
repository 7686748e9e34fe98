"""`devolens render --times A-B` on a table whose time points are a step apart (time in seconds): the range means
the table's own time points within it, not every whole number between A and B."""

from __future__ import annotations

import pandas as pd

from test_lineage_walkthrough26b import flat, make_table, run


def test_render_range_on_a_table_in_seconds_takes_its_time_points(tmp_path, capsys):
    table = make_table(n_times=8, n_cells=8)
    table["time"] = (table["time"] - 1) * 90  # 0, 90, 180 ... 630
    src = tmp_path / "seconds.csv"
    table[table["time"] != 180].to_csv(src, index=False)
    out = tmp_path / "r"
    code, _, err = run(["render", str(src), "--out", str(out), "--size", "48", "64", "--times", "0-270"], capsys)
    assert code == 0, err
    assert pd.read_csv(out / "frames.csv")["time"].tolist() == [0, 90, 270]
    # the one time point of the step the table lacks is said; the 266 whole numbers between its time points are not
    text = flat(err)
    assert "time point(s) 180 of the range are not in the table" in text
    assert "1-89" not in text
    # a range between two of its time points: the error says what the table has
    code, _, err = run(["render", str(src), "--out", str(tmp_path / "s"), "--size", "48", "64", "--times", "1-80"],
                       capsys)
    assert code == 2 and "not in the table" in flat(err)
