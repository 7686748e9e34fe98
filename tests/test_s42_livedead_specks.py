"""Session 42: ``segment livedead``'s labels.tif kept the specks that objects.csv drops.

A simulated well of 600 x 800 px gave 191 live and 150 dead rows in objects.csv but 198 live and 156 dead regions in
labels.tif: 1-6 px specks under ``--min-area`` (12) stayed class pixels in the class map while instances.tif, the
table and the counts left them out. Regions under ``min_area`` are now background in the class map too, on every path
that makes one (``predict``'s ``labels``, labels.tif of one well and of a plate's wells), judged as the table's rows
are: 4-connected (pixels sharing an edge), by their whole size across the bands the well is read in (256 rows)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image
from scipy import ndimage

from _livedead_helpers import ChannelModel
from devolens.models.zoo import ZOO_DIR
from devolens.predict.livedead import LiveDeadPredictor

MIN_AREA = 12
SEAM = 256  # the rows the objects are found in at once: a region across row 256 is joined over the seam

needs_weights = pytest.mark.skipif(not (ZOO_DIR / "livedead" / "weights.safetensors").is_file(),
                                   reason="livedead weights not shipped")


def _predictor() -> LiveDeadPredictor:
    """Calls live where only Hoechst is bright and dead where Draq7 is, pixel by pixel (exact class maps)."""
    return LiveDeadPredictor(ChannelModel(), window=64, overlap=16, fast=False, min_area=MIN_AREA)


def _well() -> tuple[np.ndarray, dict[str, tuple]]:
    """A (2, 600, 64) well of nuclei, specks under MIN_AREA px, and regions that cross the band seam at row 256;
    the places of interest by name."""
    img = np.full((2, 600, 64), 100, np.uint16)
    live, dead = slice(0, 1), slice(0, 2)  # Hoechst only; Hoechst and Draq7

    def put(channels, rows, cols):
        img[channels, rows, cols] = 3000

    yy, xx = np.mgrid[:600, :64]
    img[0][(yy - 50) ** 2 + (xx - 30) ** 2 <= 25] = 3000  # a live nucleus (81 px)
    img[:, (yy - 470) ** 2 + (xx - 30) ** 2 <= 25] = 3000  # a dead one
    put(live, slice(SEAM - 6, SEAM + 7), slice(10, 11))  # 13 px, live, 6 above the seam and 7 below: kept
    put(dead, slice(SEAM - 4, SEAM + 4), slice(20, 21))  # 8 px, dead, across the seam: dropped
    put(live, slice(100, 102), slice(40, 42))  # a 4-px live speck
    put(dead, slice(400, 401), slice(50, 51))  # a 1-px dead speck
    put(live, slice(300, 304), slice(10, 14))  # two 16-px live squares touching at a corner: two regions, two rows
    put(live, slice(304, 308), slice(14, 18))
    put(dead, slice(330, 333), slice(40, 43))  # two 9-px dead squares touching at a corner: two specks (18 px
    put(dead, slice(333, 336), slice(43, 46))  # only if corners joined them), both dropped
    where = {"column": (slice(SEAM - 6, SEAM + 7), 10), "seam speck": (slice(SEAM - 4, SEAM + 4), 20),
             "live speck": (slice(100, 102), slice(40, 42)), "dead speck": (400, 50),
             "corner specks": (slice(330, 336), slice(40, 46))}
    return img, where


#: rows per class of the well above: the live nucleus, the column, the two squares; the dead nucleus
ROWS = {1: 4, 2: 1}


def _regions(labels: np.ndarray, k: int) -> list[int]:
    """The sizes of the 4-connected regions of class ``k``, sorted."""
    cc, n = ndimage.label(labels == k)
    return sorted(np.bincount(cc.ravel(), minlength=n + 1)[1:].tolist())


def _agrees(labels: np.ndarray, objects: pd.DataFrame) -> None:
    """Every region of a class is one row of the table, of its area, and no other."""
    for k in (1, 2):
        assert _regions(labels, k) == sorted(objects.loc[objects["class"] == k, "area"].tolist()), k


def _specks_cleared(labels: np.ndarray, where: dict) -> None:
    for name in ("seam speck", "live speck", "dead speck", "corner specks"):
        assert not labels[where[name]].any(), name
    assert (labels[where["column"]] == 1).all()  # 13 px in all, judged whole across the seam: kept


def test_predict_class_map_has_the_tables_regions():
    img, where = _well()
    res = _predictor().predict(img)
    assert {k: int((res.objects["class"] == k).sum()) for k in (1, 2)} == ROWS
    assert (res.counts["live"], res.counts["dead"]) == (ROWS[1], ROWS[2])
    _agrees(res.labels, res.objects)
    _specks_cleared(res.labels, where)
    # the probabilities stay the network's: the specks are still called there
    assert res.probabilities[:, 100:102, 40:42].argmax(0).tolist() == [[1, 1], [1, 1]]
    assert res.probabilities[:, 400, 50].argmax() == 2


def test_predict_min_area_one_keeps_every_region():
    img, _ = _well()
    res = LiveDeadPredictor(ChannelModel(), window=64, overlap=16, fast=False, min_area=1).predict(img)
    assert len(res.objects) == 10  # 5 regions of each class
    assert np.array_equal(res.labels, res.probabilities.argmax(0))
    _agrees(res.labels, res.objects)


def test_labels_tif_has_the_tables_regions(tmp_path):
    """One well written band by band (labels.tif, then its objects read back in bands of 256 rows)."""
    img, where = _well()
    tifffile.imwrite(tmp_path / "w.tif", img, metadata={"axes": "CYX"}, resolution=(2.0, 2.0),
                     resolutionunit="CENTIMETER")
    counts = _predictor().predict_file(tmp_path / "w.tif", tmp_path / "out", write_instances=True,
                                       write_probabilities=True)
    out = tmp_path / "out"
    labels = tifffile.imread(out / "labels.tif")
    objects = pd.read_csv(out / "objects.csv")
    assert labels.dtype == np.uint8 and labels.shape == (600, 64)
    _agrees(labels, objects)
    _specks_cleared(labels, where)
    assert (counts["live"], counts["dead"]) == (ROWS[1], ROWS[2])
    table = pd.read_csv(out / "counts.csv").iloc[0]
    assert (int(table["live"]), int(table["dead"])) == (ROWS[1], ROWS[2])
    inst = tifffile.imread(out / "instances.tif")
    assert np.array_equal(inst > 0, labels > 0)
    probs = tifffile.imread(out / "probs.tif")
    assert probs[:, 400, 50].argmax() == 2  # probs.tif keeps the network's call at the dropped speck
    from devolens.io.stacks import pixel_size

    assert pixel_size(out / "labels.tif") == pixel_size(tmp_path / "w.tif") is not None  # rewritten in place


def test_plate_well_labels_have_the_tables_regions(tmp_path):
    """A plate's well, written in place by ``predict_into`` (``segment livedead PLATE/``)."""
    img, where = _well()
    tifffile.imwrite(tmp_path / "A1.tif", img, metadata={"axes": "CYX"})
    (tmp_path / "tables").mkdir()
    _predictor().predict_into(tmp_path / "A1.tif", tmp_path / "A1_labels.tif", tables=tmp_path / "tables",
                              well="A1")
    labels = tifffile.imread(tmp_path / "A1_labels.tif")
    objects = pd.read_csv(tmp_path / "tables" / "objects.csv")
    _agrees(labels, objects)
    _specks_cleared(labels, where)


