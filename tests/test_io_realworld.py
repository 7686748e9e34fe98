"""Input files as biologists bring them from microscopes, Fiji, cameras and phones (QA sweep of the readers).

Each test builds its file the way the program that writes it does, then checks that the inference commands
read the right pixels (size, orientation, frames, channels) or refuse the file in one clear line.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.frames import iter_path_frames
from devolens.io.images import read_image
from devolens.io.stacks import other_series_note, stack_info


def _grey(h=40, w=60, seed=0) -> np.ndarray:
    """A grey uint8 frame with a few bright blobs (every pixel distinct enough to compare orientations)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.zeros((h, w), np.float32)
    for _ in range(4):
        cy, cx = rng.uniform(5, h - 5), rng.uniform(5, w - 5)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
    img += np.linspace(0, 0.2, w)[None, :] + np.linspace(0, 0.1, h)[:, None]  # no symmetry: turns show
    return (np.clip(img, 0, 1) * 230).astype(np.uint8)


# --------------------------------------------------------------------------- TIFF
@pytest.mark.parametrize("compression", ["tiff_lzw", "jpeg"])
def test_lzw_and_jpeg_compressed_tiffs_are_read(tmp_path, compression):
    """LZW (Zeiss, Leica, MetaMorph exports, bfconvert -compression LZW) and JPEG-in-TIFF need tifffile's
    codecs (imagecodecs): without them every such file failed with 'requires the imagecodecs package'."""
    g = _grey()
    path = tmp_path / "lzw.tif"
    Image.fromarray(g).save(path, compression=compression)
    arr = read_image(path)
    assert arr.shape == g.shape
    if compression == "tiff_lzw":
        np.testing.assert_array_equal(arr, g)
    # a compressed multi-page timelapse streams frame by frame
    stack = tmp_path / "lzw_stack.tif"
    Image.fromarray(g).save(stack, compression=compression, save_all=True,
                            append_images=[Image.fromarray(_grey(seed=s)) for s in (1, 2)])
    frames, _, total = iter_path_frames(stack)
    frames = list(frames)
    assert total == 3 and len(frames) == 3 and frames[2].shape == g.shape


@pytest.mark.parametrize("shape", ["1HW", "HW1"])
def test_singleton_axes_are_dropped(tmp_path, shape):
    """numpy users save ``img[None]`` or ``img[..., None]``: tifffile labels the extra axis 'Q', shape
    (1, H, W) or (H, W, 1). The first crashed the overlay (a traceback), the second was refused as an
    'unsupported TIFF layout'."""
    g = _grey()
    path = tmp_path / f"{shape}.tif"
    tifffile.imwrite(path, g[None] if shape == "1HW" else g[..., None], photometric="minisblack")
    np.testing.assert_array_equal(read_image(path), g)
    info = stack_info(path)
    assert info.axes == "YX" and info.shape == g.shape and not info.is_stack
    frames, names, total = iter_path_frames(tmp_path)  # as a folder member
    assert total == 1 and next(frames).shape == g.shape


def test_singleton_axes_tiff_segments_with_overlay(tiny_zoo, tmp_path):
    g = _grey(48, 70)
    src = tmp_path / "one.tif"
    tifffile.imwrite(src, g[None], photometric="minisblack")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out)]) == 0
    assert tifffile.imread(out / "labels" / "one_labels.tif").shape == (48, 70)
    assert np.asarray(Image.open(out / "overlays" / "one_overlay.png")).shape == (48, 70, 3)


def test_png_saved_with_a_tif_name_is_read_by_its_content(tiny_zoo, tmp_path, capsys):
    g = _grey(48, 70)
    src = tmp_path / "frame.tif"
    Image.fromarray(g).save(src, format="PNG")
    np.testing.assert_array_equal(read_image(src), g)
    assert not stack_info(src).is_stack
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out)]) == 0
    assert tifffile.imread(out / "labels" / "frame_labels.tif").shape == (48, 70)
    # a file with no image at all still says so in one line
    (tmp_path / "notes.tif").write_text("not an image")
    assert main(["segment", "nuclei", str(tmp_path / "notes.tif"), "--out", str(tmp_path / "o2")]) == 2
    assert "notes.tif" in capsys.readouterr().err and not (tmp_path / "o2").exists()


