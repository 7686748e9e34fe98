"""File-system robustness found by a user walkthrough (session 41): file names that are not UTF-8, a table holding
only a byte-order mark, a symlinked EPIC table's companions, read-only and symlinked outputs.

- Latin-1 file names (``embry\\xe9_t001.png``: old Samba shares, unzipped archives) ended segment, curate, lineage
  convert, identify and render in a UnicodeEncodeError after all their work: the text outputs write such a name's
  bytes escaped (``embry\\udce9``, as the console shows it; :data:`devolens.io.atomic.TEXT_ERRORS`).
- A CSV holding only a byte-order mark (Excel's "CSV UTF-8" of an empty sheet) was an IndexError in every table
  command, and a mark followed by a newline "unrecognised columns ... found )": both are an empty file.
- A symlinked EPIC table lost its AuxInfo and TIME files without a word (looked for beside the link only): the z
  scale was estimated, and identify's names changed.
- An output protected with ``chmod a-w`` was replaced without a word (a rename ignores the file's mode), and an
  ``--out`` that is a symbolic link to a file was replaced by a plain file (the link broken, its target untouched).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _lineage_builders import growth_rows, run_cli, write_cd
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from devolens.io.atomic import (
    ColumnsCSV, StagedDir, atomic_path, output_file, restore_name, write_columns_csv, write_csv, write_text,
)

#: a Latin-1 file name's stem as Python holds it (the byte 0xE9 as the lone surrogate U+DCE9)
LATIN1 = os.fsdecode(b"embry\xe9")
#: how the text outputs write it
ESCAPED = "embry\\udce9"

POSIX_BYTES = os.name == "posix" and os.fsencode(LATIN1) == b"embry\xe9"
needs_byte_names = pytest.mark.skipif(not POSIX_BYTES, reason="file names of any bytes (POSIX, UTF-8 locale)")


def _can_name(folder: Path) -> bool:
    """Whether ``folder``'s file system takes a name that is not UTF-8 (some refuse it: ZFS utf8only, macOS)."""
    try:
        (folder / f"{LATIN1}.probe").write_bytes(b"")
    except OSError:
        return False
    (folder / f"{LATIN1}.probe").unlink()
    return True


