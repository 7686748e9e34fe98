"""Session 48: `devolens population` on timelapses (a walkthrough's findings).

1. A two-colour movie (histone-mCherry nuclei, membrane-GFP) was read by the auto colour rule frame by frame, without a
   word: 8 of 17 frames from the membranes' green, 66 cells for 23. A movie is now read through one channel, chosen on
   its first frames, and the colour line says which (population, `segment nuclei` of a video, the library's stream).
2. `--skip-flagged auto` overwrote `curate frames`' report at NAME.curation.csv and left its record beside it.
3. `--clock` read a 1-cell frame at the curve's first value, 2.83 cells, without a note.
4. `--monotone` on one image was accepted; a one-point series drew no total in the plot.
5. `--plot-format` with `--no-plot` did nothing silently.
6. `--monotone`'s notes on black frames came twice, and called the first frames' value the curve between frames.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.cli import predict as cli_predict

from _zoo_helpers import shipped

needs_population = pytest.mark.skipif(not shipped("population") or not shipped("nuclei"),
                                      reason="needs the shipped population and nuclei models")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _said(capsys) -> str:
    """What the command printed (its console: stdout or stderr, as the test's capture gives it)."""
    out, err = capsys.readouterr()
    return _flat(out + " " + err)


@pytest.fixture(scope="module")
def movies(tmp_path_factory) -> Path:
    """A simulated embryo rendered as grey nuclei (``r3/frames``) and as membranes (``rm/frames``), 17 frames, and
    the two-colour movie made of them (``two/``: red = the nuclei x 0.7, green = the membranes)."""
    import imageio.v3 as iio

    root = tmp_path_factory.mktemp("s48pop")
    sim = root / "sim3.csv"
    assert main(["simulate", "embryo", "--seed", "3", "--out", str(sim)]) == 0
    common = ["--every", "10", "--size", "256", "376", "--seed", "5"]
    assert main(["render", str(sim), "--out", str(root / "r3"), *common, "--grey"]) == 0
    assert main(["render", str(sim), "--out", str(root / "rm"), "--kind", "membrane", *common]) == 0
    (root / "two").mkdir()
    nuclei = sorted((root / "r3" / "frames").glob("*.png"))
    membranes = sorted((root / "rm" / "frames").glob("*.png"))
    for i, (n, m) in enumerate(zip(nuclei, membranes)):
        a, b = iio.imread(n).astype(float), iio.imread(m).astype(float)
        a = a[..., 0] if a.ndim == 3 else a
        b = b.max(axis=-1) if b.ndim == 3 else b
        rgb = np.zeros(a.shape + (3,), np.uint8)
        rgb[..., 0] = np.clip(a * 0.7, 0, 255)
        rgb[..., 1] = b
        iio.imwrite(root / "two" / f"t{i:03d}.png", rgb)
    return root


# ---------------------------------------------------------------------------- 1. one channel for a movie

def test_the_stream_channel_is_the_one_most_first_frames_read():
    from devolens.predict.population import stream_channel

    rng = np.random.default_rng(0)

    def frame(bright: int) -> np.ndarray:
        rgb = rng.integers(0, 10, (96, 96, 3)).astype(np.uint8)
        for y, x in rng.integers(10, 86, (12, 2)):
            rgb[y - 4:y + 4, x - 4:x + 4, bright] = 200
        return rgb

    assert stream_channel([frame(0), frame(1), frame(0)]) == "red"
    assert stream_channel([frame(2), frame(1)]) == "blue"  # a tie: the first frame's
    grey = np.repeat(rng.integers(0, 255, (32, 32, 1)).astype(np.uint8), 3, axis=2)
    assert stream_channel([grey, np.zeros((32, 32), np.uint8)]) is None  # nothing to choose


@needs_population
def test_population_reads_a_two_colour_movie_through_one_channel(movies, tmp_path, capsys):
    out = tmp_path / "pops.csv"
    assert main(["population", str(movies / "two"), "--out", str(out), "--no-plot"]) == 0
    said = _said(capsys)
    assert "colour input: the red channel was read in every frame" in said and "--color green|blue|mean" in said
    assert "looks like membranes" not in said  # (the frames judged in the channel read)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["color_read"] == "red" and "color_read_frames" not in record
    assert "colour input: the red channel" in " ".join(record["notes"])
    totals = pd.read_csv(out)["total"].to_numpy()
    truth = pd.read_csv(movies / "r3" / "frames.csv")["total"].to_numpy()
    assert abs(totals[5] - truth[5]) < 0.4 * truth[5]  # (read frame by frame: 66 for 23, the membranes' green)


@needs_population
def test_the_library_stream_reads_one_channel_and_names_it(movies):
    import imageio.v3 as iio

    from devolens.models import load

    frames = [iio.imread(p) for p in sorted((movies / "two").glob("*.png"))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = list(load("population").predict_iter(frames))
    assert {row["channel"] for row in rows} == {"red"}
    assert not [w for w in caught if "membranes" in str(w.message)]  # (its frames judged in the channel read)
    assert [row["channel"] for row in load("population").predict_iter([frames[0][..., 0]])] == [None]


@needs_population
def test_the_stream_sizes_its_nuclei_in_the_channel_it_reads(movies):
    """diameter='auto' estimates the magnification in the channel the stream reads (a two-colour movie's red nuclei),
    not in the one the nuclei model's own rule picks frame by frame (the green membranes: too few bright regions to
    judge, the frames then used as they are): the estimate of the colour movie is that of its red channel given."""
    import imageio.v3 as iio

    from devolens.models import load

    frames = [iio.imread(p) for p in sorted((movies / "two").glob("*.png"))]
    auto = load("population", diameter="auto")
    rows = list(auto.predict_iter(frames))
    red = load("population", diameter="auto", channel="red")
    list(red.predict_iter(frames))
    assert auto.last_estimate is not None and red.last_estimate is not None
    assert auto.last_estimate.diameter == red.last_estimate.diameter
    assert {row["channel"] for row in rows} == {"red"}


@needs_population
def test_segment_nuclei_reads_a_video_through_one_channel(movies, tmp_path, capsys):
    import subprocess

    import imageio_ffmpeg

    video = tmp_path / "two.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-framerate", "4", "-i",
                    str(movies / "two" / "t%03d.png"), "-pix_fmt", "yuv444p", str(video)], check=True)
    assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / "seg")]) == 0
    said = _said(capsys)
    assert "colour input: the red channel was read in every frame" in said
    record = json.loads((tmp_path / "seg" / "segment.json").read_text())
    assert record["color_read"] == "red" and "color_read_frames" not in record


