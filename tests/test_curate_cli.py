"""``devolens curate frames``: report, summary, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.curate.frames import flagged_frames

from curate_synth import inject, synth_sequence


@pytest.fixture(scope="module")
def frame_dir(tmp_path_factory):
    import imageio.v3 as iio

    folder = tmp_path_factory.mktemp("frames")
    frames = synth_sequence(24, seed=7)
    inject(frames, "black", 5)
    inject(frames, "red_patch", 12, seed=3)
    inject(frames, "duplicate", 18)
    for t, f in enumerate(frames, start=1):
        if t == 10:  # dropped time point
            continue
        iio.imwrite(folder / f"t{t:03d}.png", f)
    return folder


def test_curate_frames_folder(frame_dir, tmp_path, capsys):
    out = tmp_path / "report.csv"
    assert main(["curate", "frames", str(frame_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().err  # the summary line: on stderr, as every command's
    assert "23 frames, 3 flagged (black 1, duplicate 1, red_patch 1); 1 missing (dropped 1)" in text and "dropped 1" in text and "black 1" in text
    report = pd.read_csv(out, keep_default_na=False)
    got = dict(zip(report["time"], report["flag"]))
    assert got[6] == "black" and got[13] == "red_patch" and got[19] == "duplicate" and got[10] == "dropped"
    assert sum(1 for v in got.values() if v) == 4
    # positions: t006 is the 6th file, t013 the 12th (t010 is missing), t019 the 18th
    assert flagged_frames(out) == {5, 11, 17}


def test_curate_frames_video(frame_dir, tmp_path, capsys):
    import imageio.v2 as iio2
    import imageio.v3 as iio

    video = tmp_path / "movie.mp4"
    files = sorted(frame_dir.glob("t*.png"))
    writer = iio2.get_writer(video, format="FFMPEG", fps=8, codec="libx264", quality=7,
                             macro_block_size=1, pixelformat="yuv420p", ffmpeg_log_level="error")
    for f in files:
        writer.append_data(iio.imread(f))
    writer.close()
    out = tmp_path / "video_report.csv"
    assert main(["curate", "frames", str(video), "--out", str(out)]) == 0
    report = pd.read_csv(out, keep_default_na=False)
    assert len(report) == len(files)
    assert dict(zip(report.loc[report.flagged, "frame"], report.loc[report.flagged, "flag"])) == {
        5: "black", 11: "red_patch", 17: "duplicate"}


@pytest.mark.parametrize("make", ["missing", "empty_dir", "text", "broken_video", "broken_pngs", "single_image"])
def test_bad_input_exits_2_without_output(tmp_path, capsys, make):
    if make == "missing":
        src = tmp_path / "nothere.mp4"
    elif make == "empty_dir":
        src = tmp_path / "empty"
        src.mkdir()
    elif make == "text":
        src = tmp_path / "notes.txt"
        src.write_text("hello")
    elif make == "single_image":
        import imageio.v3 as iio

        src = tmp_path / "one.png"
        iio.imwrite(src, np.zeros((32, 32), np.uint8))
    elif make == "broken_video":
        src = tmp_path / "broken.mp4"
        src.write_bytes(b"\x00\x01garbage" * 50)
    else:
        src = tmp_path / "pngs"
        src.mkdir()
        import imageio.v3 as iio

        (src / "t001.png").write_bytes(b"")  # none can be read (one that can't among others is flagged)
        (src / "t002.png").write_bytes(b"not a png")
    out = tmp_path / "report.csv"
    assert main(["curate", "frames", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    bad_name = "t001.png" if make == "broken_pngs" else src.name
    assert bad_name in err
    if make == "single_image":
        assert "got a single image" in err
    assert not out.exists()
    assert not list(tmp_path.glob(".report.tmp-*"))


def test_report_must_be_a_csv_and_never_replaces_a_frame(tmp_path, capsys):
    """`curate frames FOLDER --out FOLDER/t001.png` wrote the CSV report over a frame of the input: refused."""
    import imageio.v3 as iio

    src = tmp_path / "pngs"
    src.mkdir()
    for i in range(3):
        iio.imwrite(src / f"t00{i + 1}.png", np.full((32, 32), 40 * i, np.uint8))
    before = (src / "t001.png").read_bytes()
    assert main(["curate", "frames", str(src), "--out", str(src / "t001.png")]) == 2
    assert (src / "t001.png").read_bytes() == before and ".csv" in capsys.readouterr().err


def test_help_lists_kinds(capsys):
    assert main(["curate", "frames", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--out" in text and "duplicate" in text


def test_summary_of_one_frame_is_singular(tmp_path, capsys):
    import imageio.v3 as iio

    folder = tmp_path / "one"
    folder.mkdir()
    iio.imwrite(folder / "t001.png", synth_sequence(1, seed=3)[0])
    assert main(["curate", "frames", str(folder), "--out", str(tmp_path / "r.csv")]) == 0
    text = capsys.readouterr().err
    assert "1 frame, 0 flagged" in text and "1 frames" not in text
