"""Outputs found wanting by user walkthroughs: a full disk while writing a video, a tile store or a well is one
line naming the output; ffmpeg's exit status is checked and --fps bounded before any work; video timestamps need
no temporary folder; tile sizes far beyond the image; identify's --out a .csv; population's stale companions;
--threads on segment, population, curate frames and identify; segment.json's notes and segment livedead's
record."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from _cli_helpers import blob_frame
from _render_helpers import make_table
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.tables import write_tidy
from devolens.render.wells import simulate_well

import devolens

#: where the devolens being tested is imported from (for the subprocesses)
SRC = str(Path(devolens.__file__).resolve().parents[1])


def _run(args: list[str], capsys) -> tuple[int, list[str]]:
    code = main(args)
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


_frame = blob_frame


def _folder(path: Path, n=3) -> Path:
    from devolens.io.images import write_png

    path.mkdir()
    for i in range(n):
        write_png(_frame(seed=i), path / f"t{i + 1:03d}.png")
    return path


def _video(path: Path, n=5) -> Path:
    from devolens.io.video import write_video

    write_video((_frame(64, 96, seed=i) for i in range(n)), path, fps=5)
    return path


def _fake_ffmpeg(tmp_path: Path, body: str) -> Path:
    """An executable standing in for ffmpeg: a Python script (``real`` is imageio-ffmpeg's ffmpeg)."""
    import imageio_ffmpeg

    exe = tmp_path / "fake_ffmpeg"
    exe.write_text(f"#!{sys.executable}\nimport os, sys\nreal = {imageio_ffmpeg.get_ffmpeg_exe()!r}\n{body}\n")
    exe.chmod(0o755)
    return exe


#: the exit code of a full disk: 2, or EX_TEMPFAIL where the command tells the machine's exhaustion apart
FULL_DISK = getattr(__import__("devolens.io.atomic", fromlist=["EX_TEMPFAIL"]), "EX_TEMPFAIL", 2)


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------ 1, 2: the video writer: a full disk, ffmpeg's status


needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full (a device that is full)")


@needs_dev_full
def test_overlay_video_on_a_full_disk_is_one_line_naming_it(tiny_zoo, tmp_path, monkeypatch, capsys):
    """ffmpeg writing overlay.mp4 to a full disk (here /dev/full): one error line naming OUT/overlay.mp4, no
    traceback (was ffmpeg's stderr, then BrokenPipeError and OSError: [Errno 32] Broken pipe), nothing left."""
    from devolens.io import video

    movie = _video(tmp_path / "in.mp4")
    monkeypatch.setattr(video, "_encoder_exe", lambda: str(_fake_ffmpeg(
        tmp_path, 'os.execv(real, [real, *sys.argv[1:-1], "-f", "mp4", "/dev/full"])')))
    out = tmp_path / "seg"
    code, err = _run(["segment", "nuclei", str(movie), "--out", str(out)], capsys)
    assert code == FULL_DISK
    assert err == [f"error: {out / 'overlay.mp4'}: cannot write output: No space left on device"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake_ffmpeg", "in.mp4"]  # no output, no staging


def test_segment_on_a_full_disk_leaves_no_staging_folder(tiny_zoo, tmp_path, monkeypatch, capsys):
    """A full disk fails objects.csv's last write too: its close, in the cleanup, raised again, so that the
    staging folder stayed and the error line named no file."""
    import errno

    from devolens.io import atomic, images

    src = _folder(tmp_path / "in", n=2)

    def full(labels, path, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    real_close = atomic.ColumnsCSV.close

    def close(self):
        real_close(self)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(images, "write_label_tif", full)
    monkeypatch.setattr(atomic.ColumnsCSV, "close", close)
    out = tmp_path / "seg"
    code, err = _run(["segment", "nuclei", str(src), "--out", str(out)], capsys)
    assert code == FULL_DISK and len(err) == 1
    assert err[0].startswith(f"error: {out}") and err[0].endswith("No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_write_video_checks_ffmpegs_exit_status(tmp_path, monkeypatch):
    """An ffmpeg that fails (here: takes the frames, writes nothing, exits 1) is an error, not an empty video
    with exit 0; its message is kept, not printed."""
    from devolens.io import video

    monkeypatch.setattr(video, "_encoder_exe", lambda: str(_fake_ffmpeg(
        tmp_path, 'sys.stdin.buffer.read()\nsys.stderr.write("Invalid argument\\n")\nsys.exit(1)')))
    with pytest.raises(DevolensError, match=r"cannot write video: ffmpeg failed \(Invalid argument\)"):
        video.write_video((np.zeros((32, 32, 3), np.uint8) for _ in range(3)), tmp_path / "v.mp4")
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("fps", [1e-9, 0.0, -1.0, 1e12, float("inf"), float("nan")])
def test_write_video_refuses_a_frame_rate_out_of_range(tmp_path, fps):
    from devolens.io.video import write_video

    with pytest.raises(DevolensError, match="fps must be within"):
        write_video((np.zeros((32, 32, 3), np.uint8) for _ in range(2)), tmp_path / "v.mp4", fps=fps)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fps", ["1e-9", "1e12", "inf"])
def test_render_refuses_a_bad_fps_before_rendering(tmp_path, capsys, monkeypatch, fps):
    """--fps 1e-9 left a 0-byte video.mp4 with exit 0, --fps inf failed only after every frame was rendered."""
    import devolens.render.dataset as dataset

    table = write_tidy(make_table(n_times=4, n_cells=12, seed=1), tmp_path / "toy.csv")
    monkeypatch.setattr(dataset, "render_dataset", lambda *a, **k: pytest.fail("rendered before the check"))
    code, err = _run(["render", str(table), "--out", str(tmp_path / "r"), "--times", "1-3", "--size", "64", "64",
                      "--video", "--fps", fps], capsys)
    assert code == 2 and len(err) == 1 and "--fps must be within 0.001..100000 frames per second" in err[0]
    assert not (tmp_path / "r").exists()


def test_render_video_at_a_slow_frame_rate_is_a_real_video(tmp_path, capsys):
    from devolens.io.video import iter_video_frames

    table = write_tidy(make_table(n_times=4, n_cells=12, seed=1), tmp_path / "toy.csv")
    code, _ = _run(["render", str(table), "--out", str(tmp_path / "r"), "--times", "1-3", "--size", "64", "64",
                    "--video", "--fps", "0.01"], capsys)
    assert code == 0 and len(list(iter_video_frames(tmp_path / "r" / "video.mp4"))) == 3


def test_overlay_of_a_video_with_an_absurd_frame_rate_is_written(tiny_zoo, tmp_path, monkeypatch, capsys):
    """An input whose header gives a frame rate the writer cannot take (a broken 1e-9 fps): the overlay is made at
    the nearest rate it takes (it was an empty overlay.mp4, or an error after every frame)."""
    from devolens.cli import predict
    from devolens.io.video import iter_video_frames

    movie = _video(tmp_path / "in.mp4", n=3)
    monkeypatch.setattr(predict._Source, "fps", property(lambda self: 1e-9))
    assert main(["segment", "nuclei", str(movie), "--out", str(tmp_path / "seg")]) == 0
    assert len(list(iter_video_frames(tmp_path / "seg" / "overlay.mp4"))) == 3


# ------------------------------------------------------------------ 3: video timestamps without a temporary folder


def _gap_video(tmp_path: Path) -> Path:
    from test_io_realworld import _ffmpeg, _video_with_a_gap

    return _video_with_a_gap(tmp_path / "gap.mp4", _ffmpeg())


def _no_temp_files(*args, **kwargs):
    raise FileNotFoundError(2, "No usable temporary directory found")


def test_video_frames_lost_are_found_without_a_temporary_folder(tmp_path, monkeypatch):
    """With no writable temporary folder a video could not be read at all ('cannot read video ([Errno 2] No usable
    temporary directory found'); on Linux the timestamps come through a pipe, no file is made."""
    from devolens.io.missing import MissingFrame
    from devolens.io.video import _timestamps_supported, iter_video_frames

    if not _timestamps_supported() or not sys.platform.startswith("linux"):
        pytest.skip("needs ffmpeg 6.1+ (frame timestamps) and Linux (/proc)")
    movie = _gap_video(tmp_path)
    monkeypatch.setattr(tempfile, "mkstemp", _no_temp_files)
    marked = list(iter_video_frames(movie, mark_lost=True))
    assert len(marked) == 40
    assert [i for i, f in enumerate(marked) if isinstance(f, MissingFrame)] == [10, 11, 12, 13]


def test_video_is_read_without_timestamps_where_they_cannot_be_had(tmp_path, monkeypatch):
    """Elsewhere than Linux with no temporary folder, or a place for them that ffmpeg cannot open: the frames are
    read all the same, numbered as they come."""
    from devolens.io import video

    if not video._timestamps_supported():
        pytest.skip("needs ffmpeg 6.1+ (frame timestamps)")
    movie = _gap_video(tmp_path)
    monkeypatch.setattr(tempfile, "mkstemp", _no_temp_files)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert video._Timestamps.make() is None
    assert len(list(video.iter_video_frames(movie, mark_lost=True))) == 36
    monkeypatch.undo()
    monkeypatch.setattr(video._Timestamps, "make", classmethod(
        lambda cls: cls(str(tmp_path / "no" / "such" / "stamps.txt"))))
    assert len(list(video.iter_video_frames(movie, mark_lost=True))) == 36


# ------------------------------------------------------------------ 4: tile sizes, the store's name


@pytest.fixture(scope="module")
def well(tmp_path_factory):
    d = tmp_path_factory.mktemp("well")
    w = simulate_well(seed=1, size=(400, 400))
    image, labels = d / "w.tif", d / "wl.tif"
    tifffile.imwrite(image, w.image)
    tifffile.imwrite(labels, w.labels)
    return image, labels


def test_tile_far_larger_than_the_image_is_refused_before_any_buffer(tmp_path, well, capsys, monkeypatch):
    """--tile 12000 on a 400x400 well allocated a buffer of 1000 such tiles (536 GiB) before the size check."""
    from devolens.data import tiling

    made = []
    real = tiling._Writer.__init__
    monkeypatch.setattr(tiling._Writer, "__init__", lambda self, *a, **k: made.append(1) or real(self, *a, **k))
    code, err = _run(["tile", "make", str(well[0]), "--labels", str(well[1]), "--out", str(tmp_path / "t.h5"),
                      "--tile", "12000"], capsys)
    assert code == 2 and len(err) == 1
    assert "smaller than the tile (12000 px a side" in err[0] and "tile it with --tile 400 or less" in err[0]
    assert made == [] and list(tmp_path.iterdir()) == []


def test_tile_chunks_are_bounded_in_bytes(tmp_path, well, capsys):
    from devolens.data import tiling

    assert tiling.chunk_samples(1000, 160, 2, True, 3) == 1000  # the defaults: as before
    assert tiling.chunk_samples(1000, 12000, 2, True, 3) == 1
    assert main(["tile", "make", str(well[0]), "--labels", str(well[1]), "--out", str(tmp_path / "t.h5"),
                 "--tile", "400", "--keep", "all"]) == 0
    import h5py

    with h5py.File(tmp_path / "t.h5") as f:
        chunk = f["images"].chunks[0]
        assert f.attrs["chunk"] == chunk and chunk * (2 * 400 * 400 * 2 + 400 * 400) <= tiling.MAX_CHUNK_BYTES
        assert f["images"].shape[0] == 1


def test_a_tiny_images_advice_is_a_tile_the_command_takes(tmp_path, capsys):
    """A 3x5 image was told '--tile 3 or less', which --tile (at least 8) refuses."""
    tifffile.imwrite(tmp_path / "s.tif", np.full((2, 3, 5), 1000, np.uint16), metadata={"axes": "CYX"},
                     photometric="minisblack")
    tifffile.imwrite(tmp_path / "sl.tif", np.array([[0, 1, 2, 0, 1]] * 3, np.uint8))
    code, err = _run(["tile", "make", str(tmp_path / "s.tif"), "--labels", str(tmp_path / "sl.tif"), "--out",
                      str(tmp_path / "t.h5"), "--tile", "8"], capsys)
    assert code == 2 and len(err) == 1
    assert "too small to tile (--tile is at least 8)" in err[0] and "--tile 3" not in err[0]


@pytest.mark.parametrize("name", ["t.csv", "t", "t.h5.tmp"])
def test_tile_store_must_be_named_h5(tmp_path, well, capsys, name):
    code, err = _run(["tile", "make", str(well[0]), "--labels", str(well[1]), "--out", str(tmp_path / name)],
                     capsys)
    assert code == 2 and err == [f"error: {tmp_path / name}: --out must be an HDF5 tile store named .h5 or .hdf5"]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 5: a full disk under simulate well and tile make


def _limited(args: list[str], limit: int, cwd: Path) -> subprocess.CompletedProcess:
    """``devolens ARGS`` in a process whose files may not grow past ``limit`` bytes (RLIMIT_FSIZE: a write past it
    fails with EFBIG, as on a full disk)."""
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
            "from devolens.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


needs_rlimit = pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE")


@needs_rlimit
def test_tile_make_out_of_space_is_one_line(tmp_path, well):
    """HDF5 failing to write (a full disk; here a file size limit) printed a multi-line HDF5 dump per dataset
    closed, then crashed; now one line, and the temporary store is gone."""
    run = _limited(["tile", "make", str(well[0]), "--labels", str(well[1]), "--out", "t.h5", "--tile", "16",
                    "--stride", "8"], 200_000, tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.strip().splitlines() == ["error: t.h5: cannot write output: File too large"]
    assert [p.name for p in tmp_path.iterdir()] == []


@needs_rlimit
def test_simulate_well_short_write_is_one_line(tmp_path):
    run = _limited(["simulate", "well", "--out", "w.tif", "--labels", "wl.tif", "--size", "400x400"], 200_000,
                   tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: w.tif: cannot write output: ")
    assert list(tmp_path.iterdir()) == []


def test_simulate_well_on_a_full_disk_says_so(tmp_path, capsys, monkeypatch):
    """tifffile's short write (numpy's 'N requested and M written', an OSError without errno) on a full disk."""
    import tifffile as tf

    def short(path, data, **kwargs):
        Path(path).write_bytes(b"II*\0" + bytes(100))
        raise OSError(f"{np.asarray(data).nbytes} requested and 104 written")

    class Full:  # (what shutil.disk_usage reads too)
        f_blocks, f_bfree, f_bavail, f_frsize = 1000, 0, 0, 4096

    monkeypatch.setattr(tf, "imwrite", short)
    monkeypatch.setattr(os, "statvfs", lambda path: Full())
    code, err = _run(["simulate", "well", "--out", str(tmp_path / "w.tif"), "--labels", str(tmp_path / "wl.tif"),
                      "--size", "64x64"], capsys)
    assert code == FULL_DISK and err == [f"error: {tmp_path / 'w.tif'}: cannot write output: No space left on device"]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 6: identify's --out is a .csv


@pytest.mark.parametrize("out", ["newdir2/", "-", "names.txt", "out/"])
def test_identify_out_must_be_a_csv(tmp_path, capsys, monkeypatch, out):
    """--out out/newdir2/ made a file newdir2 (and newdir2.json), --out - a file named '-'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    table = write_tidy(make_table(n_times=2, n_cells=4, seed=1), tmp_path / "toy.csv")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = _run(["identify", str(table), "--out", out], capsys)
    assert code == 2 and len(err) == 1
    said = {"out/": "--out is a folder; give a .csv file", "-": "writing to stdout is not supported"}
    assert said.get(out, "--out must be a .csv file") in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------ 7: population's companions of an earlier run


def test_population_rerun_removes_the_earlier_runs_plot_and_report(tiny_zoo, tmp_path):
    a, b = _folder(tmp_path / "a", n=3), _folder(tmp_path / "b", n=2)
    out = tmp_path / "st.csv"
    (tmp_path / "st.txt").write_text("mine")
    assert main(["population", str(a), "--out", str(out), "--skip-flagged", "auto"]) == 0
    assert (tmp_path / "st.png").is_file() and (tmp_path / "st.curation.csv").is_file()
    assert main(["population", str(b), "--out", str(out), "--no-plot"]) == 0
    assert not (tmp_path / "st.png").exists() and not (tmp_path / "st.curation.csv").exists()
    record = json.loads((tmp_path / "st.json").read_text())
    assert record["plot"] is None and record["curation"] is None
    assert (tmp_path / "st.txt").read_text() == "mine"


def test_population_rerun_keeps_the_report_it_reads(tiny_zoo, tmp_path):
    a = _folder(tmp_path / "a", n=3)
    out = tmp_path / "st.csv"
    assert main(["population", str(a), "--out", str(out), "--skip-flagged", "auto"]) == 0
    report = tmp_path / "st.curation.csv"
    kept = report.read_bytes()
    assert main(["population", str(a), "--out", str(out), "--no-plot", "--skip-flagged", str(report)]) == 0
    assert report.read_bytes() == kept and not (tmp_path / "st.png").exists()


# ------------------------------------------------------------------ 8: --threads


def test_segment_threads_is_applied_and_recorded(tiny_zoo, tmp_path, capsys, keep_threads):
    src = _folder(tmp_path / "in", n=2)
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg"), "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1
    assert json.loads((tmp_path / "seg" / "segment.json").read_text())["options"]["threads"] == 1
    capsys.readouterr()
    code, err = _run(["segment", "membrane", str(src), "--out", str(tmp_path / "m"), "--threads", "0"], capsys)
    assert code == 2 and err == ["error: --threads must be at least 1, got 0"] and not (tmp_path / "m").exists()


def test_population_threads_is_applied_and_recorded(tiny_zoo, tmp_path, keep_threads):
    src = _folder(tmp_path / "in", n=2)
    assert main(["population", str(src), "--out", str(tmp_path / "p.csv"), "--no-plot", "--threads", "2"]) == 0
    assert torch.get_num_threads() == 2
    assert json.loads((tmp_path / "p.json").read_text())["options"]["threads"] == 2


def test_curate_threads_go_to_the_video_decoder(tmp_path, monkeypatch, capsys):
    from devolens.io import video

    movie = _video(tmp_path / "in.mp4", n=3)
    seen = []  # the decoder threads of the readers of the frames (not the header's probe: one frame, one thread)
    real = video._get_reader

    def spy(path, **kw):
        if "-frames:v" not in kw.get("output_params", []):
            seen.append(kw.get("input_params"))
        return real(path, **kw)

    monkeypatch.setattr(video, "_get_reader", spy)
    assert main(["curate", "frames", str(movie), "--out", str(tmp_path / "r.csv"), "--threads", "2"]) == 0
    assert seen and all(p == ["-threads", "2"] for p in seen)
    seen.clear()
    assert main(["curate", "frames", str(movie), "--out", str(tmp_path / "r.csv")]) == 0
    assert seen and all(p is None for p in seen)  # ffmpeg's choice, as before
    capsys.readouterr()  # the two runs' summary lines (stderr)
    code, err = _run(["curate", "frames", str(movie), "--out", str(tmp_path / "r.csv"), "--threads", "0"], capsys)
    assert code == 2 and err == ["error: --threads must be at least 1, got 0"]


def test_identify_threads_is_applied_and_recorded(tmp_path, keep_threads):
    from test_identity import needs_zoo, toy_embryo

    if needs_zoo.args[0]:
        pytest.skip(needs_zoo.kwargs.get("reason", "no identity model"))
    src = tmp_path / "toy.csv"
    toy_embryo(times=3).to_csv(src, index=False)
    torch.set_num_threads(1)
    assert main(["identify", str(src), "--out", str(tmp_path / "c.csv"), "--tta", "1", "--threads", "2"]) == 0
    assert torch.get_num_threads() == 2
    assert json.loads((tmp_path / "c.json").read_text())["threads"] == 2


# ------------------------------------------------------------------ 9: segment.json's notes, segment livedead's record


def test_segment_json_records_the_notes_printed(tiny_zoo, tmp_path, capsys):
    src = _folder(tmp_path / "in", n=3)
    (src / "t002.png").write_bytes(b"not an image")
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg"), "--skip-flagged", "auto"]) == 0
    printed = " ".join(capsys.readouterr().err.split())
    notes = json.loads((tmp_path / "seg" / "segment.json").read_text())["notes"]
    assert any(n.startswith("1 file could not be read") for n in notes)
    assert all(" ".join(n.split()) in printed for n in notes)


def test_livedead_writes_its_record(tmp_path, well, monkeypatch):
    from devolens.models.architectures import build_model, save_model

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=2, classes=3, encoder_depth=3, decoder_channels=(16, 8, 4))
    weights = save_model(net, tmp_path / "m.safetensors", {"task": "livedead"}, fp16=True)
    out = tmp_path / "res"
    monkeypatch.setattr(sys, "argv", ["devolens", "segment", "livedead", str(well[0]), "--out", str(out)])
    assert main(["segment", "livedead", str(well[0]), "--out", str(out), "--model", str(weights), "--window", "128",
                 "--overlap", "16", "--no-fast"]) == 0
    record = json.loads((out / "livedead.json").read_text())
    assert record["command"] == f"devolens segment livedead {well[0]} --out {out}"
    assert record["input"] == str(well[0].absolute()) and record["model"] == str(weights)
    assert record["weights_sha256"] == hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    assert record["options"]["window"] == 128 and record["options"]["threads"] is None
    counts = dict(zip(*(line.split(",") for line in (out / "counts.csv").read_text().splitlines())))
    assert [record["counts"]["live"], record["counts"]["dead"]] == [int(counts["live"]), int(counts["dead"])]
    assert counts["well"] == record["wells"][0]["well"] == well[0].stem
    # (an untrained network's classes: at most the swapped-channel warning, its "dead" regions bright only in Draq7)
    assert record["devolens"] and "torch" in record and all("read as dead" in n for n in record["notes"])