def _cli(argv, capsys):
    """:func:`run_cli` with the streams the ``devolens`` command gives itself (a name the console cannot show
    printed escaped: :func:`devolens.cli._tolerant_streams`), which pytest's capture replaces."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    return run_cli(argv, capsys)


# ----------------------------------------------------------------------------- names that are not UTF-8
def test_text_writers_escape_a_name_that_is_not_utf8(tmp_path):
    """write_csv, write_text, write_columns_csv and ColumnsCSV wrote such a name with "strict": UnicodeEncodeError."""
    import pandas as pd

    write_csv(pd.DataFrame({"file": [f"{LATIN1}_t001.png", "é"]}), tmp_path / "a.csv")
    write_text(tmp_path / "b.txt", f"{LATIN1} é\n")
    write_columns_csv({"frame": [f"{LATIN1}_t001"], "count": [3]}, tmp_path / "c.csv")
    with ColumnsCSV(tmp_path / "d.csv", ["frame"]) as out:
        out.add([LATIN1])
    assert (tmp_path / "a.csv").read_text(encoding="utf-8") == f"file\n{ESCAPED}_t001.png\né\n"  # valid UTF-8
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == f"{ESCAPED} é\n"
    assert (tmp_path / "c.csv").read_text(encoding="utf-8") == f"frame,count\n{ESCAPED}_t001,3\n"
    assert (tmp_path / "d.csv").read_text(encoding="utf-8") == f"frame\n{ESCAPED}\n"


def test_restore_name_reads_an_escaped_name_back():
    assert restore_name(f"{ESCAPED}_t001.png") == f"{LATIN1}_t001.png"
    assert restore_name("t001.png") == "t001.png"
    assert restore_name("a\\u00e9 \\udc41") == "a\\u00e9 \\udc41"  # not a byte's escape (U+DC80 to U+DCFF only)


def _latin1_folder(tmp_path):
    """A folder of two frames whose names hold a Latin-1 byte (skipped where the file system refuses such names)."""
    from _cli_helpers import blob_frame
    from devolens.io.images import write_png

    if not _can_name(tmp_path):
        pytest.skip("this file system refuses names that are not UTF-8")
    src = tmp_path / "l1"
    src.mkdir()
    for i in (1, 2):
        write_png(blob_frame(seed=i), src / f"{LATIN1}_t{i:03d}.png")
    return src


@needs_byte_names
def test_curate_and_segment_take_a_folder_of_latin1_names(tmp_path, capsys, tiny_zoo):
    src = _latin1_folder(tmp_path)
    code, _, err = _cli(["curate", "frames", str(src), "--out", str(tmp_path / "c.csv")], capsys)
    assert code == 0, err
    assert f"{ESCAPED}_t001.png" in (tmp_path / "c.csv").read_text(encoding="utf-8")
    code, _, err = _cli(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg")], capsys)
    assert code == 0, err
    assert (tmp_path / "seg" / "counts.csv").read_text(encoding="utf-8").splitlines()[1].startswith(
        f"{ESCAPED}_t001,")


@needs_byte_names
def test_a_report_of_latin1_names_is_taken_back_by_skip_flagged(tmp_path, capsys, tiny_zoo):
    src = _latin1_folder(tmp_path)
    assert _cli(["curate", "frames", str(src), "--out", str(tmp_path / "c.csv")], capsys)[0] == 0
    code, _, err = _cli(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg"),
                            "--skip-flagged", str(tmp_path / "c.csv")], capsys)
    assert code == 0, err


@needs_byte_names
def test_lineage_commands_take_a_table_of_a_latin1_name(tmp_path, capsys):
    if not _can_name(tmp_path):
        pytest.skip("this file system refuses names that are not UTF-8")
    table = write_cd(tmp_path / f"CD{LATIN1}.csv", growth_rows(n_times=6, base=4))
    code, _, err = _cli(["lineage", "convert", str(table), "--out", str(tmp_path / "t.csv")], capsys)
    assert code == 0, err
    assert (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()[1].startswith(f"{ESCAPED},1,")
    code, _, err = _cli(["lineage", "clean", str(table), "--out", str(tmp_path / "k.csv")], capsys)
    assert code == 0, err
    code, _, err = _cli(["lineage", "populations", str(table), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0, err


@needs_byte_names
def test_identify_takes_a_table_of_a_latin1_name(tmp_path, capsys):
    from test_identity import needs_zoo, toy_embryo

    if needs_zoo.args[0]:
        pytest.skip(needs_zoo.kwargs.get("reason", "no identity model"))
    if not _can_name(tmp_path):
        pytest.skip("this file system refuses names that are not UTF-8")
    toy = toy_embryo(times=2)
    table = write_cd(tmp_path / f"CD{LATIN1}.csv", [(r.cell, r.time, r.z, r.x, r.y, r.size, 0)
                                                     for r in toy.itertuples()])
    code, _, err = _cli(["identify", str(table), "--out", str(tmp_path / "i.csv"), "--tta", "1"], capsys)
    assert code == 0, err
    assert (tmp_path / "i.csv").read_text(encoding="utf-8").splitlines()[1].startswith(f"{ESCAPED},1,")


# ----------------------------------------------------------------------------- a byte-order mark alone
@pytest.mark.parametrize("data", [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf\r\n\n", b"\xff\xfe\n\x00",
                                  b"\xef\xbb\xbf  \n"])
def test_a_byte_order_mark_alone_is_an_empty_file(tmp_path, capsys, data):
    from devolens.io.tables import detect_format, read_table

    path = tmp_path / "bom.csv"
    path.write_bytes(data)
    for read in (detect_format, read_table):
        with pytest.raises(DevolensError, match="empty file"):
            read(path)
    for argv in (["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")],
                 ["lineage", "cliffs", str(path)]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and err.strip().endswith("bom.csv: empty file"), err


# ----------------------------------------------------------------------------- a symlinked EPIC table
def _epic_with_companions(folder: Path) -> Path:
    folder.mkdir()
    cd = write_cd(folder / "CD20240101_TEST_L1.csv",
                  [("ABa", 1, 4.0, 100, 200, 60, -5), ("ABp", 2, 5.5, 120, 210, 62, 0)])
    (folder / "20240101_TEST_L1AuxInfo.csv").write_text(
        "name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"
        "20240101_TEST_L1,0.5,-24.2,380,384,598,396,48.4,39.5,4.86,89,5.7471,PDR\n")
    (folder / "TIME20240101_TEST_L1.csv").write_text("20240101_TEST_L1\t1\t0\t0\n20240101_TEST_L1\t2\t90\t90\n")
    return cd


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
@pytest.mark.parametrize("link_name", ["CD20240101_TEST_L1.csv", "mine.csv"])
def test_a_symlinked_epic_table_keeps_its_companions(tmp_path, link_name):
    from devolens.io.tables import epic_companions, read_table

    cd = _epic_with_companions(tmp_path / "data")
    (tmp_path / "project").mkdir()
    link = tmp_path / "project" / link_name
    link.symlink_to(cd)
    assert epic_companions(link) == epic_companions(cd)
    df = read_table(link)
    assert df.attrs["zscale"] == pytest.approx(5.7471)
    assert df.attrs["time_seconds"] == {1: 0.0, 2: 90.0}


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_companion_beside_the_link_comes_first(tmp_path):
    from devolens.io.tables import epic_companions

    cd = _epic_with_companions(tmp_path / "data")
    (tmp_path / "project").mkdir()
    link = tmp_path / "project" / cd.name
    link.symlink_to(cd)
    own = tmp_path / "project" / "20240101_TEST_L1AuxInfo.csv"
    own.write_text("name,zpixres\n")
    assert epic_companions(link) == (own, cd.parent / "TIME20240101_TEST_L1.csv")


# ----------------------------------------------------------------------------- read-only and linked outputs
def test_a_read_only_output_is_refused_and_kept(tmp_path):
    """As root (the tests here), a file without any write bit; the rename replaced it whatever its mode."""
    out = tmp_path / "o.txt"
    out.write_text("final results\n")
    out.chmod(0o444)
    with pytest.raises(DevolensError, match=r"read-only \(chmod u\+w to let devolens replace it\)") as err:
        write_text(out, "new")
    assert err.value.path == out
    assert out.read_text() == "final results\n" and sorted(os.listdir(tmp_path)) == ["o.txt"]
    out.chmod(0o644)
    write_text(out, "new")
    assert out.read_text() == "new"


def test_read_only_for_a_user_who_is_not_root(tmp_path, monkeypatch):
    """A user's own file without its write bit for the user (os.access says no; monkeypatched, the tests run as
    root, for whom it always says yes)."""
    out = tmp_path / "o.csv"
    out.write_text("x\n")
    out.chmod(0o464)  # the group may write it, the user not
    monkeypatch.setattr(os, "geteuid", lambda: 1000, raising=False)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: not (mode & os.W_OK and Path(path) == out))
    with pytest.raises(DevolensError, match="read-only"):
        output_file(out)
    assert output_file(tmp_path / "other.csv") == tmp_path / "other.csv"  # (a new file: nothing to refuse)


def test_a_staged_folder_refuses_a_read_only_entry(tmp_path):
    dest = tmp_path / "seg"
    dest.mkdir()
    (dest / "counts.csv").write_text("old\n")
    (dest / "counts.csv").chmod(0o444)
    (dest / "objects.csv").write_text("old\n")
    stage = StagedDir(dest)
    (stage.tmp / "objects.csv").write_text("new\n")
    (stage.tmp / "counts.csv").write_text("new\n")
    with pytest.raises(DevolensError, match="read-only") as err:
        stage.commit()
    assert err.value.path == dest / "counts.csv"
    assert (dest / "objects.csv").read_text() == "old\n" and (dest / "counts.csv").read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["seg"]  # (no staging folder left)


def test_lineage_populations_refuses_a_read_only_output(tmp_path, capsys):
    table = write_cd(tmp_path / "CDx.csv", growth_rows(n_times=4, base=3))
    out = tmp_path / "p.csv"
    assert run_cli(["lineage", "populations", str(table), "--out", str(out)], capsys)[0] == 0
    for protected in (out, tmp_path / "p.json"):
        before = {p: p.read_bytes() for p in (out, tmp_path / "p.json")}
        protected.chmod(0o444)
        code, _, err = run_cli(["lineage", "populations", str(table), "--out", str(out)], capsys)
        assert code == 2 and f"{protected.name}: cannot write output: read-only" in err, err
        assert {p: p.read_bytes() for p in before} == before
        protected.chmod(0o644)


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_an_output_that_is_a_link_is_written_through_it(tmp_path):
    (tmp_path / "keep").mkdir()
    target = tmp_path / "keep" / "real.txt"
    target.write_text("old")
    link = tmp_path / "o.txt"
    link.symlink_to(Path("keep") / "real.txt")  # (relative, as ln -s makes them)
    write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    with atomic_path(link) as tmp:
        assert tmp.parent == target.parent  # (staged beside the target: one file system for the rename)
        tmp.write_text("newer")
    assert link.is_symlink() and target.read_text() == "newer"
    target.chmod(0o444)
    with pytest.raises(DevolensError, match="read-only"):
        write_text(link, "x")
    target.chmod(0o644)


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
@pytest.mark.parametrize("command", [["lineage", "populations"], ["lineage", "convert"]])
def test_lineage_out_through_a_link(tmp_path, capsys, command):
    table = write_cd(tmp_path / "CDx.csv", growth_rows(n_times=4, base=3))
    (tmp_path / "keep").mkdir()
    target = tmp_path / "keep" / "real.csv"
    target.write_text("old\n")
    out = tmp_path / "o.csv"
    out.symlink_to(target)
    code, _, err = run_cli([*command, str(table), "--out", str(out)], capsys)
    assert code == 0, err
    assert out.is_symlink() and target.read_text() != "old\n" and target.read_text().startswith(
        "time," if command[1] == "populations" else "embryo,")
