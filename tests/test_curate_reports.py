"""Curation reports read back: cells edited by hand, and a report matched to its own input (a video cut short,
a stack read with other options, another video of the same length)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.curate.frames import curate_path, dropped_frames, flagged_frames, load_report, report_mismatch
from devolens.errors import DevolensError

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from curate_synth import inject, synth_sequence


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


@pytest.fixture(scope="module")
def folder_report(tmp_path_factory):
    """A folder of 12 frames (frame 4 black), curated: (folder, report path)."""
    import imageio.v3 as iio

    root = tmp_path_factory.mktemp("rep")
    src = root / "frames"
    src.mkdir()
    frames = synth_sequence(12, seed=5)
    inject(frames, "black", 4)
    for t, f in enumerate(frames, start=1):
        iio.imwrite(src / f"t{t:03d}.png", f)
    report = root / "report.csv"
    curate_path(src).to_csv(report, index=False)
    return src, report


def _edit(report, tmp_path, column: str, frame: int, value: str):
    """A copy of ``report`` with one cell written by hand (as text, the way sed or a spreadsheet leaves it)."""
    lines = report.read_text().splitlines()
    header = lines[0].split(",")
    col = header.index(column)
    for k, line in enumerate(lines[1:], start=1):
        cells = line.split(",")
        if cells[0] == str(frame):
            cells[col] = value
            lines[k] = ",".join(cells)
    out = tmp_path / f"edited_{column}_{frame}.csv"
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize("word", ["yes", "YES", " True ", "1"])
def test_a_cell_edited_by_hand_flags_that_frame_only(folder_report, tmp_path, word):
    """pandas 3 reads a column of words as its ``str`` dtype (not object): "False" must stay false."""
    _, report = folder_report
    assert flagged_frames(report) == {4}
    edited = _edit(report, tmp_path, "flagged", 7, word)
    assert pd.read_csv(edited)["flagged"].dtype != bool  # read as text: the case that flagged every frame
    assert flagged_frames(edited) == {4, 7}
    assert dropped_frames(edited) == set()


@pytest.mark.parametrize("word", ["no", " No", "FALSE", "0", ""])
def test_a_flag_taken_off_by_hand(folder_report, tmp_path, word):
    _, report = folder_report
    assert flagged_frames(_edit(report, tmp_path, "flagged", 4, word)) == set()
    # the kind columns are read the same way (a hand-made "dropped" column of words)
    edited = _edit(_edit(report, tmp_path, "dropped", 2, "yes"), tmp_path, "dropped", 3, word)
    assert dropped_frames(edited) == {2}


def test_yes_no_columns_of_numbers_and_of_bools():
    table = pd.DataFrame({"frame": [0, 1, 2], "flagged": [0, 1, np.nan], "dropped": [False, False, True]})
    assert flagged_frames(table) == {1} and dropped_frames(table) == {2}


@pytest.mark.parametrize("column, value", [("flagged", "maybe"), ("dropped", "2"), ("black", "x")])
def test_other_values_are_refused_naming_the_column_and_the_row(folder_report, tmp_path, column, value):
    _, report = folder_report
    edited = _edit(report, tmp_path, column, 6, value)
    with pytest.raises(DevolensError) as err:
        flagged_frames(edited)
    text = str(err.value)
    assert f"column '{column}'" in text and "row 7 (line 8 of the file)" in text and repr(value) in text
    assert "\n" not in text
    with pytest.raises(DevolensError, match="column 'flagged', row 2: '5'"):
        flagged_frames(pd.DataFrame({"frame": [0, 1], "flagged": [0, 5]}))


def test_cli_refuses_a_bad_cell_in_one_line(tiny_zoo, folder_report, tmp_path, capsys):
    src, report = folder_report
    edited = _edit(report, tmp_path, "flagged", 6, "maybe")
    out = tmp_path / "pops.csv"
    assert main(["population", str(src), "--out", str(out), "--skip-flagged", str(edited)]) == 2
    err = capsys.readouterr().err
    assert "column 'flagged', row 7" in err and "Traceback" not in err and not out.exists()


def _faststart_cut(path, frames, fraction=0.6):
    """A faststart mp4 (header first) of ``frames``, cut to ``fraction`` of its bytes: an interrupted copy whose
    header still declares every frame."""
    import imageio_ffmpeg as iff

    full = path.with_name("full_" + path.name)
    h, w = frames[0].shape[:2]
    writer = iff.write_frames(str(full), (w, h), fps=5, codec="libx264", macro_block_size=1,
                              output_params=["-movflags", "+faststart"], ffmpeg_log_level="error")
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def test_a_video_cut_short_fits_its_own_report(tiny_zoo, tmp_path, capsys):
    frames = synth_sequence(20, seed=3)
    video = _faststart_cut(tmp_path / "cut.mp4", frames)
    report = tmp_path / "cut.csv"
    assert main(["curate", "frames", str(video), "--out", str(report)]) == 0
    rep = pd.read_csv(report)
    read = int(rep["frame"].max()) + 1
    assert read < 20 and (rep["input_frames"] == 20).all() and (rep["input"] == "cut.mp4").all()
    assert "ended after" in _err(capsys)
    # its own report: accepted by segment and population (was: "the report covers 6 frames, the input has 20")
    assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / "seg"), "--skip-flagged", str(report),
                 "--no-overlay"]) == 0
    assert len(pd.read_csv(tmp_path / "seg" / "counts.csv")) == read - len(flagged_frames(report))
    assert main(["population", str(video), "--out", str(tmp_path / "p.csv"), "--skip-flagged", str(report),
                 "--no-plot"]) == 0
    assert "not of this input" not in _err(capsys)
    # the report of the cut copy is not the whole video's: refused by the file it records (size, fingerprint)...
    whole = tmp_path / "full_cut.mp4"
    assert main(["segment", "nuclei", str(whole), "--out", str(tmp_path / "seg2"), "--skip-flagged", str(report),
                 "--no-overlay"]) == 2
    err = _err(capsys)
    assert "not of this input: it is of another file (cut.mp4, of" in err and not (tmp_path / "seg2").exists()
    # ... and a report without those (an older devolens's) when the frames beyond it come
    old = tmp_path / "old.csv"
    pd.read_csv(report).drop(columns=["input", "input_bytes", "input_fingerprint"]).to_csv(old, index=False)
    assert main(["segment", "nuclei", str(whole), "--out", str(tmp_path / "seg2"), "--skip-flagged", str(old),
                 "--no-overlay"]) == 2
    err = _err(capsys)
    assert f"the report covers {read} frames, the input has more" in err and not (tmp_path / "seg2").exists()


def test_a_report_of_another_video_of_the_same_length_is_refused(tiny_zoo, tmp_path, capsys):
    from devolens.io.video import write_video

    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    write_video(iter(synth_sequence(8, seed=1)), a, fps=5)
    write_video(iter(synth_sequence(8, size=(96, 144), seed=2)), b, fps=5)
    report = tmp_path / "a.csv"
    assert main(["curate", "frames", str(a), "--out", str(report)]) == 0
    capsys.readouterr()
    for command in (["segment", "nuclei", str(b), "--out", str(tmp_path / "o"), "--no-overlay"],
                    ["population", str(b), "--out", str(tmp_path / "o.csv"), "--no-plot"]):
        assert main(command + ["--skip-flagged", str(report)]) == 2
        err = _err(capsys)
        assert "not of this input: it is of another file (a.mp4, of" in err
        assert "Traceback" not in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.csv").exists()
    # an older report (no input columns): refused by its frames' sizes all the same
    old = load_report(report).drop(columns=["input", "input_frames", "input_options", "input_bytes",
                                            "input_fingerprint"])
    old.to_csv(tmp_path / "old.csv", index=False)
    assert main(["segment", "nuclei", str(b), "--out", str(tmp_path / "o"), "--no-overlay", "--skip-flagged",
                 str(tmp_path / "old.csv")]) == 2
    assert "its frames are 160x128 pixels, the input's 144x96" in _err(capsys)


def test_a_stack_report_records_how_the_stack_was_read(tiny_zoo, tmp_path, capsys):
    """`curate frames` projects a TZ stack by default, `segment membrane` slices it: the refusal names the
    curate command line that makes the right report (it was one that made the same report again)."""
    import tifffile

    grey = np.stack([f[..., 1] for f in synth_sequence(6, size=(64, 80), seed=4)]).astype(np.uint16) * 16
    stack = tmp_path / "tz.tif"
    tifffile.imwrite(stack, grey.reshape(3, 2, *grey.shape[1:]), imagej=True, metadata={"axes": "TZYX"})
    projected, sliced = tmp_path / "p.csv", tmp_path / "s.csv"
    assert main(["curate", "frames", str(stack), "--out", str(projected)]) == 0
    assert main(["curate", "frames", str(stack), "--out", str(sliced), "--stack-z", "slices"]) == 0
    assert (pd.read_csv(projected)["input_options"] == "--stack-z project").all()
    capsys.readouterr()
    out = tmp_path / "seg"
    assert main(["segment", "membrane", str(stack), "--out", str(out), "--skip-flagged", str(projected),
                 "--no-overlay"]) == 2
    err = _err(capsys)
    assert "made with `--stack-z project`, this run reads the input with `--stack-z slices`" in err
    assert f"`devolens curate frames {stack} --stack-z slices --out {tmp_path / 'tz_curation.csv'}`" in err
    assert not out.exists()
    # an older report (no input columns): the frame count differs, the advice names --stack-z all the same
    old = load_report(projected).drop(columns=["input", "input_frames", "input_options"])
    assert "covers 3 frames, the input has 6" in report_mismatch(old, None, 6, options="--stack-z slices")
    old.to_csv(tmp_path / "old.csv", index=False)
    assert main(["segment", "membrane", str(stack), "--out", str(out), "--skip-flagged", str(tmp_path / "old.csv"),
                 "--no-overlay"]) == 2
    assert f"curate frames {stack} --stack-z slices --out" in _err(capsys)
    # the advice followed: accepted
    assert main(["segment", "membrane", str(stack), "--out", str(out), "--skip-flagged", str(sliced),
                 "--no-overlay"]) == 0
    assert main(["segment", "nuclei", str(stack), "--out", str(tmp_path / "n"), "--skip-flagged", str(projected),
                 "--no-overlay"]) == 0


def test_a_report_without_the_corrupt_column_is_read_as_before(folder_report, tmp_path):
    """Reports written before the `corrupt` kind have no such column: read, flagged as they say."""
    _, report = folder_report
    df = pd.read_csv(report)
    assert "corrupt" in df.columns and not df["corrupt"].any()
    older = tmp_path / "older.csv"
    df.drop(columns=["corrupt"]).to_csv(older, index=False)
    assert "corrupt" not in load_report(older).columns
    assert flagged_frames(older) == flagged_frames(report) == {4}


def test_mark_corrupt_flags_decoded_frames_first_and_leaves_lost_ones_dropped():
    """`corrupt` is the main flag of a frame decoded from damaged data (what it looks like follows from the damage);
    a stand-in for a frame lost mid-video stays `dropped` (not skipped: it is not there)."""
    from devolens.curate.frames import mark_corrupt, score_frames
    from devolens.io.missing import MissingFrame

    frames = synth_sequence(10, seed=3)
    inject(frames, "black", 5)
    frames = list(frames)
    frames[7] = MissingFrame("lost", "damaged")
    report = score_frames(frames)
    assert report.loc[report.frame == 5, "flag"].item() == "black"
    assert mark_corrupt(report, [(4, 7)]) == 3  # 4, 5, 6 decoded; 7 lost
    got = report.set_index("frame")
    assert list(got.loc[[4, 5, 6], "flag"]) == ["corrupt"] * 3 and got.loc[5, "black"]
    assert got.loc[7, "flag"] == "dropped" and not got.loc[7, "corrupt"]
    assert flagged_frames(report) == {4, 5, 6}
    assert mark_corrupt(report, None) == 0 and mark_corrupt(report, []) == 0
