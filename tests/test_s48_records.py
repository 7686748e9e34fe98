"""Session 48: records kept as data.

- The AceTree reader records the time points with no nuclei file as data (``attrs["missing_times"]``, runs
  ``(first, last)``), and identify's note on a time gap reads that rather than match the reader's note's words.
- A tidy table read through a symbolic link finds its ``.meta.json`` beside the file the link leads to when there is
  none beside the link (as an EPIC table's companions): ``lineage convert`` of a linked table lost its z scale.
- ``tile make`` hashes each source file once per run (an image labelled twice is two sources of one file).
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
import tifffile

from devolens.cli import main

from _lineage_builders import write_acetree_zip


# ----------------------------------------------------------------------------- 1. AceTree files lost, as data
def _frames(times, n: int = 6) -> dict[int, list[tuple]]:
    return {t: [(1, 100 + 10 * i + t % 7, 50 + 5 * i, 3.0 + i, 12, f"Nuc{i}") for i in range(n)] for t in times}


LOST = "time points 20-40 have no nuclei file: the table skips them (files lost when the series was copied or zipped?)"


def test_acetree_reader_records_the_time_points_without_a_file(tmp_path):
    from devolens.io.tables import read_table

    times = [t for t in range(1, 61) if not 20 <= t <= 40 and t != 50]
    df = read_table(write_acetree_zip(tmp_path / "lost.zip", _frames(times)))
    assert df.attrs["missing_times"] == [(20, 40), (50, 50)]
    whole = read_table(write_acetree_zip(tmp_path / "whole.zip", _frames(range(1, 11))))
    assert whole.attrs["missing_times"] == []
    # a series stepping by 3 (every 3rd frame kept): holes of its step only, as its note says them
    stepped = read_table(write_acetree_zip(tmp_path / "step.zip", _frames([t for t in range(1, 61, 3) if t != 31])))
    assert stepped.attrs["missing_times"] == [(31, 31)]
    # a stray file far off: one run, never 10^8 time points listed
    stray = read_table(write_acetree_zip(tmp_path / "stray.zip", _frames([1, 2, 3, 100_000_000])))
    assert stray.attrs["missing_times"] == [(4, 99_999_999)]


def test_identify_gap_note_reads_the_missing_times_not_the_notes_words():
    from devolens.predict.identity import input_notes

    def gap_note(attrs):
        return [n for n in input_notes({"format": "acetree", "time_breaks": [("e", 19, 41)], **attrs},
                                       command=True) if "time point 41" in n]

    # the reader's note reworded (or gone): the gap is still said as the files lost, in the reader's words
    note = gap_note({"missing_times": [(20, 40)], "notes": ["some other wording of the lost files"]})
    assert len(note) == 1 and LOST in note[0] and "mistyped" not in note[0]
    note = gap_note({"missing_times": [[20, 40], [61, 79]]})  # (runs as JSON lists, several holes)
    assert len(note) == 1 and LOST in note[0]
    # the note's exact words without the data: no longer matched; the gist, still no mistyped time
    note = gap_note({"notes": [LOST]})
    assert len(note) == 1 and LOST not in note[0] and "nuclei files between them are missing" in note[0]
    assert "mistyped" not in note[0]


# ----------------------------------------------------------------------------- 2. a linked tidy table's sidecar
@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_linked_tidy_table_keeps_its_meta_json(tmp_path):
    from devolens.io.tables import read_table

    data, project = tmp_path / "data", tmp_path / "project"
    data.mkdir(), project.mkdir()
    table = data / "t.csv"
    table.write_text("embryo,time,cell,x,y,z,size\ne,1,ABa,1,2,3,10\ne,1,ABp,5,2,3,10\ne,2,ABa,1,2,3,10\n")
    (data / "t.meta.json").write_text('{"zscale": 7.5, "format": "epic"}')
    link = project / "mine.csv"
    link.symlink_to(table)
    assert read_table(link).attrs["zscale"] == 7.5
    assert main(["lineage", "convert", str(link), "--out", str(project / "out.csv")]) == 0
    meta = json.loads((project / "out.meta.json").read_text())
    assert meta["zscale"] == 7.5 and meta["format"] == "epic"
    assert [e["path"] for e in meta["inputs"]] == [str(link.absolute()), str((data / "t.meta.json").absolute())]
    # one beside the link comes first
    (project / "mine.meta.json").write_text('{"zscale": 2.0}')
    assert read_table(link).attrs["zscale"] == 2.0
    # a linked --out: the CSV written through the link, its .meta.json beside the link (where a read of it finds it),
    # as identify and populations put their records beside the --out given
    target = data / "converted.csv"
    target.write_text("old\n")
    out = project / "out_link.csv"
    out.symlink_to(target)
    assert main(["lineage", "convert", str(table), "--out", str(out)]) == 0
    assert out.is_symlink() and target.read_text().startswith("embryo,time")
    assert (project / "out_link.meta.json").is_file() and not (data / "converted.meta.json").exists()
    assert read_table(out).attrs["zscale"] == 7.5


# ----------------------------------------------------------------------------- 3. tile make hashes each file once
def test_tile_make_hashes_each_source_file_once(tmp_path, monkeypatch):
    import devolens.provenance as provenance

    hashed: list[str] = []
    real = provenance.files_sha256

    def counting(folder, files, **kwargs):
        hashed.extend(os.path.basename(f) for f in files)
        return real(folder, files, **kwargs)

    monkeypatch.setattr(provenance, "files_sha256", counting)
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "a.tif", (rng.random((2, 48, 48)) * 1000).astype(np.uint16))
    labels = np.zeros((48, 48), np.uint8)
    labels[8:24, 8:24] = 1
    tifffile.imwrite(tmp_path / "a_1.tif", labels)
    labels[30:40, 30:40] = 2  # a second annotator's labels of the same image: two sources of one file
    tifffile.imwrite(tmp_path / "a_2.tif", labels)
    store = tmp_path / "s.h5"
    assert main(["tile", "make", str(tmp_path / "a.tif"), str(tmp_path / "a.tif"), "--labels",
                 str(tmp_path / "a_1.tif"), str(tmp_path / "a_2.tif"), "--out", str(store), "--tile", "16"]) == 0
    assert sorted(hashed) == ["a.tif", "a_1.tif", "a_2.tif"]
    with h5py.File(store, "r") as f:
        inputs = json.loads(f.attrs["inputs"])
        label_inputs = json.loads(f.attrs["label_inputs"])
    assert inputs[0] == inputs[1] == provenance.input_entry(tmp_path / "a.tif")  # the values as recorded before
    assert [e["path"] for e in label_inputs] == [str(tmp_path / "a_1.tif"), str(tmp_path / "a_2.tif")]
    assert label_inputs[1]["sha256"] == provenance.file_sha256(tmp_path / "a_2.tif")
