"""Session 44, three small mends.

1. A tidy or positions table saved with tabs (a spreadsheet's 'Text (Tab delimited)', pandas' ``to_csv(sep="\\t")``)
   was refused ("the columns are separated by tabs, not commas"), though an EPIC CD table so saved and a table
   separated by semicolons were read. It is read now as the comma-separated table it stands for, with a note, by the
   shared readers (``lineage``, ``render``, ``identify``); a table of columns no reader knows is still refused.
2. ``segment livedead``: a well warned of as swapped also got the speck warning, whose advice (another
   ``--min-area``) is no cure for reversed channels: the speck warning is now left out beside the swap warning.
3. ``benchmarks/eval_zoo.py`` printed a DiameterWarning per stream, measuring at many sizes on purpose: its measuring
   loops ignore that class now, every other warning still shown."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _lineage_builders import write_cd
from _livedead_helpers import channel_predictor
from _zoo_helpers import shipped
from devolens.cli import main
from devolens.errors import DevolensError, DevolensWarning, DiameterWarning
from devolens.io.tables import (
    TAB_DECIMAL_NOTE, TAB_NOTE, detect_format, read_positions, read_table, read_tidy,
)
from devolens.lineage.simulate import simulate_embryo

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- 1. tables separated by tabs
def _sim_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A simulated tidy table saved with commas (``sim.csv``) and with tabs (``tab/sim.csv``, as pandas writes it)."""
    sim = simulate_embryo(3, n_cells=30)
    comma, tab = tmp_path / "sim.csv", tmp_path / "tab" / "sim.csv"
    tab.parent.mkdir()
    sim.to_csv(comma, index=False)
    sim.to_csv(tab, sep="\t", index=False)
    assert "\t" in tab.read_text().splitlines()[0] and "," not in tab.read_text().splitlines()[0]
    return comma, tab


def test_a_tidy_table_saved_with_tabs_reads_as_the_comma_one(tmp_path):
    comma, tab = _sim_pair(tmp_path)
    assert detect_format(tab) == "tidy"
    for reader in (read_table, read_positions, read_tidy):  # lineage and render; identify
        a, b = reader(comma), reader(tab)
        pd.testing.assert_frame_equal(a, b)
        assert b.attrs["notes"][0] == TAB_NOTE and b.attrs["source"] == str(tab), reader
        assert [n for n in b.attrs["notes"] if n != TAB_NOTE] == list(a.attrs.get("notes") or [])


def test_a_positions_table_saved_with_tabs(tmp_path):
    """TrackMate-like names and no cell column; then with decimal commas (German settings): that note alone."""
    p = tmp_path / "spots.csv"
    p.write_text("FRAME\tPOSITION_X\tPOSITION_Y\tPOSITION_Z\n0\t10.5\t20\t3\n1\t11.5\t20\t3.5\n")
    df = read_positions(p)
    assert df["x"].tolist() == [10.5, 11.5] and df["time"].tolist() == [0, 1] and df["cell"].tolist() == ["", ""]
    assert df.attrs["notes"][0] == TAB_NOTE
    p.write_text("FRAME\tPOSITION_X\tPOSITION_Y\tPOSITION_Z\n0\t10,5\t20\t3\n1\t11,5\t20\t3,5\n")
    df = read_positions(p)
    assert df["x"].tolist() == [10.5, 11.5] and df["z"].tolist() == [3.0, 3.5]
    assert df.attrs["notes"][0] == TAB_DECIMAL_NOTE and TAB_NOTE not in df.attrs["notes"]


def test_a_tab_table_in_windows_1252_with_its_sidecar(tmp_path):
    """Excel's 'Text (Tab delimited)' on Windows is Windows-1252; a tidy table's .meta.json beside it is read too."""
    p = tmp_path / "t.csv"
    p.write_bytes("embryo\ttime\tcell\tx\ty\tz\tnote\ne\t1\tABa\t1.5\t2\t3\tMüller\n".encode("cp1252"))
    (tmp_path / "t.meta.json").write_text(json.dumps({"zscale": 5.5}))
    df = read_table(p)
    assert df["note"].tolist() == ["Müller"] and df["x"].tolist() == [1.5] and df.attrs["zscale"] == 5.5
    assert TAB_NOTE in df.attrs["notes"]


