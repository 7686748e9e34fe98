"""Bright frames: the mirror of dark ones (a lamp flickering up, often saturating the nuclei), found by the curator,
reported in its CSV and summary, and skipped by ``--skip-flagged auto``; steady, bleaching and growing movies and a
genuinely brighter embryo (the diffuse histone of a mitotic cell) are left alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from curate_synth import inject, synth_sequence
from devolens.cli import main
from devolens.curate.frames import KINDS, Thresholds, black_or_dark, flagged_frames, frame_signal, score_frames

#: nuclei per frame of an embryo that fills fast, then steadies (as in test_curate_frames)
GROWING = [3, 5, 7, 9, 11, 13] + [14] * 24


def _flags(report: pd.DataFrame) -> dict[int, str]:
    return {int(r.frame): r.flag for r in report.itertuples() if r.flagged}


def _scaled(frame: np.ndarray, factor: float) -> np.ndarray:
    """The frame under a lamp ``factor`` times as bright, clipped at the top of the range."""
    return np.clip(frame.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def _dim(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A dim recording (nuclei below ~80 grey levels): a brighter frame of it does not saturate."""
    return [_scaled(f, 0.35) for f in frames]


def test_a_brighter_frame_is_flagged_bright_saturated_or_not():
    for seq, saturates in ((synth_sequence(30, seed=0), True), (_dim(synth_sequence(30, seed=1)), False)):
        frames = list(seq)
        frames[15] = _scaled(frames[15], 2.5)
        report = score_frames(frames)
        assert _flags(report) == {15: "bright"}, saturates
        assert report["bright"].sum() == 1 and report["level_ratio_high"].iloc[15] > 1 / 0.7
        assert (report["clipped"].iloc[15] >= 0.01) == saturates
        assert report["clipped"].drop(15).max() < 0.01


def test_a_saturated_frame_is_bright_whatever_the_spread_of_levels():
    """Clipped pixels where the neighbours have few mark a frame bright even where the sequence's spread of level
    ratios is too wide for the level alone (a fast-growing embryo filmed at a coarse time step)."""
    wide = Thresholds(dark_sigmas=1000.0)  # the spread rule can never pass
    saturated = synth_sequence(30, seed=0)
    saturated[15] = _scaled(saturated[15], 2.5)
    assert _flags(score_frames(saturated, thresholds=wide)) == {15: "bright"}
    unsaturated = _dim(synth_sequence(30, seed=1))
    unsaturated[15] = _scaled(unsaturated[15], 2.5)
    assert _flags(score_frames(unsaturated, thresholds=wide)) == {}
    assert _flags(score_frames(saturated, thresholds=Thresholds(dark_ratio=0.1))) == {}  # the level cut still rules


def test_bright_first_and_last_frames_are_flagged():
    for seed in (0, 1):
        seq = _dim(synth_sequence(30, seed=seed))
        n = len(seq)
        for bright in ([0], [n - 1], [0, n - 1]):
            frames = list(seq)
            for i in bright:
                frames[i] = _scaled(frames[i], 2.5)
            assert _flags(score_frames(frames)) == {i: "bright" for i in bright}, (seed, bright)


def test_steady_bleaching_and_growing_movies_have_no_bright_frames():
    n = 40
    # (not seed 2 for the growing embryo: its first three nuclei are drawn a third dimmer than the later ones, and
    # its first frame passes for dark, see test_curate_frames)
    for seed in (0, 1, 3):
        steady = synth_sequence(n, seed=seed)
        bleaching = [_scaled(f, 0.4 ** (t / (n - 1))) for t, f in enumerate(steady)]  # to 40 % at the end
        warming = [_scaled(f, 0.3 * 2.5 ** (t / (n - 1))) for t, f in enumerate(steady)]  # a lamp warming up, x2.5
        growing = synth_sequence(len(GROWING), seed=seed, counts=GROWING)
        burst = synth_sequence(30, seed=seed, counts=[4] * 15 + [14] * 15)  # ten divisions at once, then steady
        glaring = [_scaled(f, 2.0) for f in steady]  # every frame saturated a little
        assert min(score_frames(glaring)["clipped"]) > 0
        for name, seq in (("steady", steady), ("bleaching", bleaching), ("warming", warming), ("growing", growing),
                          ("shrinking", growing[::-1]), ("burst", burst), ("glaring", glaring)):
            report = score_frames(seq)
            assert not report["flagged"].any(), (name, seed, _flags(report))


