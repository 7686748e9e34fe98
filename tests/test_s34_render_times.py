"""`devolens render --times A-B` on a table whose time points are a step apart (time in seconds): the range means
the table's own time points within it, not every whole number between A and B; `render --simulate N --times A-B`:
each simulated embryo takes the range's time points it has, with a note naming the one that lacks some."""

from __future__ import annotations

import pandas as pd
import pytest

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


# ----------------------------------------------------------------------------- --simulate N --times RANGE
# seed 0, --sim-cells 8: the three embryos end at time points 30 (sim968811710), 29 (sim677149159), 27 (sim745650761)
SIM = ["--simulate", "3", "--sim-cells", "8", "--seed", "0", "--size", "32", "32"]


def test_render_simulate_range_trimmed_per_embryo_with_a_note_naming_it(tmp_path, capsys):
    import json

    out = tmp_path / "r"
    code, _, err = run(["render", *SIM, "--times", "28-30", "--out", str(out)], capsys)
    assert code == 0, err
    frames = pd.read_csv(out / "frames.csv")
    assert list(zip(frames["embryo"], frames["time"])) == [("sim968811710", 28), ("sim968811710", 29),
                                                         ("sim968811710", 30), ("sim677149159", 28),
                                                         ("sim677149159", 29)]
    text = flat(err)
    assert ("--times: time point(s) 30 of the range are not in simulated embryo sim677149159 (it has 1..29): "
            "skipped") in text
    assert ("time point(s) 28-30 of the range are not in simulated embryo sim745650761 (it has 1..27): none of its "
            "frames rendered") in text
    assert "the table" not in text
    meta = json.loads((out / "render.json").read_text())
    assert list(meta["embryos"]) == ["sim968811710", "sim677149159"]  # the one with none of them: absent
    assert meta["times"] == [[28, 29, 30], [28, 29], []]


def test_render_simulate_trimmed_frames_are_those_of_the_whole_render(tmp_path, capsys):
    """Trimming one embryo's times changes no other frame: each embryo draws from its own seed."""
    from devolens.io.images import read_image

    code, _, err = run(["render", *SIM, "--times", "28-30", "--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    code, _, err = run(["render", *SIM, "--times", "20-27", "--out", str(tmp_path / "b")], capsys)
    assert code == 0, err
    code, _, err = run(["render", *SIM, "--out", str(tmp_path / "all")], capsys)
    assert code == 0, err
    for folder in ("a", "b"):
        for f in pd.read_csv(tmp_path / folder / "frames.csv")["file"]:
            assert (read_image(tmp_path / folder / f) == read_image(tmp_path / "all" / f)).all(), (folder, f)


def test_render_simulate_range_no_embryo_has_is_an_error_naming_them(tmp_path, capsys):
    out = tmp_path / "r"
    code, _, err = run(["render", *SIM, "--times", "31-33", "--out", str(out)], capsys)
    text = flat(err)
    assert code == 2 and ("--times: none of the time points 31-33 is in the simulated embryos (sim968811710 has "
                          "1..30; sim677149159 has 1..29; sim745650761 has 1..27)") in text, err
    assert "--sim-cells" in text and "the table" not in text and not out.exists()


def test_render_simulate_time_named_on_its_own_missing_names_the_embryo(tmp_path, capsys):
    code, _, err = run(["render", *SIM, "--times", "5,30", "--out", str(tmp_path / "r")], capsys)
    text = flat(err)
    assert code == 2 and "time point(s) 30 not in simulated embryo sim677149159 (it has 1..29)" in text, err
    assert "the table" not in text


def test_render_dataset_times_per_table(tmp_path):
    from devolens.errors import DevolensError
    from devolens.render.dataset import render_dataset

    tables = [make_table(n_times=4, n_cells=6, embryo="a"), make_table(n_times=3, n_cells=6, seed=1, embryo="b")]
    df = render_dataset(tables, tmp_path / "r", times=[[2, 4], []], size=(32, 32))
    assert list(zip(df["embryo"], df["time"])) == [("a", 2), ("a", 4)]
    df = render_dataset(tables, tmp_path / "s", times=[None, [3]], size=(32, 32))
    assert list(zip(df["embryo"], df["time"])) == [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 3)]
    with pytest.raises(DevolensError, match="times holds 1 lists of time points for 2 table"):
        render_dataset(tables, tmp_path / "t", times=[[2]], size=(32, 32))
    with pytest.raises(DevolensError, match="every table's list of time points is empty"):
        render_dataset(tables, tmp_path / "t", times=[[], []], size=(32, 32))
    with pytest.raises(DevolensError, match="times is empty"):  # one empty list for all: as before
        render_dataset(tables, tmp_path / "t", times=[], size=(32, 32))
    with pytest.raises(DevolensError, match=r"time point\(s\) 4 not in the table of embryo b \(it has 1..3\)"):
        render_dataset(tables, tmp_path / "t", times=[4], size=(32, 32))


def test_render_simulate_range_all_embryos_have_keeps_render_json_times_flat(tmp_path, capsys):
    import json

    out = tmp_path / "r"
    code, _, err = run(["render", *SIM, "--times", "10-12", "--out", str(out)], capsys)
    assert code == 0, err
    assert json.loads((out / "render.json").read_text())["times"] == [10, 11, 12]  # as without a range


def test_render_range_past_the_end_of_a_table_in_irregular_units_is_noted(tmp_path, capsys):
    table = make_table(n_times=8, n_cells=8)
    seconds = [0, 91, 180, 272, 361, 450, 543, 630]  # acquisition times, 89-93 apart
    table["time"] = table["time"].map(lambda t: seconds[t - 1])
    src = tmp_path / "irregular.csv"
    table.to_csv(src, index=False)
    code, _, err = run(["render", str(src), "--out", str(tmp_path / "r"), "--size", "48", "64", "--times",
                        "543-700"], capsys)
    assert code == 0, err
    assert pd.read_csv(tmp_path / "r" / "frames.csv")["time"].tolist() == [543, 630]
    assert "631-700 of the range are not in the table" in flat(err)  # past its end: said; between its times: not
    assert "544-629" not in flat(err)
