"""`render --simulate --sim-cells`: its bound named with the option's name, the note past hatching (the one
`simulate embryo` gives); `simulate embryo --params` with a "start"; frames.csv's and render.json's embryo the
table's own name (cleaned only in file names), so that frames join back to the table."""

from __future__ import annotations

import json

import pandas as pd

from test_lineage_walkthrough26b import flat, make_table, run

HATCHED = ("more than the 558 cells a C. elegans embryo hatches with: the simulator's cells (but Z2 and Z3) keep "
           "dividing where a real embryo's stop, so those time points are not a real embryo's")


# ----------------------------------------------------------------------------- --sim-cells
def test_sim_cells_bound_named_as_the_option(tmp_path, capsys):
    out = tmp_path / "r"
    code, _, err = run(["render", "--simulate", "1", "--sim-cells", "2500", "--out", str(out)], capsys)
    text = flat(err)
    assert code == 2 and "--sim-cells must be within 1..2000 (a C. elegans embryo hatches with 558 cells), got 2500" \
        in text, err
    assert "n_cells" not in text and not out.exists()
    code, help_text, _ = run(["render", "--help"], capsys)
    assert code == 0 and "1 to 2000" in flat(help_text) and "558" in flat(help_text)


def test_sim_cells_past_hatching_notes_the_frames(tmp_path, capsys):
    # seed 0, --sim-cells 560: the one embryo ends at time point 195, its first with more than 558 cells
    base = ["render", "--simulate", "1", "--sim-cells", "560", "--size", "32", "32"]
    code, _, err = run([*base, "--times", "194-195", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    assert f"note: from time point 195 the embryo has {HATCHED} (--sim-cells stops it earlier)" in flat(err)
    code, _, err = run([*base, "--times", "190-194", "--out", str(tmp_path / "s")], capsys)  # none rendered past it
    assert code == 0 and "hatches with" not in flat(err), err


def test_simulate_embryo_past_hatching_note_as_before(tmp_path, capsys):
    code, _, err = run(["simulate", "embryo", "--cells", "560", "--out", str(tmp_path / "e.csv")], capsys)
    assert code == 0 and f"note: from time point 194 the embryo has {HATCHED} (--cells stops it earlier)" \
        in flat(err), err


# ----------------------------------------------------------------------------- simulate embryo --params start
def test_simulate_embryo_takes_the_params_files_start(tmp_path, capsys):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"start": "4cell"}))
    out = tmp_path / "e.csv"
    code, _, err = run(["simulate", "embryo", "--params", str(params), "--cells", "8", "--out", str(out)], capsys)
    assert code == 0, err
    table = pd.read_csv(out)
    assert sorted(table.loc[table["time"] == 1, "cell"]) == ["ABa", "ABp", "EMS", "P2"]
    assert json.loads(out.with_name("e.meta.json").read_text())["start"] == "4cell"
    assert "overrides" not in flat(err)
    # --start given: it wins, with a note
    code, _, err = run(["simulate", "embryo", "--params", str(params), "--start", "p0", "--cells", "8", "--out",
                        str(out)], capsys)
    assert code == 0, err
    assert pd.read_csv(out).query("time == 1")["cell"].tolist() == ["P0"]
    assert json.loads(out.with_name("e.meta.json").read_text())["start"] == "P0"
    assert f"note: --start P0 overrides the start '4cell' of {params}" in flat(err)
    # no start in the file, none given: P0, no note
    params.write_text(json.dumps({"_comment": "no start"}))
    code, _, err = run(["simulate", "embryo", "--params", str(params), "--cells", "8", "--out", str(out)], capsys)
    assert code == 0 and "overrides" not in flat(err), err
    assert pd.read_csv(out).query("time == 1")["cell"].tolist() == ["P0"]


# ----------------------------------------------------------------------------- the embryo column
def test_frames_csv_keeps_the_tables_embryo_name(tmp_path, capsys):
    table = make_table(n_times=3, n_cells=6, embryo="emb A/1")
    src = tmp_path / "t.csv"
    table.to_csv(src, index=False)
    out = tmp_path / "r"
    code, _, err = run(["render", str(src), "--out", str(out), "--size", "32", "32"], capsys)
    assert code == 0, err
    frames = pd.read_csv(out / "frames.csv")
    assert set(frames["embryo"]) == {"emb A/1"}
    assert list(json.loads((out / "render.json").read_text())["embryos"]) == ["emb A/1"]
    # frames join back to the table by embryo and time
    counts = table.groupby(["embryo", "time"]).size().rename("n").reset_index()
    joined = frames.merge(counts, on=["embryo", "time"], how="left")
    assert joined["n"].notna().all() and (joined["n"] == joined["total"]).all()


def test_several_tables_files_cleaned_column_not(tmp_path):
    from devolens.data.datasets import index_dataset, split_by_group
    from devolens.render.dataset import render_dataset

    tables = [make_table(n_times=2, n_cells=6, embryo="emb A/1"), make_table(n_times=2, n_cells=6, seed=1,
                                                                             embryo="emb B")]
    df = render_dataset(tables, tmp_path / "r", size=(32, 32))
    assert df["embryo"].tolist() == ["emb A/1"] * 2 + ["emb B"] * 2
    assert df["file"].tolist() == ["frames/emb_A_1_t001.png", "frames/emb_A_1_t002.png", "frames/emb_B_t001.png",
                                   "frames/emb_B_t002.png"]
    meta = json.loads((tmp_path / "r" / "render.json").read_text())
    assert list(meta["embryos"]) == ["emb A/1", "emb B"]
    assert [f["file"] for f in meta["embryos"]["emb A/1"]["frames"]] == df["file"].tolist()[:2]
    # train's split keeps each embryo whole, by the same name
    data = index_dataset(tmp_path / "r")
    assert sorted(set(data["group"])) == ["emb A/1", "emb B"]
    train, val = split_by_group(data, "group", 0.5)
    assert set(train["group"]).isdisjoint(val["group"])
    # two tables of one name: told apart in the column, as in the file names
    df = render_dataset([tables[0], tables[0]], tmp_path / "s", size=(32, 32))
    assert sorted(set(df["embryo"])) == ["emb A/1_0", "emb A/1_1"]
    assert df["file"].str.startswith("frames/emb_A_1_").all()


def test_simulate_params_file_with_an_unknown_start_names_the_file(tmp_path, capsys):
    from devolens.cli import main

    params = tmp_path / "p8.json"
    params.write_text('{"start": "8cell"}')
    assert main(["simulate", "embryo", "--params", str(params), "--cells", "10", "--out", str(tmp_path / "e.csv")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "got '8cell' (the simulator parameter 'start' of" in err and "p8.json" in err