def test_a_growing_embryos_last_frame_is_not_bright():
    """The last frame of a growing embryo has more nuclei than every frame before it (the first of a shrinking one
    than every frame after it): its level is far above that of its only side, yet its nuclei are no brighter; in a
    bright recording its crowded nuclei saturate where the frames before it had few clipped pixels."""
    counts = [2] * 8 + [4, 8, 16]
    for seed in (0, 1, 2, 3):
        for gain in (1.0, 2.0):
            frames = [_scaled(f, gain) for f in synth_sequence(len(counts), seed=seed, counts=counts)]
            for seq, edge in ((frames, -1), (frames[::-1], 0)):
                report = score_frames(seq)
                assert report["level_ratio_high"].iloc[edge] > 1 / 0.7  # the level alone would call it bright
                assert gain == 1.0 or report["clipped"].iloc[edge] >= 0.01  # saturated, where its side is not
                assert _flags(report) == {}, (seed, gain, edge)


def test_a_genuinely_brighter_embryo_is_not_bright():
    """A mitotic cell of an early embryo spreads its histone through the cytoplasm: the whole embryo glows, its
    level rises past the bright cut, but its nuclei stand out no more than before (the contrast does not rise)."""
    frames = synth_sequence(30, seed=0)
    h, w = frames[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    embryo = ((yy - h / 2) / (0.45 * h)) ** 2 + ((xx - w / 2) / (0.45 * w)) ** 2 <= 1
    glow = frames[15].astype(np.float32)
    glow[embryo, 1] += 20.0
    frames[15] = np.clip(glow, 0, 255).astype(np.uint8)
    report = score_frames(frames)
    assert report["level_ratio_high"].iloc[15] > 1 / 0.7
    assert _flags(report) == {}


def test_a_repeat_of_a_bright_frame_is_a_duplicate():
    frames = _dim(synth_sequence(30, seed=2))
    frames[12] = _scaled(frames[12], 2.5)
    inject(frames, "duplicate", 13)
    assert _flags(score_frames(frames)) == {12: "bright", 13: "duplicate"}


def test_black_or_dark_leaves_bright_frames_out():
    """``black_or_dark`` (what ``population --monotone`` reads) keeps its meaning: black or dark frames only."""
    frames = _dim(synth_sequence(20, seed=1))
    frames[10] = _scaled(frames[10], 2.5)
    assert not black_or_dark([frame_signal(f) for f in frames]).any()


@pytest.fixture(scope="module")
def bright_dir(tmp_path_factory):
    import imageio.v3 as iio

    folder = tmp_path_factory.mktemp("bright")
    frames = synth_sequence(16, seed=3)
    frames[6] = _scaled(frames[6], 2.5)
    inject(frames, "black", 11)
    for t, f in enumerate(frames, start=1):
        iio.imwrite(folder / f"t{t:03d}.png", f)
    return folder


def test_curate_frames_reports_bright_frames(bright_dir, tmp_path, capsys):
    out = tmp_path / "report.csv"
    assert main(["curate", "frames", str(bright_dir), "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().err.split())
    assert "16 frames, 2 flagged (black 1, bright 1)" in text
    report = pd.read_csv(out, keep_default_na=False)
    assert {"bright", "level_ratio_high", "clipped"} <= set(report.columns)
    assert list(report.columns).index("bright") > list(report.columns).index("dark")
    assert dict(zip(report.loc[report["flagged"], "file"], report.loc[report["flagged"], "flag"])) == {
        "t007.png": "bright", "t012.png": "black"}
    assert list(report.loc[report["bright"], "file"]) == ["t007.png"]
    assert flagged_frames(out) == {6, 11}
    # a report of an earlier devolens (no bright column) is still read
    report.drop(columns=["bright", "level_ratio_high", "clipped"]).to_csv(tmp_path / "old.csv", index=False)
    assert flagged_frames(tmp_path / "old.csv") == {6, 11}
    assert "bright" in KINDS


def test_skip_flagged_auto_skips_a_bright_frame(tiny_zoo, bright_dir, tmp_path):
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(bright_dir), "--out", str(out), "--skip-flagged", "auto",
                 "--no-overlay"]) == 0
    labels = sorted(p.name for p in (out / "labels").iterdir())
    assert "t007_labels.tif" not in labels and "t012_labels.tif" not in labels and len(labels) == 14
    assert json.loads((out / "segment.json").read_text())["skipped"] == ["t007", "t012"]
    curation = pd.read_csv(out / "curation.csv", keep_default_na=False)
    assert list(curation.loc[curation["bright"], "file"]) == ["t007.png"]