@pytest.mark.parametrize("name", ["empty.tif", "empty.png"])
def test_zero_byte_file_says_it_is_empty(tiny_zoo, tmp_path, capsys, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(DevolensError, match=r"empty file \(0 bytes\)"):
        read_image(tmp_path / name)
    assert main(["segment", "nuclei", str(tmp_path / name), "--out", str(tmp_path / "o")]) == 2
    assert "empty file" in capsys.readouterr().err


def test_indexed_colour_tiff_shows_its_colours_and_imagej_lut_keeps_its_values(tmp_path):
    """A palette TIFF's pixels are indices into its colour table: read as they were, they are no
    intensities (an adaptive palette's order is arbitrary). ImageJ's 8-bit images with a LUT (Green,
    Fire...) are palette TIFFs whose indices are the data, and stay so."""
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 1] = _grey()
    path = tmp_path / "indexed.tif"
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].photometric == 3  # PALETTE
    arr = read_image(path)
    assert arr.shape == (40, 60, 3) and arr.dtype == np.uint8
    assert np.corrcoef(arr[..., 1].ravel(), rgb[..., 1].ravel())[0, 1] > 0.95
    lut = np.zeros((3, 256), np.uint16)
    lut[1] = np.arange(256) * 257  # ImageJ's Green LUT
    ij = tmp_path / "ij_green.tif"
    tifffile.imwrite(ij, _grey(), imagej=True, colormap=lut, photometric="palette")
    np.testing.assert_array_equal(read_image(ij), _grey())


def test_several_series_are_noted(tiny_zoo, tmp_path, capsys):
    """An OME-TIFF of two stage positions (two embryos): only the first is read, and the command says so
    (it used to drop the second silently)."""
    path = tmp_path / "positions.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(np.stack([_grey(48, 70, s) for s in range(3)]), metadata={"axes": "TYX"}, photometric="minisblack")
        tw.write(np.stack([_grey(48, 70, s) for s in range(3, 6)]), metadata={"axes": "TYX"},
                 photometric="minisblack")
    note = other_series_note(path)
    assert note and "2 image series" in note and "first" in note
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(path), "--out", str(out)]) == 0
    assert "2 image series" in capsys.readouterr().err.replace("\n", " ")
    assert len(list((out / "labels").glob("*_labels.tif"))) == 3
    assert main(["curate", "frames", str(path), "--out", str(tmp_path / "c.csv")]) == 0
    assert "2 image series" in capsys.readouterr().err.replace("\n", " ")
    single = tmp_path / "one.tif"
    tifffile.imwrite(single, _grey())
    assert other_series_note(single) is None


