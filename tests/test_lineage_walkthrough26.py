"""A lineage biologist's walkthrough: copies and spikes faking annotation cliffs, the gradual-fall message,
copies in the populations API and in renders, and the canonical division axes of ``daughters``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from devolens.lineage.cliffs import clean_table, detect_cliffs, find_cliffs
from devolens.lineage.names import daughters
from devolens.lineage.populations import populations
from _lineage_builders import growth_rows, write_cd
from _lineage_builders import run_cli as run
from _render_helpers import make_table


def tidy(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["cell", "time", "z", "x", "y", "size", "blot"]).astype({"x": float, "y": float})
    df.insert(0, "embryo", "e")
    return df[["embryo", "time", "cell", "x", "y", "z", "size"]]


# ----------------------------------------------------------------------------- 1. false cliffs
def test_copied_block_of_time_points_is_no_cliff():
    """A block of time points saved twice doubles their counts; the fall back to the true count is no cliff."""
    df = tidy(growth_rows())
    doubled = pd.concat([df, df[df["time"].between(20, 24)]]).sort_values("time", kind="stable")
    doubled = doubled.reset_index(drop=True)
    rep = find_cliffs(doubled)
    assert rep.cliffs == [] and rep.last_good_time == 40
    clean, crep = clean_table(doubled)
    assert crep.cliffs.cliffs == [] and crep.rows_after_cliff == 0
    assert len(clean) == len(df) and clean["time"].max() == 40
    assert populations(clean)["total"].tolist() == [20 + t for t in range(1, 41)]


def test_copied_block_cli_cliffs_and_clean_agree_with_populations(tmp_path, capsys):
    rows = growth_rows()
    cd = write_cd(tmp_path / "CDdup.csv", rows + [r for r in rows if 20 <= r[1] <= 24])
    code, out, err = run(["lineage", "cliffs", str(cd)], capsys)
    assert code == 0, err
    assert "no annotation cliff" in out and "last good time point 40" in out
    code, out, err = run(["lineage", "clean", str(cd), "--out", str(tmp_path / "clean.csv")], capsys)
    assert code == 0, err
    assert "no cliff" in err and f"wrote {tmp_path / 'clean.csv'}: {len(rows)} of" in err
    assert pd.read_csv(tmp_path / "clean.csv")["time"].max() == 40
    code, out, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and "cliff" not in err.replace(str(tmp_path), "")  # (the summary names the folder)


def test_one_time_point_spike_is_no_cliff():
    """60 extra detections at one time point: the count falls back to its level, which is no cliff."""
    n = np.arange(21, 61)  # 21..60 cells at times 1..40
    spiked = n.copy()
    spiked[19] += 30  # time 20
    assert detect_cliffs(np.arange(1, 41), spiked) == []
    two = n.copy()
    two[19:21] += 30  # a spike of two time points
    assert detect_cliffs(np.arange(1, 41), two) == []
    # a spike then a fall below the level before it, for good: still a cliff, after the last steady count
    fall = spiked.copy()
    fall[20:] = 12
    cliffs = detect_cliffs(np.arange(1, 41), fall)
    assert len(cliffs) == 1 and cliffs[0].after == 12 and cliffs[0].time in (19, 20)


def test_spike_table_is_not_cut_by_clean(tmp_path, capsys):
    rows = growth_rows()
    rows += [(f"Nuc{i}", 20, 3.0, 500 + i, 600, 10, 0) for i in range(30)]
    df = tidy(rows)
    rep = find_cliffs(df)
    assert rep.cliffs == []
    clean, crep = clean_table(df)
    assert len(clean) == len(df) and crep.times_dropped == 0
    cd = write_cd(tmp_path / "CDspike.csv", sorted(rows, key=lambda r: r[1]))
    code, out, err = run(["lineage", "clean", str(cd), "--out", str(tmp_path / "c.csv")], capsys)
    assert code == 0 and "no cliff" in err, out + err


def test_gradual_fall_message_gives_the_counts_at_the_times_it_names(tmp_path, capsys):
    counts = list(range(21, 61)) + [45, 35, 25, 15, 12, 12, 13, 13, 14, 14, 15]  # times 1..51: 45 at time 41
    cliffs = detect_cliffs(np.arange(1, len(counts) + 1), counts)
    assert len(cliffs) == 1
    c = cliffs[0]
    assert (c.time, c.before) == (40, 60)
    assert c.after == 12 and counts[c.after_time - 1] == c.after and c.after_time == 45 and c.first_bad_time == 41
    rows = [(f"AB{'ap'[k % 2]}{'lr'[(k // 2) % 2]}{'dv' * (k // 4)}", t, 1.0, 10 + k, 20, 10, 0)
            for t, n in enumerate(counts, 1) for k in range(n)]
    cd = write_cd(tmp_path / "CDgradual.csv", rows)
    code, out, err = run(["lineage", "cliffs", str(cd)], capsys)
    assert code == 0, err
    assert "cliff after time 40: 60 -> 12 cells at time 45" in out
    code, out, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv")], capsys)
    assert "60 -> 12 cells at time 45" in " ".join(err.split())
    code, out, err = run(["lineage", "clean", str(cd), "--out", str(tmp_path / "c.csv")], capsys)
    assert "cut after time 40 (60 -> 12 cells at time 45, falling from time 41)" in err


def test_real_embryo_with_a_copied_block_and_a_spike_has_no_cliff(epic_tables):
    from devolens.io.tables import read_table

    path = next((p for p in epic_tables if p.stem == "CD20241009_JIM767_25_L1"), None)
    if path is None:
        pytest.skip("CD20241009_JIM767_25_L1 not in the shared data")
    d = read_table(path)
    dup = pd.concat([d, d[d["time"].between(60, 70)]]).sort_values("time", kind="stable").reset_index(drop=True)
    assert find_cliffs(dup).cliffs == []
    spike = d[d["time"] == 80].head(60).assign(cell=[f"Nuc{i}" for i in range(60)], x=lambda f: f["x"] + 3)
    spiked = pd.concat([d, spike]).sort_values("time", kind="stable").reset_index(drop=True)
    assert find_cliffs(spiked).cliffs == []
    clean, rep = clean_table(spiked)
    assert rep.times_dropped == 0 and len(clean) == len(spiked)


# ----------------------------------------------------------------------------- 3. render of a doubled table
def test_render_cli_drops_copies_with_the_populations_note(tmp_path, capsys):
    table = make_table(n_times=3, n_cells=12)
    src = tmp_path / "twice.csv"
    pd.concat([table, table]).to_csv(src, index=False)
    out = tmp_path / "r"
    code, _, err = run(["render", str(src), "--out", str(out), "--size", "48", "64", "--times", "1-2"], capsys)
    assert code == 0, err
    frames = pd.read_csv(out / "frames.csv")
    assert frames["total"].tolist() == [12, 12]
    assert "dropped 33 row(s) that repeat an earlier row exactly (same cell, time point and position)" in " ".join(
        err.split())


def test_render_dataset_counts_a_doubled_table_once(tmp_path):
    table = make_table(n_times=2, n_cells=12)
    doubled = pd.concat([table, table], ignore_index=True)
    with pytest.warns(UserWarning, match="repeat an earlier row exactly"):
        frames = render_dataset_once(doubled, tmp_path)
    assert frames["total"].tolist() == [12, 9]
    objects = pd.read_csv(tmp_path / "objects.csv")
    assert len(objects[objects["file"] == "frames/t001.png"]) <= 12


def render_dataset_once(table, out):
    from devolens.render.dataset import render_dataset

    return render_dataset(table, out, size=(48, 64), seed=1)


# ----------------------------------------------------------------------------- 4. populations API
def test_populations_api_counts_exact_copies_once_with_a_note():
    table = make_table(n_times=3, n_cells=12)
    once = populations(table)
    with pytest.warns(UserWarning, match="dropped 33 row\\(s\\) that repeat an earlier row exactly"):
        twice = populations(pd.concat([table, table], ignore_index=True))
    pd.testing.assert_frame_equal(twice, once)
    assert any("repeat an earlier row exactly" in n for n in twice.attrs["notes"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "notes" not in populations(table).attrs


def test_populations_api_without_positions_counts_every_row():
    """Without x, y, z two unnamed rows of a time point cannot be told from copies: both count."""
    t = pd.DataFrame({"time": [1, 1, 1, 2], "cell": ["ABa", None, None, "EMS"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert populations(t)["total"].tolist() == [3, 1]


# ----------------------------------------------------------------------------- 5. canonical division axes
def test_daughters_default_to_the_canonical_axis():
    assert daughters("ABa") == ("ABal", "ABar")
    assert daughters("ABp") == ("ABpl", "ABpr")
    assert daughters("Ea") == ("Eal", "Ear") and daughters("Ep") == ("Epl", "Epr")
    assert daughters("AB") == ("ABa", "ABp") and daughters("MS") == ("MSa", "MSp")
    assert daughters("ABal") == ("ABala", "ABalp")
    # an explicit axis is kept
    assert daughters("ABa", "ap") == ("ABaa", "ABap") and daughters("ABa", axis="dv") == ("ABad", "ABav")
    assert daughters("P2") == ("C", "P3")


# ----------------------------------------------------------------------------- 2. a CD table cut short
def test_cut_short_cd_table_drops_its_incomplete_last_line_with_a_note(tmp_path, capsys):
    from devolens.io.tables import read_table

    rows = growth_rows(n_times=5, base=2)
    full = write_cd(tmp_path / "CDfull.csv", rows)
    text = full.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    cut = tmp_path / "CDcut.csv"
    cut.write_text(text.rstrip("\n")[: -len(last)] + last[: last.rindex(",10,") + 2])  # "...,x,y,1": size 10 cut to 1
    df = read_table(cut)
    assert len(df) == len(rows) - 1 and (df["size"] == 10).all()
    assert df.attrs["notes"] == ["the last line has 12 of 13 fields: the file may be cut short (a CD table lists cell "
                                 "after cell, so the cells after it are missing); dropped that line"]
    code, _, err = run(["lineage", "populations", str(cut), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and "the last line has 12 of 13 fields: the file may be cut short" in " ".join(err.split())
    assert "notes" not in read_table(full).attrs or not read_table(full).attrs["notes"]


def test_the_simulator_names_daughters_on_the_canonical_axes():
    from devolens.lineage.names import canonical_axes
    from devolens.lineage.simulate import daughters as sim_daughters

    for mother in ("ABa", "ABp", "Ea", "Ep", "AB", "MS", "ABal", "P2", "EMS", *canonical_axes()):
        assert sim_daughters(mother) == daughters(mother), mother
    assert sim_daughters("Ea", {}) == ("Eal", "Ear")
    assert sim_daughters("Ea", {"Ea": "ap"}) == ("Eaa", "Eap")  # the parameters' letters first
    assert sim_daughters("Z2") is None
