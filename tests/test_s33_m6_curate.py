"""Curation of float and wide-integer frames (read in the data's own range, not black) and saturation counted at the
top of the range a sequence shows (12-bit data in 16-bit files, a camera saturating below its bit depth)."""

from __future__ import annotations

import numpy as np
import pytest

from devolens.curate.frames import black_or_dark, frame_signal, score_frames

from curate_synth import synth_sequence


def _flags(report) -> dict[int, str]:
    return {int(r.frame): r.flag for r in report.itertuples() if r.flagged}


def _green(n: int = 12, seed: int = 1) -> list[np.ndarray]:
    """The green plane of a synthetic timelapse, 0..255 as float (nuclei up to ~230 over a background of ~3)."""
    return [f[..., 1].astype(np.float32) for f in synth_sequence(n, seed=seed)]


def _one_pixel_over(g: np.ndarray) -> np.ndarray:
    out = (g / 255).astype(np.float32)
    out[0, 0] = 1.02  # a 0..1 image a deconvolution or a percentile normalisation took past 1 in one pixel
    return out


# ------------------------------------------------------------------------------------- float and int32 frames
@pytest.mark.parametrize("encode", [
    _one_pixel_over,
    lambda g: (g * 16 + 1000).astype(np.float32),  # camera counts with an offset, as float (flat-field corrected)
    lambda g: (g * 1000).astype(np.float32),  # arbitrary units far above 255
], ids=["unit_one_pixel_over_1", "float_counts_offset_1000", "float_big_units"])
def test_float_frames_are_read_in_their_own_range_not_black(encode):
    """Float frames were scaled by 255 when their maximum was at most 1, else taken as 8-bit levels and clipped at
    255: one pixel at 1.02 shrank a 0..1 image to contrast 0.7 (black), camera counts with an offset of 1000 all
    read 255 (contrast 0: black). They are read in their sequence's range: as the 8-bit frames are."""
    green = _green()
    eight = score_frames([g.astype(np.uint8) for g in green])
    report = score_frames([encode(g) for g in green])
    assert _flags(eight) == {} and _flags(report) == {}
    assert report["contrast"].min() > 40  # nuclei of ~200 levels over the background, in grey levels of the range


def test_a_dimmed_float_frame_is_dark_in_a_float_movie():
    """The frames of a float sequence are compared in one range (its first frame's): a frame whose light is dimmed
    to 0.3 x is flagged dark, as in the 8-bit movie (float counts with an offset of 50, clipped at 255, had hidden it:
    no flag); :func:`black_or_dark` on frames measured one by one (each in its own range, as `population
    --monotone` measures them) finds it too."""
    green = _green(14, seed=3)
    green[7] = green[7] * 0.3
    eight = score_frames([g.astype(np.uint8) for g in green])
    counts = [(g * 16 + 50).astype(np.float32) for g in green]
    assert _flags(eight) == {7: "dark"}
    assert _flags(score_frames(counts)) == {7: "dark"}
    signals = [frame_signal(c) for c in counts]
    assert list(np.flatnonzero(black_or_dark(signals))) == [7]
    assert len({s["range"] for s in signals}) > 1  # (the dimmed frame's own range is lower: brought to the others')


def test_int32_frames_measure_as_sixteen_bit_ones():
    """An int32 TIFF of 12-bit data was scaled by 255 / 2**31 (contrast 0.00 in the report, every measure near
    zero); it reads as the same data in a uint16 file."""
    green = _green(8)
    wide = score_frames([(g * 16 + 100).astype(np.int32) for g in green])
    sixteen = score_frames([(g * 16 + 100).astype(np.uint16) for g in green])
    for column in ("level", "p99", "contrast", "clipped"):
        np.testing.assert_allclose(wide[column].to_numpy(float), sixteen[column].to_numpy(float), rtol=1e-6)
    assert wide["contrast"].min() > 1 and _flags(wide) == _flags(sixteen) == {}
    signal = frame_signal((green[0] * 16 + 100).astype(np.int32))
    assert signal["grey_step"] == pytest.approx(255 / 65535) and signal["range"] is None  # (a fixed scale)


# ------------------------------------------------------------------------------------- saturation
def _flash(green: list[np.ndarray], at: int, gain: float = 3.0) -> list[np.ndarray]:
    out = [g.copy() for g in green]
    out[at] = out[at] * gain
    return out


@pytest.mark.parametrize("bits", [12, 14])
def test_a_lamp_flash_saturating_twelve_or_fourteen_bit_data_is_bright(bits):
    """A lamp flash (gain x3) saturates the nuclei of a 12-bit (14-bit) camera at 4095 (16383) counts, in a
    16-bit file: clipped was counted at 254/255 of 65535, never reached (clipped 0.0, no flag), while the same
    movie in 8 bits was flagged bright. Clipping is counted at the top of the bit depth the sequence shows."""
    green = _flash(_green(14, seed=2), 7)
    top = 2 ** bits - 1
    eight = score_frames([np.clip(g, 0, 255).astype(np.uint8) for g in green])
    deep = score_frames([np.clip(g * (top / 255) + 100, 0, top).astype(np.uint16) for g in green])
    assert _flags(eight) == {7: "bright"}
    assert _flags(deep) == {7: "bright"}
    assert deep["clipped"].iloc[7] >= 0.01 and deep["clipped"].drop(index=7).max() < 0.01
    # the same flash in an int32 file and as float counts
    assert _flags(score_frames([np.clip(g * 16 + 100, 0, 4095).astype(np.int32) for g in green])) == {7: "bright"}
    assert _flags(score_frames([np.clip(g * 16 + 100, 0, 4095).astype(np.float32) for g in green])) == {7: "bright"}


def test_saturation_below_the_bit_depth_counts_at_the_sequences_highest_value():
    """A camera whose full well saturates at 3000 counts in a 16-bit file (or data converted after saturating):
    the flash frame's nuclei pile up at the sequence's highest value, which counts as the top of its range."""
    green = _flash(_green(14, seed=2), 7)
    frames = [np.clip(g * 16 + 100, 0, 3000).astype(np.uint16) for g in green]
    report = score_frames(frames)
    assert _flags(report) == {7: "bright"}
    assert report["clipped"].iloc[7] >= 0.01


def test_eight_bit_clipping_is_the_pixels_at_254_or_255_only():
    """8-bit input: clipped is the fraction at 254 or 255 in each frame, whatever the sequence's highest value (a
    movie whose brightest frame tops out at 200 has nothing clipped)."""
    green = _green(10, seed=4)
    frames = [np.clip(g, 0, 200).astype(np.uint8) for g in green]
    frames[3] = np.clip(green[3] * 2, 0, 255).astype(np.uint8)
    report = score_frames(frames)
    expected = [float(np.count_nonzero(f >= 254)) / f.size for f in frames]
    np.testing.assert_array_equal(report["clipped"].to_numpy(float), expected)
    plateau = score_frames([np.clip(g, 0, 200).astype(np.uint8) for g in green])
    assert plateau["clipped"].max() == 0.0
