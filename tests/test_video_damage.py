"""Damaged and cut-short videos say so: ffmpeg's messages of damaged data (read from its stderr as it decodes), the
frame count an AVI's header or an MP4's sample table records (exact: no slack), frames placed where they can be;
MPEG-PS/TS and the other containers ffmpeg reads are taken; predict() on a video path says how to stream it."""

from __future__ import annotations

import re
import struct
import subprocess

import numpy as np
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _noise_h264(path, n=40, h=96, w=128, gop=10):
    """An H.264 mp4 of noise frames (every frame a big packet) with a key frame every ``gop`` frames, and a bright
    square in each (a frame of nothing but noise is `black` to `curate frames`)."""
    import imageio_ffmpeg

    rng = np.random.default_rng(0)
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=8, codec="libx264", macro_block_size=1,
                                         ffmpeg_log_level="error",
                                         output_params=["-g", str(gop), "-preset", "ultrafast"])
    writer.send(None)
    for _ in range(n):
        frame = rng.integers(0, 128, (h, w, 3), dtype=np.uint8)
        frame[h // 4:h // 2, w // 4:w // 2] = 255
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def _mjpeg_avi(path, n=12, h=64, w=96):
    import imageio_ffmpeg

    rng = np.random.default_rng(1)
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=8, codec="mjpeg", pix_fmt_out="yuvj420p",
                                         macro_block_size=1, ffmpeg_log_level="error", output_params=["-q:v", "3"])
    writer.send(None)
    for _ in range(n):
        writer.send(np.ascontiguousarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))
    writer.close()
    return path


def _read(path, **kwargs):
    from devolens.io.frames import iter_path_frames

    frames, _, _ = iter_path_frames(path, **kwargs)
    got = [f for f in frames]
    return frames, got


def _note(path, read):
    from devolens.io.frames import cut_short, frame_count_from_info
    from devolens.io.video import video_info

    return cut_short(read, frame_count_from_info(video_info(path)))


def test_damaged_h264_data_gives_one_note_naming_the_spoiled_frames(tmp_path):
    """4 KB overwritten in an H.264 mp4: ffmpeg conceals the errors and gives every frame, smeared; the reading
    says so, once, and which frames (found again by a second decoding, from ffmpeg's per-frame log)."""
    clean = _noise_h264(tmp_path / "clean.mp4")
    data = bytearray(clean.read_bytes())
    at = len(data) // 2
    data[at:at + 256] = bytes(256)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))

    frames, good = _read(clean)
    assert frames.damage is None and _note(clean, len(good)) is None  # a whole file: nothing to say
    frames, got = _read(bad, missing="mark")
    assert len(got) == len(good) == 40
    damage = frames.damage
    assert damage is not None and damage.messages > 0 and damage.declared == 40 and not damage.truncated
    spoiled = {i for i, (a, b) in enumerate(zip(good, got)) if np.abs(a.astype(int) - b.astype(int)).mean() > 1}
    assert spoiled  # the damage shows
    placed = {f for a, b in damage.corrupt_frames() for f in range(a, b + 1)}
    assert spoiled <= placed and min(placed) >= min(spoiled) - 2 and max(placed) < min(spoiled) + 10  # to the key frame
    from devolens.io.video import video_damage

    assert video_damage(bad) is damage  # the last reading's, for another module (curate)
    note = _note(bad, len(got))
    assert "damaged data" in note and f"frame{'s' if len(placed) > 1 else ''} {min(placed)}" in note
    assert note.count("ffmpeg reported") == 1


def _idx1(data: bytes) -> tuple[int, list]:
    movi = data.find(b"movi")
    idx = data.rfind(b"idx1")
    n = struct.unpack("<I", data[idx + 4:idx + 8])[0] // 16
    return movi, [struct.unpack("<4sIII", data[idx + 8 + 16 * k:idx + 24 + 16 * k]) for k in range(n)]


def test_avi_frames_lost_mid_file_are_counted_from_its_header_and_placed_by_its_index(tmp_path):
    """An MJPEG AVI whose frame 5 was overwritten: ffmpeg skips it and numbers the later frames on as if nothing
    were missing (continuous timestamps, so no stand-in); 11 of 12 frames was within the old slack (2 frames) of an
    estimated count. The AVI's header records 12 exactly: the note says one is missing, which, and that the later
    frames' numbers shift."""
    avi = _mjpeg_avi(tmp_path / "m.avi")
    data = bytearray(avi.read_bytes())
    movi, entries = _idx1(bytes(data))
    at = movi + entries[5][2]
    data[at:at + 64] = bytes(64)  # frame 5's chunk header and the start of its data
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))

    from devolens.io.video import container_count

    assert container_count(avi).frames == 12 and not container_count(avi).truncated
    frames, got = _read(bad, missing="mark")
    assert len(got) == 11
    assert frames.damage.declared == 12 and frames.damage.missing == 1 and frames.damage.lost_frames() == (5,)
    note = _note(bad, len(got))
    assert "1 of the 12 frames" in note and "frame 5 of the file" in note and "numbered lower" in note


