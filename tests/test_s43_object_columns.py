"""segment's objects.csv and the predictors' object tables: each object's mean intensity (the input's raw values in
the channel the network read, giant images too) and, where the pixel size is known, its centroid and area in
micrometres; the columns before them unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage as ndi

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.predict.postprocess import Prepared, intensity_sums, mean_intensities, object_arrays, prepare_image

COLUMNS = ["frame", "label", "x", "y", "area", "mean_intensity"]
MICRONS = ["x_um", "y_um", "area_um2"]


def _means(plane: np.ndarray, labels: np.ndarray, ids) -> np.ndarray:
    """The reference: scipy's mean of ``plane`` under each label."""
    return np.asarray(ndi.mean(plane.astype(np.float64), labels, np.asarray(ids)), dtype=np.float64)


def _grid(fg: np.ndarray, interior=None, **_) -> np.ndarray:
    """Stand-in for the watershed (random tiny weights find one blob): squares of 4 x 4 working pixels on a
    pitch of 8, numbered 1..N (several objects in every frame, deterministic)."""
    lab = np.zeros(fg.shape, np.int32)
    n = 0
    for y in range(1, fg.shape[0] - 4, 8):
        for x in range(1, fg.shape[1] - 4, 8):
            n += 1
            lab[y:y + 4, x:x + 4] = n
    return lab


@pytest.fixture
def grid(monkeypatch):
    from devolens.predict import segment

    monkeypatch.setattr(segment, "instances_from_probabilities", _grid)
    # (the frames are random values: the nuclei model's noise guard would call them empty fields)
    monkeypatch.setattr(segment.NucleiPredictor, "checks_structure", False)


def _varied(h=48, w=70, seed=0, top=4000) -> np.ndarray:
    """A uint16 grey frame whose values vary from pixel to pixel (means differ from object to object)."""
    return (np.random.default_rng(seed).random((h, w)) * top).astype(np.uint16)


def _imagej(path: Path, image: np.ndarray, um: float | None, unit: str = "um") -> Path:
    """An ImageJ TIFF, calibrated ``um`` ``unit`` per pixel (None: uncalibrated)."""
    if um is None:
        tifffile.imwrite(path, image)
    else:
        tifffile.imwrite(path, image, imagej=True, resolution=(1 / um, 1 / um), metadata={"unit": unit})
    return path


# ------------------------------------------------------------------------------------------------ the measurement
def test_intensity_sums_read_the_raw_values_of_the_channel_read():
    rng = np.random.default_rng(1)
    labels = np.zeros((20, 30), np.uint16)
    labels[2:8, 3:9], labels[10:18, 12:25], labels[0:2, 28:30] = 1, 2, 4  # (label 3 absent)
    grey = (rng.random((20, 30)) * 60000).astype(np.uint16)
    sums, counts = intensity_sums(labels, grey)
    np.testing.assert_allclose(mean_intensities(sums, counts, [1, 2, 4]), _means(grey, labels, [1, 2, 4]))
    assert list(counts) == [0, 36, 104, 0, 4]
    rgb = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
    for channel, plane in (("red", rgb[..., 0]), ("blue", rgb[..., 2]), ("mean", rgb.astype(np.float32).mean(2)),
                           ("max", rgb.max(2))):
        np.testing.assert_allclose(mean_intensities(*intensity_sums(labels, rgb, channel), [1, 2]),
                                   _means(plane, labels, [1, 2]), rtol=1e-6)
    green = np.zeros((20, 30, 3), np.uint8)
    green[..., 1] = grey >> 8
    green[..., 0] = 3  # a flat red: auto reads green
    np.testing.assert_allclose(mean_intensities(*intensity_sums(labels, green), [1, 2]),
                               _means(green[..., 1], labels, [1, 2]))
    np.testing.assert_allclose(mean_intensities(*intensity_sums(labels, grey[..., None]), [2]),
                               _means(grey, labels, [2]))
    # floats as they are; NaN pixels left out, an object of NaN only has no mean
    flt = rng.random((20, 30)) * 1e-3
    flt[2, 3] = np.nan
    flt[0:2, 28:30] = np.nan
    got = mean_intensities(*intensity_sums(labels, flt), [1, 2, 4])
    assert got[0] == pytest.approx(np.nanmean(flt[2:8, 3:9])) and got[1] == pytest.approx(flt[10:18, 12:25].mean())
    assert np.isnan(got[2])
    with pytest.raises(DevolensError, match="do not match"):
        intensity_sums(labels, grey[:10])


