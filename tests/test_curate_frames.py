"""Corrupt-frame curation on small synthetic timelapses (green blurry nuclei on black)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from devolens.curate.frames import (
    Thresholds,
    curate_path,
    flagged_files,
    flagged_frames,
    score_frames,
    summarize,
)
from devolens.errors import DevolensError

from curate_synth import inject, synth_sequence

PLAN = {3: "black", 8: "dark", 13: "red_line", 17: "red_col", 22: "red_patch", 27: "duplicate", 33: "dark"}
EXPECT = {i: ("red_line" if k == "red_col" else k) for i, k in PLAN.items()}


@pytest.fixture(scope="module")
def corrupted() -> list[np.ndarray]:
    frames = synth_sequence(40, seed=0)
    for i, kind in PLAN.items():
        inject(frames, kind, i, seed=i)
    return frames


def test_clean_sequence_has_no_flags():
    for seed in (0, 1, 2):
        report = score_frames(synth_sequence(40, seed=seed))
        assert not report["flagged"].any(), report.loc[report.flagged, ["frame", "flag"]]


def test_each_artifact_kind_is_flagged(corrupted):
    report = score_frames(corrupted)
    got = {int(r.frame): r.flag for r in report.itertuples() if r.flagged}
    assert got == EXPECT
    assert summarize(report)["flagged"] == len(EXPECT)


def test_scorer_streams_from_a_generator(corrupted):
    def gen():
        yield from corrupted

    calls = []
    report = score_frames(gen(), progress=lambda d, t: calls.append(d))
    assert len(report) == len(corrupted)
    assert calls[-1] == len(corrupted)
    assert set(report.loc[report.flagged, "frame"]) == set(EXPECT)


def test_grey_and_uint16_input():
    frames = [f[..., 1].astype(np.uint16) * 257 for f in synth_sequence(30, seed=3)]
    frames[10] = frames[10] // 5
    frames[20] = frames[19].copy()
    report = score_frames(iter(frames))
    got = {int(r.frame): r.flag for r in report.itertuples() if r.flagged}
    assert got == {10: "dark", 20: "duplicate"}


def test_dropped_times_from_file_names_and_sequences():
    a = synth_sequence(12, seed=4)
    b = synth_sequence(12, seed=5)
    names = [f"embA_t{t:03d}.png" for t in range(1, 13)] + [f"embB_t{t:03d}.png" for t in range(1, 13)]
    frames = a + b
    # drop time 6 of embryo A and time 9 of embryo B
    keep = [k for k, n in enumerate(names) if n not in ("embA_t006.png", "embB_t009.png")]
    report = score_frames((frames[k] for k in keep), names=[names[k] for k in keep])
    dropped = report[report.flag == "dropped"]
    assert list(zip(dropped.sequence, dropped.time)) == [("embA", 6), ("embB", 9)]
    assert dropped["frame"].isna().all()
    # the change across embryos is not compared, and nothing else is flagged
    assert report["flagged"].sum() == 2
    assert flagged_frames(report) == set()


def test_flagged_frames_roundtrip(tmp_path, corrupted):
    import imageio.v3 as iio

    for t, f in enumerate(corrupted, start=1):
        iio.imwrite(tmp_path / f"t{t:03d}.png", f)
    report = curate_path(tmp_path)
    assert flagged_frames(report) == set(EXPECT)
    assert flagged_files(report) == {f"t{i + 1:03d}.png" for i in EXPECT}
    csv = tmp_path / "report.csv"
    report.to_csv(csv, index=False)
    assert flagged_frames(csv) == set(EXPECT)


def test_bad_inputs(tmp_path):
    with pytest.raises(DevolensError, match="no such"):
        curate_path(tmp_path / "missing.mp4")
    with pytest.raises(DevolensError, match="no image files"):
        curate_path(tmp_path)
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    with pytest.raises(DevolensError, match="notes.txt"):
        curate_path(bad)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    with pytest.raises(DevolensError, match="broken.mp4"):
        curate_path(broken)
    with pytest.raises(DevolensError):
        flagged_frames(tmp_path / "nope.csv")
    with pytest.raises(DevolensError, match="not a curation report"):
        flagged_frames(pd.DataFrame({"a": [1]}))
    with pytest.raises(DevolensError, match="shape"):
        score_frames([np.zeros((4, 4, 2), np.uint8)])


def test_thresholds_are_tunable(corrupted):
    strict = score_frames(corrupted, thresholds=Thresholds(dark_ratio=0.1))
    assert "dark" not in set(strict.flag)


def _pseudo_timelapse(frame: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """A real frame drifting by a pixel per time point with fresh noise each time."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        shifted = np.roll(frame, (t // 2, t), axis=(0, 1)).astype(np.float32) * (1 + 0.01 * t)
        noisy = shifted + rng.normal(0, 3, shifted.shape)
        out.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return out