# ---------------------------------------------------------------------------- 2. --skip-flagged auto's report

@needs_population
def test_skip_flagged_auto_refuses_a_report_it_did_not_write(movies, tmp_path, capsys):
    folder = tmp_path / "q"
    report = folder / "pops.curation.csv"
    assert main(["curate", "frames", str(movies / "r3" / "frames"), "--out", str(report)]) == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert set(before) == {"pops.curation.csv", "pops.curation.json"}
    capsys.readouterr()
    assert main(["population", str(movies / "two"), "--out", str(folder / "pops.csv"), "--skip-flagged", "auto",
                 "--no-plot"]) != 0
    err = _flat(capsys.readouterr().err)
    assert "--skip-flagged auto writes its curation report to pops.curation.csv" in err
    assert "remove pops.curation.csv and pops.curation.json" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written, nothing replaced
    # its own report, of an earlier run into the same CSV, is replaced as before
    own = tmp_path / "own" / "pops.csv"
    for _ in range(2):
        assert main(["population", str(movies / "two"), "--out", str(own), "--skip-flagged", "auto",
                     "--no-plot"]) == 0
    assert sorted(p.name for p in own.parent.iterdir()) == ["pops.csv", "pops.curation.csv", "pops.json"]


# ---------------------------------------------------------------------------- 3. --clock before its curve

@needs_population
def test_clock_frames_before_its_curve_keep_a_lower_reading(movies, tmp_path, capsys):
    frames = movies / "r3" / "frames"
    plain, clocked = tmp_path / "plain.csv", tmp_path / "clock.csv"
    assert main(["population", str(frames), "--out", str(plain), "--no-plot"]) == 0
    capsys.readouterr()
    assert main(["population", str(frames), "--out", str(clocked), "--no-plot", "--clock"]) == 0
    said = _said(capsys)
    own, fit = pd.read_csv(plain), pd.read_csv(clocked)
    assert own["total"][0] < 2.5 and fit["total"][0] == own["total"][0]  # (the curve's start read it 2.83)
    assert "--clock placed" in said and "before its reference curve starts (~3 cells" in said
    assert "t001" in said and "keeps its per-frame reading" in said
    assert fit["total"].iloc[-1] != own["total"].iloc[-1]  # (the later frames read off the curve)