def test_a_truncated_avi_is_noted_from_its_header_count(tmp_path):
    """An AVI cut at half: ffmpeg estimates its duration from the file's size (6 frames, all read), so the count
    looked whole; the header's own count (12) and its RIFF size (past the end of the file) tell."""
    avi = _mjpeg_avi(tmp_path / "m.avi")
    data = avi.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:len(data) // 2])

    from devolens.io.video import container_count

    assert container_count(cut).frames == 12 and container_count(cut).truncated
    frames, got = _read(cut)
    assert 0 < len(got) < 12
    note = _note(cut, len(got))
    assert f"ended after {len(got)} of the 12 frames its header records" in note and "cut short" in note


def test_an_exact_count_has_no_slack_and_an_estimate_keeps_it():
    from devolens.io.frames import FrameCount, cut_short

    assert cut_short(19, FrameCount(20, exact=True)) is not None  # 1 missing of an exact count
    assert "1 frame is missing" in cut_short(19, FrameCount(20, exact=True))
    assert cut_short(19, FrameCount(20)) is None and cut_short(19, 20) is None  # an estimate: a frame or two of slack
    assert cut_short(20, FrameCount(20, exact=True)) is None
    assert "ended after 6 of the 20" in cut_short(6, 20)


def test_container_counts_of_mp4_and_others(tmp_path):
    from devolens.io.video import container_count, video_info, write_video

    movie = write_video((np.full((32, 48, 3), 9 * i, np.uint8) for i in range(7)), tmp_path / "m.mp4", fps=5)
    assert container_count(movie).frames == 7 and not container_count(movie).truncated
    assert video_info(movie).container.frames == 7 and video_info(movie) == dict(video_info(movie))
    mkv = tmp_path / "m.mkv"
    subprocess.run([_ffmpeg(), "-v", "error", "-i", str(movie), "-c", "copy", str(mkv)], check=True)
    assert container_count(mkv).frames is None  # Matroska records no count: the estimate (and its slack) stays
    text = tmp_path / "t.avi"
    text.write_text("not a video")
    assert container_count(text).frames is None and container_count(tmp_path / "none.avi").frames is None


@pytest.mark.parametrize("suffix, args", [(".ts", ["-c", "copy", "-f", "mpegts"]),
                                          (".mpg", ["-c:v", "mpeg2video", "-q:v", "2", "-f", "mpeg"]),
                                          (".m4v", ["-c", "copy", "-f", "mp4"])])
def test_mpeg_ps_and_ts_and_other_containers_are_read(tmp_path, suffix, args):
    from devolens.io.frames import VIDEO_SUFFIXES
    from devolens.io.video import video_info, write_video

    movie = write_video((np.full((32, 48, 3), 20 * i, np.uint8) for i in range(6)), tmp_path / "m.mp4", fps=5)
    other = tmp_path / f"m{suffix}"
    subprocess.run([_ffmpeg(), "-v", "error", "-i", str(movie), *args, str(other)], check=True)
    assert suffix in VIDEO_SUFFIXES
    frames, got = _read(other)
    assert len(got) == 6 and got[0].shape == (32, 48, 3) and frames.damage is None
    assert video_info(other)["fps"] == pytest.approx(5.0)


def test_predict_on_a_video_path_says_how_to_stream_it(tmp_path):
    from devolens.errors import DevolensError
    from devolens.predict.postprocess import image_array

    video = tmp_path / "x.avi"
    video.write_bytes(b"RIFF")
    with pytest.raises(DevolensError) as err:
        image_array(video)  # what predictor.predict(path) reads its image with
    msg = str(err.value)
    assert "is a video" in msg and "iter_path_frames" in msg and "predict_iter" in msg and "devolens segment" in msg
    assert "unsupported image type" not in msg


