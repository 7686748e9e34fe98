"""Rows at the top of a positions CSV: TrackMate's description rows are skipped for what they are (labels and units
in x, y and z, no number), while rows of numbers whose time is a frame name (``t030``) are data and get the error
the TABLE help promises; and a DataFrame handed to the identity predictor needs no ``embryo``, as a file does not."""

from __future__ import annotations

import pandas as pd
import pytest

from devolens.errors import DevolensError
from devolens.io.tables import read_positions
from devolens.predict.identity import check_columns, tidy_positions

FRAME_NAME = r"t030 -> 30"


def test_leading_frame_names_as_time_are_refused_not_dropped(tmp_path):
    """5 rows of t030-like times then numbers: before, the 5 were dropped silently (3 of 8 nuclei read)."""
    path = tmp_path / "f.csv"
    path.write_text("frame,x,y,z\nt030,0,0,0\nt030,1,2,1\nt031,2,4,2\nt031,3,6,0\nt032,4,8,1\n"
                    "32,5,10,2\n33,6,12,0\n33,7,14,1\n")
    with pytest.raises(DevolensError, match=rf"line 2: 't030'.*{FRAME_NAME}.*5 such values"):
        read_positions(path)


def test_a_table_of_frame_names_only_is_not_called_header_only(tmp_path):
    """Every time a frame name: before, all rows were taken for description rows ("no data rows (header only)")."""
    path = tmp_path / "f3.csv"
    path.write_text("frame,x,y,z\nt030,1,2,3\nt030,5,6,7\nt031,1,2,3\n")
    with pytest.raises(DevolensError, match=rf"{FRAME_NAME}.*3 such values, on lines 2, 3, 4"):
        read_positions(path)


def test_trackmate_description_rows_are_skipped_and_said_when_alone(tmp_path):
    """TrackMate's three rows (labels in words, short names, units; FRAME empty in the units row) are skipped, the
    units read; a file of the header and such rows only says so."""
    rows = ["LABEL,ID,TRACK_ID,QUALITY,POSITION_X,POSITION_Y,POSITION_Z,POSITION_T,FRAME,RADIUS",
            "Label,Spot ID,Track ID,Quality,X,Y,Z,T,Frame,Radius",
            "Label,Spot ID,Track ID,Quality,X,Y,Z,T,Frame,R",
            ",,,(quality),(micron),(micron),(micron),(sec),,(micron)"]
    path = tmp_path / "spots.csv"
    path.write_text("\n".join(rows + ["ID0,0,0,1,10,20,5,0,0,1.5", "ID1,1,0,1,11,21,6,90,1,1.5"]) + "\n")
    df = read_positions(path)
    assert df["time"].tolist() == [0, 1] and df["x"].tolist() == [10.0, 11.0] and df.attrs["zscale"] == 1.0
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DevolensError, match=r"no data rows \(the header and 3 description rows only\)"):
        read_positions(path)


def test_a_row_of_text_in_x_y_z_with_a_number_for_time_is_data(tmp_path):
    """A description row holds no number: a time point with words for x, y, z is a bad row, named by its line."""
    path = tmp_path / "bad.csv"
    path.write_text("frame,x,y,z\n0,a,b,c\n1,1,2,3\n")
    with pytest.raises(DevolensError, match="line 2"):
        read_positions(path)


def test_a_dataframe_without_embryo_needs_only_its_coordinates():
    """No embryo is one embryo, as in a file: a table lacking z is told it lacks z alone (before: "embryo, z")."""
    with pytest.raises(DevolensError, match=r"table lacks column\(s\) z \("):
        check_columns(tidy_positions(pd.DataFrame({"time": [1], "x": [1.0], "y": [1.0]})))
    with pytest.raises(DevolensError, match=r"table lacks column\(s\) z \("):  # TrackMate's names count as theirs
        check_columns(tidy_positions(pd.DataFrame({"FRAME": [1], "POSITION_X": [1.0], "POSITION_Y": [1.0]})))
    check_columns(tidy_positions(pd.DataFrame({"time": [1], "x": [1.0], "y": [1.0], "z": [1.0]})))


def _weights() -> bool:
    try:
        from devolens.models.zoo import ZOO_DIR

        return (ZOO_DIR / "identity" / "weights.safetensors").is_file()
    except Exception:  # pragma: no cover
        return False


@pytest.mark.skipif(not _weights(), reason="identity weights not shipped")
def test_predict_names_only_the_missing_coordinate():
    """The user's call from the walkthrough: the predictor names z, not the optional embryo."""
    from devolens.models import load

    identity = load("identity", tta=1)
    for call in (identity.predict, identity.predict_proba):
        with pytest.raises(DevolensError, match=r"table lacks column\(s\) z \(") as info:
            call(pd.DataFrame({"time": [1], "x": [1.0], "y": [1.0]}))
        assert "embryo," not in str(info.value)