def test_prepared_frames_say_the_colour_channel_they_read():
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[10:20, 10:20, 0] = 200  # red nuclei
    rgb[..., 1] = 5
    key = ("auto", 0.5, (1.0, 99.8), 0.0, 0.0)
    frame = Prepared(rgb, key)
    assert frame.channel == "red"
    np.testing.assert_array_equal(frame.array, prepare_image(rgb, *key))  # the same preparation
    assert Prepared(rgb, ("blue",) + key[1:]).channel == "blue"
    assert Prepared(rgb[..., 0], key).channel is None


# ----------------------------------------------------------------------------------------------------- the library
def test_predictor_results_carry_mean_intensity(tiny_zoo, grid):  # noqa: F811
    from devolens.models import load

    nuclei = load("nuclei")
    grey = _varied()
    res = nuclei.predict(grey)
    assert list(res.centroids.columns) == ["label", "x", "y", "area", "mean_intensity"] and res.count > 10
    np.testing.assert_allclose(res.centroids["mean_intensity"], _means(grey, res.labels, res.objects["label"]))
    assert res.objects["mean_intensity"].dtype == np.float64
    # a colour image: the channel given, or the one the auto rule picked, frame by frame in a stream
    rgb = np.stack([_varied(seed=3), _varied(seed=4, top=200), _varied(seed=5, top=100)], axis=-1)
    red = load("nuclei", channel="red").predict(rgb)
    np.testing.assert_allclose(red.objects["mean_intensity"], _means(rgb[..., 0], red.labels, red.objects["label"]))
    frames = [blob_frame(seed=s) for s in range(3)]
    for frame, r in zip(frames, nuclei.predict_iter(iter(frames), workers=0)):
        np.testing.assert_allclose(r.objects["mean_intensity"], _means(frame[..., 1], r.labels, r.objects["label"]))
    # frames prepared ahead (the command's read-ahead) read the same channel
    ahead = [Prepared(f, nuclei.network.prep_key) for f in frames]
    for frame, r in zip(frames, nuclei.predict_iter(ahead)):
        np.testing.assert_allclose(r.objects["mean_intensity"], _means(frame[..., 1], r.labels, r.objects["label"]))


def test_membrane_results_too_and_a_frame_of_noise_has_the_column_empty(tiny_zoo, grid):  # noqa: F811
    from devolens.models import load

    membrane = load("membrane")
    grey = _varied(seed=7)
    grey[::6] = 4000  # lines: structure above the noise
    noise = np.random.default_rng(2).normal(50, 5, (200, 200)).astype(np.float32)  # nothing above its noise
    out = list(membrane.predict_iter([grey, noise]))
    np.testing.assert_allclose(out[0].objects["mean_intensity"],
                               _means(grey, out[0].labels, out[0].objects["label"]))
    assert out[1].extra.get("no_structure") and out[1].count == 0
    assert list(out[1].centroids.columns)[-1] == "mean_intensity"


class _StubNetwork:
    """The parts of an ImageNetwork segment_blocks uses: 'probabilities' = the prepared image."""

    def __init__(self):
        self.scale, self.tile, self.overlap, self.multiple = 1.0, 64, 16, 8
        self.flatten, self.outliers, self.percentiles, self.channel = 0.0, 0.0, (0.0, 100.0), "auto"

    def probabilities_working(self, prepared):
        return [p[None] for p in prepared]


class _StubPredictor:
    """Objects: the connected bright components of each block."""

    def __init__(self):
        self.network = _StubNetwork()
        self.card_scale, self.diameter_ref = 1.0, 4.0
        self.postprocess_options: dict = {}

    def _finish(self, probs, shape, options=None):
        import cv2

        from devolens.predict.segment import SegmentationResult

        _, lab = cv2.connectedComponents((probs[0] > 0.5).astype(np.uint8), connectivity=4)
        lab = lab.astype(np.uint16)
        return SegmentationResult(probability=probs[0], labels=lab, centroids=object_arrays(lab))


