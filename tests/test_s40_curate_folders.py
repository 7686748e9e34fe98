"""Curation reports of folders (fortieth session, m5): a report records each file's fingerprint
(``file_fingerprint``), so that ``--skip-flagged`` refuses the report of another movie's folder whose frames have the
same names (labs name every movie's frames ``t000.png``...), naming the files that differ; a report of an older
devolens (no such column) is checked by the names as before, with a note; the refusal of another file's report names
the other file first, not the stack options it was also read with; ``curate frames --help`` says what ``frame``
holds."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from curate_synth import inject, synth_sequence
from devolens.cli import main
from devolens.curate.frames import curate_path, load_report, report_mismatch
from devolens.io.frames import iter_path_frames
from devolens.io.images import write_png
from devolens.provenance import file_fingerprint


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _folder(path: Path, frames) -> Path:
    path.mkdir(parents=True)
    for t, frame in enumerate(frames):
        write_png(frame, path / f"t{t:03d}.png")
    return path


@pytest.fixture
def two_folders(tmp_path):
    """``a/`` (its frame t003 black) and ``b/``: two movies' folders of frames of the same names and sizes
    (t000.png...t007.png), and ``a``'s curation report."""
    first = synth_sequence(8, seed=1)
    inject(first, "black", 3)
    a = _folder(tmp_path / "a", first)
    b = _folder(tmp_path / "b", synth_sequence(8, seed=2))
    report = tmp_path / "a.csv"
    assert main(["curate", "frames", str(a), "--out", str(report)]) == 0
    return a, b, report


def _names(folder: Path) -> list[str]:
    return iter_path_frames(folder)[1]


def test_a_folder_report_records_each_files_fingerprint(two_folders):
    a, _, report = two_folders
    rep = pd.read_csv(report, dtype={"file_fingerprint": str})
    assert list(rep["file_fingerprint"]) == [file_fingerprint(a / name) for name in rep["file"]]
    assert rep["input_fingerprint"].isna().all()  # (a file's own, one for the whole input)
    assert 3 in set(rep.loc[rep["flagged"], "frame"])


def test_a_report_of_another_folder_of_the_same_names_is_refused(tiny_zoo, two_folders, tmp_path, capsys):
    a, b, report = two_folders
    capsys.readouterr()
    for command in (["segment", "nuclei", str(b), "--out", str(tmp_path / "o"), "--no-overlay"],
                    ["population", str(b), "--out", str(tmp_path / "o.csv"), "--no-plot"]):
        # was: accepted, "1 flagged frame skipped", b's clean t003 left out
        assert main(command + ["--skip-flagged", str(report)]) == 2
        err = _err(capsys)
        assert ("not of this input: it is of other files of the same names (of a: 8 of its 8 files have other bytes "
                "here, t000.png, t001.png, t002.png and 5 more; or they were changed since)") in err
        assert f"`devolens curate frames {b} --out " in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.csv").exists()
    # another folder of a's name: said so
    other = tmp_path / "elsewhere" / "a"
    shutil.copytree(b, other)
    why = report_mismatch(load_report(report), _names(other), 8, path=other)
    assert why.startswith("it is of other files of the same names (of another folder named a: 8 of its 8 files")


def test_its_own_folder_and_a_copy_are_accepted_a_changed_file_is_not(tiny_zoo, two_folders, tmp_path, capsys):
    a, _, report = two_folders
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    capsys.readouterr()
    for folder, out in ((a, "own"), (copy, "copy")):
        assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / out), "--no-overlay",
                     "--skip-flagged", str(report)]) == 0
        assert "1 flagged frame skipped" in _err(capsys)
    # one file of the copy written again with other pixels: named, alone
    write_png(synth_sequence(8, seed=9)[5], copy / "t005.png")
    assert report_mismatch(load_report(report), _names(copy), 8, path=copy) == (
        "it is of other files of the same names (of a: 1 of its 8 files has other bytes here, t005.png; or it was "
        "changed since)")
    # a folder with more frames than the report (a movie still being recorded): its frames compared, the new ones
    # not (as the names were)
    write_png(synth_sequence(1, seed=5)[0], a / "t008.png")
    assert report_mismatch(load_report(report), _names(a), 9, path=a) is None


