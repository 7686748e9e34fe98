"""Small tidy tables for the render tests (no shared data needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

NAMES = ["ABal", "ABar", "ABpl", "ABpr", "MSa", "MSp", "Ea", "Ep", "Ca", "Cp", "D", "P4", "Z2", "Z3", "Nuc7"]


def make_table(n_times: int = 4, n_cells: int = 15, seed: int = 0, embryo: str = "toy") -> pd.DataFrame:
    """A tidy table of one embryo in an EPIC-like frame (x, y px; z planes; size px)."""
    rng = np.random.default_rng(seed)
    rows = []
    names = (NAMES * (n_cells // len(NAMES) + 1))[:n_cells]
    names = [n if i < len(NAMES) else f"{n}{'a' * (i // len(NAMES))}" for i, n in enumerate(names)]
    # nuclei inside an ellipsoid centred at (380, 380, 38 planes), semi-axes 260, 160 px, 28 planes
    pts = []
    while len(pts) < n_cells:
        p = rng.uniform(-1, 1, 3)
        if (p**2).sum() < 0.8:
            pts.append(p)
    pts = np.array(pts)
    for t in range(1, n_times + 1):
        k = n_cells if t < n_times else max(n_cells - 3, 1)  # last time: a few cells fewer
        for i in range(k):
            x = 380 + 260 * pts[i, 0] + t
            y = 380 + 160 * pts[i, 1]
            z = 38 + 26 * pts[i, 2]
            rows.append((embryo, t, names[i], x, y, z, 60.0 + 10 * rng.random()))
    df = pd.DataFrame(rows, columns=["embryo", "time", "cell", "x", "y", "z", "size"])
    df.attrs.update({"format": "tidy", "zscale": 5.7, "ellipse": None, "time_seconds": None,
                     "seconds_per_time": 90.0, "axis": None})
    return df


def blob_frame(size: int | tuple[int, int] = (128, 160), n: int = 12, radius: int = 8, margin: float | None = None,
               background: float = 20.0, seed: int = 0) -> np.ndarray:
    """Bright filled discs (nuclei, 0.6-1 x 200 grey levels) at random on a noisy background (``background`` +- 3),
    uint8; centres at least ``margin`` (default ``radius``) from the edges."""
    h, w = (size, size) if isinstance(size, int) else size
    m = radius if margin is None else margin
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.zeros((h, w), np.float32)
    for _ in range(n):
        cy, cx = rng.uniform(m, h - m), rng.uniform(m, w - m)
        img = np.maximum(img, ((yy - cy) ** 2 + (xx - cx) ** 2 < radius ** 2) * rng.uniform(0.6, 1.0))
    return (img * 200 + rng.normal(background, 3, (h, w))).clip(0, 255).astype(np.uint8)