@needs_weights
def test_segment_livedead_simulated_well_regions_are_rows(tmp_path):
    """The walkthrough's well (seed 5, 600 x 800): labels.tif, objects.csv, instances.tif, counts.csv,
    livedead.json and the overlay agree."""
    from devolens.cli import main
    from devolens.render.wells import simulate_well

    tifffile.imwrite(tmp_path / "w1.tif", simulate_well(5, (600, 800)).image, metadata={"axes": "CYX"})
    out = tmp_path / "ld"
    assert main(["-q", "segment", "livedead", str(tmp_path / "w1.tif"), "--out", str(out), "--instances",
                 "--probabilities"]) == 0
    labels = tifffile.imread(out / "labels.tif")
    objects = pd.read_csv(out / "objects.csv")
    _agrees(labels, objects)
    inst = tifffile.imread(out / "instances.tif")
    assert np.array_equal(inst > 0, labels > 0)
    counts = pd.read_csv(out / "counts.csv").iloc[0]
    record = json.loads((out / "livedead.json").read_text())
    for k, name in ((1, "live"), (2, "dead")):
        rows = int((objects["class"] == k).sum())
        assert int(counts[name]) == rows == record["wells"][0][name]
    # the specks the network calls (probs.tif) are background in labels.tif and carry no outline in the overlay
    probs = tifffile.imread(out / "probs.tif")
    specks = (probs.argmax(0) > 0) & (labels == 0)
    assert specks.any()  # this well has them (13 when found)
    rgb = np.asarray(Image.open(out / "overlays" / "w1_overlay.png").convert("RGB"))
    away = specks & ~ndimage.binary_dilation(labels > 0, iterations=2)
    assert away.any()
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    assert grey[away].all()
