"""Outputs as Fiji, napari and pandas users read them (session 42, walkthrough C): every column documented with its
unit (docs/outputs.md, linked from the README; the records' scale and magnification fields in the README), tidy
numbers (render's and simulate well's positions to 3 decimals, identify's confidence and counts.csv's fraction_dead
to 6 decimals, curate's scores to 4 significant digits), a tile store's coords saying they are (y, x), and a
simulated well that Fiji opens as 2 named channels, read back by devolens' own readers as before."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from _identity_helpers import needs_zoo
from _render_helpers import make_table
from devolens.cli import main

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ROOT / "docs" / "outputs.md"


def _decimals(text: str) -> int:
    """Digits after the point of a number as written (0 for none; exponent forms counted by their mantissa)."""
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _significant(text: str) -> int:
    """Significant digits of a number as written."""
    digits = re.sub(r"[^0-9]", "", text.lower().split("e")[0]).lstrip("0")
    return len(digits.rstrip("0")) if "." in text else len(digits)


def _column_texts(path: Path, column: str) -> list[str]:
    """A CSV column's values as the file writes them (non-empty ones)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [v for v in df[column] if v != ""]


# ------------------------------------------------------------------------------------------------ curate frames
def _frames_folder(folder: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for t in range(n):
        img = rng.normal(20, 3, (64, 96))
        for k in range(6):  # bright blobs, a little moving
            y, x = 10 + 8 * k % 50, 12 + 13 * k + t
            img[y:y + 6, x:x + 6] += 120 + 7 * k
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"t{t:03d}.png")
    return folder


def test_curate_report_writes_its_scores_to_4_significant_digits(tmp_path):
    from devolens.curate.frames import curate_path

    scores = ("level", "p99", "clipped", "contrast", "level_ratio", "level_ratio_high", "red_line_score", "red_area",
              "red_patch_score", "change", "change_ratio")

    folder = _frames_folder(tmp_path / "movie")
    out = tmp_path / "report.csv"
    assert main(["curate", "frames", str(folder), "--out", str(out)]) == 0
    report = curate_path(folder)
    written = pd.read_csv(out)
    for column in scores:
        texts = _column_texts(out, column)
        assert texts and max(_significant(v) for v in texts) <= 4, (column, texts[:3])
        full = report[column].to_numpy(float)
        np.testing.assert_allclose(written[column].to_numpy(float), full, rtol=5e-4, atol=0)  # the values kept
    # what is not a score is written as before: flags, frames
    assert written["flag"].fillna("").tolist() == report["flag"].tolist()
    assert written["frame"].tolist() == report["frame"].astype(int).tolist()


def test_report_for_csv_rounds_scores_only_and_keeps_the_report():
    from devolens.curate.frames import SCORE_COLUMNS, report_for_csv

    assert {"level", "clipped", "change_ratio"} <= set(SCORE_COLUMNS)

    report = pd.DataFrame({"frame": pd.array([0, 1, None], dtype="Int64"), "time": [0.125, 0.25, np.nan],
                           "level": [25.469843438331118, 0.0, np.nan], "clipped": [7.791722074468084e-06, 0.0, 1.0],
                           "change_ratio": [np.nan, 0.5719916173650994, 1234567.8]})
    before = report.copy()
    out = report_for_csv(report)
    assert out["level"].tolist()[:2] == [25.47, 0.0] and np.isnan(out["level"].iloc[2])
    assert out["clipped"].tolist() == [7.792e-06, 0.0, 1.0]
    assert out["change_ratio"].tolist()[1:] == [0.572, 1235000.0]
    assert out["time"].tolist()[:2] == [0.125, 0.25]  # (seconds: not a score)
    pd.testing.assert_frame_equal(report, before)  # the report itself untouched


# ------------------------------------------------------------------------------------------------ render
def test_render_objects_csv_positions_and_sizes_to_3_decimals(tmp_path):
    from devolens.render.dataset import render_dataset

    render_dataset(make_table(n_times=3, n_cells=40, seed=2), tmp_path, size=(64, 96), seed=1)
    path = tmp_path / "objects.csv"
    for column in ("x", "y", "depth", "radius", "label_x", "label_y"):
        texts = _column_texts(path, column)
        assert texts and max(_decimals(v) for v in texts) <= 3, (column, texts[:3])
    obj = pd.read_csv(path)
    assert (obj["depth"] < 0).any() and (obj["depth"] > 0).any()  # signed: nearer and farther than the mid plane
    assert (obj["radius"] > 0).all()


