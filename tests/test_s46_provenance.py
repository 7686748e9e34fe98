"""Records' inputs (s46): ``render.json`` lists its inputs as the other commands' records do
(:func:`devolens.provenance.input_entry`: path, bytes, sha256, what the digest covers), and a folder's digest is
of its contents alone, whatever spelling of its path a command was given."""

from __future__ import annotations

import json
import os

import numpy as np

from _render_helpers import make_table
from devolens.io.tables import write_tidy
from devolens.provenance import frames_inputs, input_entry


def test_render_json_lists_its_inputs_with_the_shared_entry(tmp_path):
    from devolens.cli import main

    table = tmp_path / "a.csv"
    write_tidy(make_table(n_times=3, n_cells=8, seed=1), table)
    out = tmp_path / "r"
    assert main(["render", str(table), "--out", str(out), "--size", "32", "48", "--seed", "1", "--times", "2"]) == 0
    meta = json.loads((out / "render.json").read_text())
    assert meta["inputs"] and meta["inputs"] == [input_entry(e["path"]) for e in meta["inputs"]]
    first = meta["inputs"][0]
    assert first["path"] == str(table.absolute()) and first["bytes"] == table.stat().st_size
    assert first["sha256_of"] == "file bytes"


def test_a_folders_digest_is_the_same_for_every_spelling_of_its_path(tmp_path, monkeypatch):
    """(Already so before s46, as the review's report said otherwise: the names hashed are relative to the folder.)"""
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(frames / f"f{i}.png")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    spellings = ["../frames", "./../frames", str(frames), str(frames) + os.sep, "../sub/../frames"]
    digests = {frames_inputs(p)[0]["sha256"] for p in spellings} | {input_entry(p)["sha256"] for p in spellings}
    assert len(digests) == 1
    moved = tmp_path / "elsewhere" / "frames2"  # the same files in another folder: the same digest
    moved.parent.mkdir()
    frames.rename(moved)
    assert frames_inputs(moved)[0]["sha256"] in digests
