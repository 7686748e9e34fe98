"""identify's inputs (session 40): a z plane spacing far from the one the nucleus cloud's shape suggests and a size
column in another unit are noted (they changed the names silently; a wrong --zscale was blamed on sparse time
sampling); --zscale nan and inf say one message; a table's bad values are counted, not only the first named; the
help says that time holds whole time points."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.tables import read_positions, read_table
from devolens.predict.identity import (
    SIZE_SPACING_RANGE,
    ZSCALE_RANGE,
    input_notes,
    input_scales,
    prepare_clouds,
)

from _identity_helpers import needs_zoo
from test_s32_identity import moving_cells


def _notes(table: pd.DataFrame, zscale=None, **attrs) -> list[str]:
    """The notes input_notes makes of ``table``'s :func:`input_scales` (as ``devolens identify`` adds them)."""
    scales = input_scales(table, zscale)
    return input_notes({"input_scales": scales, "largest_clouds": {k: v["largest"] for k, v in scales.items()},
                        **attrs}, command=True)


def _flat_words(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------------- the z scale against the cloud's shape
def test_a_zscale_far_from_the_clouds_estimate_is_noted_and_a_close_one_is_not():
    df = moving_cells()  # planes of 5 pixels (attrs), the cloud 250 x 150 x 100 pixels
    scales = input_scales(df)["toy"]
    assert scales["by"] == "table" and scales["zscale"] == 5.0
    assert ZSCALE_RANGE[0] <= 5.0 / scales["estimate"] <= ZSCALE_RANGE[1]
    assert not [n for n in _notes(df) if "z plane spacing" in n]
    for given, words in ((1.0, "a flattened embryo"), (1e9, "its two minor axes swap"), (10.0, "minor axes swap")):
        notes = [n for n in _notes(df, given) if "z plane spacing" in n]
        assert len(notes) == 1, given
        assert f"z plane spacing {given:g} (--zscale)" in notes[0] and words in notes[0]
        assert "leave --zscale out to use the estimate" in notes[0]
    # the table's own z scale (a file's metadata) is checked too, and the note says where it came from
    df.attrs["zscale"] = 1.0
    (note,) = [n for n in _notes(df) if "z plane spacing" in n]
    assert "(the table's metadata)" in note and f"give --zscale {scales['estimate']:.2f} to use it" in note


def test_no_zscale_note_when_estimated_flat_or_too_few_nuclei():
    df = moving_cells()
    df.attrs.pop("zscale")
    assert "zscale" not in input_scales(df)["toy"]  # estimated: nothing to compare
    assert not [n for n in _notes(df) if "z plane spacing" in n]
    flat = moving_cells().assign(z=3.0)  # a 2-D projection: its own note says so
    assert not [n for n in _notes(flat, 1.0) if "z plane spacing" in n]
    few = moving_cells(n=12)  # a table of 12 cells: its depth says little
    assert not [n for n in _notes(few, 1.0) if "z plane spacing" in n]


def test_sparse_sampling_note_names_the_zscale_when_it_is_the_suspect():
    """--zscale 1 on a real embryo (5.75) flattened it, its nuclei came closer than they move between time points,
    and the only note blamed sparse time sampling."""
    df = moving_cells()
    tracking = {"toy": {"sparse": True, "motion": 0.30}}
    notes = _flat_words(" | ".join(_notes(df, 1.0, tracking=tracking)))
    assert "most likely because of the z plane spacing noted above" in notes
    assert "sparse time sampling?" not in notes
    plain = _flat_words(" | ".join(_notes(df, 5.0, tracking=tracking)))  # the z scale fits: sparse sampling it is
    assert "sparse time sampling?" in plain and "z plane spacing" not in plain


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-2"])
def test_cli_zscale_nan_and_inf_say_one_message(tmp_path, capsys, value):
    src = tmp_path / "t.csv"
    moving_cells(times=2).to_csv(src, index=False)
    assert main(["identify", str(src), "--out", str(tmp_path / "o.csv"), f"--zscale={value}"]) != 0
    err = _flat_words(capsys.readouterr().err)
    assert "--zscale must be a finite number > 0 (the z plane spacing in xy pixels" in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0])