def test_the_early_frames_note_words_every_case():
    note = cli_predict._early_note({"frames": ["t1", "t2"], "kept": ["t1", "t2"], "start": 2.83})
    assert "2 frames (t1, t2)" in note and "they read fewer cells on their own and keep their" in note
    note = cli_predict._early_note({"frames": ["t1"], "kept": [], "start": 2.83})
    assert "reads it at 2.83 cells" in note and "own" not in note


# ---------------------------------------------------------------------------- 4, 5. one frame; --plot-format

@needs_population
def test_monotone_refuses_one_image_and_plot_format_without_plot_is_noted(movies, tmp_path, capsys):
    image = sorted((movies / "r3" / "frames").glob("*.png"))[5]
    assert main(["population", str(image), "--out", str(tmp_path / "p.csv"), "--monotone"]) != 0
    err = _flat(capsys.readouterr().err)
    assert "--monotone smooths the counts of a timelapse over its frames" in err and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists()
    assert main(["population", str(image), "--out", str(tmp_path / "p.csv"), "--no-plot", "--plot-format",
                 "pdf"]) == 0
    assert "--plot-format pdf does nothing with --no-plot" in _said(capsys)
    assert main(["population", str(image), "--out", str(tmp_path / "q.csv"), "--no-plot"]) == 0
    assert "--plot-format" not in _said(capsys)


def test_a_point_alone_in_the_plot_gets_a_marker(monkeypatch, tmp_path):
    from devolens.viz import plots

    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, dpi: drawn.append(fig) or Path(path))
    pops = pd.DataFrame({"time": [0, 1, 2, 3, 4], "A": [1.0, np.nan, 2.0, np.nan, np.nan],
                         "total": [3.0, np.nan, 4.0, 5.0, np.nan]})
    plots.plot_populations(pops, tmp_path / "p.png")
    ax = drawn[0].axes[0]
    markers = [(line.get_color(), list(line.get_xdata())) for line in ax.lines if line.get_linestyle() == "None"]
    assert ("#000000", [0]) in markers  # the total's first point: between the table's start and a gap
    assert ("#0072B2", [0, 2]) in markers  # A's two lone points
    assert not any(2 in x for c, x in markers if c == "#000000")  # (the total's 2 and 3 make a line)
    one = pd.DataFrame({"time": [7], "total": [12.0]})
    plots.plot_populations(one, tmp_path / "q.png")
    assert [list(line.get_xdata()) for line in drawn[1].axes[0].lines if line.get_linestyle() == "None"] == [[7]]


# ---------------------------------------------------------------------------- 6. --monotone's black frames

def test_monotone_names_black_first_frames_once_and_exactly():
    attrs = {"flat": ["t001", "t011"], "flat_black": [], "monotone_left_out": (["t001", "t011"], []),
             "monotone_ends": {"before": ["t001", "t011"], "after": []}}
    notes = [_flat(text) for text, _ in cli_predict._population_notes(Path("m"), "project", "time", True, attrs, 17)]
    named = [t for t in notes if "t001" in t]
    assert len(named) == 1, notes
    assert "their rows hold the first fitted value (they come before every frame fitted)" in named[0]
    assert "between the frames around" not in named[0]
    # a dark frame (not of no signal) in the middle and one at the end: the monotone note, each worded
    attrs = {"monotone_left_out": (["t050", "t090"], []), "monotone_ends": {"before": [], "after": ["t090"]}}
    notes = [_flat(text) for text, _ in cli_predict._population_notes(Path("m"), "project", "time", True, attrs, 17)]
    named = [t for t in notes if "t050" in t]
    assert len(named) == 1
    assert "t050's row holds the fitted curve between the frames around it" in named[0]
    assert "t090's row holds the last fitted value (it comes after every frame fitted)" in named[0]
