"""Session 39, population over time and segment's black frames (a user walkthrough on a rendered 26-frame movie):
``--monotone`` judges a dark frame after black ones by the frames with a reading before it (a black frame's NaN or
one-cell reading kept the dark frame in the fit, dragging the curve after it down); ``--clock`` places a folder's
frames at the numbers ending their file names (a gap, t054 then t070, was fitted as evenly spaced: t081 read 55 where
the un-gapped folder read 87); ``segment`` notes the frames of no signal it wrote a count of 0 for, and lists them
in segment.json, as ``population`` does."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from _render_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.io.images import write_png
from devolens.predict.population import COLUMNS, LETTERS, PopulationPredictor
from test_s35_population import _codec_black


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


# ------------------------------------------------------------------ 1. --monotone: a dark frame after black frames
def _table(totals) -> pd.DataFrame:
    rows = [{**{k: 0.0 for k in LETTERS}, "A": float(t), "total": float(t)} for t in totals]
    return pd.DataFrame([{"frame": i, **{k: r[k] for k in COLUMNS}} for i, r in enumerate(rows)])


def _signals():
    """The curator's measures of 12 frames, 4 and 5 black and 6 dimmed to 30 % (dark): black_or_dark flags 4-6."""
    from curate_synth import inject, synth_sequence
    from devolens.curate.frames import black_or_dark, frame_signal

    frames = synth_sequence(12, seed=11)
    for i in (4, 5):
        inject(frames, "black", i)
    frames[6] = np.floor(frames[6].astype(np.float32) * 0.3).astype(np.uint8)
    signals = [frame_signal(f) for f in frames]
    assert np.flatnonzero(black_or_dark(signals)).tolist() == [4, 5, 6]
    return signals


READ = [100, 102, 104, 106, None, None, 60, 110, 112, 114, 116, 118]  # frame 6: dark, read 40 % low


@pytest.mark.parametrize("black", ["no_signal", "nan"])
def test_monotone_leaves_a_dark_frame_after_black_frames_out(black):
    """The black frames read a cell each and marked of no signal (as population's rows come), or NaN (a table from
    predict_batch): either way the dark frame after them was judged against them and stayed in the fit."""
    from devolens.cli.predict import robust_monotone

    flat = np.array([t is None for t in READ])
    totals = [(1.2 if black == "no_signal" else np.nan) if t is None else t for t in READ]
    df, (dim, odd) = robust_monotone(PopulationPredictor.smooth, _table(totals), list(range(12)), _signals(),
                                     no_signal=flat if black == "no_signal" else None)
    assert dim[6] and not odd.any()  # left out as dark: the frames before it with a reading are 100-106
    np.testing.assert_allclose(df["total"][7:], READ[7:])  # the curve after it is the readings (not dragged down)
    assert 106 <= df["total"].iloc[6] <= 110 and np.all(np.diff(df["total"].dropna()) >= 0)


def test_monotone_dark_frame_test_is_unchanged_without_black_frames():
    """No frame without a reading: the window is the 4 frames before, as it was (a dark frame reading as many cells
    as those before it stays)."""
    from devolens.cli.predict import robust_monotone

    totals = [100, 102, 104, 106, 108, 109, 108, 110, 112, 114, 116, 118]
    df, (dim, odd) = robust_monotone(PopulationPredictor.smooth, _table(totals), list(range(12)), _signals())
    assert not dim.any() and not odd.any()
    np.testing.assert_allclose(df["total"], PopulationPredictor.smooth(_table(totals))["total"])


# ------------------------------------------------------------------ 2. --clock on a folder with a gap
TAU = np.arange(0.0, 100.0)
LOG_C = np.log(2.0) * (1 + TAU / 20)  # the tiny zoo's toy clock


