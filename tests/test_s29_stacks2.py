"""TIFF stacks, follow-ups (s29): a Micro-Manager multi-position set whose every file carries the whole OME-XML
(each file's own position read, not the first position's), the stack notes in one place (curate frames warns of
several timelapses too), population's stack line and record, curate's time column for a stack."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError


def err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def positions(folder, n=2, T=2, Z=3, C=2, Y=32, X=48, split=None, seed=0):
    """A Micro-Manager multi-position acquisition: one file per stage position (in two parts with ``split``: planes
    0..split-1 in STEM.ome.tif, the others in STEM_1.ome.tif), each file carrying the whole OME-XML (every
    position's Image, each TiffData naming the file, by FileName and UUID, that holds its plane). Position p has
    channel names GFPp, mCherryp and a time increment of 30 x (p + 1) s. Returns the files and each position's
    TZCYX array."""
    rng = np.random.default_rng(seed)
    arrays = [(rng.random((T, Z, C, Y, X)) * 1000).astype(np.uint16) for _ in range(n)]
    parts = []  # (position, file name, first plane, end)
    for p in range(n):
        stem = f"emb_MMStack_Pos{p}"
        parts += ([(p, f"{stem}.ome.tif", 0, split), (p, f"{stem}_1.ome.tif", split, T * Z * C)] if split
                  else [(p, f"{stem}.ome.tif", 0, T * Z * C)])
    uuids = {name: f"urn:uuid:{uuid.UUID(int=int(rng.integers(1 << 62)))}" for _, name, _, _ in parts}
    ns = 'xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"'
    images = []
    for p in range(n):
        tds = []
        for i in range(T * Z * C):
            name, lo = next((q[1], q[2]) for q in parts if q[0] == p and q[2] <= i < q[3])
            t, rem = divmod(i, Z * C)
            z, c = divmod(rem, C)
            tds.append(f'<TiffData FirstC="{c}" FirstZ="{z}" FirstT="{t}" IFD="{i - lo}" PlaneCount="1">'
                       f'<UUID FileName="{name}">{uuids[name]}</UUID></TiffData>')
        images.append(f'<Image ID="Image:{p}" Name="emb_MMStack_Pos{p}"><Pixels ID="Pixels:{p}" '
                      f'DimensionOrder="XYCZT" Type="uint16" SizeX="{X}" SizeY="{Y}" SizeZ="{Z}" SizeC="{C}" '
                      f'SizeT="{T}" TimeIncrement="{30 * (p + 1)}" TimeIncrementUnit="s">'
                      f'<Channel ID="Channel:{p}:0" Name="GFP{p}" SamplesPerPixel="1"/>'
                      f'<Channel ID="Channel:{p}:1" Name="mCherry{p}" SamplesPerPixel="1"/>' + "".join(tds)
                      + "</Pixels></Image>")
    for p, name, lo, hi in parts:
        xml = f'<?xml version="1.0" encoding="UTF-8"?><OME {ns} UUID="{uuids[name]}">' + "".join(images) + "</OME>"
        with tifffile.TiffWriter(folder / name) as w:
            for k, plane in enumerate(arrays[p].reshape(-1, Y, X)[lo:hi]):
                w.write(plane, description=xml if k == 0 else None, metadata=None, contiguous=False)
    return [folder / q[1] for q in parts], arrays


def projections(a, channel):
    return [a[t, :, channel].max(axis=0) for t in range(a.shape[0])]


# ---------------------------------------------------------------------------- 1. one file per stage position
def test_a_position_file_reads_its_own_position(tmp_path):
    """tifffile's first series of Pos1.ome.tif is position 0's, read from Pos0.ome.tif: Pos1's own is read."""
    from devolens.io.frames import iter_path_frames
    from devolens.io.stacks import channel_names, frame_interval, other_series_note, stack_reading

    (pos0, pos1), arrays = positions(tmp_path)
    for path, a in ((pos0, arrays[0]), (pos1, arrays[1])):
        frames, _, total = iter_path_frames(path, channel=1)
        frames = list(frames)
        assert total == len(frames) == 2
        for got, want in zip(frames, projections(a, 1)):
            np.testing.assert_array_equal(got, want)
    # its own metadata (the Image whose planes it stores), and which image that is
    assert channel_names(pos1) == ("GFP1", "mCherry1") and frame_interval(pos1) == 60.0
    reading = stack_reading(pos1, channel=0)
    assert reading["ome_image"] == {"id": "Image:1", "name": "emb_MMStack_Pos1", "place": 2, "images": 2}
    assert reading["read"].endswith("2 time points 60 s apart; max projection of 3 z-planes; channel 0 (GFP1) of 2; "
                                    "OME image 2 of 2, Image:1 (emb_MMStack_Pos1), the one stored in this file")
    assert stack_reading(pos0, channel=0)["ome_image"]["place"] == 1
    # the other position's series is no series of this file's: no "only the first was read" note
    assert other_series_note(pos1) is None and other_series_note(pos0) is None


def test_a_position_file_alone_is_read_without_the_others(tmp_path):
    """Position 0's file not copied along: Pos1.ome.tif holds all its own planes (it was refused, "0 of its 12
    planes in emb_MMStack_Pos0.ome.tif")."""
    from devolens.io.frames import iter_path_frames

    (pos0, pos1), arrays = positions(tmp_path)
    pos0.unlink()
    frames, _, total = iter_path_frames(pos1, channel=0)
    for got, want in zip(list(frames), projections(arrays[1], 0)):
        np.testing.assert_array_equal(got, want)


def test_a_folder_of_position_files_reads_each_position_once(tmp_path):
    from devolens.io.frames import iter_path_frames

    _, arrays = positions(tmp_path)
    frames, names, total = iter_path_frames(tmp_path, channel=0)
    frames = list(frames)
    assert total == 4 and names[2] == "emb_MMStack_Pos1_0000.ome.tif"
    for got, want in zip(frames, projections(arrays[0], 0) + projections(arrays[1], 0)):
        np.testing.assert_array_equal(got, want)


def test_positions_in_several_parts(tmp_path):
    """Each position in two files: Pos1.ome.tif reads its own set (Pos1_1.ome.tif), whether position 0's files are
    there or not; its second part missing is named, not position 0's file."""
    from devolens.io.frames import folder_files, iter_path_frames

    files, arrays = positions(tmp_path, split=8)
    assert [p.name for p in folder_files(tmp_path)] == ["emb_MMStack_Pos0.ome.tif", "emb_MMStack_Pos1.ome.tif"]
    pos1 = files[2]
    for got, want in zip(list(iter_path_frames(pos1, channel=1)[0]), projections(arrays[1], 1)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(DevolensError, match="continues the multi-file OME-TIFF set of emb_MMStack_Pos1.ome.tif"):
        iter_path_frames(files[3])
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in (pos1, files[3]):
        f.rename(moved / f.name)
    pos1 = moved / pos1.name
    for got, want in zip(list(iter_path_frames(pos1, channel=1)[0]), projections(arrays[1], 1)):
        np.testing.assert_array_equal(got, want)
    (moved / files[3].name).unlink()
    with pytest.raises(DevolensError, match=r"4 of its 12 planes in emb_MMStack_Pos1_1\.ome\.tif, which cannot"):
        list(iter_path_frames(pos1, channel=1)[0])


def test_several_series_stored_in_one_file_still_read_the_first(tmp_path):
    """Several images stored in the file itself: its first series, and the note says so (as before)."""
    from devolens.io.frames import iter_path_frames
    from devolens.io.stacks import other_series_note, stack_reading

    a = np.arange(2 * 16 * 24, dtype=np.uint16).reshape(2, 16, 24)
    path = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as w:
        w.write(a, metadata={"axes": "TYX"})
        w.write(a[:, ::-1] + 7, metadata={"axes": "TYX"})
    frames = list(iter_path_frames(path)[0])
    np.testing.assert_array_equal(frames[1], a[1])
    assert "holds 2 image series" in other_series_note(path) and "ome_image" not in stack_reading(path)


def test_segment_on_a_position_file_says_which_image(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    (_, pos1), _ = positions(tmp_path)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(pos1), "--channel", "0", "--out", str(out), "--no-overlay",
                 "--diameter", "none"]) == 0
    text = err(capsys)
    assert "channel 0 (GFP1) of 2; OME image 2 of 2, Image:1 (emb_MMStack_Pos1)" in text
    assert "image series" not in text
    assert json.loads((out / "segment.json").read_text())["stack"]["ome_image"]["id"] == "Image:1"


# ---------------------------------------------------------------------------- 2. the stack notes
def _zstack(path, Z=4):
    tifffile.imwrite(path, np.zeros((Z, 16, 24), np.uint8), imagej=True, metadata={"axes": "ZYX"})
    return path


def test_stack_notes_leave_out_the_slices_advice_on_request(tmp_path):
    from devolens.cli._common import stack_notes

    path = _zstack(tmp_path / "z.tif")
    (with_advice,) = stack_notes(path, stack_z="project")
    (without,) = stack_notes(path, stack_z="project", slices_advice=False)
    assert with_advice.endswith("Frames 4) or give --stack-z slices")
    assert without.endswith("Frames 4)") and "--stack-z slices" not in without


def test_population_prints_no_slices_advice(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    path = _zstack(tmp_path / "z.tif")
    assert main(["population", str(path), "--out", str(tmp_path / "p.csv"), "--no-plot"]) == 0
    text = err(capsys)
    assert "projected into 1 frame" in text and "Frames 4)" in text and "--stack-z slices" not in text


def test_the_split_set_note_is_its_own_and_printed_as_before(tmp_path):
    """A folder holding a file of several series and a multi-file OME set's later part: one note, as before."""
    from devolens.cli._common import stack_notes
    from devolens.io.stacks import other_series_note, several_series_note, split_set_note

    positions(tmp_path, n=1, split=8)
    split = split_set_note(tmp_path)
    assert split.startswith("note: emb_MMStack_Pos0_1.ome.tif continues the multi-file OME-TIFF set of "
                            "emb_MMStack_Pos0.ome.tif")
    assert several_series_note(tmp_path) is None and stack_notes(tmp_path) == [split]
    with tifffile.TiffWriter(tmp_path / "two.tif") as w:
        w.write(np.zeros((16, 24), np.uint8))
        w.write(np.ones((8, 8), np.uint8))
    several = several_series_note(tmp_path)
    assert "two.tif in this folder holds 2 image series" in several
    joined = f"{several}; also, {split[len('note: '):]}"
    assert stack_notes(tmp_path) == [joined] and other_series_note(tmp_path) == joined
    assert split_set_note(tmp_path / "two.tif") is None


def test_curate_frames_notes_several_timelapses(tmp_path, capsys):
    from devolens.cli import main

    data = tmp_path / "pos"
    data.mkdir()
    rng = np.random.default_rng(3)
    for p in range(2):
        tifffile.imwrite(data / f"emb_MMStack_Pos{p}.ome.tif", (rng.random((3, 2, 32, 48)) * 1000).astype(np.uint16),
                         ome=True, metadata={"axes": "TZYX"})
    assert main(["curate", "frames", str(data), "--out", str(tmp_path / "r.csv")]) == 0
    assert "this folder holds 2 timelapses" in err(capsys)


# ---------------------------------------------------------------------------- 3. population's stack line
def test_population_prints_and_records_how_a_stack_was_read(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    rng = np.random.default_rng(2)
    path = tmp_path / "tzc.tif"
    tifffile.imwrite(path, (rng.random((3, 4, 2, 32, 48)) * 255).astype(np.uint8), imagej=True,
                     metadata={"axes": "TZCYX", "finterval": 60, "tunit": "sec"})
    out = tmp_path / "p.csv"
    assert main(["population", str(path), "--channel", "0", "--out", str(out), "--no-plot"]) == 0
    line = "read tzc.tif: axes TZCYX, shape (3, 4, 2, 32, 48): 3 time points 60 s apart; max projection of 4 " \
           "z-planes; channel 0 of 2"
    assert line in err(capsys)
    stack = json.loads(out.with_suffix(".json").read_text())["stack"]
    assert stack["read"] == line.split(": ", 1)[1] and stack["interval_s"] == 60.0 and stack["channel"] == 0
    # an input that is no stack: no line, no entry
    from devolens.io.images import write_png

    png = tmp_path / "f.png"
    write_png(np.zeros((32, 48), np.uint8), png)
    assert main(["population", str(png), "--out", str(out), "--no-plot"]) == 0
    assert "read f.png" not in err(capsys) and "stack" not in json.loads(out.with_suffix(".json").read_text())


# ---------------------------------------------------------------------------- 4. curate's time column
@pytest.mark.parametrize("z, times", [("project", [0, 150, 300]), ("slices", [0, 0, 150, 150, 300, 300])])
def test_curate_frames_gives_a_stacks_times_in_seconds(tmp_path, capsys, z, times):
    from devolens.cli import main

    path = tmp_path / "tz.tif"
    rng = np.random.default_rng(4)
    tifffile.imwrite(path, (rng.random((3, 2, 32, 48)) * 255).astype(np.uint8), imagej=True,
                     metadata={"axes": "TZYX", "finterval": 2.5, "tunit": "min"})
    out = tmp_path / "r.csv"
    assert main(["curate", "frames", str(path), "--stack-z", z, "--out", str(out)]) == 0
    assert list(pd.read_csv(out)["time"]) == times


def test_curate_frames_time_fractional_seconds_and_none(tmp_path):
    from devolens.curate.frames import curate_path

    a = (np.random.default_rng(5).random((3, 32, 48)) * 255).astype(np.uint8)
    ome = tmp_path / "t.ome.tif"
    tifffile.imwrite(ome, a, ome=True, metadata={"axes": "TYX", "TimeIncrement": 0.5, "TimeIncrementUnit": "s"})
    assert list(curate_path(ome)["time"]) == [0.0, 0.5, 1.0]
    bare = tmp_path / "bare.tif"  # no interval recorded; pages without labels: no time
    tifffile.imwrite(bare, np.concatenate([a, a[:2]]))
    assert curate_path(bare)["time"].isna().all()