def test_giant_images_get_mean_intensity_band_by_band():
    from devolens.predict import blocks

    rng = np.random.default_rng(2)
    img = np.zeros((1100, 700), np.uint16)
    for y in range(1, 1100 - 4, 7):
        for x in range(1, 700 - 4, 7):
            img[y:y + 4, x:x + 4] = 1000 + rng.integers(0, 3000, (4, 4))
    res = blocks.segment_blocks(_StubPredictor(), img)
    assert res.extra["blocks"] > 4 and res.count > 9000  # bands of 1024 rows: two
    np.testing.assert_allclose(res.objects["mean_intensity"], _means(img, res.labels, res.objects["label"]))
    # a colour giant: the channel the whole image's structure picks (blue here), each band read in it
    rgb = np.zeros(img.shape + (3,), np.uint16)
    rgb[..., 2], rgb[..., 0] = img, 7
    col = blocks.segment_blocks(_StubPredictor(), rgb)
    np.testing.assert_allclose(col.objects["mean_intensity"], _means(img, col.labels, col.objects["label"]))
    assert list(col.centroids.columns) == ["label", "x", "y", "area", "mean_intensity"]


# ---------------------------------------------------------------------------------------------------- the command
def _objects(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "objects.csv", keep_default_na=False, na_values=[""])


def _check_means(objects: pd.DataFrame, out: Path, planes: dict, numbered: bool = False) -> None:
    """objects.csv's mean_intensity is the mean of each frame's read plane (``planes``, by frame) under its label
    image (``numbered``: a video's or stack's, NAME_f00001_labels.tif)."""
    for frame, plane in planes.items():
        rows = objects[objects["frame"].astype(str) == str(frame)]
        name = f"*_f{int(frame):05d}_labels.tif" if numbered else f"{frame}_labels.tif"
        labels = tifffile.imread(next((out / "labels").glob(name)))
        assert len(rows) == labels.max() > 5
        np.testing.assert_allclose(rows["mean_intensity"], _means(plane, labels, rows["label"]), rtol=5e-6, atol=1e-9)


def test_objects_csv_has_mean_intensity_and_microns_of_a_calibrated_folder(tiny_zoo, grid, tmp_path):  # noqa: F811
    src = tmp_path / "tifs"
    src.mkdir()
    a, b = _varied(seed=1), _varied(seed=2, top=60000)
    _imagej(src / "a.tif", a, 0.25)
    _imagej(src / "b.tif", b, 250.0, unit="nm")  # another unit: micrometres all the same
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay"]) == 0
    objects = _objects(out)
    assert list(objects.columns) == COLUMNS + MICRONS
    _check_means(objects, out, {"a": a, "b": b})
    np.testing.assert_allclose(objects["x_um"], (objects["x"] * 0.25).round(3), atol=0.0026)
    np.testing.assert_allclose(objects["y_um"], (objects["y"] * 0.25).round(3), atol=0.0026)
    np.testing.assert_allclose(objects["area_um2"], objects["area"] * 0.0625, atol=0.0005)
    text = (out / "objects.csv").read_text().splitlines()
    assert text[0] == ",".join(COLUMNS + MICRONS)
    assert all(len(cell.split(".")[-1]) <= 3 for line in text[1:] for cell in line.split(",")[-3:])


def test_micron_columns_follow_the_first_frame_and_leave_uncalibrated_frames_empty(tiny_zoo, grid,  # noqa: F811
                                                                                    tmp_path):
    from devolens.io.images import write_png

    first_png = tmp_path / "png_first"
    first_png.mkdir()
    write_png(_varied(seed=1), first_png / "a.png")
    _imagej(first_png / "b.tif", _varied(seed=2), 0.25)
    out = tmp_path / "o1"
    assert main(["segment", "nuclei", str(first_png), "--out", str(out), "--no-overlay"]) == 0
    assert list(_objects(out).columns) == COLUMNS  # the first frame's file records no pixel size

    first_tif = tmp_path / "tif_first"
    first_tif.mkdir()
    _imagej(first_tif / "a.tif", _varied(seed=1), 0.5)
    write_png(_varied(seed=2), first_tif / "b.png")
    out = tmp_path / "o2"
    assert main(["segment", "nuclei", str(first_tif), "--out", str(out), "--no-overlay"]) == 0
    objects = _objects(out)
    assert list(objects.columns) == COLUMNS + MICRONS
    a, b = objects[objects["frame"] == "a"], objects[objects["frame"] == "b"]
    assert len(b) and b[MICRONS].isna().all().all() and b["mean_intensity"].notna().all()
    np.testing.assert_allclose(a["area_um2"], a["area"] * 0.25)

    out = tmp_path / "o3"  # --pixel-size: every frame, over the files' own
    assert main(["segment", "nuclei", str(first_png), "--out", str(out), "--no-overlay", "--pixel-size", "0.1"]) == 0
    objects = _objects(out)
    assert list(objects.columns) == COLUMNS + MICRONS and objects[MICRONS].notna().all().all()
    np.testing.assert_allclose(objects["area_um2"], (objects["area"] * 0.01).round(3))


