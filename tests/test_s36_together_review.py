"""write_together after review: a stop held while the outputs were put in place says they are complete; an output
that is a folder is refused as one; the previous output is never missing while the new one is put in place (kept
aside by a hard link: a process killed outright between the two steps left no output at all)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from devolens.errors import DevolensError
from devolens.io import together
from devolens.io.atomic import StoppedAfterCommit
from devolens.io.together import write_together


def _writer(text):
    return lambda tmp: tmp.write_text(text)


def _old(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "a.json"
    a.write_text("OLD")
    b.write_text("OLDREC")
    return a, b


def test_a_stop_during_the_renames_says_the_outputs_are_complete(tmp_path, monkeypatch):
    a, b = _old(tmp_path)
    real = os.replace
    sent = []

    def replace(src, dst):
        if not sent:
            sent.append(True)
            signal.raise_signal(signal.SIGINT)  # held: handed over once the renames are done
        return real(src, dst)

    monkeypatch.setattr(together.os, "replace", replace)
    with pytest.raises(StoppedAfterCommit) as caught:
        write_together({a: _writer("NEW"), b: _writer("NEWREC")})
    assert sent and a.read_text() == "NEW" and b.read_text() == "NEWREC"
    assert str(caught.value) == f"interrupted after the outputs were written: {a} and the files written with it are complete"
    assert caught.value.signum == signal.SIGINT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json"]


def test_an_output_that_is_a_folder_is_refused_as_one(tmp_path):
    (tmp_path / "a.json").mkdir()
    with pytest.raises(DevolensError, match="Is a directory"):
        write_together({tmp_path / "a.csv": _writer("NEW"), tmp_path / "a.json": _writer("REC")})
    assert not (tmp_path / "a.csv").exists()


def test_the_previous_output_is_there_while_the_new_one_is_put_in_place(tmp_path, monkeypatch):
    a, b = _old(tmp_path)
    real = os.replace
    seen = []

    def replace(src, dst):
        if str(dst) == str(a):  # the moment before the new file takes the output's name
            seen.append(a.read_text())
        return real(src, dst)

    monkeypatch.setattr(together.os, "replace", replace)
    write_together({a: _writer("NEW"), b: _writer("NEWREC")})
    assert seen == ["OLD"] and a.read_text() == "NEW"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json"]


def test_a_refused_rename_puts_every_previous_output_back(tmp_path, monkeypatch):
    a, b = _old(tmp_path)
    real = os.replace

    def replace(src, dst):
        if str(dst) == str(b) and "tmp" in os.path.basename(src):
            raise PermissionError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(together.os, "replace", replace)
    with pytest.raises(DevolensError):
        write_together({a: _writer("NEW"), b: _writer("NEWREC")})
    assert a.read_text() == "OLD" and b.read_text() == "OLDREC"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json"]


def test_without_hard_links_the_output_is_moved_aside_and_put_back(tmp_path, monkeypatch):
    a, b = _old(tmp_path)

    def no_link(*args, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(together.os, "link", no_link)
    write_together({a: _writer("NEW"), b: _writer("NEWREC")})
    assert a.read_text() == "NEW" and b.read_text() == "NEWREC"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json"]
