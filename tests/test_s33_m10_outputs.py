"""What the lineage commands and ``train``'s plot write, for a pipeline built on them (thirty-third session): the
``.meta.json`` of ``lineage convert`` / ``clean`` says what made it and what was cut, ``lineage populations`` writes a
record with the cliffs beside its CSV and marks them on its plot, ``history.png``'s axes are labelled, ``blot`` is
explained."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from devolens.cli import main
from devolens.io.tables import read_table
from _lineage_builders import SMALL_FRAMES, cliff_cd, write_acetree_zip

ROOT = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flat(text: str) -> str:
    """Help or README text with its wrapping and rich's panel borders taken out."""
    return " ".join(text.replace("│", " ").split())


# ----------------------------------------------------------------------------- convert / clean: .meta.json
def test_convert_meta_records_version_command_and_input(tmp_path, capsys):
    cd = cliff_cd(tmp_path / "CDm.csv", cliff_after=None, n_times=4)
    (tmp_path / "mAuxInfo.csv").write_text("name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"
                                         "m,0.5,-13,300,250,500,300,10,35,5,99,5.5,ADL\n")
    out = tmp_path / "o" / "tidy.csv"
    code, _, err = run(["lineage", "convert", str(cd), "--out", str(out)], capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "o" / "tidy.meta.json").read_text())
    keys = list(meta)
    # the keys write_tidy writes come first, as before; what made the file after them
    assert keys[keys.index("format") + 1:] == ["source_format", "input_format", "devolens", "devolens_version", "command",
                                              "input", "inputs"]
    assert meta["format"] == meta["source_format"] == meta["input_format"] == "epic"
    assert meta["zscale"] == 5.5
    from devolens.provenance import version

    assert meta["devolens_version"] == version() and meta["command"] == "devolens lineage convert"
    assert meta["input"] == str(cd.absolute())
    assert meta["inputs"][0] == {"path": str(cd.absolute()), "bytes": cd.stat().st_size, "sha256": sha256(cd),
                              "sha256_of": "file bytes"}
    assert [Path(i["path"]).name for i in meta["inputs"]] == ["CDm.csv", "mAuxInfo.csv"]
    # read back as before (read_tidy reads its own keys only); converted again: the source format stays, the input's
    # is the tidy CSV's
    again = tmp_path / "o" / "again.csv"
    assert run(["lineage", "convert", str(out), "--out", str(again)], capsys)[0] == 0
    meta2 = json.loads((tmp_path / "o" / "again.meta.json").read_text())
    assert (meta2["format"], meta2["source_format"], meta2["input_format"]) == ("epic", "epic", "tidy")
    assert read_table(again).attrs["zscale"] == 5.5
    assert [Path(i["path"]).name for i in meta2["inputs"]] == ["tidy.csv", "tidy.meta.json"]


def test_convert_of_a_table_without_metadata_leaves_no_earlier_sidecar(tmp_path, capsys):
    """An AceTree zip has no metadata: its CSV was written alone, so an earlier run's ``.meta.json`` stayed beside it
    and the new table read back with the old table's z scale and ellipse."""
    out = tmp_path / "tidy.csv"
    (tmp_path / "tidy.meta.json").write_text(json.dumps({"zscale": 9.0, "format": "epic"}))  # an earlier run's
    z = write_acetree_zip(tmp_path / "emb.zip", SMALL_FRAMES)
    code, _, err = run(["lineage", "convert", str(z), "--out", str(out)], capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "tidy.meta.json").read_text())
    assert meta["zscale"] is None and meta["format"] == "acetree" and meta["command"] == "devolens lineage convert"
    assert read_table(out).attrs["zscale"] is None