def test_stderr_log_counts_damage_messages_only():
    """The bytes of ffmpeg's stderr come in small pieces; the output side's complaints (our own pipe) and the
    header are not damage; a repeated message counts each time."""
    from devolens.io.video import _StderrLog

    text = (b"Input #0, mov,mp4, from 'x.mp4':\n  Stream #0:0: Video: h264, 752x512\n"
            b"[h264 @ 0x55d0] error while decoding MB 36 7, bytestream 20447\r\n"
            b"    Last message repeated 2 times\n"
            b"[image2pipe @ 0x55d1] Application provided invalid, non monotonically increasing dts to muxer\n"
            b"[swscaler @ 0x55d2] deprecated pixel format used, make sure you did set range correctly\n"
            b"[vist#0:0/h264 @ 0x55d3] [dec:h264 @ 0x55d4] corrupt decoded frame\n"
            b"[out#0/image2pipe @ 0x55d5] video:65KiB audio:0KiB subtitle:0KiB other streams:0KiB\n"
            b"frame=   24 fps=0.0 q=-0.0 Lsize=N/A time=00:00:03.00\r")
    log = _StderrLog()
    for k in range(0, len(text), 20):
        log.feed(text[k:k + 20])
    log.end()
    assert log.count == 4
    assert log.examples == ["error while decoding MB 36 7, bytestream 20447", "corrupt decoded frame"]


def test_a_reading_stopped_early_reports_nothing_and_other_readers_are_untouched(tmp_path):
    import imageio.v2 as iio

    from devolens.io.video import iter_video_frames, video_damage, write_video

    movie = write_video((np.full((32, 48, 3), 20 * i, np.uint8) for i in range(6)), tmp_path / "m.mp4", fps=5)
    frames = iter_video_frames(movie)
    next(frames)
    frames.close()
    assert frames.damage is None and not frames.complete and video_damage(movie) is None
    with iio.get_reader(movie, format="FFMPEG") as reader:  # imageio's own reader, after ours: as it was
        assert len([f for f in reader]) == 6


def _damaged_h264(tmp_path, n=40):
    """A clean H.264 mp4 of noise frames and a copy with 256 bytes overwritten in its middle: (clean, bad)."""
    clean = _noise_h264(tmp_path / "clean.mp4", n=n)
    data = bytearray(clean.read_bytes())
    at = len(data) // 2
    data[at:at + 256] = bytes(256)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    return clean, bad


def test_curate_flags_frames_decoded_from_damaged_data_and_segment_skips_them(tiny_zoo, tmp_path, capsys):
    """`curate frames` flags 'corrupt' the frames the reader places in damaged data (a boolean column, in
    `flagged`, counted in the summary); `segment nuclei --skip-flagged auto` leaves them out; the clean file has
    none."""
    import json

    import pandas as pd

    from devolens.cli import main
    from devolens.curate.frames import KINDS, flagged_frames, summarize
    from devolens.io.video import video_damage

    clean, bad = _damaged_h264(tmp_path)
    assert "corrupt" in KINDS
    report = tmp_path / "bad.csv"
    assert main(["curate", "frames", str(bad), "--out", str(report)]) == 0
    out = " ".join(capsys.readouterr().err.split())  # the summary line, on stderr
    damage = video_damage(bad)
    placed = {f for a, b in damage.corrupt_frames() for f in range(a, b + 1)}
    assert placed
    rep = pd.read_csv(report)
    assert "corrupt" in rep.columns and set(rep.loc[rep["corrupt"], "frame"]) == placed
    assert (rep.loc[rep["corrupt"], "flag"] == "corrupt").all() and rep.loc[rep["corrupt"], "flagged"].all()
    assert placed <= flagged_frames(report)
    assert summarize(rep)["corrupt"] == len(placed) and f"corrupt {len(placed)}" in out

    whole = tmp_path / "clean.csv"
    assert main(["curate", "frames", str(clean), "--out", str(whole)]) == 0
    assert not pd.read_csv(whole)["corrupt"].any()

    seg = tmp_path / "seg"
    assert main(["segment", "nuclei", str(bad), "--out", str(seg), "--skip-flagged", "auto", "--no-overlay"]) == 0
    made = pd.read_csv(seg / "curation.csv")
    assert set(made.loc[made["corrupt"], "frame"]) == placed
    counts = pd.read_csv(seg / "counts.csv")
    assert len(counts) == 40 - len(flagged_frames(made))
    skipped = json.loads((seg / "segment.json").read_text())["skipped"]
    assert len(skipped) == len(flagged_frames(made)) and placed <= flagged_frames(made)


