"""The curator's black test and burnt-in graphics: a black frame carrying a scale bar and its label (Fiji's
"Flatten": a 4 x 60 or 10 x 80 px bar at 255 and "10 um" beside it, no noise, sharp or anti-aliased edges) read a
``spot`` (the single-nucleus measure) of 30-60 grey levels and was no black frame: the first black frames of a movie
went unflagged, and ``black_or_dark`` returned none. Such graphics are now left out of ``spot`` (flat plateaus with
sharp edges, strokes thinner than a nucleus); a dim nucleus, and a saturated one, still count."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from test_s36_m1_curate_black import _embryo, _flags, _noise_of

from devolens.curate.frames import black_or_dark, curate_path, frame_signal, score_frames

#: a 5 x 7 bitmap font for the label ("10 um"), 1-pixel strokes
_GLYPHS = {
    "1": ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."],
    "0": [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."],
    "u": [".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"],
    "m": [".....", ".....", "##.#.", "#.#.#", "#.#.#", "#.#.#", "#.#.#"],
    " ": ["....."] * 7,
}


def _label(text: str, scale: int = 1) -> np.ndarray:
    """``text`` in :data:`_GLYPHS` (0..1), each pixel ``scale`` x ``scale``."""
    rows = [np.array([[c == "#" for c in row] for row in _GLYPHS[ch]], float) for ch in text]
    glyphs = np.hstack([np.pad(g, ((0, 0), (0, 1))) for g in rows])
    return np.kron(glyphs, np.ones((scale, scale)))


def _overlay(img: np.ndarray, bar: tuple[int, int], smooth: bool = False) -> np.ndarray:
    """``img`` with a scale bar of ``bar`` (height, width) pixels at 255 near its lower right corner and "10 um"
    above it at 255: sharp, or (``smooth``) anti-aliased as a renderer draws it (drawn 4 times larger, averaged)."""
    out = img.copy()
    h, w = out.shape
    top = 255 if out.dtype == np.uint8 else 65535
    bh, bw = bar
    out[h - 20 - bh:h - 20, w - 20 - bw:w - 20] = top
    text = _label("10 um", 4)
    if smooth:
        text = text.reshape(text.shape[0] // 4, 4, text.shape[1] // 4, 4).mean(axis=(1, 3))
    else:
        text = text[::4, ::4]
    th, tw = text.shape
    y, x = h - 26 - bh - th, w - 20 - bw
    patch = out[y:y + th, x:x + tw].astype(float)
    out[y:y + th, x:x + tw] = np.round(patch + (top - patch) * text).astype(out.dtype)
    return out


#: Fiji's frames: the bar and label cover under 1 % of the blocks the contrast reads (in the 256 x 320 frames of
#: tests/test_s36_m1_curate_black.py they cover more, and the contrast reads them: no black frame, before as now)
BIG = (512, 512)


def _big_embryo(dtype, later: float = 40.0, seed: int = 0) -> list[np.ndarray]:
    """The frames of tests/test_s36_m1_curate_black.py (1-cell frames of one dim nucleus first) in the middle of
    :data:`BIG` frames of the same camera noise."""
    rng = np.random.default_rng(seed + 100)
    bg, sigma = _noise_of(dtype)
    out = []
    for f in _embryo(dtype, later, seed):
        big = np.round(np.clip(rng.normal(bg, sigma, BIG), 0, None)).astype(dtype)
        big[128:128 + f.shape[0], 96:96 + f.shape[1]] = f
        out.append(big)
    return out


OVERLAYS = [((4, 60), False), ((10, 80), False), ((4, 60), True), ((10, 80), True)]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("bar,smooth", OVERLAYS)
def test_a_black_frame_with_a_scale_bar_is_black(dtype, bar, smooth):
    """Alone (its measures, a sequence of such frames, ``black_or_dark``): black; the bar and its label read a spot
    of 30-60 grey levels before."""
    black = _overlay(np.zeros(BIG, dtype), bar, smooth)
    signal = frame_signal(black)
    assert signal["spot"] < 1.0 * signal["grey_step"]
    frames = [black.copy() for _ in range(3)]
    flags = _flags(score_frames(frames))
    assert flags[0] == "black" and all(flags[i] in ("black", "duplicate") for i in (1, 2)), flags
    assert black_or_dark([frame_signal(f) for f in frames]).all()


def test_a_lens_cap_with_a_scale_bar_is_black():
    """An 8-bit camera's noise behind its cap (a block contrast under one grey level), a bar and its label burnt
    in (the drawn graphics' edges noisy on one side): black, as without them. (A 12-bit one's noise reads a block
    contrast of several counts, and the bar a ``peak_snr`` far above its noise: no black frame, before as now.)"""
    rng = np.random.default_rng(4)
    bg, sigma = _noise_of(np.uint8)
    caps = [_overlay(np.round(rng.normal(bg, sigma, BIG)).astype(np.uint8), (10, 80), smooth) for smooth in (0, 1, 0)]
    assert all(frame_signal(f)["spot"] < 1.0 for f in caps)
    assert _flags(score_frames(caps)) == {0: "black", 1: "black", 2: "black"}


@pytest.mark.parametrize("bar,smooth", OVERLAYS)
def test_a_movie_starting_black_under_its_scale_bar(bar, smooth):
    """Three black frames, then the embryo, all under the same bar and label: the black frames are black (they went
    unflagged), the 1-cell embryo's dim nucleus is still no black frame, and nothing else is flagged."""
    frames = [_overlay(f, bar, smooth) for f in [np.zeros(BIG, np.uint8)] * 3 + _big_embryo(np.uint8)]
    assert _flags(score_frames(frames)) == {0: "black", 1: "black", 2: "black"}
    assert list(np.flatnonzero(black_or_dark([frame_signal(f) for f in frames]))) == [0, 1, 2]
    assert all(frame_signal(f)["spot"] > 4 for f in frames[3:9])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_the_dim_nucleus_beside_a_scale_bar_still_counts(dtype):
    """The 1-cell frames of tests/test_s36_m1_curate_black.py (in :data:`BIG` frames) with a bar and its label:
    their spot is the nucleus's (as without the overlay), and none is black."""
    frames = _big_embryo(dtype, 120.0)
    for f in frames[:6]:
        plain = frame_signal(f)["spot"]
        assert frame_signal(_overlay(f, (10, 80)))["spot"] == pytest.approx(plain, rel=0.05)
    marked = [_overlay(f, (4, 60), True) for f in frames]
    assert not black_or_dark([frame_signal(f) for f in marked]).any()