@pytest.mark.parametrize("layout", ["imagej", "ome", "shaped", "plain"])
def test_truncated_stack_is_refused_not_read_as_one_image(tiny_zoo, tmp_path, capsys, layout):
    """A stack cut short (an interrupted copy): tifffile finds the first page only (its chain of pages points past
    the end of the file), so a 3-time-point movie was segmented as a single image (an OME hyperstack as its first
    channel, --channel ignored), with tifffile's log lines on the terminal."""
    path = tmp_path / "movie.tif"
    movie = np.stack([np.stack([_grey(48, 70, t)] * 4) for t in range(3)])
    if layout == "imagej":
        tifffile.imwrite(path, movie, imagej=True, metadata={"axes": "TZYX"})
    elif layout == "ome":
        tifffile.imwrite(path, movie, ome=True, metadata={"axes": "TZYX"})
    else:
        tifffile.imwrite(path, movie.reshape(12, 48, 70), photometric="minisblack",
                         metadata={} if layout == "shaped" else None)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(DevolensError, match="damaged or truncated TIFF"):
        stack_info(cut)
    assert main(["segment", "nuclei", str(cut), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "damaged or truncated" in err and "tifffile" not in err.split("error:")[0]
    assert not (tmp_path / "o").exists()
    assert stack_info(path).is_stack  # the whole file reads as before


@pytest.mark.parametrize("axes", ["ZYX", "QYX", "CYX", "TYXS"])
def test_predict_refuses_the_path_of_a_stack(tiny_zoo, tmp_path, axes):
    """``load(...).predict(path)`` on a 3- or 4-plane stack took its planes for the colours of one RGB(A)
    image (a z-stack, a timelapse or two channels silently read as colours) or failed on the array's shape."""
    from devolens.models import load

    planes = np.stack([_grey(48, 70, s) for s in range(3)])
    path = tmp_path / "stack.tif"
    if axes == "QYX":
        tifffile.imwrite(path, planes, photometric="minisblack")
    elif axes == "TYXS":
        tifffile.imwrite(path, np.repeat(planes[..., None], 3, axis=3), imagej=True, photometric="rgb",
                         metadata={"axes": "TYXS"})
    else:
        tifffile.imwrite(path, planes[:2] if axes == "CYX" else planes, imagej=True, metadata={"axes": axes})
    model = load("nuclei")
    with pytest.raises(DevolensError, match="stack of several planes.*predict_iter"):
        model.predict(path)
    # a planar RGB TIFF (3 sample planes) is still one colour image
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, planes, photometric="rgb", planarconfig="separate")
    assert model.predict(rgb).labels.shape == (48, 70)


# --------------------------------------------------------------------------- JPEG
def test_jpeg_exif_orientation_is_applied(tmp_path):
    """Phones and cameras store the pixels as the sensor saw them plus an EXIF orientation; every viewer
    shows the turned image, so labels and overlays must match that, not the raw pixel grid."""
    rgb = np.repeat(_grey(40, 60)[..., None], 3, axis=2)
    stored = Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90)  # 60 x 40 as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=98)
    arr = read_image(path)
    assert arr.shape[:2] == (40, 60)
    assert np.abs(arr.astype(int) - rgb).mean() < 4  # the original orientation, within JPEG's loss


# --------------------------------------------------------------------------- video
def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def test_variable_frame_rate_video_gives_each_frame_once(tmp_path):
    """A timelapse of irregular intervals saved as a variable-frame-rate video: ffmpeg's pipe resampled
    it to a constant rate, repeating frames (10 time points came out as 104 frames, 94 of them flagged as
    duplicates by curate)."""
    from devolens.io.video import iter_video_frames

    names = []
    for i in range(4):
        names.append(tmp_path / f"f{i}.png")
        Image.fromarray(np.repeat(_grey(64, 96, i)[..., None], 3, axis=2)).save(names[-1])
    listing = tmp_path / "list.txt"
    lines = [f"file '{p}'\nduration {d}" for p, d in zip(names, (0.1, 0.9, 0.3, 0.5))]
    listing.write_text("\n".join(lines) + f"\nfile '{names[-1]}'\n")
    movie = tmp_path / "vfr.mp4"
    subprocess.run([_ffmpeg(), "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-fps_mode", "vfr", str(movie)], check=True)
    frames = list(iter_video_frames(movie))
    assert 4 <= len(frames) <= 5  # each time point once (the concat list repeats the last one)
    marked = list(iter_video_frames(movie, mark_lost=True))  # irregular steps are no missing frames
    assert len(marked) == len(frames) and all(isinstance(f, np.ndarray) for f in marked)
    assert frames[0].shape == (64, 96, 3)
    for a, b, i in zip(frames[:3], frames[1:4], range(3)):
        assert np.abs(a.astype(int) - b).mean() > 1, f"frame {i + 1} repeats frame {i}"


