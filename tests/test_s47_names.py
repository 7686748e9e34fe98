"""File names matched the way users' files are named: an EPIC table's AuxInfo and TIME companions whatever their case,
a folder's frames named as the same time point (t01.png and t1.png) noted, T1.png given its time point."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from devolens.cli import main
from devolens.io.frames import left_out_note, same_number_groups, same_number_words
from devolens.io.tables import epic_companions, read_table

from _lineage_builders import write_cd

AUX = ("name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"
       "20240101_TEST_L1,0.5,-24.2,380,384,598,396,48.4,39.5,4.86,89,5.7471,PDR\n")
TIME = "20240101_TEST_L1\t1\t0\t0\n20240101_TEST_L1\t2\t90\t90\n"


def _cd(folder: Path, name: str = "CD20240101_TEST_L1.CSV") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_cd(folder / name, [("ABa", 1, 4.0, 100, 200, 60, -5), ("E", 2, 8.0, 300, 250, 40, -8)])


@pytest.mark.parametrize("aux_name, time_name", [
    ("20240101_TEST_L1AuxInfo.CSV", "TIME20240101_TEST_L1.CSV"),
    ("20240101_TEST_L1AUXINFO.csv", "time20240101_TEST_L1.Csv"),
])
def test_epic_companions_found_whatever_their_case(tmp_path, aux_name, time_name):
    cd = _cd(tmp_path)
    (tmp_path / aux_name).write_text(AUX)
    (tmp_path / time_name).write_text(TIME)
    assert epic_companions(cd) == (tmp_path / aux_name, tmp_path / time_name)
    df = read_table(cd)
    assert df.attrs["zscale"] == pytest.approx(5.7471)
    assert df.attrs["time_seconds"] == {1: 0.0, 2: 90.0}


def test_epic_companions_prefer_the_exact_case(tmp_path):
    cd = _cd(tmp_path, "CD20240101_TEST_L1.csv")
    (tmp_path / "20240101_TEST_L1AuxInfo.csv").write_text(AUX)
    (tmp_path / "20240101_TEST_L1AUXINFO.CSV").write_text(AUX.replace("5.7471", "3.0"))
    try:
        (tmp_path / "20240101_TEST_L1auxinfo.csv").write_text(AUX.replace("5.7471", "4.0"))
    except OSError:  # pragma: no cover (a file system that ignores case)
        pass
    aux, time = epic_companions(cd)
    assert aux == tmp_path / "20240101_TEST_L1AuxInfo.csv"
    assert time == tmp_path / "TIME20240101_TEST_L1.csv" and not time.exists()
    assert read_table(cd).attrs["zscale"] == pytest.approx(5.7471)


def test_epic_companions_of_a_gzipped_table_whatever_their_case(tmp_path):
    import gzip

    cd = _cd(tmp_path)
    gz = tmp_path / "CD20240101_TEST_L1.CSV.gz"
    gz.write_bytes(gzip.compress(cd.read_bytes()))
    cd.unlink()
    (tmp_path / "20240101_TEST_L1AuxInfo.CSV").write_text(AUX)
    assert read_table(gz).attrs["zscale"] == pytest.approx(5.7471)


def test_real_epic_table_exported_in_upper_case(shared_data, tmp_path, capsys):
    epic = shared_data / "epic"
    names = ("CD20241009_JIM767_25_L1", "20241009_JIM767_25_L1AuxInfo", "TIME20241009_JIM767_25_L1")
    if not all((epic / f"{n}.csv").is_file() for n in names):
        pytest.skip("the EPIC table 20241009_JIM767_25_L1 with its AuxInfo and TIME is not in the shared data")
    up = tmp_path / "ep up"
    up.mkdir()
    for n in names:
        shutil.copyfile(epic / f"{n}.csv", up / f"{n}.CSV")
    df = read_table(up / "CD20241009_JIM767_25_L1.CSV")
    assert df.attrs["zscale"] == pytest.approx(5.7471)
    assert df.attrs["time_seconds"] and df.attrs["time_seconds"][2] == pytest.approx(89.0)


# ----------------------------------------------------------------------------- frames of one number
def test_same_number_groups_and_words():
    files = [Path(n) for n in ("t01.png", "t1.png", "t02.png", "t03.png", "t3.tif", "notes.png", "notes.tif")]
    assert same_number_groups(files) == [[Path("t01.png"), Path("t1.png")], [Path("t03.png"), Path("t3.tif")]]
    text = same_number_words(files)
    assert text.startswith("t01.png and t1.png are both time point 1 (as are those of time point 3): the same frame "
                           "saved twice, or frames of two series in one folder?")
    assert same_number_words([Path("t1.png"), Path("t2.png"), Path("T3.png")]) is None
    many = [Path(f"t{i}.png") for i in range(1, 8)] + [Path(f"t0{i}.png") for i in range(1, 8)]
    assert "(as are those of time points 2, 3, 4 and 3 more)" in same_number_words(many)
    three = same_number_words([Path("t1.png"), Path("t01.png"), Path("t001.png")])
    assert three.startswith("t1.png, t01.png and t001.png are all time point 1")


def _frames(folder: Path, names: list[str]) -> Path:
    import imageio.v3 as iio

    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in names:
        iio.imwrite(folder / name, rng.integers(20, 200, (32, 32), dtype=np.uint8))
    return folder


def test_folder_note_names_frames_of_one_number(tmp_path):
    folder = _frames(tmp_path / "dupnum", ["t01.png", "t02.png", "t03.png", "t1.png", "t3.png"])
    note = left_out_note(folder)
    assert note.startswith("note: t01.png and t1.png are both time point 1 (as are those of time point 3)")
    assert left_out_note(_frames(tmp_path / "fine", ["t01.png", "t02.png"])) is None


def test_curate_notes_frames_of_one_number_and_keeps_them(tmp_path, capsys):
    folder = _frames(tmp_path / "dupnum", ["t01.png", "t02.png", "t03.png", "t1.png", "t3.png"])
    assert main(["curate", "frames", str(folder), "--out", str(tmp_path / "d.csv")]) == 0
    captured = capsys.readouterr()
    out = " ".join((captured.out + captured.err).split())
    assert "t01.png and t1.png are both time point 1" in out
    import pandas as pd

    report = pd.read_csv(tmp_path / "d.csv")
    assert len(report) == 5  # every file read, as before
    assert sorted(report["file"]) == ["t01.png", "t02.png", "t03.png", "t1.png", "t3.png"]


def test_curate_time_of_upper_case_t_names(tmp_path):
    import pandas as pd

    folder = _frames(tmp_path / "mixed", ["T1.png", "t2.png", "t3.png"])
    assert main(["curate", "frames", str(folder), "--out", str(tmp_path / "m.csv")]) == 0
    report = pd.read_csv(tmp_path / "m.csv")
    assert report["file"].tolist() == ["T1.png", "t2.png", "t3.png"]
    assert report["time"].tolist() == [1, 2, 3]
