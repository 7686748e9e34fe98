"""Session 43: a plain multi-page TIFF of 2 to 4 grey pages (no axis labels: ``tifffile.imwrite(path,
np.stack([dapi, gfp]))``, or what some acquisition programs write) was read as 2 to 4 time points, and
``--channel N`` on it was refused with advice to re-save the file. Given ``--channel N``, its pages are now its
channels: page N is read as the image (one frame), with a note saying so; without ``--channel`` the pages stay time
points (a 2-frame timelapse is legitimate), and the note says ``--channel N`` reads one page if they are channels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from devolens.cli import main


def _nuclei(shape=(128, 128), n=25, seed=0) -> np.ndarray:
    """Bright blurred discs of 8-12 px on a dim noisy background, 12-bit (a nuclear stain)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros(shape, np.float32)
    for _ in range(n):
        y, x = rng.integers(8, shape[0] - 8), rng.integers(8, shape[1] - 8)
        cv2.circle(img, (int(x), int(y)), int(rng.integers(4, 7)), float(rng.uniform(0.5, 1.0)), -1)
    img = cv2.GaussianBlur(img, (0, 0), 1.0) + 0.06 + rng.normal(0, 0.02, shape).astype(np.float32)
    return np.clip(img * 3000 + 100, 0, 4095).astype(np.uint16)


def _pages(path, n: int, shape=(48, 64)) -> list[np.ndarray]:
    """``n`` grey pages without axis labels, each of its own level (page k: k + 1 everywhere, plus a mark)."""
    pages = [np.full(shape, k + 1, np.uint16) for k in range(n)]
    for k, page in enumerate(pages):
        page[k, k] = 1000
    tifffile.imwrite(path, np.stack(pages), photometric="minisblack")  # (3 or 4 pages: not one planar RGB image)
    return pages


# ------------------------------------------------------------------------- the readers: page N, one frame

@pytest.mark.parametrize("n", [2, 3, 4])
def test_a_channel_of_two_to_four_plain_pages_is_that_page(tmp_path, n):
    from devolens.io.frames import iter_path_frames

    path = tmp_path / "stains.tif"
    pages = _pages(path, n)
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes in ("QYX", "IYX") and not (tif.is_imagej or tif.is_ome)
    for k in range(n):
        frames, names, total = iter_path_frames(path, channel=k)
        got = list(frames)
        assert total == 1 and len(got) == 1 and np.array_equal(got[0], pages[k])
    frames, _, total = iter_path_frames(path)  # no channel: the pages stay time points
    assert total == n and all(np.array_equal(a, b) for a, b in zip(frames, pages))


def test_a_folder_of_such_files_gives_one_frame_per_file(tmp_path):
    from devolens.io.frames import iter_path_frames

    pages = {name: _pages(tmp_path / f"{name}.tif", 2) for name in ("a", "b")}
    frames, names, total = iter_path_frames(tmp_path, channel=1)
    got = list(frames)
    assert names == ["a.tif", "b.tif"] and total == 2
    assert np.array_equal(got[0], pages["a"][1]) and np.array_equal(got[1], pages["b"][1])


def test_more_pages_and_pages_read_as_z_are_no_channels(tmp_path):
    from devolens.errors import DevolensError
    from devolens.io.frames import check_channel_input
    from devolens.io.stacks import open_stack

    five = tmp_path / "five.tif"
    _pages(five, 5)
    with pytest.raises(DevolensError, match="this input has none"):  # --channel 0: nothing to pick, as before
        check_channel_input(five, 0)
    with pytest.raises(DevolensError, match="not as channels"):
        open_stack(five, channel=1)
    two = tmp_path / "two.tif"
    _pages(two, 2)
    check_channel_input(two, 1)  # (refused before)
    assert open_stack(two, channel=1)[1] == 1
    with pytest.raises(DevolensError, match="out of range"):  # --pages z: the user said they are z planes
        open_stack(two, channel=1, pages="z")


def test_a_curation_report_names_the_channel_either_way(tmp_path):
    """``curate frames --channel 1`` and ``segment --channel 1 --skip-flagged`` record and compare the same
    options (segment reads the pages as "channels" internally)."""
    from devolens.curate.frames import reading_options

    path = tmp_path / "two.tif"
    _pages(path, 2)
    assert reading_options(path, channel=1) == "--pages time --channel 1"
    assert reading_options(path, channel=1, pages="channels") == "--pages time --channel 1"
    assert reading_options(path) == "--pages time"


# ------------------------------------------------------------------------- the command: segment, population

def test_segment_reads_page_n_as_the_image_and_says_so(tmp_path, capsys):
    dapi, gfp = _nuclei(seed=1), _nuclei(n=8, seed=2)
    path = tmp_path / "dapi_gfp.tif"
    tifffile.imwrite(path, np.stack([dapi, gfp]))  # tifffile's defaults: 2 pages, no axes
    alone = tmp_path / "dapi.tif"
    tifffile.imwrite(alone, dapi)
    assert main(["segment", "nuclei", str(path), "--out", str(tmp_path / "o"), "--channel", "0",
                 "--diameter", "10"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "read dapi_gfp.tif: axes QYX, shape (2, 128, 128): 2 pages without axis labels read as channels; " \
           "channel 0 of 2" in err
    assert "the 2 pages of dapi_gfp.tif carry no axis labels and were read as channels, as --channel asks" in err
    assert "read as time points" not in err and "Traceback" not in err
    assert main(["segment", "nuclei", str(alone), "--out", str(tmp_path / "a"), "--diameter", "10"]) == 0
    labels = sorted(p.name for p in (tmp_path / "o" / "labels").iterdir())
    assert len(labels) == 1  # one frame, not two
    same = tifffile.imread(tmp_path / "a" / "labels" / "dapi_labels.tif")
    assert np.array_equal(tifffile.imread(tmp_path / "o" / "labels" / labels[0]), same) and same.max() > 10
    record = json.loads((tmp_path / "o" / "segment.json").read_text())
    assert record["options"]["pages"] == "time" and record["options"]["channel"] == 0  # as given
    assert record["stack"]["channels"] == 2 and record["stack"]["channel"] == 0
    assert any("were read as channels" in text for text in record["notes"])


def test_segment_without_a_channel_reads_time_points_and_hints(tmp_path, capsys):
    path = tmp_path / "pair.tif"
    _pages(path, 2, shape=(64, 64))
    assert main(["segment", "nuclei", str(path), "--out", str(tmp_path / "o"), "--diameter", "10"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "2 frames" in err and "2 pages read as time points" in err
    assert "if they are channels (a stain per page), give --channel N to read page N alone" in err


def test_segment_refuses_a_channel_past_the_pages(tmp_path, capsys):
    path = tmp_path / "pair.tif"
    _pages(path, 2, shape=(64, 64))
    assert main(["segment", "nuclei", str(path), "--out", str(tmp_path / "o"), "--channel", "2"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--channel 2 is out of range: this stack has 2 channel(s) (0..1); its 2 pages carry no axis labels and " \
           "were read as channels" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_population_reads_page_n_too(tmp_path, capsys):
    path = tmp_path / "dapi_gfp.tif"
    tifffile.imwrite(path, np.stack([_nuclei(seed=1), _nuclei(n=8, seed=2)]))
    out = tmp_path / "pop.csv"
    assert main(["population", str(path), "--out", str(out), "--channel", "1", "--no-plot"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "2 pages without axis labels read as channels; channel 1 of 2" in err and "1 frame" in err
    assert "were read as channels, as --channel asks" in err