def test_real_frames_with_renderer_artifacts(shared_data):
    """A real EPIC frame (with a natural orange reporter) as a short timelapse: clean
    frames stay clean, and the renderer's artifacts are found."""
    import imageio.v3 as iio

    from devolens.render.artifacts import apply_frame_artifact

    path = shared_data / "reference_frames" / "epic_movie_frame300.png"
    if not path.exists():
        pytest.skip("reference frame missing")
    frames = _pseudo_timelapse(np.asarray(iio.imread(path))[..., :3], 16, seed=0)
    clean = score_frames(frames)
    assert not clean["flagged"].any(), clean.loc[clean.flagged, ["frame", "flag"]]
    assert clean["red_area"].max() > 0  # the reporter is red enough to count, yet persistent
    rng = np.random.default_rng(5)
    plan = {3: "black", 6: "dark", 9: "red_line", 12: "red_patch"}
    for i, kind in plan.items():
        frames[i] = apply_frame_artifact(frames[i], None, kind, rng)[0]
    frames[14] = frames[13].copy()
    plan[14] = "duplicate"
    report = score_frames(frames)
    assert {int(r.frame): r.flag for r in report.itertuples() if r.flagged} == plan


def test_dropped_respects_the_usual_time_step():
    frames = synth_sequence(8, seed=6)
    times = [1, 6, 11, 16, 26, 31, 36, 41]  # every 5th time point, 21 missing
    report = score_frames(frames, names=[f"t{t:03d}.png" for t in times])
    assert list(report.loc[report.flag == "dropped", "time"]) == [21]
    assert report["flagged"].sum() == 1


@pytest.mark.parametrize("pattern", ["frame_{}.png", "img_{:04d}.tif", "{:03d}.png", "Cam1-{}.ome.tif",
                                     "frame_{:02d}.png"])
def test_gaps_in_numbered_names_of_one_pattern_are_dropped(pattern):
    """Names of one pattern ending in a number (not only tNNN) are a numbering: its gaps are dropped frames."""
    frames = synth_sequence(18, seed=8)
    numbers = [t for t in range(1, 21) if t not in (7, 12)]
    names = [pattern.format(t) for t in numbers]
    report = score_frames(frames, names=names)
    dropped = report[report.flag == "dropped"]
    assert list(dropped["time"]) == [7, 12] and dropped["frame"].isna().all() and (dropped["file"] == "").all()
    assert report["flagged"].sum() == 2 and flagged_frames(report) == set()
    assert list(report.loc[report["frame"].notna(), "time"]) == numbers


@pytest.mark.parametrize("names", [
    [f"frame_{t}.png" if t % 2 else f"img_{t}.png" for t in range(1, 21) if t not in (7, 12)],  # two patterns
    [f"frame_{t}.png" if t % 2 else f"frame_{t}.tif" for t in range(1, 21) if t not in (7, 12)],  # two extensions
    [f"img_{n}.png" for n in (3, 8, 10, 17, 21, 30)],  # no steady step (gaps are multiples of the usual step)
    [f"img_{n}.png" for n in (1, 2, 3, 5, 4, 6)],  # not in rising order
    [f"{w}.png" for w in ("alpha", "beta", "gamma", "delta")],  # no numbers
    [f"img_{12 + (20 * k) // 60:02d}{(20 * k) % 60:02d}00.png" for k in range(12)],  # clock times HHMMSS, every 20 min
    [f"img_{h:02d}{m:02d}.png" for h in (9, 10) for m in range(0, 60, 5)],  # clock times HHMM, every 5 min
    [f"day_202401{d:02d}.png" for d in range(25, 32)] + [f"day_202402{d:02d}.png" for d in range(1, 5)],  # dates
    [f"img_{n}.png" for n in (5, 10, 15, 20, 30, 40, 50)],  # every 5th frame, then every 10th: no count of frames
])
def test_names_without_a_common_numbering_give_no_dropped_frames(names):
    report = score_frames(synth_sequence(len(names), seed=9), names=names)
    assert not report["dropped"].any() and report["time"].isna().all()


