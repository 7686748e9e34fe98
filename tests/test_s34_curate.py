"""Curation of frames: a float movie whose first frame is an outlier (a white flash, a nearly black frame) read in the
sequence's own range, hot pixels that do not hide a saturating flash, and the unit of the report's `time` column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

from devolens.curate.frames import black_or_dark, curate_path, frame_signal, score_frames

from curate_synth import synth_sequence


def _flags(report) -> dict[int, str]:
    return {int(r.frame): r.flag for r in report.itertuples() if r.flagged}


def _blobs(n: int = 20, size: int = 96, seed: int = 0) -> list[np.ndarray]:
    """A float timelapse of drifting blurry nuclei (0..~230 over a background of ~3), ``size`` x ``size``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    pos = rng.uniform(0.2 * size, 0.8 * size, (10, 2))
    bright = rng.uniform(120, 230, 10)
    out = []
    for _ in range(n):
        pos = pos + rng.normal(0, 1.0, pos.shape)
        g = np.zeros((size, size), np.float32)
        for (y, x), b in zip(pos, bright):
            g += b * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 3.0**2))
        out.append(np.clip(ndimage.gaussian_filter(g, 1.0) + rng.normal(3, 2, g.shape), 0, 255).astype(np.float32))
    return out


def _counts() -> list[np.ndarray]:
    """Camera counts as floats (a flat-field-corrected movie): nuclei ~200 counts over an offset of 1000."""
    return [(g + 1000).astype(np.float32) for g in _blobs()]


#: what a frame's own pixels give (``clipped`` is counted at the sequence's top, which a flash frame raises)
_MEASURES = ["level", "p99", "contrast"]


# ------------------------------------------------------------------------------------- 1: a float movie's range
@pytest.mark.parametrize("first", [
    lambda f: np.full_like(f, 65535.0),  # a white frame (the lamp at full, a 16-bit camera's saturation)
    lambda f: f * 30,  # a flash
    lambda f: f * 0.01,  # nearly black, not blank
], ids=["white", "flash_x30", "dim_x0.01"])
def test_a_float_movie_whose_first_frame_is_an_outlier_reads_in_the_sequences_range(tmp_path, first):
    """The frames of a float movie were all read in its first frame's range: a white or flash first frame (range
    65536 for counts of ~1200) read every later frame 32-64x dimmer (contrast 0.38 grey levels: all 20 frames
    black), a nearly black one 64x brighter. They are read in the sequence's range (the first frame's unless it lies
    more than 2x from the median of the frames' own): the later frames measure as in the movie without that first
    frame, exactly (a power of two apart), and only the outlier is flagged (a float32 TIFF stack, curate_path)."""
    clean = _counts()
    frames = [first(clean[0]).astype(np.float32)] + clean[1:]
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, np.stack(frames), imagej=True, metadata={"axes": "TYX"})
    report = curate_path(path)
    alone = score_frames(clean[1:])
    assert _flags(alone) == {} and set(_flags(report)) == {0}  # the outlier first frame flagged, no other
    np.testing.assert_array_equal(report[_MEASURES].iloc[1:].to_numpy(float), alone[_MEASURES].to_numpy(float))
    np.testing.assert_allclose(report["change"].iloc[2:].to_numpy(float), alone["change"].iloc[1:].to_numpy(float),
                               rtol=1e-12)
    assert report["contrast"].iloc[1:].min() > 5  # (nuclei of ~100-200 counts in a range of 2048)


def test_black_or_dark_brings_float_frames_to_the_sequences_range():
    """:func:`black_or_dark` on frames measured one by one (each in its own range) brought them to the first
    frame's range: a flash first frame (range 65536) made every frame after it black; a movie whose frames' ranges
    differ by a power of two (a growing embryo) keeps its first frame's range, and a dimmed frame is still dark."""
    frames = _counts()
    frames[0] = frames[0] * 30
    assert list(np.flatnonzero(black_or_dark([frame_signal(f) for f in frames]))) == []  # (frame 0: bright)
    rising = [(g * 16 + 50).astype(np.float32) for g in _blobs(14, seed=3)]
    rising[7] = rising[7] * 0.3
    signals = [frame_signal(f) for f in rising]
    assert len({s["range"] for s in signals}) > 1 and list(np.flatnonzero(black_or_dark(signals))) == [7]