def test_library_zscale_nan_and_inf_say_the_same_message(value):
    with pytest.raises(DevolensError, match=r"zscale must be a finite number > 0 \(the z plane spacing in xy pixels"):
        prepare_clouds(moving_cells(times=2), zscale=value)


@needs_zoo
def test_cli_notes_a_wrong_zscale_and_records_it(tmp_path, capsys):
    src = tmp_path / "t.csv"
    moving_cells().to_csv(src, index=False)
    out = tmp_path / "o.csv"
    assert main(["identify", str(src), "--out", str(out), "--zscale", "1"]) == 0
    captured = capsys.readouterr()
    assert "z plane spacing 1 (--zscale) is" in _flat_words(captured.out + captured.err)
    record = json.loads(out.with_suffix(".json").read_text())
    assert any("z plane spacing 1 (--zscale)" in n for n in record["notes"])
    assert main(["identify", str(src), "--out", str(out), "--zscale", "5"]) == 0
    captured = capsys.readouterr()
    assert "z plane spacing" not in captured.out + captured.err


@needs_zoo
def test_library_predict_warns_of_a_wrong_zscale():
    """`IdentityPredictor.predict` (the Python API) gives the same note as a warning, and keeps the scales in attrs."""
    from devolens.errors import IdentityWarning
    from devolens.models import load

    pred = load("identity")
    with pytest.warns(IdentityWarning, match="z plane spacing 1 "):
        out = pred.predict(moving_cells(), zscale=1.0)
    assert out.attrs["input_scales"]["toy"]["by"] == "given"


# ----------------------------------------------------------------------------- sizes against the nuclei's spacing
def test_sizes_in_another_unit_are_noted():
    df = moving_cells()
    ratio = input_scales(df)["toy"]["size_spacing"]
    assert SIZE_SPACING_RANGE[0] <= ratio <= SIZE_SPACING_RANGE[1]
    assert not [n for n in _notes(df) if "nucleus sizes" in n]
    for factor, words in ((4.0, "an area, not a diameter?"), (0.05, "sizes in µm beside positions in pixels?")):
        scaled = df.assign(size=df["size"] * factor)
        (note,) = [n for n in _notes(scaled) if "nucleus sizes" in n]
        assert words in note and f"{ratio * factor:.2g} x the distance between neighbouring nuclei" in note
    assert input_scales(df.drop(columns="size"))["toy"]["size_spacing"] is None  # no sizes: nothing to check
    assert input_scales(df.assign(size=np.nan))["toy"]["size_spacing"] is None


# ----------------------------------------------------------------------------- real tables
def test_the_shared_embryos_get_no_scale_note_and_a_wrong_one_does(shared_data, epic_tables):
    """The 7 shared embryos with their own z scales (the AuxInfo's, else estimated) and sizes: no note; --zscale 1
    and sizes 3 x on one of them: noted. (The shared data where conftest.py finds it: not /work's only.)"""
    paths = list(epic_tables) + sorted((shared_data / "acetree").glob("*.zip"))
    assert len(paths) == 7
    for path in paths:
        df = read_table(path)
        assert not [n for n in _notes(df) if "z plane spacing" in n or "nucleus sizes" in n], path.name
    l2 = read_table(shared_data / "epic" / "CD20241010_JIM767_25_L2.csv")
    assert l2.attrs["zscale"] == pytest.approx(5.7471, rel=1e-3)
    assert [n for n in _notes(l2, 1.0) if "z plane spacing 1 (--zscale)" in n]
    assert [n for n in _notes(l2.assign(size=l2["size"] * 3)) if "nucleus sizes" in n]


