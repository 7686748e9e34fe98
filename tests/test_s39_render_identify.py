"""Render videos and identify inputs (session 39): frames.csv's video_frame joins a row to its frame in video.mp4
past a dropped frame; identify notes a flat cloud (z the same for every nucleus: a 2-D projection) and says how
to write a time given as a frame's file name (t030)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.errors import DevolensError, IdentityWarning
from devolens.io.tables import read_positions
from devolens.predict.identity import input_notes

from _identity_helpers import needs_zoo, random_predictor
from _render_helpers import make_table
from test_s32_identity import moving_cells


# ----------------------------------------------------------------------------- render --video: video_frame
def test_video_frame_column_skips_a_dropped_frame_and_matches_the_video(tmp_path):
    from devolens.io.video import iter_video_frames
    from devolens.render.dataset import render_dataset

    out = tmp_path / "r"
    df = render_dataset(make_table(n_times=6, n_cells=8), out, size=(32, 48), seed=2, artifacts=0.4,
                        artifact_kinds=["dropped"], video=True, fps=4)  # (seed 2: t002 dropped, the rest written)
    csv = pd.read_csv(out / "frames.csv", keep_default_na=False)
    dropped = csv["artifact"] == "dropped"
    assert dropped.any() and not dropped.all()  # a dropped frame among written ones
    assert list(csv.columns)[-1] == "video_frame"
    assert (csv.loc[dropped, "video_frame"] == "").all() and (csv.loc[dropped, "file"] == "").all()
    frames = csv.loc[~dropped, "video_frame"].astype(int).tolist()
    n_video = sum(1 for _ in iter_video_frames(out / "video.mp4"))
    assert frames == list(range(n_video)) == list(range(int((~dropped).sum())))
    # after the first drop, row N is the video's frame N - 1: the column says so
    first = int(np.flatnonzero(dropped.to_numpy())[0])
    after = [i for i in range(first + 1, len(csv)) if not dropped.iloc[i]]
    assert after and all(int(csv["video_frame"].iloc[i]) < i for i in after)
    # what render_dataset returns is what frames.csv holds (whole numbers, NA for the dropped rows)
    assert df["video_frame"].isna().tolist() == dropped.tolist()
    assert df["video_frame"].dropna().astype(int).tolist() == frames


def test_no_video_frame_column_without_video(tmp_path):
    from devolens.render.dataset import FRAMES_COLUMNS, render_dataset

    render_dataset(make_table(n_times=2, n_cells=5), tmp_path, size=(32, 48), seed=1)
    assert tuple(pd.read_csv(tmp_path / "frames.csv").columns) == FRAMES_COLUMNS


def test_render_help_says_video_frame(capsys):
    assert main(["render", "--help"]) == 0
    assert "video_frame" in " ".join(capsys.readouterr().out.split())


# ----------------------------------------------------------------------------- identify: a flat cloud
def _flat(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(z=0.0)


def test_predict_notes_a_flat_cloud_and_records_it():
    df = _flat(moving_cells(times=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = random_predictor().predict(df)
    assert out.attrs["flat_z"] == {"toy": {"z": 0.0, "time_points": 4}}
    texts = [str(w.message) for w in caught if issubclass(w.category, IdentityWarning)]
    flat = [t for t in texts if t.startswith("z is the same (0) for every nucleus of the table at 4 time point(s)")]
    assert len(flat) == 1 and "2-D projection" in flat[0] and "unreliable" in flat[0]
    assert not any("nearly symmetric" in t for t in texts)  # the flat note says why its third axis has no skew
    assert out["pred_founder"].notna().all()  # a note, not a refusal


def test_a_3d_cloud_and_a_tiny_flat_table_get_no_flat_note():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentityWarning)  # (the short table's note)
        out = random_predictor().predict(moving_cells(times=3))
    assert out.attrs["flat_z"] == {}
    assert not any(n.startswith("z is the same") for n in input_notes(out.attrs))
    from devolens.predict.identity import flat_embryos

    # two nuclei in one plane: a real 2-cell table may be so
    assert flat_embryos(np.array(["e"] * 4), np.array([1, 1, 2, 2]), np.zeros(4), {"e": 2}) == {}
    assert flat_embryos(np.array(["e"] * 8), np.repeat([1, 2], 4), np.full(8, 3.0), {"e": 4}) == {
        "e": {"z": 3.0, "time_points": 2}}


def test_input_notes_name_the_flat_embryo_among_several():
    attrs = {"largest_clouds": {"a": 380, "b": 380}, "flat_z": {"b": {"z": 5.0, "time_points": 12}}}
    notes = input_notes(attrs)
    assert notes[0].startswith("z is the same (5) for every nucleus of embryo b at 12 time point(s)")


@needs_zoo
def test_cli_identify_notes_a_flat_table_and_records_the_note(tmp_path, capsys):
    src = tmp_path / "pos.csv"
    _flat(moving_cells(times=3)).drop(columns="embryo").to_csv(src, index=False)
    out = tmp_path / "cells.csv"
    assert main(["identify", str(src), "--out", str(out), "--zscale", "5"]) == 0
    captured = capsys.readouterr()
    printed = " ".join((captured.out + captured.err).split())
    assert "z is the same (0) for every nucleus" in printed
    record = json.loads(out.with_suffix(".json").read_text())
    assert any(n.startswith("z is the same (0)") for n in record["notes"])


# ----------------------------------------------------------------------------- identify: time as frame names
def _objects_csv(path, frames):
    """segment's objects.csv of a folder (frame: the file stem) with a z column added."""
    rows = [{"frame": f, "label": k + 1, "x": 10.0 * k + i, "y": 20.0 + k, "area": 30, "z": 0}
            for i, f in enumerate(frames) for k in range(3)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_time_as_frame_names_is_refused_with_how_to_write_it(tmp_path):
    src = _objects_csv(tmp_path / "objects.csv", ["t028", "t029", "t030"])
    with pytest.raises(DevolensError) as exc:
        read_positions(src)
    text = str(exc.value)
    assert "column 'time' is not numeric (line 2: 't028')" in text
    assert "time must be a number" in text and "looks like a frame's file name" in text and "t028 -> 28" in text


def test_time_that_is_no_frame_name_says_it_must_be_a_number(tmp_path):
    src = _objects_csv(tmp_path / "objects.csv", ["early", "mid", "late"])
    with pytest.raises(DevolensError, match=r"is not numeric \(line 2: 'early'\): time must be a number") as exc:
        read_positions(src)
    assert "file name" not in str(exc.value)


def test_cli_identify_refuses_frame_names_in_one_line(tmp_path, capsys):
    src = _objects_csv(tmp_path / "objects.csv", ["t000", "t001", "t002"])
    assert main(["identify", str(src), "--out", str(tmp_path / "cells.csv")]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "t000 -> 0" in err and "Traceback" not in err
    assert not (tmp_path / "cells.csv").exists()
