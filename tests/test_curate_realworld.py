"""Clean real-world recordings must not be flagged by the curator (false positives drop
good frames under ``--skip-flagged``): here, a strong red reporter channel."""

from __future__ import annotations

import numpy as np

from devolens.curate.frames import Thresholds, _red_scores, score_frames


def _reporter_frame(rng: np.random.Generator, h: int = 256, w: int = 320, p: float = 0.3) -> np.ndarray:
    """Dim green nuclei and a red reporter covering, row by row and column by column,
    about ``p`` of the frame (red pixels scattered over the whole embryo)."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 1] = rng.integers(0, 30, (h, w))
    for _ in range(40):
        y, x = rng.integers(8, h - 8), rng.integers(8, w - 8)
        img[y - 5:y + 5, x - 5:x + 5, 1] = 150
    red = rng.random((h, w)) < p
    img[..., 0] = np.where(red, 230, 0)
    img[red, 1] = np.minimum(img[red, 1], 60)
    return img


def test_broad_red_reporter_is_no_red_line():
    # row/column red fractions hover around line_fraction (0.3): thin runs above it are
    # fragments of a plateau, not lines
    rng = np.random.default_rng(1)
    th = Thresholds()
    for _ in range(3):
        img = _reporter_frame(rng)
        line, _ = _red_scores(img[..., 0], img[..., 1], img[..., 2], th)
        assert line == 0.0


def test_red_line_over_red_reporter_still_found():
    rng = np.random.default_rng(2)
    th = Thresholds()
    img = _reporter_frame(rng)
    img[100:102, :] = (255, 0, 0)  # a full-width two-row red line, as the renderer draws
    line, _ = _red_scores(img[..., 0], img[..., 1], img[..., 2], th)
    assert line > 0.9
    img = _reporter_frame(rng)
    img[:, 200:203] = (255, 0, 0)  # a column line
    line, _ = _red_scores(img[..., 0], img[..., 1], img[..., 2], th)
    assert line > 0.9


def test_reporter_movie_red_line_only_on_the_line_frame():
    rng = np.random.default_rng(3)
    frames = [_reporter_frame(rng, p=0.27 + 0.06 * (i % 2)) for i in range(12)]
    frames[6] = frames[6].copy()
    frames[6][60:63, :] = (255, 0, 0)
    rep = score_frames(frames)
    assert list(rep.loc[rep["red_line"], "frame"]) == [6]