def _video_with_a_gap(path, ffmpeg: str):
    """A constant-rate video (8 fps, 40 frames of ffmpeg's test pattern) whose frames 10-13 are missing: their
    timestamps are skipped, as in a file with a damaged stretch or frames dropped while recording."""
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=8:duration=5",
                    "-vf", "select='not(between(n\\,10\\,13))'", "-fps_mode", "passthrough", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def test_frames_missing_mid_video_keep_the_later_frames_numbers(tmp_path, monkeypatch):
    """Frames missing in the middle of a video (their timestamps skipped) come as MissingFrame stand-ins with
    mark_lost, so the later frames keep their numbers; a whole video and a variable-frame-rate one have none."""
    from devolens.io.missing import MissingFrame
    from devolens.io.video import _timestamps_supported, iter_video_frames, write_video

    if not _timestamps_supported():
        pytest.skip("this ffmpeg writes no frame timestamps (-stats_enc_pre, ffmpeg 6.1+)")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the timestamp files go
    movie = _video_with_a_gap(tmp_path / "gap.mp4", _ffmpeg())
    plain = list(iter_video_frames(movie))
    stream = iter_video_frames(movie, mark_lost=True)
    first = next(stream)
    # once ffmpeg has it open the timestamp file is unlinked: a process killed mid-read leaves nothing behind
    assert not list((tmp_path / "tmp").iterdir())
    marked = [first, *stream]
    assert len(plain) == 36 and len(marked) == 40
    assert [i for i, f in enumerate(marked) if isinstance(f, MissingFrame)] == [10, 11, 12, 13]
    assert marked[13].reason == "lost" and Path(marked[13].path) == movie
    real = [f for f in marked if not isinstance(f, MissingFrame)]
    assert all(np.array_equal(a, b) for a, b in zip(plain, real))
    every = list(iter_video_frames(movie, mark_lost=True, every=4))  # frames 0, 4, 8, 12 (missing), 16...
    assert len(every) == 10 and isinstance(every[3], MissingFrame) and np.array_equal(every[4], marked[16])
    whole = write_video((np.full((32, 48, 3), 20 * i, np.uint8) for i in range(12)), tmp_path / "whole.mp4", fps=8)
    assert not any(isinstance(f, MissingFrame) for f in iter_video_frames(whole, mark_lost=True))
    # a timelapse whose interval doubles for good (6 frames 1 s apart, then 6 frames 2 s apart): a variable rate,
    # not every other frame missing
    phases = tmp_path / "phases.mp4"
    subprocess.run([_ffmpeg(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=1:duration=12",
                    "-vf", "setpts='if(lt(N,6),N,5+2*(N-5))/TB'", "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", str(phases)], check=True)
    got = list(iter_video_frames(phases, mark_lost=True))
    assert len(got) == 12 and not any(isinstance(f, MissingFrame) for f in got)
    assert not list((tmp_path / "tmp").iterdir())  # the timestamp files are removed


def test_rotated_video_is_read_turned_without_a_warning(tmp_path, caplog, capfd):
    """A video with rotation metadata (a phone, a camera mounted the other way) decodes turned as players
    show it; imageio-ffmpeg's warning that the size differs from the stream's is not printed."""
    from devolens.io.video import iter_video_frames, write_video

    plain = write_video((np.repeat(_grey(64, 96, i)[..., None], 3, axis=2) for i in range(3)), tmp_path / "a.mp4")
    turned = tmp_path / "turned.mp4"
    subprocess.run([_ffmpeg(), "-loglevel", "error", "-y", "-display_rotation", "90", "-i", str(plain), "-c", "copy",
                    str(turned)], check=True)
    with caplog.at_level(logging.WARNING):
        frames = list(iter_video_frames(turned))
    assert len(frames) == 3 and frames[0].shape == (96, 64, 3)
    assert "different from the source frame size" not in caplog.text + capfd.readouterr().err


def test_unreadable_videos_say_why(tiny_zoo, tmp_path, capsys):
    """ffmpeg's 'Could not load meta information' said nothing: an audio-only file, a text file named .mp4 and a
    recording cut short before its index was written now say which they are."""
    audio = tmp_path / "sound.mp4"
    subprocess.run([_ffmpeg(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    "-c:a", "aac", str(audio)], check=True)
    text = tmp_path / "notes.mp4"
    text.write_text("not a movie")
    from devolens.io.video import write_video

    movie = write_video((np.repeat(_grey(64, 96, i)[..., None], 3, axis=2) for i in range(5)), tmp_path / "m.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(movie.read_bytes()[: movie.stat().st_size // 2])  # the index (moov) is written last
    for path, why in ((audio, "no video stream"), (text, "not a video file"), (cut, "incomplete")):
        assert main(["segment", "nuclei", str(path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert why in err and "Could not load meta" not in err, err
        assert not (tmp_path / "o").exists()


def _multi_file_ome(folder, frames=(6, 1)):
    """A multi-file OME-TIFF set, one file per stage position, each holding the whole OME-XML (its first series
    lives in the first file)."""
    import uuid

    names = [f"pos{k}.ome.tif" for k in range(len(frames))]
    uuids = [f"urn:uuid:{uuid.uuid4()}" for _ in names]
    images = ""
    for k, n in enumerate(frames):
        data = "".join(f'<TiffData FirstT="{t}" IFD="{t}" PlaneCount="1"><UUID FileName="{names[k]}">{uuids[k]}'
                       "</UUID></TiffData>" for t in range(n))
        images += (f'<Image ID="Image:{k}"><Pixels ID="Pixels:{k}" DimensionOrder="XYZCT" Type="uint8" SizeX="60" '
                   f'SizeY="40" SizeZ="1" SizeC="1" SizeT="{n}"><Channel ID="Channel:{k}:0" SamplesPerPixel="1"/>'
                   f"{data}</Pixels></Image>")
    for k, n in enumerate(frames):
        xml = (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
               f'UUID="{uuids[k]}">{images}</OME>')
        planes = np.stack([_grey(seed=10 * k + t) for t in range(n)])
        tifffile.imwrite(folder / names[k], planes if n > 1 else planes[0], description=xml, metadata=None,
                         photometric="minisblack")
    return [folder / n for n in names]


def test_multi_file_ome_positions_read_their_own(tmp_path):
    """One file per stage position, each with the whole OME-XML: each file reads its own position (the smaller one
    is neither refused as 'damaged or truncated' nor read as the first position's series, as it was until the
    twenty-ninth session)."""
    first, second = _multi_file_ome(tmp_path)
    info = stack_info(first)
    assert info.axes == "TYX" and info.shape == (6, 40, 60)
    assert stack_info(second).axes == "YX" and stack_info(second).shape == (40, 60)
    assert other_series_note(first) is None and other_series_note(second) is None
    np.testing.assert_array_equal(read_image(second), _grey(seed=10))
    import warnings

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        frames, _, total = iter_path_frames(first)
        assert total == 6 and len(list(frames)) == 6
    assert not [w for w in said if "closed file" in str(w.message)]  # tifffile's re-open is not the user's business


def test_tiff_headers_are_parsed_once_per_file(tiny_zoo, tmp_path, monkeypatch):
    """A folder of single-page TIFFs (one per time point): the layout checks (stack rules, unlabelled pages,
    several series) share one parse of each header, and the frame is read once: two TiffFile opens per file."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        tifffile.imwrite(folder / f"t{i}.tif", _grey(48, 70, i))
    opened = []
    real = tifffile.TiffFile.__init__

    def counting(self, *args, **kwargs):
        opened.append(args[0] if args else kwargs.get("file"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffFile, "__init__", counting)
    assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / "o"), "--diameter", "none"]) == 0
    assert len(opened) <= 2 * 4, opened