@pytest.mark.parametrize("cmd", [["segment", "nuclei"], ["segment", "membrane"], ["population"]])
def test_inference_help_names_the_videos_the_reader_takes(cmd, capsys, monkeypatch):
    """The INPUT help of segment and population lists VIDEO_SUFFIXES (mkv, webm, mpg, ts...), not mp4/mov/avi only."""
    from devolens.cli import main
    from devolens.io.frames import VIDEO_SUFFIXES

    monkeypatch.setenv("COLUMNS", "200")
    assert main([*cmd, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "(mp4/mov/avi)" not in text
    listed = text[text.index("a video (mp4"):].split(")")[0]
    words = set(re.findall(r"[a-z0-9]+", listed))
    assert {s.lstrip(".") for s in VIDEO_SUFFIXES} <= words, listed


def _reads_clean(path, n):
    frames, got = _read(path)
    assert len(got) == n and frames.damage is None and _note(path, len(got)) is None


def test_an_avi_with_empty_drop_frame_chunks_is_counted_from_its_index(tmp_path):
    """ffmpeg muxing video with audio writes zero-size "drop frame" 00dc chunks that the header counts (21) but
    that give no frame: the index's chunks with data (20) are the count; with no index the header's count is an
    estimate, with its slack."""
    avi = tmp_path / "av.avi"
    subprocess.run([_ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", "-f",
                    "lavfi", "-i", "sine=duration=2", "-c:v", "mjpeg", "-c:a", "libmp3lame", "-shortest", str(avi)],
                   check=True)
    data = avi.read_bytes()
    strh = data.find(b"strh")
    header = struct.unpack("<I", data[strh + 40:strh + 44])[0]
    assert b"00dc\0\0\0\0" in data and header == 21  # the case: the header counts an empty chunk

    from devolens.io.video import container_count

    assert container_count(avi).frames == 20 and container_count(avi).exact
    _reads_clean(avi, 20)
    idx = data.rfind(b"idx1")
    bare = tmp_path / "noindex.avi"
    bare.write_bytes(data[:4] + struct.pack("<I", idx - 8) + data[8:idx])
    assert container_count(bare).frames == 21 and not container_count(bare).exact
    _reads_clean(bare, 20)


def test_bytes_after_the_last_box_or_chunk_are_no_cut(tmp_path):
    """A camera's trailer after an MP4's last box (or an AVI's RIFF chunk) is not a file cut short; a cut mdat is."""
    from devolens.io.video import container_count, write_video

    movie = write_video((np.full((32, 48, 3), 9 * i, np.uint8) for i in range(7)), tmp_path / "m.mp4", fps=5)
    trailer = tmp_path / "trailer.mp4"
    trailer.write_bytes(movie.read_bytes() + bytes(range(200, 216)))
    assert container_count(trailer).frames == 7 and not container_count(trailer).truncated
    _reads_clean(trailer, 7)
    avi = _mjpeg_avi(tmp_path / "m.avi")
    atrailer = tmp_path / "trailer.avi"
    atrailer.write_bytes(avi.read_bytes() + bytes(range(200, 216)))
    assert container_count(atrailer).frames == 12 and not container_count(atrailer).truncated
    _reads_clean(atrailer, 12)
    data = movie.read_bytes()
    mdat = data.find(b"mdat") - 4
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:mdat + 64])  # the mdat runs past the end
    assert container_count(cut).truncated


def test_damaged_audio_is_not_the_videos_damage(tmp_path):
    """ffmpeg's messages from an audio stream's decoder ('[mp3float @ 0x...] Header missing') say nothing of the
    video: no note, no second decoding."""
    from devolens.io.video import _damage_line

    assert _damage_line("[mp3float @ 0x55ba65f49080] Header missing") is None
    assert _damage_line("[aac @ 0x560d486da2c0] Number of bands (67) exceeds limit (44). error") is None
    assert _damage_line("[h264 @ 0x55aa38046e40] error while decoding MB 3 4") is not None
    mkv = tmp_path / "av.mkv"
    subprocess.run([_ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", "-f",
                    "lavfi", "-i", "sine=duration=2", "-c:v", "mjpeg", "-c:a", "libmp3lame", "-shortest", str(mkv)],
                   check=True)
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(mkv.read_bytes().replace(b"\xff\xfb", b"\0\0", 6))  # the first mp3 frames' headers
    log = subprocess.run([_ffmpeg(), "-hide_banner", "-i", str(bad), "-map", "0:v:0", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    assert "mp3float" in log  # the case: ffmpeg complains of the audio
    _reads_clean(bad, 20)