# ----------------------------------------------------------------------------- bad values counted
def _tidy_csv(path: Path, n: int = 12) -> pd.DataFrame:
    df = pd.DataFrame({"embryo": "e", "time": np.repeat([1, 2, 3], n // 3), "cell": [f"c{i}" for i in range(n)],
                       "x": np.arange(n, dtype=float), "y": 1.0, "z": 2.0, "size": 5.0})
    return df


def test_several_missing_coordinates_are_counted_with_their_lines(tmp_path):
    df = _tidy_csv(tmp_path)
    df.loc[[3, 4, 6, 7, 8, 10], "x"] = np.nan
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DevolensError, match=r"column 'x' has 6 missing values \(lines 5, 6, 8, 9, 10, \.\.\.\)$"):
        read_positions(tmp_path / "t.csv")
    df = _tidy_csv(tmp_path)
    df.loc[[3, 4], "y"] = np.nan
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DevolensError, match=r"column 'y' has 2 missing values \(lines 5, 6\)$"):
        read_positions(tmp_path / "t.csv")
    df.loc[[4], "y"] = 1.0  # one: said as before
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DevolensError, match=r"column 'y' has a missing value \(line 5\)$"):
        read_positions(tmp_path / "t.csv")


def test_several_bad_values_of_other_kinds_are_counted(tmp_path):
    df = _tidy_csv(tmp_path).astype({"x": object, "time": object})
    df.loc[[2, 5], "x"] = "abc"
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DevolensError, match=r"column 'x' is not numeric \(line 4: 'abc'\); 2 such values, on lines "
                                            r"4, 7$"):
        read_positions(tmp_path / "t.csv")
    df = _tidy_csv(tmp_path).astype({"time": float})
    df.loc[[1, 2, 9], "time"] = 2.5
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DevolensError, match=r"column 'time' must hold whole time points \(line 3: 2\.5; 3 such values, "
                                            r"on lines 3, 4, 11\)$"):
        read_positions(tmp_path / "t.csv")
    df = _tidy_csv(tmp_path)
    df.loc[[0, 11], "z"] = np.inf
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DevolensError, match=r"column 'z' is not a finite number \(line 2: inf; 2 such values, on lines "
                                            r"2, 13\)"):
        read_positions(tmp_path / "t.csv")


def test_acetree_bad_values_name_each_nuclei_file_and_line(tmp_path):
    def line(i, x, name):
        return f"{i}, 1, -1, -1, -1, {x}, 100, 10.0, 20, {name}, 0, 0, 0, 0, , 0, 0, 0, 0, 0, 0"

    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("nuclei/t001-nuclei", "\n".join([line(1, 100, "ABa"), line(2, "", "ABp")]) + "\n")
        zf.writestr("nuclei/t002-nuclei", "\n".join([line(1, 100, "ABa"), line(2, 110, "ABp"),
                                                     line(3, "", "EMS")]) + "\n")
    with pytest.raises(DevolensError, match=r"column 'x' has 2 missing values \(nuclei file t001, line 2; nuclei file "
                                            r"t002, line 3\)$"):
        read_table(path)


def test_prepare_clouds_counts_the_rows_without_a_position():
    df = moving_cells(times=2)
    df.loc[[3, 9, 10], "y"] = np.nan
    with pytest.raises(DevolensError, match=r"^column 'y' must hold finite numbers; 3 rows do not \(rows 3, 9, 10: "
                                            r"nan, nan, nan\)$"):
        prepare_clouds(df)
    df.loc[[9, 10], "y"] = 1.0
    with pytest.raises(DevolensError, match=r"^column 'y' must hold finite numbers; row 3 holds nan$"):
        prepare_clouds(df)
    df.loc[3, "y"] = 1.0
    df.loc[[1, 2], "x"] = 1e300
    with pytest.raises(DevolensError, match=r"^column 'x' holds 2 values too large \(rows 1, 2: 1e\+300, 1e\+300\): "
                                            r"positions and sizes beyond 1e\+09"):
        prepare_clouds(df)


def test_identify_help_says_time_holds_whole_time_points(capsys):
    assert main(["identify", "--help"]) == 0
    text = _flat_words(capsys.readouterr().out)
    assert "time must hold whole time points" in text and "time must be a number" not in text
