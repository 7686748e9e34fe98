"""`devolens render` after a user's walkthrough (forty-first session): polar bodies are drawn nowhere, as frames.csv
counts none (no label, no objects.csv row, no membrane cell); a time point below 0 is refused in one line (a frame
name cannot say it); rendering past a table's annotation cliff gets a note naming it and `lineage clean`."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import tifffile

from _lineage_builders import run_cli as run
from devolens.errors import DevolensError
from devolens.render.dataset import render_dataset
from devolens.render.nuclei import render_nuclei_frame


def flat(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------------- 1. polar bodies
def polar_table() -> pd.DataFrame:
    """Four cells and the two polar bodies at time 1 (the walkthrough's table)."""
    return pd.DataFrame({
        "time": [1] * 6, "cell": ["ABa", "ABp", "EMS", "P2", "polar1", "polar2"],
        "x": [100.0, 300, 100, 300, 200, 200], "y": [100.0, 100, 200, 200, 150, 60],
        "z": [10.0] * 6, "size": [40.0, 40, 40, 40, 20, 20],
    })


@pytest.mark.parametrize("kind", ["nuclei", "membrane"])
def test_polar_bodies_get_no_label_no_object_and_no_cell(tmp_path, kind):
    out = tmp_path / kind
    df = render_dataset(polar_table(), out, kind=kind, size=(96, 144), seed=3)
    assert df["total"].tolist() == [4]  # the counts leave the polar bodies out...
    labels = tifffile.imread(out / "labels" / "t001_labels.tif")
    assert 0 < labels.max() <= 4  # ...and so do the labels (1..6 before: a nucleus or a cell per polar body)
    if kind == "nuclei":
        objects = pd.read_csv(out / "objects.csv")
        assert sorted(objects["cell"]) == ["ABa", "ABp", "EMS", "P2"]
        assert labels.max() == 4


def test_polar_bodies_not_drawn_in_a_frame_and_need_no_position():
    table = polar_table()
    frame = render_nuclei_frame(table, 1, size=(96, 144), seed=3)
    assert frame.labels.max() <= frame.counts["total"] == 4
    assert not any(c.startswith("polar") for c in frame.centroids["cell"])
    # a polar body's row without a position is neither counted nor drawn: no reason to refuse the time point
    table.loc[table["cell"] == "polar2", ["x", "y"]] = np.nan
    again = render_nuclei_frame(table, 1, size=(96, 144), seed=3)
    assert again.labels.max() == frame.labels.max()


# ----------------------------------------------------------------------------- 2. time points below 0
def negative_table(tmp_path):
    src = tmp_path / "neg.csv"
    pd.DataFrame({"time": [-1, -1, 0, 0], "cell": ["ABa", "P1"] * 2, "x": [100.0, 200] * 2, "y": [100.0] * 4,
                  "z": [10.0] * 4, "size": [40.0] * 4}).to_csv(src, index=False)
    return src


@pytest.mark.parametrize("times", [[], ["--times", "-1"]])
def test_a_time_point_below_0_is_refused_in_one_line(tmp_path, capsys, times):
    src = negative_table(tmp_path)
    out = tmp_path / "ng"
    code, _, err = run(["render", str(src), "--out", str(out), "--size", "32", "48", *times], capsys)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "cannot render time point -1, below 0" in flat(err) and "--times" in err
    assert not out.exists()  # refused before anything was written


def test_the_time_points_from_0_render_and_the_library_refuses_below_0(tmp_path, capsys):
    src = negative_table(tmp_path)
    out = tmp_path / "ok"
    code, _, err = run(["render", str(src), "--out", str(out), "--size", "32", "48", "--times", "0"], capsys)
    assert code == 0, err
    assert pd.read_csv(out / "frames.csv")["file"].tolist() == ["frames/t000.png"]
    with pytest.raises(DevolensError, match="below 0"):
        render_dataset(pd.read_csv(src), tmp_path / "lib", size=(32, 48))
    assert not (tmp_path / "lib").exists()


# ----------------------------------------------------------------------------- 3. past an annotation cliff
AB = ["AB" + "".join(p) for p in itertools.product("ap", repeat=5)]  # 32 AB cells
MS = ["MS" + "".join(p) for p in itertools.product("ap", repeat=3)]  # 8 MS cells


def cliff_table(tmp_path, unnamed: bool = False):
    """Times 1..30: 32 AB and 8 MS cells to time 20; after it the AB cells are gone (a cliff of the total and of the
    AB lineage), or, with ``unnamed``, left unnamed (``Nuc1``...: a lineage cliff only, the total goes on)."""
    rng = np.random.default_rng(0)
    pos = rng.uniform([200, 250, 20], [600, 450, 50], (40, 3))
    rows = []
    for t in range(1, 31):
        names = (AB if t <= 20 else ([f"Nuc{i}" for i in range(32)] if unnamed else [])) + MS
        for k, name in enumerate(names):
            i = k if unnamed or t <= 20 else 32 + k  # each cell keeps its place
            rows.append((t, name, *pos[i], 30.0))
    src = tmp_path / ("unnamed.csv" if unnamed else "cliff.csv")
    pd.DataFrame(rows, columns=["time", "cell", "x", "y", "z", "size"]).to_csv(src, index=False)
    return src


def test_rendering_past_an_annotation_cliff_is_noted(tmp_path, capsys):
    src = cliff_table(tmp_path)
    code, _, err = run(["render", str(src), "--out", str(tmp_path / "r"), "--size", "32", "48",
                        "--times", "15-25", "--every", "5"], capsys)
    assert code == 0, err
    text = flat(err)
    assert "rendering past the annotation cliff after time 20 (40 -> 8 cells at time 21" in text
    assert "the AB lineage (A) 32 -> 0 cells at time 21" in text
    assert "(1 of the 3: time point 25)" in text
    assert f"devolens lineage clean {src} --out CLEAN.csv` cuts the table after time 20" in text
    # the frames stay as they are
    assert pd.read_csv(tmp_path / "r" / "frames.csv")["total"].tolist() == [40, 40, 8]
    # frames up to the cliff: no note
    code, _, err = run(["render", str(src), "--out", str(tmp_path / "s"), "--size", "32", "48",
                        "--times", "15-20"], capsys)
    assert code == 0 and "cliff" not in err


def test_rendering_past_a_lineage_cliff_is_noted(tmp_path, capsys):
    src = cliff_table(tmp_path, unnamed=True)
    code, _, err = run(["render", str(src), "--out", str(tmp_path / "r"), "--size", "32", "48",
                        "--times", "20-22"], capsys)
    assert code == 0, err
    text = flat(err)
    assert "rendering past the lineage cliff after time 20 (the AB lineage (A) 32 -> 0 cells at time 21)" in text
    assert "(2 of the 3: time points 21-22)" in text and "annotation cliff" not in text