class _Clocked:
    """A population predictor reading its frames as ``totals[name number]`` (all in A), with the toy clock."""

    known_sizes = None
    last_estimate = None
    resize = 1.0
    card: dict = {}
    clock = (TAU, LOG_C)

    def __init__(self, totals, seen):
        self.totals, self.seen = list(totals), seen

    def predict_iter(self, images, total=None, progress=None):
        for _, t in zip(images, self.totals):
            yield {**{k: 0.0 for k in LETTERS}, "A": float(t), "total": float(t), "median_area": None}

    def clock_fit(self, df, positions, use=None):
        from devolens.predict.clock import fit_clock

        self.seen.append(list(positions))
        fit = fit_clock(positions, df["total"].to_numpy(float), *self.clock, use=use)
        out = df.copy()
        out["A"] = out["total"] = fit.totals
        return out, fit

    def size_advice(self, areas):
        return None


def _truth(t):
    """Per-frame estimates of the toy embryo at time points ``t`` (one reference time point per time point, from
    reference time 10), 5 % noise."""
    t = np.asarray(t, float)
    noise = np.exp(np.random.default_rng(0).normal(0, 0.05, 200))[(t - 45).astype(int)]
    return np.exp(np.interp(10 + (t - 45), TAU, LOG_C)) * noise


def _clock_run(monkeypatch, tmp_path, names, totals, name):
    from devolens.cli import predict as cli_predict

    folder = tmp_path / name
    folder.mkdir()
    for i, n in enumerate(names):
        write_png(blob_frame(48, n=3, radius=5, seed=i), folder / f"{n}.png")
    seen: list = []
    monkeypatch.setattr(cli_predict, "_load_predictor", lambda *a, **k: _Clocked(totals, seen))
    out = tmp_path / f"{name}.csv"
    assert main(["population", str(folder), "--clock", "--no-plot", "--out", str(out)]) == 0
    return pd.read_csv(out), json.loads(out.with_suffix(".json").read_text()), seen[0]


def test_clock_places_a_folders_frames_at_the_numbers_in_their_names(monkeypatch, tmp_path, capsys):
    every = list(range(45, 82))
    gapped = list(range(45, 55)) + list(range(70, 82))
    full, full_record, _ = _clock_run(monkeypatch, tmp_path, [f"t{t:03d}" for t in every], _truth(every), "full")
    full_err = _err(capsys)
    df, record, positions = _clock_run(monkeypatch, tmp_path, [f"t{t:03d}" for t in gapped], _truth(gapped), "gap")
    common = full.set_index("frame").loc[df["frame"], "total"].to_numpy()
    np.testing.assert_allclose(df["total"], common, rtol=0.05)  # evenly spaced, the frames after the gap read low
    truth = np.exp(np.interp(10 + (np.array(gapped) - 45.0), TAU, LOG_C))
    np.testing.assert_allclose(df["total"], truth, rtol=0.06)
    assert positions == [t - 45 for t in gapped]  # the gap kept (was 0..21)
    assert record["clock_positions"] == full_record["clock_positions"] == {"from": "file_names", "step": 1}
    assert "--clock placed the frames at the numbers in their file names" in _err(capsys)
    assert "gaps between them" not in full_err


def test_clock_keeps_frame_positions_for_names_without_numbers(monkeypatch, tmp_path, capsys):
    from devolens.predict.clock import fit_clock

    names = [f"frame_{chr(ord('a') + i)}" for i in range(12)]
    totals = _truth(range(45, 57))
    df, record, positions = _clock_run(monkeypatch, tmp_path, names, totals, "letters")
    assert positions == list(range(12)) and record["clock_positions"] == {"from": "frame_positions"}
    assert "gaps between them" not in _err(capsys)
    np.testing.assert_allclose(df["total"], np.round(fit_clock(range(12), totals, TAU, LOG_C).totals, 2))


