"""The developmental clock: the reference curve, the fit of a movie's totals, and `population --clock`."""

import numpy as np
import pandas as pd
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from devolens.predict.clock import MIN_FRAMES, canonical_curve, extend_curve, fit_clock

TAU = np.arange(0.0, 160.0)
LOG_C = np.log(np.maximum.accumulate(2.0 ** (1 + TAU / 25) + 3 * np.sin(TAU / 3)))  # steps-like, non-decreasing


def test_fit_recovers_offset_and_rate_despite_noise_and_outliers():
    rng = np.random.default_rng(0)
    pos = np.arange(40.0)
    true = np.exp(np.interp(12 + 3.0 * pos, TAU, LOG_C))
    est = true * np.exp(rng.normal(0, 0.15, pos.size))
    est[[5, 20, 33]] *= 3.0  # three frames wildly off (a bad frame, a second embryo...)
    fit = fit_clock(pos, est, TAU, LOG_C)
    assert abs(fit.offset - 12) <= 4 and fit.rate == pytest.approx(3.0, rel=0.08)  # the two trade off a little
    raw = np.mean(np.abs(est - true) / true)
    fitted = np.mean(np.abs(fit.totals - true) / true)
    assert fitted < 0.5 * raw and np.all(np.diff(fit.totals) >= 0)
    assert 0.05 < fit.residual < 0.3


def test_fit_uses_frame_positions_with_gaps():
    pos = np.array([0, 1, 2, 5, 6, 9, 10, 11, 14, 15], float)  # flagged frames skipped
    true = np.exp(np.interp(30 + 2.0 * pos, TAU, LOG_C))
    fit = fit_clock(pos, true, TAU, LOG_C)
    assert fit.rate == pytest.approx(2.0, rel=0.03) and np.allclose(fit.totals, true, rtol=0.05)


def test_fit_refuses_short_or_unordered_movies():
    with pytest.raises(DevolensError, match=f"at least {MIN_FRAMES} frames"):
        fit_clock(np.arange(3), [4, 8, 16], TAU, LOG_C)
    with pytest.raises(DevolensError, match="must increase"):
        fit_clock([0, 1, 2, 2, 3, 4], np.ones(6) * 8, TAU, LOG_C)


def test_canonical_curve_aligns_shifted_embryos():
    counts = np.round(4 * 2.0 ** (np.arange(120) / 20))  # 4 -> ~250 cells
    base = pd.Series(counts, index=np.arange(1, 121))
    late = pd.Series(counts[10:], index=np.arange(1, 111))  # filming started 10 time points later
    early = pd.Series(counts[:100], index=np.arange(6, 106))  # ... or 5 earlier
    tau, log_total = canonical_curve([late, base, early])
    assert tau[0] == 1 and tau[-1] == 120 and np.all(np.diff(log_total) >= 0)
    assert np.allclose(np.exp(log_total), counts, rtol=1e-6)  # all three land on the longest one's time axis
    with pytest.raises(DevolensError, match="fewer than"):
        canonical_curve([base, pd.Series([4.0, 8.0], index=[1, 2])])


def test_extend_curve_continues_the_reference_with_an_embryo_filmed_at_another_pace():
    tau, log_c = TAU[:100], LOG_C[:100]  # the reference stops at time point 99
    t = np.arange(1, 301)  # another embryo: twice the frames per reference time point, followed further
    other = pd.Series(np.exp(np.interp(5 + 0.5 * (t - 1), TAU, LOG_C)), index=t)
    tau2, log2, fit = extend_curve(tau, log_c, other)
    assert fit.rate == pytest.approx(0.5, rel=0.05) and tau2[-1] == pytest.approx(5 + 0.5 * 299, abs=2)
    assert np.all(np.diff(tau2) > 0) and np.all(np.diff(log2) >= 0)
    x = np.linspace(100, 150, 11)
    assert np.allclose(np.interp(x, tau2, log2), np.interp(x, TAU, LOG_C), atol=0.05)


