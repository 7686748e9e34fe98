"""Synthetic timelapses for the curation tests: green blurry nuclei on black, 8-bit RGB,
with artifacts injected by hand (independent of the renderer)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIZE = (128, 160)


def synth_sequence(n: int = 40, size=SIZE, seed: int = 0, reporter: bool = True,
                   counts: list[int] | None = None) -> list[np.ndarray]:
    """A drifting, slowly filling embryo of blurry green nuclei, 8-bit RGB, with noise.

    With ``reporter`` a few nuclei also glow red, persistently (a real red reporter),
    which must not be mistaken for a red-patch artifact. ``counts``: the number of nuclei
    in each frame (default: 4 rising evenly to 14).
    """
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    n_blobs = 14 if counts is None else max(14, max(counts))
    pos = np.column_stack([rng.uniform(0.3 * h, 0.7 * h, n_blobs), rng.uniform(0.25 * w, 0.75 * w, n_blobs)])
    bright = rng.uniform(120, 230, n_blobs)
    frames = []
    for t in range(n):
        pos = pos + rng.normal(0, 1.5, pos.shape)
        green = np.zeros((h, w), np.float32)
        red = np.zeros((h, w), np.float32)
        k = 4 + int(10 * t / max(1, n - 1)) if counts is None else counts[t]  # more nuclei as time goes on
        for j, ((y, x), b) in enumerate(zip(pos[:k], bright[:k])):
            blob = b * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 3.5**2))
            green += blob
            if reporter and j in (1, 3):
                red += 1.2 * blob
                green -= 0.5 * blob
        g = np.clip(ndimage.gaussian_filter(green, 1.0) + rng.normal(3, 2, (h, w)), 0, 255)
        r = np.clip(ndimage.gaussian_filter(red, 1.0) + rng.normal(2, 2, (h, w)), 0, 255)
        bl = np.clip(rng.normal(1, 1, (h, w)), 0, 255)
        frames.append(np.stack([r, g, bl], -1).astype(np.uint8))
    return frames


def inject(frames: list[np.ndarray], kind: str, i: int, seed: int = 1) -> None:
    """Corrupt frame ``i`` in place with one artifact ``kind``."""
    rng = np.random.default_rng(seed)
    f = frames[i]
    h, w = f.shape[:2]
    if kind == "black":
        frames[i] = np.clip(rng.normal(1, 1, f.shape), 0, 255).astype(np.uint8)
    elif kind == "dark":
        frames[i] = (f.astype(np.float32) * 0.3).astype(np.uint8)
    elif kind == "red_line":
        g = f.copy()
        y = int(rng.integers(5, h - 5))
        g[y : y + 2, :, 0] = 220
        frames[i] = g
    elif kind == "red_col":
        g = f.copy()
        x = int(rng.integers(5, w - 5))
        g[:, x, 0] = 200
        frames[i] = g
    elif kind == "red_patch":
        g = f.copy()
        y, x = int(rng.integers(10, h - 30)), int(rng.integers(10, w - 30))
        g[y : y + 22, x : x + 24, 0] = 230
        g[y : y + 22, x : x + 24, 1] //= 3
        frames[i] = g
    elif kind == "duplicate":
        frames[i] = frames[i - 1].copy()
    else:  # pragma: no cover - test misuse
        raise ValueError(kind)