# ------------------------------------------------------------------------------------------------ simulate well
@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("well")
    out, labels = folder / "w.tif", folder / "w_labels.tif"
    assert main(["simulate", "well", "--out", str(out), "--labels", str(labels), "--size", "200x260",
                 "--seed", "5"]) == 0
    return out, labels


def test_simulated_well_is_an_imagej_hyperstack_of_two_named_channels(simulated):
    out, _ = simulated
    with tifffile.TiffFile(out) as tf:
        assert tf.is_imagej
        meta = tf.imagej_metadata
        assert meta["channels"] == 2 and meta.get("slices", 1) == 1 and meta["Labels"] == ["Hoechst", "Draq7"]
        assert tf.series[0].axes == "CYX" and tf.series[0].shape == (2, 200, 260)


def test_simulated_well_reads_back_the_same_array_in_the_same_channel_order(simulated):
    from devolens.data.tiling import read_image
    from devolens.io.wells import tiff_channel_names, well_channel_order
    from devolens.predict.tiled import RowReader
    from devolens.render.wells import simulate_well

    out, labels = simulated
    well = simulate_well(seed=5, size=(200, 260))
    assert np.array_equal(tifffile.imread(out), well.image)  # numpy users, eval_livedead, zoo_int8
    assert tiff_channel_names(out) == ["Hoechst", "Draq7"]
    assert well_channel_order(out, 2) == ([0, 1], None)  # the names map to the stains: Hoechst first, no note
    assert np.array_equal(read_image(out), well.image)  # tile make
    with RowReader(out, channels=2) as src:  # segment livedead, band by band
        assert src.shape == (2, 200, 260) and list(src.order) == [0, 1]
    assert np.array_equal(tifffile.imread(labels), well.labels)


def test_segment_livedead_reads_the_simulated_well_without_a_channel_note(simulated, tmp_path, capsys):
    out, _ = simulated
    assert main(["segment", "livedead", str(out), "--out", str(tmp_path / "ld"), "--no-overlay"]) == 0
    err = capsys.readouterr().err
    assert "channels named" not in err and "Draq7 from channel" not in err
    assert pd.read_csv(tmp_path / "ld" / "counts.csv")["live"].iloc[0] > 0


def test_simulated_well_objects_csv_to_3_decimals(simulated):
    from devolens.render.wells import simulate_well

    out, _ = simulated
    path = out.with_name("w.objects.csv")
    for column in ("x", "y", "radius"):
        texts = _column_texts(path, column)
        assert texts and max(_decimals(v) for v in texts) <= 3, (column, texts[:3])
    written = pd.read_csv(path)
    truth = simulate_well(seed=5, size=(200, 260)).objects
    for column in ("x", "y", "radius"):
        np.testing.assert_allclose(written[column], truth[column], atol=5e-4 + 1e-9, rtol=0)
    assert written["id"].tolist() == truth["id"].tolist() and written["class"].tolist() == truth["class"].tolist()


# ------------------------------------------------------------------------------------------------ tile store
def test_tile_store_coords_say_yx_and_an_old_store_without_it_is_read(simulated, tmp_path):
    from devolens.data.h5stream import H5TileStream

    out, labels = simulated
    store = tmp_path / "t.h5"
    assert main(["tile", "make", str(out), "--labels", str(labels), "--out", str(store), "--tile", "64",
                 "--stride", "64", "--keep", "all"]) == 0
    with h5py.File(store, "r") as f:
        assert f["coords"].attrs["axes"] == "yx"
        coords = f["coords"][:]
    assert coords[:, 0].max() == 200 - 64 and coords[:, 1].max() == 260 - 64  # (y, x): rows first
    with h5py.File(store, "r+") as f:  # a store written before the attribute
        del f["coords"].attrs["axes"]
    assert main(["tile", "stats", str(store)]) == 0
    stream = H5TileStream(store)
    assert len(stream) == len(coords)


# ------------------------------------------------------------------------------------------------ livedead counts
def test_livedead_counts_csv_writes_fraction_dead_to_6_decimals():
    from devolens.predict.livedead import _well_tables

    objects = pd.DataFrame({"x": [1.0], "y": [2.0], "area": [20], "class": [1]})
    _, summary = _well_tables(objects, {"live": 191, "dead": 150, "fraction_dead": 150 / 341}, "A1")
    assert summary["fraction_dead"].iloc[0] == 0.439883  # as livedead.json records it
    assert summary.to_csv(index=False).splitlines()[1] == "A1,191,150,0.439883"
    _, empty = _well_tables(objects.iloc[:0], {"live": 0, "dead": 0, "fraction_dead": float("nan")}, None)
    assert empty.to_csv(index=False).splitlines()[1] == "0,0,"  # no objects: still empty