def test_clean_meta_records_what_was_cut(tmp_path, capsys):
    cd = cliff_cd(tmp_path / "CDc.csv", cliff_after=12)
    with open(cd, "a") as fh:  # a duplicated name at time 3 and a lone time point far after the rest
        fh.write("ABal:3,ABal,3,1,1,1,1,1,1.0,99,99,10,1\nABar:900,ABar,900,1,1,1,1,1,1.0,5,5,10,1\n")
    out = tmp_path / "clean.csv"
    code, stdout, err = run(["lineage", "clean", str(cd), "--out", str(out), "--min-drop", "5"], capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "clean.meta.json").read_text())
    assert meta["command"] == "devolens lineage clean" and meta["source_format"] == "epic"
    cut = meta["clean"]
    assert cut["cut_after_time"] == 12 and cut["last_good_time"] == 12
    assert cut["cliffs"] == [{"time": 12, "before": 36, "after": 2, "first_bad_time": 13, "after_time": 13}]
    assert cut["options"] == {"min_drop": 5, "min_fraction": 0.2, "window": 10, "embryo": None}
    assert (cut["rows_after_cliff"], cut["times_dropped"], cut["duplicate_rows"], cut["lone_rows"]) == (16, 8, 1, 1)
    assert [x["time"] for x in cut["lone_times"]] == [900]
    assert cut["rows_in"] - cut["rows_out"] == 16 + 1 + 1 == cut["rows_in"] - len(pd.read_csv(out))
    assert "dropped 16 rows in 8 time points" in err  # what it says, it records
    # no cliff: nothing cut, said as null
    ok = cliff_cd(tmp_path / "CDok.csv", cliff_after=None, n_times=6)
    assert run(["lineage", "clean", str(ok), "--out", str(tmp_path / "ok.csv")], capsys)[0] == 0
    cut = json.loads((tmp_path / "ok.meta.json").read_text())["clean"]
    assert cut["cut_after_time"] is None and cut["cliffs"] == [] and cut["lone_times"] == []


def test_convert_and_clean_help_explain_blot_and_the_meta_keys(capsys):
    code, out, _ = run(["lineage", "convert", "--help"], capsys)
    text = flat(out)
    assert code == 0 and "blot: an EPIC table's blot column as read" in text
    for key in ("source_format", "input_format", "devolens_version", "command", "inputs"):
        assert f'"{key}"' in text, key
    code, out, _ = run(["lineage", "clean", "--help"], capsys)
    assert code == 0 and '"cut_after_time"' in flat(out) and '"lone_times"' in flat(out)


def test_readme_explains_blot_and_the_records():
    readme = flat((ROOT / "README.md").read_text())
    assert "`blot`, for an EPIC table only" in readme and "`identify` passes it through" in readme
    assert "`source_format`" in readme and "`cut_after_time`" in readme and "writes `truth.json` beside it" in readme
    assert "epoch (from 1: history.csv's epoch + 1)" in readme


# ----------------------------------------------------------------------------- populations: record and plot
def test_populations_writes_a_record_with_the_cliff(tmp_path, capsys, figures):
    cd = cliff_cd(tmp_path / "CDp.csv", cliff_after=12)
    out, png = tmp_path / "pops.csv", tmp_path / "pops.png"
    code, stdout, err = run(["lineage", "populations", str(cd), "--out", str(out), "--plot", str(png)], capsys)
    assert code == 0, err
    assert list(pd.read_csv(out).columns) == ["time", "A", "E", "M", "P", "C", "D", "Z", "total"]  # as before
    rec = json.loads((tmp_path / "pops.json").read_text())
    assert list(rec)[:4] == ["command", "input", "output", "devolens"]
    assert rec["command"] == "devolens lineage populations" and rec["input"] == str(cd.absolute())
    assert rec["output"] == str(out.absolute()) and rec["plot"] == str(png.absolute())
    assert rec["inputs"][0]["sha256"] == sha256(cd)
    assert rec["cliffs"] == [{"time": 12, "before": 36, "after": 2, "first_bad_time": 13, "after_time": 13}]
    assert rec["last_good_time"] == 12
    # the notes printed, once each, after the wrote line (as before), and recorded
    assert err.count("annotation cliff after time 12") == 1 and err.startswith("wrote ") and stdout == ""
    assert len(rec["notes"]) == 1 and rec["notes"][0].startswith("annotation cliff after time 12: 36 -> 2 cells")
    # the plot marks the cliff: a dashed vertical line at its last good time point, labelled
    (ax,) = [a for a in figures[-1].axes]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [12, 12]
    assert [t.get_text() for t in ax.texts] == ["annotation cliff after time 12"]


