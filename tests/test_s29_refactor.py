"""Whole-diff mends without a change in behaviour: curate_path takes the video decoder threads (no context
variable)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devolens.errors import DevolensError


def _video(path: Path, n: int = 3) -> Path:
    from devolens.io.video import write_video

    rng = np.random.default_rng(0)
    write_video((rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(n)), path, fps=5)
    return path


# 1. curate_path(decode_threads=) reaches the video reader ----------------------------------------------------


def test_curate_path_hands_decode_threads_to_the_reader(tmp_path, monkeypatch):
    from devolens.curate.frames import curate_path
    from devolens.io import video

    movie = _video(tmp_path / "m.mp4")
    seen = []
    real = video.iter_video_frames

    def spy(path, **kw):
        seen.append(kw.get("threads"))
        return real(path, **kw)

    monkeypatch.setattr(video, "iter_video_frames", spy)
    assert len(curate_path(movie, decode_threads=2)) == 3
    assert len(curate_path(movie)) == 3
    assert seen[0] == 2 and seen[-1] is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_curate_path_refuses_bad_decode_threads(tmp_path, bad):
    from devolens.curate.frames import curate_path

    (tmp_path / "a.png").write_bytes(b"")  # refused before any input is read, a folder of images too
    with pytest.raises(DevolensError, match="decode_threads must be"):
        curate_path(tmp_path, decode_threads=bad)


# 2. a table's first 64 KiB are read once per file --------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "utf-16"])
def test_a_tables_head_is_read_once(tmp_path, monkeypatch, encoding):
    from devolens.io import tables

    text = "embryo,time,cell,x,y,z,size,note\ne,1,ABa,1,2,3,4,caf\u00e9\ne,2,ABp,1,2,3,4,x\n"
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode(encoding))
    reads = []
    real = tables._Head.read.__func__

    def counted(cls, p):
        reads.append(Path(p).name)
        return real(cls, p)

    monkeypatch.setattr(tables._Head, "read", classmethod(counted))
    for reader in (tables.read_table, tables.read_positions, tables.read_tidy):
        reads.clear()
        df = reader(path)
        assert df["note"].tolist() == ["caf\u00e9", "x"]
        # the user's file once; a recoded one's UTF-8 copy once more
        assert reads == ["t.csv"] * (1 if encoding == "utf-8" else 2)


def test_an_unreadable_table_still_says_why(tmp_path):
    from devolens.io.tables import read_epic, read_positions, read_table

    folder = tmp_path / "d.csv"
    folder.mkdir()
    with pytest.raises(DevolensError, match="is a folder, not an EPIC CD table"):
        read_epic(folder)
    for reader in (read_table, read_positions):
        with pytest.raises(DevolensError, match="folder holds no AceTree nuclei files"):
            reader(folder)


# 3. a full disk told without an OSError -------------------------------------------------------------------------


def test_cannot_write_errno_is_cannot_write():
    import errno
    import os

    from devolens.io.atomic import EX_TEMPFAIL, Exhausted, cannot_write_errno

    full = cannot_write_errno(errno.ENOSPC, Path("o.h5"))
    assert isinstance(full, Exhausted) and full.exit_code == EX_TEMPFAIL
    assert str(full) == f"o.h5: cannot write output: {os.strerror(errno.ENOSPC)}"
    big = cannot_write_errno(errno.EFBIG, Path("o.h5"))
    assert not isinstance(big, Exhausted) and str(big) == f"o.h5: cannot write output: {os.strerror(errno.EFBIG)}"


# 4. numbers for the JSON records ----------------------------------------------------------------------------------


def test_json_number():
    from devolens.cli._common import json_number

    values = [3, 3.0, 2.5, 1 / 3, float("nan"), float("inf"), np.int64(5), np.float32(0.5), 0.0, True, "x", None]
    assert [json_number(v) for v in values] == [3, 3.0, 2.5, 0.333333, None, None, 5, 0.5, 0.0, True, "x", None]
    assert [type(json_number(v)) for v in (3.0, np.int64(5), np.float64(1.0))] == [float, int, float]
    whole = [json_number(v, whole_as_int=True) for v in (3, 3.0, 2.5, 1 / 3, float("nan"), np.int64(5), 0.0)]
    assert whole == [3, 3, 2.5, 0.333333, None, 5, 0]
    assert [type(v) for v in whole] == [int, int, float, float, type(None), int, int]


# 5. --out must be a .csv file -------------------------------------------------------------------------------------


def test_check_csv_out(tmp_path):
    from devolens.cli._common import check_csv_out

    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(DevolensError, match=r"--out is a folder; give a \.csv file"):
        check_csv_out(folder, "the named table")
    with pytest.raises(DevolensError, match=r"--out must be a \.csv file$"):
        check_csv_out(folder, folder_first=False)
    with pytest.raises(DevolensError, match=r"--out must be a \.csv file \(the report\)$"):
        check_csv_out(tmp_path / "r.txt", "the report")
    (tmp_path / "o.csv").mkdir()
    with pytest.raises(DevolensError, match="is a folder"):
        check_csv_out(tmp_path / "o.csv", folder_first=False)
    check_csv_out(tmp_path / "r.CSV")


# 6. the records' header -------------------------------------------------------------------------------------------


def test_record_header_and_text(tmp_path, monkeypatch):
    import json

    from devolens.provenance import record_header, record_text

    monkeypatch.chdir(tmp_path)
    head = record_header("devolens identify", Path("t.csv"), "identity", Path("n.csv"))
    assert list(head) == ["command", "input", "output", "model"]
    assert head == {"command": "devolens identify", "input": str(tmp_path / "t.csv"),
                    "output": str(tmp_path / "n.csv"), "model": "identity"}
    assert list(record_header("devolens segment nuclei", Path("m.mp4"), "nuclei")) == ["command", "input", "model"]
    text = record_text({**head, "path": tmp_path})
    assert text.endswith("}\n") and json.loads(text)["path"] == str(tmp_path)
    from devolens.provenance import run_context  # (cwd and environment, last: forty-seventh session)

    assert text == json.dumps({**head, "path": str(tmp_path), **run_context()}, indent=1) + "\n"
    with pytest.raises(TypeError):
        record_text({"path": tmp_path}, default=None)