def test_colour_input_reads_the_colour_given_and_stacks_keep_t_z_first(tiny_zoo, grid, tmp_path):  # noqa: F811
    from devolens.io.images import write_png

    rgb = np.stack([_varied(seed=3, top=250), _varied(seed=4, top=120), _varied(seed=5, top=60)],
                   axis=-1).astype(np.uint8)
    src = tmp_path / "rgb.png"
    write_png(rgb, src)
    for colour, k in (("red", 0), ("blue", 2)):
        out = tmp_path / colour
        assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay", "--color", colour]) == 0
        _check_means(_objects(out), out, {"rgb": rgb[..., k]})

    stack = tmp_path / "tz.tif"
    planes = np.stack([_varied(32, 48, seed=s) for s in range(6)]).reshape(2, 3, 32, 48)
    tifffile.imwrite(stack, planes, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "TZYX", "unit": "um"})
    out = tmp_path / "sl"
    assert main(["segment", "nuclei", str(stack), "--stack-z", "slices", "--out", str(out), "--no-overlay",
                 "--diameter", "none"]) == 0
    objects = _objects(out)
    assert list(objects.columns) == ["frame", "t", "z"] + COLUMNS[1:] + MICRONS
    _check_means(objects, out, dict(enumerate(planes.reshape(6, 32, 48))), numbered=True)
    np.testing.assert_allclose(objects["x_um"], (objects["x"] * 0.5).round(3), atol=0.0051)


def test_a_giant_image_segmented_by_blocks_gets_the_columns(tiny_zoo, grid, tmp_path, monkeypatch):  # noqa: F811
    from devolens.predict import blocks

    monkeypatch.setattr(blocks, "BLOCK_PIXELS", 20_000)
    image = _varied(900, 800, seed=9, top=30000)
    src = _imagej(tmp_path / "well.tif", image, 0.65)
    out = tmp_path / "giant"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay", "--diameter", "none"]) == 0
    notes = json.loads((out / "segment.json").read_text())["notes"]
    assert any(re.search(r"segmented in [2-9]\d* overlapping blocks", n) for n in notes), notes
    objects = _objects(out)
    assert list(objects.columns) == COLUMNS + MICRONS
    _check_means(objects, out, {"well": image})
    np.testing.assert_allclose(objects["area_um2"], (objects["area"] * 0.65 ** 2).round(3))


def test_video_frames_read_as_decoded(tiny_zoo, grid, tmp_path):  # noqa: F811
    from devolens.io.video import iter_video_frames, write_video

    video = write_video((blob_frame(64, 96, seed=i) for i in range(3)), tmp_path / "movie.mp4", fps=5)
    out = tmp_path / "v"
    assert main(["segment", "nuclei", str(video), "--out", str(out), "--no-overlay"]) == 0
    objects = _objects(out)
    assert list(objects.columns) == COLUMNS
    decoded = [np.asarray(f) for f in iter_video_frames(video)]
    _check_means(objects, out, {k: f[..., 1] for k, f in enumerate(decoded)}, numbered=True)


def test_mean_intensity_is_written_to_six_significant_digits():
    from devolens.cli.predict import _intensity_cells

    got = _intensity_cells(np.array([127.60512, 0.0123456789, 12345.678, 1234567.4, 0.0, np.nan, 65535.0]), 7)
    assert got == [127.605, 0.0123457, 12345.7, 1234570.0, 0.0, None, 65535.0]
    assert _intensity_cells(None, 2) == [None, None]


def test_the_columns_are_documented(capsys):
    from devolens.cli.predict import MICRON_COLUMNS, OBJECT_COLUMNS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "outputs.md").read_text(encoding="utf-8")
    section = doc.split("## `devolens segment nuclei|membrane`: `objects.csv`")[1].split("\n## ")[0]
    assert [c for c in ("frame", "t", "z", *OBJECT_COLUMNS, *MICRON_COLUMNS) if f"`{c}`" not in section] == []
    assert list(OBJECT_COLUMNS[:4]) == ["label", "x", "y", "area"]  # the columns scripts know, first and unchanged
    assert main(["segment", "nuclei", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "mean_intensity" in text and "x_um, y_um, area_um2" in text