def test_populations_record_without_a_cliff(tmp_path, capsys, figures):
    ok = cliff_cd(tmp_path / "CDok.csv", cliff_after=None, n_times=6)
    out = tmp_path / "p.csv"
    code, _, err = run(["lineage", "populations", str(ok), "--out", str(out), "--plot", str(tmp_path / "p.svg")],
                       capsys)
    assert code == 0 and err.startswith(f"wrote {out}: ") and len(err.splitlines()) == 1  # the summary, no note
    rec = json.loads((tmp_path / "p.json").read_text())
    assert rec["cliffs"] == [] and rec["last_good_time"] == 6 and rec["notes"] == []
    ax = figures[-1].axes[0]
    assert not [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"] and not ax.texts


def test_populations_record_keeps_the_readers_notes(tmp_path, capsys):
    """Notes said while reading (a copy of rows) are printed as they come, and recorded too."""
    cd = cliff_cd(tmp_path / "CDd.csv", cliff_after=None, n_times=4)
    lines = cd.read_text().splitlines()
    cd.write_text("\n".join(lines + lines[1:3]) + "\n")  # two rows saved twice
    code, _, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "d.csv")], capsys)
    assert code == 0, err
    rec = json.loads((tmp_path / "d.json").read_text())
    assert rec["plot"] is None and len(rec["notes"]) == 1 and rec["notes"][0] in flat(err)


def test_populations_refuses_a_record_that_is_its_input(tmp_path, capsys):
    """The record goes to NAME.json: an input of that name is refused before anything is written."""
    cd = cliff_cd(tmp_path / "CDr.csv", cliff_after=None, n_times=3)
    table = tmp_path / "t.json"
    table.write_bytes(cd.read_bytes())
    code, _, err = run(["lineage", "populations", str(table), "--out", str(tmp_path / "t.csv")], capsys)
    assert code == 2 and "overwrite the input" in err
    assert not (tmp_path / "t.csv").exists() and table.read_bytes() == cd.read_bytes()


# ----------------------------------------------------------------------------- history.png
def test_history_plot_axes_are_labelled_and_say_how_epochs_count(tmp_path, figures):
    from devolens.viz.plots import plot_training

    h = pd.DataFrame({"epoch": [0, 1, 2], "lr": [1e-3, 1e-3, 5e-4], "train_loss": [1.0, 0.8, 0.6],
                      "val_loss": [1.1, 0.9, 0.7], "val_dice": [0.5, 0.6, 0.7], "val_count_mae": [4.0, 3.0, 2.0]})
    plot_training(h, tmp_path / "history.png")
    loss, metrics, lr, errors = figures[-1].axes  # (the count error's right-hand axis last)
    assert loss.get_ylabel() == "loss" and metrics.get_ylabel().startswith("score")
    assert lr.get_ylabel() == "learning rate" and errors.get_ylabel() == "cells"
    for ax in (loss, metrics, lr):
        assert ax.get_xlabel() == "epoch (from 1: history.csv's epoch + 1)"
        assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]  # the numbers the label says


def test_clean_whose_sidecar_cannot_be_written_leaves_the_earlier_csv(tmp_path, capsys):
    """The CSV and its ``.meta.json`` both or neither: the CSV used to be committed first, so a sidecar path that
    could not be written (a folder there) left the new CSV beside no record of it."""
    cd = cliff_cd(tmp_path / "CDk.csv", cliff_after=12)
    out = tmp_path / "c.csv"
    out.write_text("earlier\n")
    (tmp_path / "c.meta.json").mkdir()
    code, _, err = run(["lineage", "clean", str(cd), "--out", str(out)], capsys)
    assert code != 0 and "error" in err
    assert out.read_text() == "earlier\n"


def test_populations_plot_comes_after_its_counts(tmp_path, capsys, monkeypatch):
    """A plot is written only once the CSV and its record are: a disk that filled up while they were written left the
    plot alone, without the counts it shows."""
    import errno

    cd = cliff_cd(tmp_path / "CDp.csv", cliff_after=None, n_times=6)

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    code, _, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv"), "--plot",
                        str(tmp_path / "p.png")], capsys)
    assert code != 0 and "error" in err
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "p.csv").exists()
