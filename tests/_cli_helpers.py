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