def test_an_epic_table_saved_with_tabs_is_still_read_without_a_note(tmp_path):
    """Older EPIC exports are tab-separated: read as they always were, quietly."""
    rows = [(cell, t, 4.0 + k, 300 + 40 * k, 250, 60, -5) for t in (1, 2) for k, cell in enumerate(("ABa", "ABp"))]
    cd = write_cd(tmp_path / "CD20240101_T_L1.csv", rows)
    tab = tmp_path / "tab" / cd.name
    tab.parent.mkdir()
    tab.write_text(cd.read_text().replace(",", "\t"))
    assert detect_format(tab) == "epic"
    a, b = read_table(cd), read_table(tab)
    pd.testing.assert_frame_equal(a, b)
    assert TAB_NOTE not in (b.attrs.get("notes") or [])


def test_what_is_not_such_a_table_is_still_refused_or_stays_comma_separated(tmp_path):
    unknown = tmp_path / "u.csv"
    unknown.write_text("a\tb\tc\n1\t2\t3\n")
    for reader in (read_table, read_positions):
        with pytest.raises(DevolensError, match="unrecognised columns") as err:
            reader(unknown)
        assert "\n" not in str(err.value)
    quoted = tmp_path / "q.csv"  # a comma table with a tab in a quoted name: its commas
    quoted.write_text('time,cell,x,y,z,"a\tb\tc"\n1,ABa,1.5,2,3,4\n')
    df = read_table(quoted)
    assert df["x"].tolist() == [1.5] and df["a\tb\tc"].tolist() == [4] and not df.attrs.get("notes")