def test_a_numbered_folder_with_gaps_is_curated_as_a_tnnn_one(tmp_path):
    import imageio.v3 as iio

    for t, f in zip([t for t in range(1, 21) if t not in (7, 12)], synth_sequence(18, seed=8)):
        iio.imwrite(tmp_path / f"frame_{t}.png", f)  # natural order: frame_2 before frame_10
    report = curate_path(tmp_path)
    assert list(report.loc[report["dropped"], "time"]) == [7, 12]
    assert list(report.loc[report["frame"] == 6, "file"]) == ["frame_8.png"]
    assert flagged_frames(report) == set()


def test_empty_path_is_refused():
    """Path("") is the current folder: curating it was never what was meant."""
    for bad in ("", None):
        with pytest.raises(DevolensError, match="expected a path"):
            curate_path(bad)


# ------------------------------------------------------------------ dark frames at the ends of a sequence

#: nuclei per frame of an embryo that fills fast, then steadies (the first frames' mean level is far below the next ones')
GROWING = [3, 5, 7, 9, 11, 13] + [14] * 24


def _flags(report: pd.DataFrame) -> dict[int, str]:
    return {int(r.frame): r.flag for r in report.itertuples() if r.flagged}


def _dimmed(frame: np.ndarray, factor: float = 0.3) -> np.ndarray:
    return (frame.astype(np.float32) * factor).astype(np.uint8)


def test_growing_embryo_first_and_last_frames_are_not_dark():
    """The first frame of a growing embryo has fewer nuclei than every frame after it (the last frame of a shrinking
    one than every frame before it): its mean level is far below that of its only side, yet it is no dark frame."""
    # (not seed 2: its first three nuclei are drawn a third dimmer than the later ones, which no measure can tell
    # from a dimmed frame)
    for seed in (0, 1, 3):
        frames = synth_sequence(len(GROWING), seed=seed, counts=GROWING)
        for seq, edge in ((frames, 0), (frames[::-1], -1)):
            report = score_frames(seq)
            assert report["level_ratio"].iloc[edge] < 0.7  # below the dark cut: the level alone would call it dark
            assert _flags(report) == {}, (seed, edge)


def test_frame_beside_a_black_end_frame_is_not_dark():
    """Past a black first frame, the next one has neighbours on one side only (black frames are no reference)."""
    frames = synth_sequence(len(GROWING), seed=0, counts=GROWING)
    inject(frames, "black", 0)
    assert _flags(score_frames(frames)) == {0: "black"}
    n = len(frames)
    assert _flags(score_frames(frames[::-1])) == {n - 1: "black"}


def test_dark_first_and_last_frames_are_flagged():
    """A dimmed frame at either end is still dark, in a growing embryo (both orders) and in a steady one."""
    steady = synth_sequence(30, seed=1)
    for seed in (0, 1):
        growing = synth_sequence(len(GROWING), seed=seed, counts=GROWING)
        for seq in (growing, growing[::-1], steady):
            n = len(seq)
            for dark in ([0], [n - 1], [0, n - 1]):
                frames = list(seq)
                for i in dark:
                    frames[i] = _dimmed(frames[i])
                assert _flags(score_frames(frames)) == {i: "dark" for i in dark}, (seed, dark)


@pytest.fixture(scope="module")
def growing_render(shared_data, tmp_path_factory) -> list[np.ndarray]:
    """A clean render of a real lineage table, every 4th time point, small frames (the user's case: the first frame
    was flagged dark, level ratio 0.54)."""
    import imageio.v3 as iio

    from devolens.io.tables import read_table
    from devolens.render.dataset import render_dataset

    table = shared_data / "epic" / "CD20241010_JIM767_25_L3.csv"
    if not table.exists():
        pytest.skip("EPIC table CD20241010_JIM767_25_L3.csv missing")
    out = tmp_path_factory.mktemp("growing")
    render_dataset([read_table(table)], out, size=(96, 144), every=4, seed=5)
    return [np.asarray(iio.imread(p)) for p in sorted((out / "frames").glob("*.png"))]


def test_clean_render_of_a_growing_embryo_has_no_dark_ends(growing_render):
    frames = growing_render
    forward, backward = score_frames(frames), score_frames(frames[::-1])
    assert forward["level_ratio"].iloc[0] < 0.7 and backward["level_ratio"].iloc[-1] < 0.7
    assert _flags(forward) == {} and _flags(backward) == {}


def test_dimmed_ends_of_a_render_are_dark(growing_render):
    n = len(growing_render)
    for dark in ([0], [n - 1], [0, n - 1]):
        frames = list(growing_render)
        for i in dark:
            frames[i] = _dimmed(frames[i])
        assert _flags(score_frames(frames)) == {i: "dark" for i in dark}, dark
