"""segment's outputs say what they are: a photo turned by its EXIF orientation tag (a note, the records), labels
numbered afresh in each frame and a video's or stack's label file names (--help), overlay.mp4's frames mapped to the
input's (counts.csv's video_frame)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main


def _photo(path: Path, orientation: int = 6, h: int = 48, w: int = 70, seed: int = 0) -> Path:
    """An RGB JPEG of ``h`` x ``w`` pixels as stored, with an EXIF orientation tag (6: shown turned a quarter)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(blob_frame(h, w, seed=seed)).save(path, exif=exif, quality=95)
    return path


def _png16_with_orientation(path: Path, orientation: int) -> Path:
    """A 16-bit RGB PNG of 48 x 70 pixels with an eXIf chunk holding an EXIF orientation tag (Pillow cannot write
    16-bit colour: OpenCV writes it, the chunk goes in after IHDR)."""
    import struct
    import zlib

    import cv2
    from PIL import Image

    ok, data = cv2.imencode(".png", (blob_frame().astype(np.uint16) * 257)[..., ::-1].copy())
    assert ok
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    raw = data.tobytes()
    path.write_bytes(raw[:33] + chunk + raw[33:])  # (signature 8 bytes, IHDR 25)
    return path


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())  # (the console wraps long lines)


# ----------------------------------------------------------------------------------------------- the reader's watch
def test_exif_turns_hears_the_files_read_image_turned(tmp_path):
    from PIL import Image

    from devolens.io.images import ExifTurns, read_image

    turned = _photo(tmp_path / "turned.jpg")
    plain = tmp_path / "plain.png"
    Image.fromarray(blob_frame()).save(plain)
    png16 = tmp_path / "deep.png"  # a 16-bit colour PNG, read at its full depth: turned too
    _png16_with_orientation(png16, 8)
    with ExifTurns() as turns:
        assert read_image(turned).shape == (70, 48, 3)
        assert read_image(plain).shape == (48, 70, 3)
        deep = read_image(png16)
        assert deep.dtype == np.uint16 and deep.shape == (70, 48, 3)
        # read in another thread (a reader reading ahead)
        other = _photo(tmp_path / "other.jpg", orientation=5)
        seen = []
        worker = threading.Thread(target=lambda: seen.append(read_image(other)))
        worker.start()
        worker.join()
        assert seen[0].shape == (70, 48, 3)
    assert turns.get(turned) == 6 and turns.get(str(turned)) == 6 and turns.get(png16) == 8
    assert turns.get(other) == 5 and turns.get(plain) is None and len(turns) == 3
    with ExifTurns() as later:
        pass
    read_image(turned)  # (after the watch closed: not heard)
    assert len(later) == 0


# ----------------------------------------------------------------------------------------------- segment's note
def test_segment_notes_and_records_an_image_turned_by_its_exif_tag(tiny_zoo, tmp_path, capsys):
    src = _photo(tmp_path / "photo.jpg")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "none"]) == 0
    err = _err(capsys)
    assert ("note: photo.jpg was turned a quarter clockwise as its EXIF orientation tag (6) says, as a photo viewer "
            "shows it: the label images, objects.csv's x and y and the overlays follow the turned image; napari and "
            "scikit-image show the file unturned") in err
    assert tifffile.imread(out / "labels" / "photo_labels.tif").shape == (70, 48)  # the turned image's
    record = json.loads((out / "segment.json").read_text())
    assert record["exif_turned"] == [{"frame": "photo", "file": "photo.jpg", "exif_orientation": 6}]
    assert any(n.startswith("photo.jpg was turned a quarter clockwise") for n in record["notes"])


def test_segment_of_a_photo_without_a_turn_says_nothing(tiny_zoo, tmp_path, capsys):
    src = _photo(tmp_path / "photo.jpg", orientation=1)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "none"]) == 0
    assert "EXIF" not in _err(capsys)
    assert json.loads((out / "segment.json").read_text())["exif_turned"] == []


def test_segment_folder_names_the_turned_frames_it_segmented(tiny_zoo, tmp_path, capsys):
    from devolens.io.images import write_png

    folder = tmp_path / "frames"
    folder.mkdir()
    _photo(folder / "a.jpg", orientation=6, seed=0)
    write_png(blob_frame(seed=1), folder / "b.png")
    _photo(folder / "c.jpg", orientation=3, seed=2)
    _photo(folder / "d.jpg", orientation=8, seed=3)
    report = tmp_path / "report.csv"  # d.jpg flagged: read, not segmented: not named
    pd.DataFrame({"frame": [0, 1, 2, 3], "file": ["a.jpg", "b.png", "c.jpg", "d.jpg"],
                  "flagged": [False, False, False, True], "flag": ["", "", "", "black"]}).to_csv(report, index=False)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--diameter", "none",
                 "--skip-flagged", str(report)]) == 0
    err = _err(capsys)
    assert ("note: 2 images (a.jpg, c.jpg) were turned or mirrored as their EXIF orientation tags say, as a photo "
            "viewer shows them: the label images, objects.csv's x and y and the overlays follow the turned images; "
            "napari and scikit-image show the files unturned") in err
    assert json.loads((out / "segment.json").read_text())["exif_turned"] == [
        {"frame": "a", "file": "a.jpg", "exif_orientation": 6}, {"frame": "c", "file": "c.jpg", "exif_orientation": 3}]


