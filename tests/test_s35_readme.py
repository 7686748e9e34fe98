"""README's "Coming from DevoLearn" Python example runs as written (on a small image and video of our own)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _blobs(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.full((h, w), 20.0)
    for _ in range(6):
        cy, cx = rng.uniform(15, h - 15), rng.uniform(15, w - 15)
        img += 180 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 5.0 ** 2))
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def test_the_devolearn_example_runs(tmp_path, monkeypatch):
    import imageio.v2 as iio

    from devolens.io.video import write_video

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Coming from DevoLearn"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "frame.png" in code and "movie.mp4" in code
    iio.imwrite(tmp_path / "frame.png", _blobs(0))
    write_video((np.repeat(_blobs(i)[..., None], 3, axis=2) for i in range(4)), tmp_path / "movie.mp4", fps=5)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert scope["result"].labels.shape == (96, 128)
    assert len(scope["rows"]) == 4 and {"A", "E", "M", "P", "C", "D", "Z", "total"} <= set(scope["rows"][0])