def test_shipped_population_model_has_a_clock_that_refits_totals():
    from devolens.models import card, load
    from devolens.predict.population import composition_counts

    if "clock" not in card("population"):
        pytest.skip("the shipped population model has no clock")
    pred = load("population")
    tau, log_total = pred.clock
    assert np.exp(log_total[0]) < 10 and np.exp(log_total[-1]) > 500  # the 4-cell stage to the comma stage
    pos = np.arange(30)
    true = np.exp(np.interp(20 + 4.0 * pos, tau, log_total))
    df = pd.DataFrame({"total": true * np.exp(np.random.default_rng(1).normal(0, 0.2, pos.size))})
    out, fit = pred.clock_fit(df, pos)
    assert fit.rate == pytest.approx(4.0, rel=0.1)
    assert np.mean(np.abs(out["total"] - true) / true) < 0.06
    letters = composition_counts(fit.totals, pred.composition)
    assert np.allclose(out[["A", "E", "M", "P", "C", "D", "Z"]].to_numpy(), letters)


def test_population_cli_clock(tiny_zoo, tmp_path, capsys, monkeypatch):  # noqa: F811
    import imageio.v3 as iio

    from devolens.cli import main

    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        img = np.zeros((48, 70), np.uint8)
        for _ in range(2 + i):
            y, x = rng.integers(6, 42), rng.integers(6, 64)
            img[y - 4:y + 4, x - 4:x + 4] = 200
        iio.imwrite(frames / f"t{i:02d}.png", img)
    out = tmp_path / "pops.csv"
    capsys.readouterr()
    assert main(["population", str(frames), "--out", str(tmp_path / "plain.csv"), "--no-plot"]) == 0
    assert "tip: for a wild-type timelapse, --clock" in capsys.readouterr().err
    assert main(["population", str(frames), "--out", str(out), "--clock", "--no-plot"]) == 0
    printed = capsys.readouterr().err  # notes go to stderr, beside the progress bar
    assert "developmental clock:" in printed and "reference time points per frame" in printed
    df = pd.read_csv(out)
    assert list(df.columns) == ["frame", "A", "E", "M", "P", "C", "D", "Z", "total"] and len(df) == 8
    assert np.all(np.diff(df["total"]) >= -0.01)  # read off a non-decreasing curve
    assert np.allclose(df["A"], df["E"], atol=0.02)  # the tiny zoo's composition: half A, half E
    # refusals, before any output
    assert main(["population", str(frames), "--out", str(tmp_path / "b.csv"), "--clock", "--monotone"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert main(["population", str(frames / "t00.png"), "--out", str(tmp_path / "c.csv"), "--clock"]) == 2
    assert "not one image" in capsys.readouterr().err
    for i in range(8):
        if i >= 3:
            (frames / f"t{i:02d}.png").unlink()
    import devolens.cli.predict as cli_predict

    def no_inference(*a, **k):
        raise AssertionError("the network was loaded for a timelapse too short for the clock")

    monkeypatch.setattr(cli_predict, "_load_predictor", no_inference)  # refused before any inference
    assert main(["population", str(frames), "--out", str(tmp_path / "d.csv"), "--clock"]) == 2
    assert f"{frames}: the developmental clock needs a timelapse of at least 6 frames" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in ("b.csv", "c.csv", "d.csv"))



def _video(path, frames, durations=None):
    """An H.264 mp4 of ``frames`` (uint8 HxW), at a constant rate, or at the given per-frame ``durations`` (s)."""
    import subprocess

    import imageio.v3 as iio
    import imageio_ffmpeg

    src = path.parent / (path.stem + "_src")
    src.mkdir()
    lines = []
    for i, f in enumerate(frames):
        iio.imwrite(src / f"{i:03d}.png", f)
        lines.append(f"file '{i:03d}.png'\nduration {0.1 if durations is None else durations[i]}\n")
    (src / "list.txt").write_text("".join(lines) + f"file '{len(frames) - 1:03d}.png'\n")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "concat", "-i",
                    str(src / "list.txt"), *(["-fps_mode", "vfr"] if durations else ["-r", "10"]), "-c:v",
                    "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)


def test_clock_notes_a_video_of_varying_intervals(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """--clock takes frames as evenly spaced: a variable-frame-rate video (a walkthrough's timelapse of 0.1 s and
    0.35 s intervals) gets a note; the same frames at a constant rate do not."""
    from devolens.cli import main
    from devolens.io.video import video_steady

    rng = np.random.default_rng(0)
    frames = []
    for i in range(12):
        img = np.zeros((48, 64), np.uint8)
        for _ in range(2 + i):
            y, x = rng.integers(6, 42), rng.integers(6, 58)
            img[y - 4:y + 4, x - 4:x + 4] = 200
        frames.append(img)
    steady, varying, dropped = tmp_path / "steady.mp4", tmp_path / "vfr.mp4", tmp_path / "dropped.mp4"
    _video(steady, frames)
    _video(varying, frames, [0.1 if i % 3 else 0.35 for i in range(12)])
    # a constant rate with frames dropped at its start, twice close together and before its last frame (a review
    # found these taken for a variable rate): steady
    _video(dropped, frames, [0.2 if i in (0, 5, 7, 10) else 0.1 for i in range(12)])
    for movie, noted in ((steady, False), (varying, True), (dropped, False)):
        capsys.readouterr()
        assert main(["population", str(movie), "--out", str(tmp_path / f"{movie.stem}.csv"), "--clock",
                     "--no-plot"]) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert "developmental clock:" in err
        assert ("varying intervals (a variable frame rate)" in err) is noted, movie
        assert video_steady(movie) is (not noted)


def test_clock_figures_in_the_cli_match_the_results():
    """What the CLI says --clock gains (the demo report; `population`'s help and tip should use the same
    CLOCK_GAIN) is the current measurement: benchmarks/RESULTS.md's population table, held-out EPIC-framed
    movies, total per frame and with --clock (the last such rows of the latest session's table, found by the
    sessions' ordinals, so that a newer table that the CLI does not follow fails)."""
    import inspect
    import re
    from pathlib import Path

    from devolens.cli import _common, demo

    text = (Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md").read_text()
    # the population section; its session paragraphs, each headed "**<Ordinal> session...", newest first
    section = text[text.index("\n### population\n"):]
    section = section[:section.index("\n### ", 1)]
    units = {w: i for i, w in enumerate(("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
                                          "ninth"), 1)}
    units.update(tenth=10, eleventh=11, twelfth=12, thirteenth=13, fourteenth=14, fifteenth=15, sixteenth=16,
                 seventeenth=17, eighteenth=18, nineteenth=19, twentieth=20, thirtieth=30)

    def ordinal(word: str) -> int:  # "twenty-sixth" -> 26
        tens, _, unit = word.lower().partition("-")
        return {"twenty": 20, "thirty": 30}[tens] + units[unit] if unit else units[tens]

    heads = [(m.start(), ordinal(m.group(1))) for m in
             re.finditer(r"^\*\*([A-Za-z]+(?:-[a-z]+)?) session\b", section, re.M)]
    tables = []  # (session, per-frame total, --clock total) of every table of held-out EPIC-framed movies
    for k, (start, number) in enumerate(heads):
        body = section[start:heads[k + 1][0] if k + 1 < len(heads) else len(section)]
        rows = re.findall(r"^\| (EPIC-framed movies[^|]*)\|.*\| \**([0-9.]+)\** \|$", body, re.M)  # (row, total)
        per_frame = [v for n, v in rows if "per frame" in n]
        clock = [v for n, v in rows if "--clock" in n]
        if per_frame and clock:  # the table's last row of each kind: that session's network
            tables.append((number, per_frame[-1], clock[-1]))
    assert tables, "no population table of EPIC-framed movies with per-frame and --clock rows"
    latest = max(tables)  # the latest session's rows, wherever its paragraph stands
    assert latest[0] >= 26, latest  # the twenty-sixth session's table (fifth-stage nuclei network) or a later one
    said = [int(p) for p in re.findall(r"(\d+)%", _common.CLOCK_GAIN)]
    assert said == [round(100 * float(latest[1])), round(100 * float(latest[2]))]
    source = inspect.getsource(demo.run_demo)
    assert "{CLOCK_GAIN}" in source and "5% with the clock" not in source