# ------------------------------------------------------------------------------------------------ identify
@needs_zoo
def test_identify_writes_confidence_to_6_decimals(tmp_path):
    from devolens.lineage.simulate import simulate_embryo

    table = simulate_embryo(3, n_cells=12)
    src = tmp_path / "in.csv"
    table.to_csv(src, index=False)
    out = tmp_path / "names.csv"
    assert main(["identify", str(src), "--out", str(out), "--smooth", "none"]) == 0
    texts = _column_texts(out, "confidence")
    assert texts and max(_decimals(v) for v in texts) <= 6
    assert all(0 <= float(v) <= 1 for v in texts)


# ------------------------------------------------------------------------------------------------ the docs
def test_docs_outputs_lists_every_column_of_the_curate_report_render_objects_and_simulated_wells(tmp_path):
    from devolens.render.dataset import OBJECTS_COLUMNS
    from devolens.render.wells import simulate_well

    doc = OUTPUTS.read_text(encoding="utf-8")
    folder = _frames_folder(tmp_path / "movie", n=4)
    out = tmp_path / "report.csv"
    assert main(["curate", "frames", str(folder), "--out", str(out)]) == 0
    columns = list(pd.read_csv(out).columns) + list(OBJECTS_COLUMNS) + list(simulate_well(seed=1, size=(64, 64))
                                                                             .objects.columns)
    missing = [c for c in columns if f"`{c}`" not in doc]
    assert not missing, missing
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/outputs.md)" in readme


def test_readme_says_the_records_scale_and_magnification_fields():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for field in ("magnification_estimate", "trusted", "small", "backdrop", "held", "decided",
                  "monotone_residual", "labels_pixel_size"):
        assert re.search(rf"^- `{field}`|`{field}`[^\n]*:", readme, re.M), field
    assert "(`working_scale`\nin both records) is the scale the network read the frames at" in readme
    assert "coords` are\n(y, x)" in readme or "`coords` are (y, x)" in readme.replace("\n", " ")


def test_help_points_to_the_columns_and_says_the_units(capsys):
    def help_of(*args):
        assert main([*args, "--help"]) == 0
        return " ".join(capsys.readouterr().out.replace("│", " ").split())

    assert "docs/outputs.md" in help_of("curate", "frames")
    render = help_of("render")
    assert "depth its centre's distance from the embryo's mid plane" in render and "frame pixels" in render
    assert "(y, x)" in help_of("tile", "make")
    assert "ImageJ hyperstack" in help_of("simulate", "well")


def test_a_well_past_imagejs_size_is_an_ome_bigtiff_with_the_channel_names(tmp_path, monkeypatch):
    import devolens.render.wells as wells
    from devolens.io.wells import well_channel_order

    monkeypatch.setattr(wells, "IMAGEJ_BYTES", 1000)  # (a real one: over 4 GB)
    out = tmp_path / "big.tif"
    assert main(["simulate", "well", "--out", str(out), "--labels", str(tmp_path / "l.tif"), "--size", "64x80"]) == 0
    with tifffile.TiffFile(out) as tf:
        assert tf.is_ome and tf.is_bigtiff and tf.series[0].axes == "CYX"
    assert np.array_equal(tifffile.imread(out), wells.simulate_well(seed=0, size=(64, 80)).image)
    assert well_channel_order(out, 2) == ([0, 1], None)


@pytest.mark.slow
@needs_zoo
def test_segment_and_population_write_their_curation_reports_as_curate_frames_does(tmp_path):
    """--skip-flagged auto's report (segment's curation.csv, population's OUT.curation.csv) has the same tidy scores as
    the report of `devolens curate frames`."""
    folder = _frames_folder(tmp_path / "movie", n=6)
    assert main(["curate", "frames", str(folder), "--out", str(tmp_path / "report.csv")]) == 0
    assert main(["-q", "segment", "nuclei", str(folder), "--out", str(tmp_path / "seg"), "--skip-flagged", "auto",
                 "--diameter", "6"]) == 0
    assert main(["-q", "population", str(folder), "--out", str(tmp_path / "pop.csv"), "--skip-flagged", "auto"]) == 0
    want = (tmp_path / "report.csv").read_text().splitlines()[0]
    for made in (tmp_path / "seg" / "curation.csv", tmp_path / "pop.curation.csv"):
        assert made.read_text().splitlines()[0] == want
        for column in ("level", "contrast", "change_ratio"):
            texts = _column_texts(made, column)
            assert texts and max(_significant(v) for v in texts) <= 4, (made, column, texts[:3])
