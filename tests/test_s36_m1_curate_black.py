"""The curator's black test and a 1-cell embryo: the first frames of a timelapse hold one dim nucleus (a few hundred
pixels at 5-10 times the noise) in a dark field. Its block contrast (99th percentile of the block means) reads the
noise, since the nucleus covers under 1 % of the blocks, and such frames were black: left out by ``population
--monotone``, skipped by ``--skip-flagged``. They now read the brightest 2 x 2 blocks (``spot``); a lens cap (noise,
with hot pixels or not) and a video's black frame stay black. Hot pixels are left out of the measures: a 12-bit lens
cap with a few at 4095 read a ``peak_snr`` of hundreds and was no black frame."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from devolens.curate.frames import black_or_dark, curate_path, frame_signal, score_frames

SHAPE = (256, 320)
#: a 1-cell embryo's six frames, then two, four ... 24 nuclei
COUNTS = [1] * 6 + [2] * 4 + [4] * 4 + [8] * 4 + [16] * 4 + [24] * 4


def _noise_of(dtype) -> tuple[float, float]:
    """(background, noise) of the synthetic camera: 8-bit 10 +- 2 grey levels, 12-bit 400 +- 15 counts."""
    return (10.0, 2.0) if dtype == np.uint8 else (400.0, 15.0)


def _cast(img: np.ndarray, dtype) -> np.ndarray:
    return np.clip(np.round(img), 0, 255 if dtype == np.uint8 else 4095).astype(dtype)


def _embryo(dtype, later: float = 40.0, seed: int = 0) -> list[np.ndarray]:
    """Frames of a dividing embryo (:data:`COUNTS` nuclei of 10 px radius, blurred, drifting slowly): the frames of
    one nucleus dim (5-10 times the noise above the background), the later nuclei ``later`` times it."""
    rng = np.random.default_rng(seed)
    bg, sigma = _noise_of(dtype)
    h, w = SHAPE
    yy, xx = np.mgrid[:h, :w]
    pos = np.column_stack([rng.uniform(0.35 * h, 0.65 * h, 32), rng.uniform(0.3 * w, 0.7 * w, 32)])
    dim = iter([5, 6, 8, 10, 5, 7])
    frames = []
    for k in COUNTS:
        pos += rng.normal(0, 0.7, pos.shape)
        disc = np.zeros(SHAPE)
        for y, x in pos[:k]:
            disc = np.maximum(disc, ((yy - y) ** 2 + (xx - x) ** 2) < 10.0**2)
        amp = next(dim) if k == 1 else later
        frames.append(_cast(bg + amp * sigma * ndimage.gaussian_filter(disc, 2.0) + rng.normal(0, sigma, SHAPE),
                            dtype))
    return frames


def _lens_cap(rng, dtype, hot: int = 0) -> np.ndarray:
    """The camera's noise alone, with ``hot`` hot pixels at the top of its range (255, or a 12-bit camera's 4095)."""
    bg, sigma = _noise_of(dtype)
    img = rng.normal(bg, sigma, SHAPE)
    img.flat[rng.choice(img.size, hot, replace=False)] = 4095 if dtype == np.uint16 else 255
    return _cast(img, dtype)


def _flags(report) -> dict[int, str]:
    return {int(r.frame): r.flag for r in report.itertuples() if r.flagged}


@pytest.mark.parametrize("dtype,later", [(np.uint8, 40.0), (np.uint16, 40.0), (np.uint16, 120.0)])
def test_a_single_dim_nucleus_is_no_black_frame(dtype, later):
    """8-bit: the block contrast of the 1-cell frames is under one grey level (was black); 12-bit with bright later
    nuclei: under 1 % of the sequence's median contrast (was black). Neither flag nor ``--monotone``'s black test."""
    frames = _embryo(dtype, later)
    signals = [frame_signal(f) for f in frames]
    assert all(s["spot"] > 4 * (1.0 if dtype == np.uint8 else 1 / 257) for s in signals[:6])
    assert _flags(score_frames(frames)) == {}
    assert not black_or_dark(signals).any()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lens_caps_amid_the_embryo_stay_black(dtype):
    """Noise alone, and noise with 8 hot pixels, between the 1-cell frames and later: black, and nothing else."""
    rng = np.random.default_rng(3)
    frames = _embryo(dtype)
    frames[3], frames[12] = _lens_cap(rng, dtype), _lens_cap(rng, dtype, hot=8)
    assert _flags(score_frames(frames)) == {3: "black", 12: "black"}
    assert list(np.flatnonzero(black_or_dark([frame_signal(f) for f in frames]))) == [3, 12]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("hot", [0, 8, 16])
def test_a_folder_of_lens_caps_is_black(dtype, hot):
    """A camera warming up behind its cap, alone: black however many hot pixels (up to 16). A 12-bit one with hot
    pixels at 4095 read a peak_snr of hundreds (the hot pixels' blocks) and no frame was black."""
    rng = np.random.default_rng(5)
    frames = [_lens_cap(rng, dtype, hot) for _ in range(4)]
    assert _flags(score_frames(frames)) == {i: "black" for i in range(4)}
    assert all(frame_signal(f)["peak_snr"] < 12 for f in frames)


def test_a_videos_black_frame_with_specks_stays_black():
    """All 0 but a few 2 x 2 specks left by compression (at 1, or at 13: a near-lossless encoder's): black."""
    rng = np.random.default_rng(0)
    frames = _embryo(np.uint8)[6:]
    for i, value in ((3, 1), (7, 13)):
        black = np.zeros(SHAPE, np.uint8)
        for y, x in rng.integers(0, 250, (6, 2)):
            black[y:y + 2, x:x + 2] = value
        frames[i] = black
        assert frame_signal(black)["spot"] < 1
    assert _flags(score_frames(frames)) == {3: "black", 7: "black"}


def test_curate_frames_on_a_folder_and_a_video_of_the_embryo(tmp_path):
    """As `devolens curate frames` reads them: a folder of 8-bit PNGs and one of 12-bit TIFFs (with bright later
    nuclei), and an H.264 video, each with a lens cap among the 1-cell frames and one with hot pixels later: the
    lens caps are its only black frames."""
    import tifffile

    from devolens.io.images import write_png
    from devolens.io.video import write_video

    rng = np.random.default_rng(7)
    for dtype, later in ((np.uint8, 40.0), (np.uint16, 120.0)):
        frames = _embryo(dtype, later, seed=1)
        frames[2], frames[15] = _lens_cap(rng, dtype), _lens_cap(rng, dtype, hot=8)
        folder = tmp_path / f"frames_{np.dtype(dtype).name}"
        folder.mkdir()
        for t, f in enumerate(frames):
            if dtype == np.uint8:
                write_png(f, folder / f"emb_t{t:03d}.png")
            else:
                tifffile.imwrite(folder / f"emb_t{t:03d}.tif", f)
        assert _flags(curate_path(folder)) == {2: "black", 15: "black"}, dtype
    frames = _embryo(np.uint8, seed=2)
    frames[2], frames[15] = _lens_cap(rng, np.uint8), _lens_cap(rng, np.uint8, hot=8)
    movie = write_video([np.repeat(f[..., None], 3, axis=2) for f in frames], tmp_path / "embryo.mp4", fps=4)
    assert _flags(curate_path(movie)) == {2: "black", 15: "black"}


def test_spot_reads_an_object_of_two_by_two_blocks_not_a_lone_block():
    from devolens.curate.frames import _spot

    blocks = np.zeros((8, 8), np.float32)
    blocks[3, 3] = 50.0  # a hot pixel's block
    assert _spot(blocks, 0.0) == 0.0
    blocks[4:6, 5:7] = [[6.0, 7.0], [5.0, 9.0]]  # a nucleus over 2 x 2 blocks: its dimmest
    assert _spot(blocks, 0.0) == 5.0
    assert _spot(-blocks, 0.0) == 5.0  # a dark object on a bright ground, as the noise test reads both sides