def test_a_saturated_nucleus_is_no_overlay():
    """One bright nucleus clipped at 255 (flat at the top, a blurred and noisy rim) in a camera's dark field: its
    plateau is no drawn graphic, the frame no black one."""
    rng = np.random.default_rng(2)
    h, w = BIG
    yy, xx = np.mgrid[:h, :w]
    disc = (((yy - 120) ** 2 + (xx - 150) ** 2) < 10.0**2).astype(float)
    img = np.clip(np.round(10 + 400 * ndimage.gaussian_filter(disc, 2.0) + rng.normal(0, 2, BIG)), 0, 255)
    frame = img.astype(np.uint8)
    assert np.count_nonzero(frame == 255) > 100
    assert frame_signal(frame)["spot"] > 100
    frames = [frame] + _big_embryo(np.uint8)[6:]
    assert 0 not in _flags(score_frames(frames))


def test_curate_frames_on_a_folder_of_black_frames_with_a_scale_bar(tmp_path):
    """As `devolens curate frames` reads them: a folder of PNGs, three black ones with the bar and label, then the
    embryo with them: the three are black."""
    from devolens.io.images import write_png

    frames = [_overlay(f, (10, 80)) for f in [np.zeros(BIG, np.uint8)] * 3 + _big_embryo(np.uint8, seed=1)]
    for t, f in enumerate(frames):
        write_png(f, tmp_path / f"emb_t{t:03d}.png")
    assert _flags(curate_path(tmp_path)) == {0: "black", 1: "black", 2: "black"}
