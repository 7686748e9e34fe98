"""A throw-away top-level CLI command for tests of the CLI's error and signal contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from devolens.cli import app


@pytest.fixture
def command(monkeypatch):
    """Register a throw-away top-level command ``zz-test`` whose body is ``holder["body"](out)``."""
    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))  # restored afterwards
    holder: dict = {}

    @app.command("zz-test")
    def _zz(out: Path = typer.Option(..., "--out", "-o")) -> None:
        holder["body"](out)

    return holder


def raiser(exc: BaseException):
    """A command body that raises ``exc``."""
    def body(out):
        raise exc

    return body


def blob_frame(h: int = 48, w: int = 70, seed: int = 0, rgb: bool = True):
    """A small frame of five blurred nuclei (uint8): green in RGB, or grey with ``rgb=False``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.zeros((h, w), np.float32)
    for _ in range(5):
        cy, cx = rng.uniform(5, h - 5), rng.uniform(5, w - 5)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20.0)
    g = (np.clip(img, 0, 1) * 220).astype(np.uint8)
    if not rgb:
        return g
    out = np.zeros((h, w, 3), np.uint8)
    out[..., 1] = g
    return out