def test_a_float_movie_whose_first_frame_is_typical_keeps_its_range():
    """Only a float sequence whose first frame is an outlier is brought to another range: a growing embryo's frames
    whose own ranges are 4096 and 8192 (8192 the median) stay in the first frame's, 4096, within 2x of it."""
    green = [f[..., 1].astype(np.float32) for f in synth_sequence(12, seed=1)]
    counts = [(g * 16 + 1000).astype(np.float32) for g in green]  # (ranges 4096 and 8192: the first's kept)
    report = score_frames(counts)
    assert report["p99"].iloc[0] > 128  # the first frame's 99.9th percentile read near the top of 4096's 255
    np.testing.assert_allclose(report["level"].to_numpy(float),
                               [np.maximum(c, 0).mean() * 255 / 4096 for c in counts], rtol=1e-6)


# ------------------------------------------------------------------------------------- 2: hot pixels
def _flash_movie(sat: int, hot: dict[tuple[int, int], int] | None = None) -> list[np.ndarray]:
    """A 12-bit movie in uint16 whose camera saturates at ``sat`` counts, frame 7 a lamp flash (gain 5), with
    ``hot`` pixels at fixed values in every frame."""
    green = [f[..., 1].astype(np.float32) for f in synth_sequence(14, seed=2)]
    out = []
    for t, g in enumerate(green):
        f = np.clip((g * 16 + 100) * (5.0 if t == 7 else 1.0), 0, sat).astype(np.uint16)
        for (y, x), v in (hot or {}).items():
            f[y, x] = v
        out.append(f)
    return out


@pytest.mark.parametrize("hot", [
    {(40, 50): 4095},  # one hot pixel at the 12-bit top
    {(40, 50): 65535, (5, 5): 4095, (100, 150): 3900, (0, 0): 4095, (127, 159): 4000},  # a handful, corners too
    {(40, 50): 4095, (40, 51): 4095},  # a pair side by side
], ids=["one", "handful", "pair"])
def test_hot_pixels_do_not_hide_a_flash_saturating_below_the_bit_depth(hot):
    """A camera whose full well saturates at 2500 counts: a lamp flash piles its nuclei up there, counted as the
    sequence's highest value. One hot pixel at 4095 in every frame was that highest value instead (clipped 0.0 in
    every frame, the flash not flagged); a few hot pixels, each far above the pixels around it, are left out."""
    clean = score_frames(_flash_movie(2500))
    report = score_frames(_flash_movie(2500, hot))
    assert _flags(clean) == {7: "bright"} and clean["clipped"].iloc[7] > 0.05
    assert _flags(report) == {7: "bright"}
    np.testing.assert_allclose(report["clipped"].to_numpy(float), clean["clipped"].to_numpy(float), atol=4e-4)


def test_a_dozen_hot_pixels_of_a_small_frame_do_not_decide_its_clipping():
    """12 hot pixels at 65535 in a 96 x 96 12-bit movie are more than the 0.1 % of pixels a frame may have above the
    top of its range: the range read as 16 bits, and the flash saturating at 4095 read clipped 0.0013 (its hot
    pixels) instead of 0.084. The highest value of the frames, hot pixels left out, is 4095: counted there."""
    green = [f[..., 1].astype(np.float32) for f in synth_sequence(14, size=(96, 96), seed=2)]
    spots = [tuple(p) for p in np.random.default_rng(0).integers(0, 96, (12, 2))]

    def movie(hot: bool) -> list[np.ndarray]:
        out = []
        for t, g in enumerate(green):
            f = np.clip((g * 16 + 100) * (5.0 if t == 7 else 1.0), 0, 4095).astype(np.uint16)
            for y, x in spots if hot else ():
                f[y, x] = 65535
            out.append(f)
        return out

    clean, report = score_frames(movie(False)), score_frames(movie(True))
    assert clean["clipped"].iloc[7] > 0.05 and _flags(report) == _flags(clean) == {7: "bright"}
    np.testing.assert_allclose(report["clipped"].to_numpy(float), clean["clipped"].to_numpy(float), atol=2e-3)


