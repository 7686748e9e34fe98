"""devolens.cli.main builds the click command of the Typer app once a process, and again when the app changes."""

from __future__ import annotations

from pathlib import Path

import typer

from devolens import cli
from devolens.cli import app, main


def _counting(monkeypatch) -> list:
    built: list = []
    real = typer.main.get_command

    def get_command(a):
        built.append(a)
        return real(a)

    monkeypatch.setattr(cli.typer.main, "get_command", get_command)
    return built


def test_main_builds_the_click_command_once_for_many_calls(monkeypatch, capsys):
    built = _counting(monkeypatch)
    for _ in range(3):
        assert main(["--help"]) == 0
    assert main(["segment", "nuclei", "--no-such-option"]) == 2  # a usage error walks the same command
    assert len(built) == 1
    assert "Usage" in capsys.readouterr().out


def test_a_command_added_after_a_call_is_found_and_gone_once_removed(monkeypatch, capsys):
    built = _counting(monkeypatch)
    assert main(["--help"]) == 0
    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))
    said = []

    @app.command("zz-later")
    def _later(out: Path = typer.Option(..., "--out")) -> None:
        said.append(out.name)

    assert main(["zz-later", "--out", "x.csv"]) == 0 and said == ["x.csv"]
    assert len(built) == 2  # built again for the new command, once
    monkeypatch.undo()  # the app as it was
    capsys.readouterr()
    assert main(["zz-later", "--out", "x.csv"]) == 2
    assert "zz-later" in capsys.readouterr().err and said == ["x.csv"]