def test_clock_positions_of_videos_and_every_nth_time_point():
    """A video's (or stack's) frames keep their positions; a folder of every 5th time point is placed as before
    (steps of its usual interval: the rate stays per frame)."""
    from devolens.cli.predict import _clock_positions

    video = SimpleNamespace(is_video=True, is_stack=False, frame_id=lambda p: p)
    assert _clock_positions(video, [0, 1, 3, 4]) == ([0.0, 1.0, 3.0, 4.0], {"from": "frame_positions"})
    folder = SimpleNamespace(is_video=False, is_stack=False, frame_id=lambda p: f"t{5 * p:03d}")
    positions, how = _clock_positions(folder, [0, 1, 2, 4, 5])
    assert positions == [0.0, 1.0, 2.0, 4.0, 5.0] and how == {"from": "file_names", "step": 5}
    falling = SimpleNamespace(is_video=False, is_stack=False, frame_id=lambda p: f"t{9 - p:03d}")
    assert _clock_positions(falling, [0, 1, 2]) == ([0.0, 1.0, 2.0], {"from": "frame_positions"})


# ------------------------------------------------------------------ 3. segment notes frames of no signal
def _found(monkeypatch, counts):
    """Make the nuclei model find ``counts[i]`` objects in the i-th frame it reads (labels empty)."""
    from devolens.predict.segment import NucleiPredictor

    def predict_iter(self, images, total=None, progress=None, workers=None):
        for img, n in zip(images, counts):
            shape = np.asarray(getattr(img, "image", img)).shape[:2]
            yield SimpleNamespace(count=n, extra={}, labels=np.zeros(shape, np.uint16),
                                  objects={"label": np.array([], int), "x": np.array([]), "y": np.array([]),
                                           "area": np.array([])})

    monkeypatch.setattr(NucleiPredictor, "predict_iter", predict_iter)


def _segment(folder, out, capsys):
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay", "--diameter", "none"]) == 0
    return _err(capsys), pd.read_csv(out / "counts.csv"), json.loads((out / "segment.json").read_text())


def test_segment_notes_and_records_frames_of_no_signal(tiny_zoo, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = [blob_frame(96, n=6, radius=8, seed=0), np.zeros((96, 96), np.uint8), _codec_black((96, 96)),
              blob_frame(96, n=6, radius=8, seed=1)]
    for i, frame in enumerate(frames):
        write_png(frame, folder / f"t{i:03d}.png")
    err, counts, record = _segment(folder, tmp_path / "seg", capsys)
    assert ("note: 2 frames (t001, t002) hold no signal (one grey level throughout, or black, nothing in them a grey "
            "level or two above the background") in err
    found = int(counts.set_index("frame").loc[["t001", "t002"], "count"].sum())
    # (the tiny random model finds a "nucleus" in a black frame; the shipped one none: counts stay as found)
    assert ("nothing to segment, their counts are 0" if not found else
            f"nothing to segment, the {found} {'nucleus' if found == 1 else 'nuclei'} found in them") in err
    assert record["no_signal"] == ["t001", "t002"] and any("hold no signal" in n for n in record["notes"])


def test_segment_says_why_a_frame_of_no_signal_counts_0(tiny_zoo, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_png(np.full((64, 64), 30, np.uint8), folder / "t000.png")
    write_png(blob_frame(64, n=4, radius=6, seed=2), folder / "t001.png")
    _found(monkeypatch, [0, 0])
    err, counts, record = _segment(folder, tmp_path / "seg", capsys)
    assert counts["count"].tolist() == [0, 0]
    assert ("note: 1 frame (t000) holds no signal (one grey level throughout): nothing to segment, its count is 0; "
            "`devolens curate frames` flags such frames and --skip-flagged leaves them out") in err
    assert "no nuclei found in any frame" in err  # (t001 holds signal: still said)
    assert record["no_signal"] == ["t000"]
    (folder / "t001.png").unlink()  # a blank image alone: the note says it all
    err, _, record = _segment(folder, tmp_path / "seg", capsys)
    assert "holds no signal" in err and "no nuclei found in any frame" not in err and record["no_signal"] == ["t000"]
    write_png(blob_frame(64, n=4, radius=6, seed=2), folder / "t000.png")  # found nothing in a frame of signal
    err, _, record = _segment(folder, tmp_path / "seg", capsys)
    assert "no signal" not in err and record["no_signal"] == []
