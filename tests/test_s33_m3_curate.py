"""Curation of 16-bit movies (the black floor in the input's own grey levels) and the per-frame measures' faster
paths, which must give the numbers of the plain formulas exactly."""

from __future__ import annotations

import numpy as np
import pytest

from devolens.curate.frames import (
    Thresholds,
    _block_mean,
    _pixel_noise,
    _red_scores,
    black_or_dark,
    frame_signal,
    score_frames,
)

from curate_synth import synth_sequence


def _flags(report) -> dict[int, str]:
    return {int(r.frame): r.flag for r in report.itertuples() if r.flagged}


def _twelve_bit(frames: list[np.ndarray], contrast: float, seed: int = 0) -> list[np.ndarray]:
    """The green plane of ``frames`` as a 12-bit camera saves it in 16 bits: an offset of 400 counts, the nuclei
    ``contrast`` counts above it, noise of 6 counts."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        g = f[..., 1].astype(float)
        bg = float(np.median(g))
        img = 400 + (g - bg) / (np.percentile(g, 99.5) - bg) * contrast + rng.normal(0, 6, g.shape)
        out.append(np.clip(img, 0, 65535).astype(np.uint16))
    return out


# ------------------------------------------------------------------------------------------- 16-bit black floor
@pytest.mark.parametrize("contrast", [60, 200])
def test_a_dim_twelve_bit_movie_is_not_black_but_its_lens_cap_frame_is(contrast):
    """A 12-bit camera's dim movie of clear nuclei (60 or 200 counts above the background, 10-33x the noise): the
    block contrast is a fraction of an 8-bit grey level, under the old floor of one 8-bit level, and every frame
    was flagged black. The floor is now one of the input's own grey levels; the frame of noise alone (a lens
    cap) stays black by its peak over its noise."""
    rng = np.random.default_rng(1)
    frames = _twelve_bit(synth_sequence(12, seed=1), contrast)
    frames[5] = np.clip(rng.normal(400, 6, frames[5].shape), 0, 65535).astype(np.uint16)
    report = score_frames(frames)
    assert report["contrast"].drop(index=5).max() < 1.0  # under one 8-bit level: the old floor
    assert _flags(report) == {5: "black"}
    signals = [frame_signal(f) for f in frames]
    assert signals[0]["grey_step"] == pytest.approx(1 / 257)
    assert list(np.flatnonzero(black_or_dark(signals))) == [5]  # what `population --monotone` reads


def test_eight_bit_values_saved_as_sixteen_bit_are_not_black():
    """Fiji's Image > Type > 16-bit of an 8-bit movie (every pixel at most 255): scaled by 1/257, its contrast is
    under one 8-bit level, and every frame was black."""
    frames = [f[..., 1].astype(np.uint16) for f in synth_sequence(10, seed=2)]
    frames[4] = frames[4] // 5  # a dimmed frame is still dark
    assert _flags(score_frames(frames)) == {4: "dark"}


def test_eight_bit_and_float_input_keep_the_eight_bit_floor():
    """A frame whose block contrast is under one 8-bit level is black in 8-bit and float input, as before; the
    floor of a signal dict without ``grey_step`` (older callers) is one 8-bit level too."""
    faint = np.full((128, 160), 3, np.uint8)
    faint[60:68, 70:78] = 4  # a square one grey level up in a noiseless frame: no noise to judge it by (peak inf)
    frames = [f[..., 1] for f in synth_sequence(8, seed=3)]
    frames[3] = faint
    assert frame_signal(faint)["peak_snr"] == np.inf and frame_signal(faint)["contrast"] < 1
    assert _flags(score_frames(frames)).get(3) == "black"
    as_float = [f.astype(np.float32) / 255 for f in frames]
    assert _flags(score_frames(as_float)).get(3) == "black"
    signals = [frame_signal(f) for f in _twelve_bit(synth_sequence(6, seed=4), 200)]
    for s in signals:
        del s["grey_step"]
    assert black_or_dark(signals).all()


# ------------------------------------------------------------------------------ faster paths, the same numbers
def _float_block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    h, w = (a.shape[0] // factor) * factor, (a.shape[1] // factor) * factor
    return a[:h, :w].reshape(h // factor, factor, w // factor, factor).sum(axis=(1, 3), dtype=np.float32) / np.float32(
        factor * factor)


@pytest.mark.parametrize("factor", [2, 3, 7, 8, 11, 17, 64])
def test_block_means_of_whole_numbers_are_the_float_sums(factor):
    """uint8 and boolean planes are summed as integers, rows first: bit for bit the float32
    reduction (exact for whole numbers whose block sums stay under 2**24), also where the block count is no power
    of two (1080-row video: blocks of 17)."""
    rng = np.random.default_rng(factor)
    planes = [rng.integers(0, 256, (200, 301), dtype=np.uint8), rng.random((150, 260)) < 0.3,
              np.full((70, 90), 255, np.uint8)]
    for p in planes:
        got = _block_mean(p, factor)
        assert got.dtype == np.float32 and np.array_equal(got, _float_block_mean(p, factor))
    wide = rng.integers(0, 65536, (100, 140)).astype(np.uint16)  # other integers: the float reduction
    assert np.array_equal(_block_mean(wide, factor), _float_block_mean(wide, factor))


def test_pixel_noise_of_whole_grey_levels_is_the_int32_reading():
    """uint8 and uint16 rows are differenced in their own type (larger minus smaller): the same counts as the
    int32 differences."""
    rng = np.random.default_rng(5)
    for plane in (np.clip(rng.normal(40, 9, (256, 300)), 0, 255).astype(np.uint8),
                  rng.integers(0, 766, (256, 300)).astype(np.uint16), np.zeros((8, 5), np.uint8)):
        for step in (1, 4):
            rows = plane[::step]
            d = np.abs(rows[:, 4:].astype(np.int32) - rows[:, :-4]).ravel()
            counts = np.cumsum(np.bincount(d))
            expected = 1.4826 * float(np.searchsorted(counts, 0.5 * d.size)) / np.sqrt(2.0)
            assert _pixel_noise(plane, row_step=step) == pytest.approx(expected, abs=0)


@pytest.mark.parametrize("delta", [-10.0, 0.0, 40.0, 100.0])
def test_red_blocks_follow_the_red_excess_rule_for_any_red_delta(delta):
    """The red mask read from the brightest channel minus the brighter of green and blue (no int16 copies) is the
    rule's ``red - max(green, blue) > red_delta``, for a negative ``red_delta`` too."""
    rng = np.random.default_rng(6)
    img = rng.integers(0, 90, (128, 160, 3), dtype=np.uint8)
    img[30:62, 40:80, 0] = 250  # a red patch (no thin line)
    img[80:100, 100:130, 0] = 120  # a weaker one
    th = Thresholds(red_delta=delta)
    r, g, b = (np.ascontiguousarray(img[..., c]) for c in range(3))
    mask = r.astype(int) - np.maximum(g, b) > delta
    expected = _float_block_mean(mask.astype(np.float32), th.patch_block) >= th.patch_density
    others = np.maximum(g, b)
    for got in (_red_scores(r, g, b, th), _red_scores(r, g, b, th, others, np.maximum(r, others))):
        assert got[0] == 0.0 and np.array_equal(got[1], expected)
