"""End to end: the curator against the artifacts the renderer records in frames.csv."""

from __future__ import annotations

import pandas as pd
import pytest

from devolens.curate.frames import curate_path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from devolens.render.dataset import render_dataset, simulate_tables

    out = tmp_path_factory.mktemp("render")
    tables = simulate_tables(1, seed=3, n_cells=120)
    truth = render_dataset(tables, out, size=(160, 240), times=list(range(1, 91)), artifacts=0.25,
                           video=True, seed=3, prefix=True)
    assert (truth["artifact"] != "").sum() >= 10
    return out, truth


def _agree(truth: pd.Series, flag: pd.Series) -> pd.Series:
    # a duplicate of a black frame is itself black: either name is right
    return (truth == flag) | ((truth == "duplicate") & (flag == "black"))


@pytest.mark.slow
def test_png_folder_matches_frames_csv(rendered):
    out, truth = rendered
    report = curate_path(out)  # a render folder: frames/ is found
    got = report.set_index("time")["flag"]
    want = truth.set_index("time")["artifact"]
    agree = _agree(want, got.reindex(want.index).fillna(""))
    assert agree.all(), pd.DataFrame({"truth": want, "flag": got})[~agree]


@pytest.mark.slow
def test_video_matches_frames_csv(rendered):
    out, truth = rendered
    report = curate_path(out / "video.mp4")
    want = truth.loc[truth["artifact"] != "dropped", "artifact"].reset_index(drop=True)
    assert len(report) == len(want)
    agree = _agree(want, report["flag"])
    assert agree.all(), pd.DataFrame({"truth": want, "flag": report["flag"]})[~agree]