def test_a_report_edited_by_hand_is_accepted(tiny_zoo, two_folders, tmp_path, capsys):
    """README: a report's yes/no columns may be edited by hand; a spreadsheet that read a fingerprint of digits
    alone as a number (1.23457E+15) leaves a cell that is not compared, not a refusal."""
    a, b, report = two_folders
    with open(report, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[5]["flagged"] = "yes"  # t005 left out too
    rows[3]["flagged"] = "No"  # t003, black, kept
    rows[6]["file_fingerprint"] = "1.23457E+15"
    edited = tmp_path / "edited.csv"
    with open(edited, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert main(["segment", "nuclei", str(a), "--out", str(tmp_path / "o"), "--no-overlay", "--skip-flagged",
                 str(edited)]) == 0
    assert "1 flagged frame skipped" in _err(capsys)
    counts = pd.read_csv(tmp_path / "o" / "counts.csv", dtype={"frame": str})
    assert "t005" not in set(counts["frame"]) and "t003" in set(counts["frame"])
    # the other cells still tell b's files from a's
    assert "7 of its 7 files have other bytes here" in report_mismatch(load_report(edited), _names(b), 8, path=b)


def test_an_older_folder_report_is_checked_by_its_names_with_a_note(two_folders, tmp_path):
    from devolens.curate.frames import older_report_note

    a, b, report = two_folders
    old = tmp_path / "old.csv"
    pd.read_csv(report).drop(columns=["file_fingerprint"]).to_csv(old, index=False)
    # accepted as before, by the names (another folder's files of these names too: it cannot tell them apart)...
    for folder in (a, b):
        assert report_mismatch(load_report(old), _names(folder), 8, path=folder) is None
    # ... with a note saying so (segment and population print it, see the next test)
    note = older_report_note(load_report(old), b, _names(b))
    assert note.startswith("this curation report (of an older devolens) records its folder's file names but not "
                           "their fingerprints, so it was checked by file names only")
    assert note.endswith("curate the input again for a report that tells them apart")
    assert older_report_note(load_report(report), b, _names(b)) is None  # a report of this devolens: none
    # and other names are refused by them still
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for p in sorted(a.iterdir()):
        shutil.copy(p, renamed / f"img_{p.name}")
    assert "the report's frame 0 is t000.png, the input's is img_t000.png" in report_mismatch(
        load_report(old), _names(renamed), 8, path=renamed)


def test_segment_notes_an_older_folder_report(tiny_zoo, two_folders, tmp_path, capsys):
    """The note of the test above, as segment prints it (src/devolens/cli/predict.py, _check_report)."""
    _, b, report = two_folders
    old = tmp_path / "old.csv"
    pd.read_csv(report).drop(columns=["file_fingerprint"]).to_csv(old, index=False)
    capsys.readouterr()
    assert main(["segment", "nuclei", str(b), "--out", str(tmp_path / "o"), "--no-overlay", "--skip-flagged",
                 str(old)]) == 0
    err = _err(capsys)
    assert err.count("records its folder's file names but not their fingerprints") == 1
    assert "1 flagged frame skipped" in err


def test_a_folder_of_stacks_records_each_stacks_fingerprint(tmp_path):
    """Each frame of a folder of z-stacks read as slices (``<stem>_0000.tif``...) is told by its stack's bytes."""
    import tifffile

    folders = []
    for seed, name in ((1, "one"), (2, "two")):
        folder = tmp_path / name
        folder.mkdir()
        grey = np.stack([f[..., 1] for f in synth_sequence(4, size=(64, 80), seed=seed)]).astype(np.uint16) * 16
        for t in range(2):
            tifffile.imwrite(folder / f"t{t:03d}.tif", grey[2 * t:2 * t + 2], imagej=True, metadata={"axes": "ZYX"})
        folders.append(folder)
    one, two = folders
    rep = curate_path(one, stack_z="slices")
    assert list(rep["file"]) == ["t000_0000.tif", "t000_0001.tif", "t001_0000.tif", "t001_0001.tif"]
    assert list(rep["file_fingerprint"]) == [file_fingerprint(one / f"t00{t}.tif") for t in (0, 0, 1, 1)]
    names = iter_path_frames(two, stack_z="slices")[1]
    assert report_mismatch(rep, names, 4, options="--stack-z slices", path=two).startswith(
        "it is of other files of the same names (of one: 4 of its 4 files have other bytes here, t000_0000.tif, ")
    assert report_mismatch(rep, iter_path_frames(one, stack_z="slices")[1], 4, options="--stack-z slices",
                           path=one) is None
    # read otherwise (projected: one frame per stack, named as the file): the options are the cause, said so
    assert "this run reads the input with" in report_mismatch(rep, _names(one), 2, options="--stack-z project",
                                                              path=one)


def test_the_report_of_another_stack_read_otherwise_names_the_other_file_first(tmp_path):
    """It named the stack options (`made with --stack-z project, this run reads the input with --stack-z slices`),
    which a report of the right file would have been refused for as well: the other file is the cause."""
    import tifffile

    stacks = []
    for seed, name in ((4, "a.tif"), (5, "b.tif")):
        grey = np.stack([f[..., 1] for f in synth_sequence(6, size=(64, 80), seed=seed)]).astype(np.uint16) * 16
        tifffile.imwrite(tmp_path / name, grey.reshape(3, 2, *grey.shape[1:]), imagej=True,
                         metadata={"axes": "TZYX"})
        stacks.append(tmp_path / name)
    a, b = stacks
    rep = curate_path(a)  # projected
    assert a.stat().st_size == b.stat().st_size
    assert report_mismatch(rep, None, 6, options="--stack-z slices", path=b) == (
        "it is of another file (a.tif, of the same size, with other bytes; or b.tif was changed since)")
    # its own file read otherwise: the options, as before
    assert "this run reads the input with" in report_mismatch(rep, None, 6, options="--stack-z slices", path=a)


def test_help_says_what_frame_holds(capsys):
    assert main(["curate", "frames", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "a video's or stack's frame number and for a folder its file's place in the natural order of the file" \
           " names" in text
    assert "join on the stem of file" in text and "a folder's files' fingerprints" in text
