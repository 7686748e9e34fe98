"""Videos: 16-bit and grey streams read at their depth, videos named as images, hand-edited curation reports,
damaged-frame notes with --skip-flagged, a video's dropped frames in curate's counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devolens.errors import DevolensError

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")


def _ffv1(path: Path, frames: list[np.ndarray], pix_fmt: str) -> Path:
    """Frames encoded losslessly (FFV1 in MKV) at ``pix_fmt``; the test is skipped where ffmpeg cannot."""
    h, w = frames[0].shape
    try:
        gen = imageio_ffmpeg.write_frames(str(path), (w, h), pix_fmt_in=pix_fmt, pix_fmt_out=pix_fmt, codec="ffv1",
                                          fps=8, macro_block_size=1, output_params=["-level", "3"])
        gen.send(None)
        for f in frames:
            gen.send(np.ascontiguousarray(f).tobytes())
        gen.close()
    except Exception as exc:  # (an ffmpeg without the FFV1 encoder)
        pytest.skip(f"ffmpeg cannot encode ffv1 {pix_fmt}: {exc}")
    if not path.is_file() or path.stat().st_size == 0:
        pytest.skip(f"ffmpeg cannot encode ffv1 {pix_fmt}")
    return path


def _mp4(path: Path) -> Path:
    from devolens.io.video import write_video

    rng = np.random.default_rng(0)
    return write_video([rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(4)], path, fps=8)


def test_gray16_video_is_read_at_its_depth_as_grey_frames(tmp_path):
    from devolens.io import video
    from devolens.io.video import iter_video_frames

    stream_format = getattr(video, "stream_format", None)

    rng = np.random.default_rng(1)
    data = [rng.integers(0, 4096, (64, 64)).astype("<u2") for _ in range(4)]  # 12-bit data in gray16le
    path = _ffv1(tmp_path / "g16.mkv", data, "gray16le")
    got = list(iter_video_frames(path))
    assert len(got) == 4
    for a, b in zip(got, data):
        assert a.dtype == np.uint16 and a.shape == (64, 64)  # not 8-bit RGB (0-16 grey levels)
        np.testing.assert_array_equal(a, b)
    assert stream_format(path) == (True, True)


def test_gray8_video_gives_grey_frames(tmp_path):
    from devolens.io.frames import iter_path_frames

    data = [np.full((64, 64), 10 * k, np.uint8) + np.arange(64, dtype=np.uint8)[None] for k in range(3)]
    path = _ffv1(tmp_path / "g8.mkv", data, "gray")
    frames, _, _ = iter_path_frames(path)
    got = list(frames)
    assert [a.shape for a in got] == [(64, 64)] * 3 and got[0].dtype == np.uint8  # as a grey TIFF's
    np.testing.assert_array_equal(got[2], data[2])


def test_colour_video_stays_8bit_rgb(tmp_path):
    from devolens.io.video import iter_video_frames, stream_format

    path = _mp4(tmp_path / "c.mp4")
    assert stream_format(path) == (False, False)
    a = next(iter(iter_video_frames(path)))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8


def test_video_named_as_image_says_what_it_is(tmp_path):
    from devolens.io.frames import iter_path_frames
    from devolens.io.images import read_image

    src = _mp4(tmp_path / "m.mp4")
    png = tmp_path / "movie.png"
    tif = tmp_path / "movie.tif"
    bare = tmp_path / "movie"
    for p in (png, tif, bare):
        shutil.copy(src, p)
    with pytest.raises(DevolensError) as e:  # curate's path: one image expected to be a sequence
        iter_path_frames(png)
    assert "looks like an MP4 video (by its header): rename it to .mp4" in str(e.value)
    assert "single image" not in str(e.value)
    with pytest.raises(DevolensError) as e:  # segment's path: an image
        read_image(png)
    assert "looks like an MP4 video" in str(e.value) and "cannot identify" not in str(e.value)
    with pytest.raises(DevolensError) as e:  # a TIFF's
        iter_path_frames(tif)
    assert "not a TIFF file; it looks like an MP4 video" in str(e.value)
    with pytest.raises(DevolensError) as e:
        iter_path_frames(bare)
    assert "a file without an extension" in str(e.value) and "rename it to .mp4" in str(e.value)


def test_video_by_header_kinds(tmp_path):
    from devolens.io.video import video_by_header

    cases = {b"RIFF\x00\x00\x00\x00AVI LIST": ("AVI", ".avi"), b"\x00\x00\x00\x14ftypqt  ": ("QuickTime", ".mov"),
             b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm": ("WebM", ".webm"), b"\x1a\x45\xdf\xa3matroska": ("Matroska",
                                                                                                       ".mkv"),
             b"\x00\x00\x00\x18ftypheic": None, b"\x89PNG\r\n\x1a\n": None}
    for k, (head, want) in enumerate(cases.items()):
        p = tmp_path / f"f{k}.png"
        p.write_bytes(head + bytes(64))
        assert video_by_header(p) == want, head


def test_kind_column_edited_without_flagged_is_named(tmp_path):
    from devolens.curate.frames import flagged_frames, kinds_not_flagged

    report = pd.DataFrame({"frame": [0, 1, 2, 3], "dark": ["False", "yes", "False", "False"],
                           "red_line": ["False", "False", "True", "False"],
                           "flag": ["", "", "red_line", ""], "flagged": ["False", "False", "True", "False"]})
    path = tmp_path / "r.csv"
    report.to_csv(path, index=False)
    assert flagged_frames(path) == {2}  # only 'flagged' decides
    note = kinds_not_flagged(path)
    assert note is not None and "frame 1 (dark)" in note and "'flagged'" in note and "frame 2" not in note
    report["flagged"] = ["False", "True", "True", "False"]
    report.to_csv(path, index=False)
    assert kinds_not_flagged(path) is None


def test_damaged_note_leaves_out_skipped_frames(tmp_path):
    from devolens.io.video import VideoDamage

    def damage():
        return VideoDamage(tmp_path / "d.avi", read=10, decoded=10, messages=2, examples=("huffman table error",),
                           _placed=([(6, 6)],))

    assert "frame 6 of the results is decoded from it" in damage().note()
    note = damage().note(skipped={6})
    assert "smeared" not in note and "frame 6, decoded from it, was skipped" in note
    both = VideoDamage(tmp_path / "d.avi", read=10, decoded=10, messages=2, examples=("x",),
                       _placed=([(6, 7)],)).note(skipped={6})
    assert "frame 7 of the results is decoded" in both and "frame 6, decoded from it, was skipped" in both


def test_curate_counts_leave_out_a_videos_dropped_frames():
    from devolens.cli.curate import _summary_line
    from devolens.curate.frames import summarize

    # a video with frames 2-3 missing mid-file: rows with their numbers, flagged dropped
    report = pd.DataFrame({"frame": [0, 1, 2, 3, 4, 5], "dropped": [False, False, True, True, False, False],
                           "dark": [False, True, False, False, False, False],
                           "flagged": [False, True, True, True, False, False],
                           "flag": ["", "dark", "dropped", "dropped", "", ""]})
    counts = summarize(report)
    assert counts["frames"] == 4 and counts["flagged"] == 3 and counts["dropped"] == 2
    assert _summary_line(report, counts) == "4 frames, 1 flagged (dark 1); 2 missing (dropped 2)"