def test_a_small_saturated_spot_is_no_hot_pixel():
    """A nucleus saturating in a few pixels (ringed by its blurred edge) stays the frame's top; a lone pixel far
    above the noise around it does not, nor one on a bright background (a hot pixel on a flash's raised floor)."""
    from devolens.curate.frames import _top

    yy, xx = np.mgrid[0:64, 0:64]
    spot = np.minimum(100 + 3000 * np.exp(-((yy - 30) ** 2 + (xx - 30) ** 2) / (2 * 1.5**2)), 2500).astype(np.float32)
    assert 1 < np.count_nonzero(spot >= 2500) <= 16
    assert _top(spot)[0] == 2500
    noisy = (np.random.default_rng(0).normal(2000, 45, (64, 64))).astype(np.float32)
    top_noise = float(noisy.max())
    assert _top(noisy)[0] == top_noise  # the brightest pixel of noise is no hot pixel
    noisy[10, 10] = 4095
    assert _top(noisy)[0] == top_noise


# ------------------------------------------------------------------------------------- 3: the time column's unit
def test_the_reports_time_unit_names_what_time_holds(tmp_path):
    """`time` holds a folder's time points (t012.png: 12) and a stack's seconds: the report says which, in
    `time_unit` after it (empty where there is no time)."""
    from devolens.io.images import write_png

    frames = [f[..., 1] for f in synth_sequence(4, size=(48, 64), seed=5)]
    folder = tmp_path / "folder"
    folder.mkdir()
    for t, f in zip((3, 4, 5, 7), frames):
        write_png(f, folder / f"t{t:03d}.png")
    report = curate_path(folder)
    assert list(report.columns[3:5]) == ["time", "time_unit"]
    assert list(report["time"]) == [3, 4, 5, 6, 7] and set(report["time_unit"]) == {"time point"}

    timed = tmp_path / "timed.tif"
    tifffile.imwrite(timed, np.stack(frames), imagej=True, metadata={"axes": "TYX", "finterval": 2.5, "tunit": "min"})
    report = curate_path(timed)
    assert list(report["time"]) == [0, 150, 300, 450] and set(report["time_unit"]) == {"seconds"}

    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.stack(frames), imagej=True, metadata={"axes": "TYX"})
    report = curate_path(plain)
    assert report["time"].isna().all() and set(report["time_unit"]) == {""}
    written = tmp_path / "r.csv"
    report.to_csv(written, index=False)
    assert pd.read_csv(written)["time_unit"].isna().all()


def test_a_flash_first_frame_does_not_hide_a_later_frame_saturating(tmp_path):
    """A float movie whose first frame is a flash, 30x the others: a later frame whose nuclei saturate the camera
    (clipped at 1300 counts) reads the same `clipped` as in the movie without the flash (it read 0: the flash
    frame's top set the sequence's)."""
    clean = _counts()
    clean[8] = np.minimum((clean[8] - 1000) * 3 + 1000, 1300.0).astype(np.float32)  # a flicker up, saturating
    path = tmp_path / "flash.tif"
    tifffile.imwrite(path, np.stack([clean[0] * 30] + clean[1:]), imagej=True, metadata={"axes": "TYX"})
    report = curate_path(path)
    alone = score_frames(clean[1:])
    assert alone["clipped"].iloc[7] > 0.01
    assert report["clipped"].iloc[8] == pytest.approx(alone["clipped"].iloc[7])