def test_population_notes_and_records_a_turned_image(tiny_zoo, tmp_path, capsys):
    src = _photo(tmp_path / "photo.jpg", orientation=8)
    out = tmp_path / "pops.csv"
    assert main(["population", str(src), "--out", str(out), "--no-plot"]) == 0
    err = _err(capsys)
    assert ("note: photo.jpg was turned a quarter anticlockwise as its EXIF orientation tag (8) says, as a photo "
            "viewer shows it (napari and scikit-image show the file unturned)") in err
    record = json.loads((tmp_path / "pops.json").read_text())
    assert record["exif_turned"] == [{"frame": "photo", "file": "photo.jpg", "exif_orientation": 8}]


def test_livedead_reader_warns_of_a_turned_well(tmp_path):
    from PIL import Image

    from devolens.predict.livedead import _warn_notes
    from devolens.predict.tiled import RowReader

    well = np.zeros((40, 60, 3), np.uint8)
    well[5:15, 5:15, 2] = 200  # Hoechst (blue)
    well[20:30, 30:40, 0] = 200  # Draq7 (red)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(well).save(tmp_path / "well.png", exif=exif)
    Image.fromarray(well).save(tmp_path / "plain.png")
    with RowReader(tmp_path / "well.png", channels=2) as src:
        assert src.shape == (2, 60, 40)
        with pytest.warns(UserWarning, match=r"well.png: the image was turned a quarter clockwise as its EXIF "
                                             r"orientation tag \(6\) says.*labels.tif, objects.csv's x and y"):
            _warn_notes(tmp_path / "well.png", src)
    with RowReader(tmp_path / "plain.png", channels=2) as src:
        assert src.turned is None


# ----------------------------------------------------------------------------------------------- --help
def test_segment_help_names_a_videos_label_files_and_says_labels_are_not_tracked():
    from typer.testing import CliRunner

    from devolens.cli import app

    for kind in ("nuclei", "membrane"):
        result = CliRunner().invoke(app, ["segment", kind, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
        text = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 0
        assert "NAME_f00000_labels.tif" in text and "numbered from 0" in text
        assert "numbered afresh" in text and "not tracked" in text
        assert "video_frame" in text


# ----------------------------------------------------------------------------------------------- video_frame
def _video(path: Path, n: int = 5) -> Path:
    from devolens.io.video import write_video

    write_video((blob_frame(64, 96, seed=i) for i in range(n)), path, fps=5)
    return path


def _report(path: Path, flagged: list[int], n: int = 5) -> Path:
    pd.DataFrame({"frame": list(range(n)), "flagged": [i in flagged for i in range(n)],
                  "flag": ["black" if i in flagged else "" for i in range(n)]}).to_csv(path, index=False)
    return path


def _video_frames(path: Path) -> int:
    from devolens.io.video import iter_video_frames

    return sum(1 for _ in iter_video_frames(path))


def test_skip_flagged_overlay_video_maps_its_frames_in_counts(tiny_zoo, tmp_path):
    src = _video(tmp_path / "movie.mp4")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "none",
                 "--skip-flagged", str(_report(tmp_path / "r.csv", [1, 3]))]) == 0
    counts = pd.read_csv(out / "counts.csv")
    assert list(counts.columns) == ["frame", "count", "video_frame"]
    assert list(counts["frame"]) == [0, 2, 4] and list(counts["video_frame"]) == [0, 1, 2]
    assert _video_frames(out / "overlay.mp4") == 3
    # --skip-flagged that flags nothing: the column all the same (a pipeline's table keeps its columns)
    out2 = tmp_path / "seg2"
    assert main(["segment", "nuclei", str(src), "--out", str(out2), "--diameter", "none",
                 "--skip-flagged", str(_report(tmp_path / "r2.csv", []))]) == 0
    assert list(pd.read_csv(out2 / "counts.csv")["video_frame"]) == [0, 1, 2, 3, 4]


def test_no_video_frame_column_without_an_overlay_video_or_a_skip(tiny_zoo, tmp_path):
    src = _video(tmp_path / "movie.mp4")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "none", "--no-overlay",
                 "--skip-flagged", str(_report(tmp_path / "r.csv", [1]))]) == 0
    assert list(pd.read_csv(out / "counts.csv").columns) == ["frame", "count"]
    out2 = tmp_path / "seg2"
    assert main(["segment", "nuclei", str(src), "--out", str(out2), "--diameter", "none"]) == 0
    assert list(pd.read_csv(out2 / "counts.csv").columns) == ["frame", "count"]
