"""Output guards (forty-seventh session, m10): a segment.json (livedead.json) that devolens did not write (another
tool's, a folder of that name) no longer marks --out as an earlier run's whose labels/ and counts.csv a rerun may
replace; a symbolic --out (file or folder) that leads nowhere yet is written through, its target made and the link
kept; a name over the file system's 255 bytes is named in the error, with what to shorten."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from devolens.cli import main
from devolens.errors import DevolensError


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _image(path: Path) -> Path:
    from devolens.io.images import write_png

    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(np.zeros((64, 64), np.uint8), path)
    return path


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


# ------------------------------------------------------------------ 1: a record devolens did not write
def test_a_segment_json_of_another_tool_is_refused_and_the_users_files_kept(tmp_path, capsys):
    out = tmp_path / "h12"
    (out / "labels").mkdir(parents=True)
    (out / "segment.json").write_text(json.dumps({"tool": "my other segmenter"}))
    (out / "labels" / "my_manual_labels.txt").write_text("precious")
    (out / "counts.csv").write_text("precious")
    before = _tree(out)
    assert main(["segment", "nuclei", str(_image(tmp_path / "in.png")), "--out", str(out)]) == 2
    err = _err(capsys)
    assert "already holds labels, counts.csv, segment.json that devolens segment did not write" in err
    assert "choose another folder" in err
    assert _tree(out) == before


@pytest.mark.parametrize("text", ['{"tool": "x"}', "not json", "[1, 2]", '{"command": "devolens render a --out b"}',
                                  '{"command": "cellpose segment"}', None])
def test_only_segments_own_record_marks_an_earlier_run(tmp_path, text):
    from devolens.cli.predict import _check_segment_out

    out = tmp_path / "o"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "t1_labels.tif").write_bytes(b"x")
    (out / "counts.csv").write_text("frame,count\nt1,3\n")
    source = _image(tmp_path / "t2.png")
    if text is None:  # a folder named segment.json (holding files) is no record either
        (out / "segment.json").mkdir()
        (out / "segment.json" / "a").write_text("x")
    else:
        (out / "segment.json").write_text(text)
    with pytest.raises(DevolensError, match="segment.json that devolens segment did not write"):
        _check_segment_out(out, source, "nuclei")
    if text is None:
        shutil.rmtree(out / "segment.json")
    else:
        (out / "segment.json").unlink()
    (out / "segment.json").write_text(json.dumps({"command": "devolens -q segment nuclei t1.png --out o"}))
    _check_segment_out(out, source, "nuclei")  # the earlier run's own: replaced


def test_a_foreign_record_alone_is_refused_too(tmp_path):
    """A segment.json of another tool's alone: the run would overwrite it."""
    from devolens.cli.predict import _check_segment_out

    out = tmp_path / "o"
    out.mkdir()
    (out / "segment.json").write_text('{"tool": "mine"}')
    with pytest.raises(DevolensError, match=r"holds segment.json that devolens segment did not write"):
        _check_segment_out(out, _image(tmp_path / "a.png"), "nuclei")


@pytest.mark.parametrize("text", ['{"tool": "x"}', '{"command": "devolens segment nuclei a --out b"}', None])
def test_only_livedeads_own_record_marks_an_earlier_run(tmp_path, text):
    from devolens.cli.tiles import LIVEDEAD_RECORD, _check_livedead_out

    out = tmp_path / "plate_out"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "A1_labels.tif").write_bytes(b"x")
    (out / "counts.csv").write_text("well,live,dead,fraction_dead\nA1,3,1,0.25\n")
    if text is None:
        (out / LIVEDEAD_RECORD).mkdir()
        (out / LIVEDEAD_RECORD / "a").write_text("x")
    else:
        (out / LIVEDEAD_RECORD).write_text(text)
    well = tmp_path / "A2.tif"
    well.write_bytes(b"x")
    with pytest.raises(DevolensError, match="livedead.json that devolens segment livedead did not write"):
        _check_livedead_out(out, well)
    if text is None:
        shutil.rmtree(out / LIVEDEAD_RECORD)
    (out / LIVEDEAD_RECORD).write_text(json.dumps({"command": "devolens segment livedead plate --out plate_out"}))
    _check_livedead_out(out, well)


# ------------------------------------------------------------------ 2: a link to an output not made yet
def test_a_file_output_through_a_dangling_link_makes_its_target(tmp_path):
    from devolens.io.atomic import write_text

    (tmp_path / "dtarget").mkdir()
    link = tmp_path / "dg.csv"
    link.symlink_to(tmp_path / "dtarget" / "lc.csv")
    write_text(link, "a,b\n1,2\n")
    assert link.is_symlink() and (tmp_path / "dtarget" / "lc.csv").read_text() == "a,b\n1,2\n"


def test_a_folder_output_through_a_dangling_link_makes_its_target(tmp_path):
    from devolens.io.atomic import StagedDir, staged_folder

    for name, use in (("one", "staged_folder"), ("two", "StagedDir")):
        link = tmp_path / f"link_{name}"
        link.symlink_to(tmp_path / name)
        if use == "staged_folder":
            with staged_folder(link, owned=("a.txt",)) as stage:
                (stage.tmp / "a.txt").write_text("x")
        else:
            stage = StagedDir(link)
            (stage.tmp / "a.txt").write_text("x")
            stage.commit(("a.txt",))
        assert link.is_symlink() and (tmp_path / name / "a.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link_one", "link_two", "one", "two"]


def test_a_dangling_link_whose_folder_is_missing_is_refused_naming_both(tmp_path):
    from devolens.io.atomic import StagedDir, write_text

    link = tmp_path / "dg.csv"
    link.symlink_to(tmp_path / "nodir" / "lc.csv")
    with pytest.raises(DevolensError, match=r"is a link to .*nodir/lc.csv, whose folder .*nodir does not exist"):
        write_text(link, "x")
    folder = tmp_path / "dl"
    folder.symlink_to(tmp_path / "nodir" / "x")
    with pytest.raises(DevolensError, match=r"dl: is a link to .*nodir/x, whose folder"):
        StagedDir(folder)
    assert not (tmp_path / "nodir").exists() and link.is_symlink() and folder.is_symlink()


# ------------------------------------------------------------------ 3: a name over 255 bytes
def _too_long(path: Path) -> OSError:
    try:
        os.stat(path)
    except OSError as exc:
        return exc
    raise AssertionError("no error")


def test_a_name_too_long_names_the_output_and_what_to_rename(tmp_path):
    from devolens.cli import _environment_error
    from devolens.io.atomic import cannot_write

    stem = "a" * 249
    staged = tmp_path / ".longn_out.partial-14719-svt2i5l_" / "labels"  # (a staging folder's name)
    staged.mkdir(parents=True)
    exc = _too_long(staged / f"{stem}_labels.tif")
    assert exc.errno == errno.ENAMETOOLONG
    message = str(cannot_write(exc, tmp_path / "longn_out"))
    assert f"the output name {stem}_labels.tif would exceed the file system's 255-byte limit" in message
    assert "rename the input" in message
    message = _environment_error(exc, ["segment", "nuclei", f"{stem}.png", "--out", str(tmp_path / "longn_out")])
    assert f"{stem}_labels.tif would exceed the file system's 255-byte limit" in message
    # the --out typed is the long name: that is what to shorten
    out = tmp_path / ("b" * 300)
    assert _too_long(out / "counts.csv").errno == errno.ENAMETOOLONG
    message = str(cannot_write(_too_long(out / "counts.csv"), out))
    assert "over the file system's 255-byte limit for a file name: give a shorter --out" in message