def test_lineage_and_render_read_a_tab_table_as_the_comma_one(tmp_path, capsys):
    comma, tab = _sim_pair(tmp_path)
    for table in (comma, tab):
        out = table.parent / "pops.csv"
        assert main(["lineage", "populations", str(table), "--out", str(out)]) == 0
        assert main(["render", str(table), "--out", str(table.parent / "r"), "--size", "32", "48",
                     "--times", "1-2", "--seed", "1"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (comma.parent / "pops.csv").read_bytes() == (tab.parent / "pops.csv").read_bytes()
    assert err.count("note: the columns are separated by tabs") == 2  # (the tab table's, once per command)
    frames = [pd.read_csv(t.parent / "r" / "frames.csv") for t in (comma, tab)]
    pd.testing.assert_frame_equal(frames[0], frames[1])


@pytest.mark.skipif(not shipped("identity"), reason="identity weights not shipped")
def test_identify_names_a_tab_table_as_the_comma_one(tmp_path, capsys):
    comma, tab = _sim_pair(tmp_path)
    for table in (comma, tab):
        assert main(["identify", str(table), "--out", str(table.parent / "names.csv"), "--tta", "1",
                     "--smooth", "none"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (comma.parent / "names.csv").read_bytes() == (tab.parent / "names.csv").read_bytes()
    assert "note: the columns are separated by tabs" in err
    assert json.loads((tab.parent / "names.json").read_text())["notes"][0] == TAB_NOTE


# ----------------------------------------------------------------------------- 2. livedead: specks beside a swap
def _specked(well: np.ndarray, n: int = 30) -> np.ndarray:
    """``well`` with ``n`` 4-px specks in both channels (debris) on its background, away from the nuclei."""
    well = well.copy()
    placed = 0
    for y in range(4, well.shape[1] - 6, 9):
        for x in range(4, well.shape[2] - 6, 9):
            if placed < n and well[:, y - 4:y + 6, x - 4:x + 6].max() < 300:
                well[:, y:y + 2, x:x + 2] = 3000
                placed += 1
    assert placed == n
    return well


def _warned(well: np.ndarray) -> tuple[list[str], list[str]]:
    """The swap and the speck warnings of ``well`` read as an array (by position)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        channel_predictor().predict(well, probabilities=False)
    said = [str(w.message) for w in caught]
    return ([s for s in said if "read as dead, with Hoechst taken from" in s],
            [s for s in said if "objects are specks under" in s])


def test_a_swapped_well_gets_the_swap_warning_without_the_speck_advice():
    from test_s43_livedead_warnings import _swapped_three_quarters

    swap, specks = _warned(_specked(_swapped_three_quarters()))
    assert len(swap) == 1 and swap[0].endswith("pass image[[1, 0]]") and specks == []
    swap, specks = _warned(_specked(_swapped_three_quarters()[::-1].copy()))  # the right way round: its specks said
    assert swap == [] and len(specks) == 1 and "min_area=" in specks[0]


def test_a_well_file_leaves_the_speck_warning_out_beside_the_swap_too(tmp_path):
    """The file's two paths: ``predict`` of its path, and ``predict_file`` (``segment livedead``)."""
    import tifffile

    from test_s43_livedead_warnings import _swapped_three_quarters

    tifffile.imwrite(tmp_path / "w.tif", _specked(_swapped_three_quarters()))
    for call, fix in ((lambda p: p.predict(tmp_path / "w.tif", probabilities=False), "channels=[1, 0]"),
                      (lambda p: p.predict_file(tmp_path / "w.tif", tmp_path / "out"), "--channels 1,0")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(channel_predictor())
        said = [str(w.message) for w in caught]
        assert any(s.endswith(fix) for s in said) and not any("specks under" in s for s in said), said


# ----------------------------------------------------------------------------- 3. eval_zoo's size notes
def _eval_zoo():
    spec = importlib.util.spec_from_file_location("_s44_eval_zoo", ROOT / "benchmarks" / "eval_zoo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_eval_zoo_nuclei_hides_the_size_notes_only(tmp_path, monkeypatch):
    """The nuclei path on a tiny folder: the predictor's DiameterWarning is not shown (and its checks, which look at
    the filters, are skipped), another warning is; the figures are those of the results."""
    import tifffile

    from devolens.predict import notes

    ez = _eval_zoo()
    d = tmp_path / "val"
    (d / "labels").mkdir(parents=True)
    truth = np.zeros((8, 8), np.uint16)
    truth[1:4, 1:4], truth[5:7, 5:7] = 1, 2
    pd.DataFrame([{"file": f"f{i}.png", "artifact": "", "total": 2, "embryo": "e"} for i in range(2)]).to_csv(
        d / "frames.csv", index=False)
    for i in range(2):
        tifffile.imwrite(d / "labels" / f"f{i}_labels.tif", truth)
    ignored: list[bool] = []

    class Result:
        labels, count = truth, 2

    class Fake:
        auto = False

        def predict_iter(self, images):
            ignored.append(notes._ignored(DiameterWarning))
            for _ in images:
                warnings.warn("nuclei smaller than the model knows", DiameterWarning)
                warnings.warn("something else", DevolensWarning)
                yield Result()

    monkeypatch.setattr(ez, "_load", lambda *a, **k: Fake())
    monkeypatch.setattr(ez, "_framed_dirs", lambda: [])
    monkeypatch.setattr(ez, "_data_dir", lambda: tmp_path / "no_data")
    monkeypatch.setattr("devolens.io.images.read_image", lambda path: np.zeros((8, 8), np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics, md = ez.eval_nuclei(None, [d], threads=1)
        after = notes._ignored(DiameterWarning)
    kinds = [w.category for w in caught]
    assert DiameterWarning not in kinds and kinds.count(DevolensWarning) == 2
    assert ignored == [True] and not after  # (the filter ends with the loop)
    assert metrics["instance_f1_iou50_heldout_le200"]["value"] == 1.0 and "**1.000**" in md


def test_a_tab_table_of_unknown_columns_is_not_told_to_use_commas(tmp_path):
    """Tables separated by tabs are read: the refusal of unknown columns names them, as a semicolon table's does (the
    old advice, to save the table with commas, led to the same refusal)."""
    unknown = tmp_path / "u.tsv"
    unknown.write_text("alpha\tbeta\tgamma\n1\t2\t3\n")
    with pytest.raises(DevolensError) as err:
        read_table(unknown)
    assert "unrecognised columns" in str(err.value) and "found alpha,beta,gamma" in str(err.value)
    assert "not commas" not in str(err.value)


@pytest.mark.parametrize("sep,name", [("\t", "tabs"), (";", "semicolons")])
def test_a_header_separated_otherwise_than_its_rows_is_named_so(tmp_path, sep, name):
    """A tab (or semicolon) header over comma rows was refused for a column's missing values or its time points:
    the separators are the matter."""
    mixed = tmp_path / "m.csv"
    mixed.write_text(sep.join(["time", "cell", "x", "y", "z"]) + "\n1" + sep + "ABa" + sep + "1" + sep + "2" + sep
                     + "3\n2,ABp,1,2,3\n")
    for reader in (read_table, read_positions):
        with pytest.raises(DevolensError, match=f"the header is separated by {name} but line 3 by commas"):
            reader(mixed)
