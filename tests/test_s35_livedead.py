"""``segment livedead``'s outputs as a user opens them: probs.tif an ImageJ hyperstack of 3 named channels (Fiji
opened it as a Z stack of 3 slices, napari did not know the channels' names), and objects.csv's rows linked to their
pixels (an ``id`` per row, the object's value in the optional instances.tif; labels.tif is a class map, so a row could
not be found in any saved image)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from scipy import ndimage

from devolens.cli import main
from devolens.io.stacks import pixel_size
from devolens.predict import livedead

from _livedead_helpers import channel_predictor, weights  # noqa: F401  (weights: a fixture)


_pred = channel_predictor


def _well(h=150, w=180, seed=0):
    """A (2, h, w) uint16 well: live discs, dead discs, a dead ring (its centroid outside it) and specks under
    min_area, on a camera background."""
    rng = np.random.default_rng(seed)
    img = np.full((2, h, w), 100, np.uint16)
    yy, xx = np.mgrid[:h, :w]
    for i in range(12):
        cy, cx = rng.integers(8, h - 8), rng.integers(8, w - 40)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 20
        img[0][disc] = 3000
        if i % 3 == 0:
            img[1][disc] = 3000
    r2 = (yy - 75) ** 2 + (xx - 160) ** 2
    ring = (r2 <= 144) & (r2 >= 64)
    img[0][ring], img[1][ring] = 3000, 3000
    img[0, 2:4, 2:3] = 3000  # a speck of 2 px: under min_area 4
    return img


def _calibrated(path, img):
    tifffile.imwrite(path, img, imagej=True, resolution=(1 / 0.65, 1 / 0.65), metadata={"axes": "CYX", "unit": "um"})
    return path


# ------------------------------------------------------------------------------------- probs.tif
@pytest.mark.parametrize("calibrated", [True, False])
def test_probs_tif_is_an_imagej_hyperstack_of_three_named_channels(tmp_path, calibrated):
    img = _well()
    path = tmp_path / "w.tif"
    if calibrated:
        _calibrated(path, img)
    else:
        tifffile.imwrite(path, img, metadata={"axes": "CYX"})
    pred = _pred()
    pred.predict_file(path, tmp_path / "out", write_probabilities=True)
    with tifffile.TiffFile(tmp_path / "out" / "probs.tif") as tif:
        meta = tif.imagej_metadata
        assert meta is not None, "not an ImageJ file: Fiji opens it as 3 slices"
        assert meta["channels"] == 3 and meta.get("slices", 1) == 1 and meta["hyperstack"] is True
        assert meta["Labels"] == ["background", "live", "dead"]
        assert tif.series[0].axes == "CYX" and tif.series[0].shape == (3, 150, 180)
        probs = tif.asarray()
    # the values are those written before: the blended probabilities x255, rounded (as the in-memory result gives)
    expected = np.clip(np.rint(pred.predict(img).probabilities * 255), 0, 255).astype(np.uint8)
    assert probs.dtype == np.uint8 and np.array_equal(probs, expected)
    # calibrated as labels.tif is (and not calibrated where the input is not)
    assert pixel_size(tmp_path / "out" / "probs.tif") == pixel_size(tmp_path / "out" / "labels.tif") == (
        (0.65, 0.65, "µm") if calibrated else None)


def test_probs_tif_past_what_imagej_holds_is_an_ome_bigtiff_of_named_channels(tmp_path, monkeypatch):
    """A giant well's probs.tif (over 4 GB: no classic TIFF) names its channels as OME does, its pixel size kept."""
    path = _calibrated(tmp_path / "w.tif", _well())
    pred = _pred()
    pred.predict_file(path, tmp_path / "ij", write_probabilities=True)
    monkeypatch.setattr(livedead, "PROBS_IMAGEJ_BYTES", 0)
    pred.predict_file(path, tmp_path / "ome", write_probabilities=True)
    with tifffile.TiffFile(tmp_path / "ome" / "probs.tif") as tif:
        assert tif.is_ome and tif.is_bigtiff and not tif.is_imagej
        assert tif.series[0].axes == "CYX"
        assert [c.get("Name") for c in tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]["Channel"]] == \
            ["background", "live", "dead"]
        probs = tif.asarray()
    assert np.array_equal(probs, tifffile.imread(tmp_path / "ij" / "probs.tif"))
    assert pixel_size(tmp_path / "ome" / "probs.tif") == (0.65, 0.65, "µm")


# ------------------------------------------------------------------------------------- objects.csv's id
def _check_instances(objects: pd.DataFrame, inst: np.ndarray, classes: np.ndarray, min_area: int) -> None:
    """Each row's id marks exactly its object's pixels (area, centroid, class, one connected region); every other
    pixel of a class is 0 and belongs to an object under ``min_area``."""
    assert list(objects["id"]) == list(range(1, len(objects) + 1))
    n = len(objects)
    area = np.bincount(inst.ravel(), minlength=n + 1)
    yy, xx = np.indices(inst.shape)
    sy = np.bincount(inst.ravel(), weights=yy.ravel(), minlength=n + 1)
    sx = np.bincount(inst.ravel(), weights=xx.ravel(), minlength=n + 1)
    assert np.array_equal(area[1:], objects["area"].to_numpy())
    assert np.allclose(sx[1:] / area[1:], objects["x"], atol=0.006) and np.allclose(sy[1:] / area[1:], objects["y"],
                                                                                    atol=0.006)
    for i, k in zip(objects["id"], objects["class"]):
        mask = inst == i
        assert (classes[mask] == k).all() and ndimage.label(mask)[1] == 1
    for k in (1, 2):  # the pixels left 0: whole objects under min_area
        cc, _ = ndimage.label((classes == k) & (inst == 0))
        assert (np.bincount(cc.ravel())[1:] < min_area).all()
    assert not (inst[classes == 0]).any()


def test_objects_csv_ids_are_the_objects_values_in_instances_tif(tmp_path):
    path = _calibrated(tmp_path / "w.tif", _well())
    counts = _pred().predict_file(path, tmp_path / "out", write_instances=True, well="w")
    objects = pd.read_csv(tmp_path / "out" / "objects.csv")
    # (the well is calibrated: its micron columns too, as segment livedead's, since the fiftieth session)
    assert list(objects.columns) == ["well", "id", "x", "y", "area", "class", "x_um", "y_um", "area_um2"]
    assert counts["live"] + counts["dead"] == len(objects) > 5
    inst = tifffile.imread(tmp_path / "out" / "instances.tif")
    classes = tifffile.imread(tmp_path / "out" / "labels.tif")
    assert inst.dtype == np.uint16 and inst.shape == classes.shape
    _check_instances(objects, inst, classes, 4)
    ring = objects[(objects["x"] - 160).abs().lt(1) & (objects["y"] - 75).abs().lt(1)]
    assert len(ring) == 1 and inst[75, 160] == 0 and (inst == ring["id"].iloc[0]).sum() == ring["area"].iloc[0]
    assert pixel_size(tmp_path / "out" / "instances.tif") == (0.65, 0.65, "µm")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["counts.csv", "instances.tif", "labels.tif",
                                                                    "objects.csv"]


def test_instances_of_objects_across_many_bands_and_seams(tmp_path):
    """Objects taller than a band, joined across several seams (a U whose arms meet bands below), are one id."""
    rng = np.random.default_rng(3)
    lab = np.zeros((90, 70), np.uint8)
    lab[5:80, 10:13] = 1  # tall bar
    lab[20:60, 30:33], lab[20:60, 40:43], lab[57:60, 30:43] = 2, 2, 2  # a U: arms joined only at its bottom
    lab[30:33, 50:65] = 1
    lab[62:88, 50:52] = rng.integers(0, 3, (26, 2))  # speckle of both classes
    lab[0, 0] = 2
    out = tmp_path / "inst.tif"
    objects = livedead._objects(lab, min_area=2, band=7, instances=out)
    assert objects.equals(livedead.extract_objects(lab, min_area=2, band=7))
    whole = livedead.extract_objects(lab, min_area=2, band=10_000)
    assert np.allclose(objects.to_numpy(float), whole.to_numpy(float))
    inst = tifffile.imread(out)
    _check_instances(objects.assign(id=np.arange(1, len(objects) + 1))[["id", "x", "y", "area", "class"]], inst, lab,
                     2)


def test_instances_past_65535_objects_are_uint32(tmp_path):
    lab = np.zeros((400, 400), np.uint8)
    lab[::2, ::2] = 1  # 40,000 single pixels of each class: 80,000 objects
    lab[1::2, 1::2] = 2
    objects = livedead._objects(lab, min_area=0, band=64, instances=tmp_path / "i.tif")
    inst = tifffile.imread(tmp_path / "i.tif")
    assert len(objects) == 80_000 and inst.dtype == np.uint32
    assert np.array_equal(inst[objects["y"].to_numpy(int), objects["x"].to_numpy(int)], np.arange(1, 80_001))
    assert (inst > 0).sum() == 80_000


# ------------------------------------------------------------------------------------- the command
def _run(weights, src, out, *extra):
    return main(["segment", "livedead", str(src), "--out", str(out), "--model", str(weights), "--window", "64",
                 "--overlap", "16", "--no-fast", "--no-overlay", *extra])


@pytest.mark.slow
def test_segment_livedead_instances_for_a_well_and_a_plate(weights, tmp_path):  # noqa: F811
    from devolens.render.wells import simulate_well

    plate = tmp_path / "plate"
    plate.mkdir()
    for name, seed in (("A1", 1), ("A2", 2)):
        tifffile.imwrite(plate / f"{name}.tif", simulate_well(seed=seed, size=(72, 88), density=1500).image,
                         metadata={"axes": "CYX"})
    out = tmp_path / "res"
    assert _run(weights, plate, out, "--instances", "--probabilities") == 0
    assert sorted(p.name for p in out.iterdir()) == ["counts.csv", "instances", "labels", "livedead.json",
                                                     "objects.csv", "probs"]
    objects = pd.read_csv(out / "objects.csv")
    assert list(objects.columns) == ["well", "id", "x", "y", "area", "class"]
    assert json.loads((out / "livedead.json").read_text())["options"]["instances"] is True
    for well in ("A1", "A2"):
        mine = objects[objects["well"] == well].drop(columns="well")
        inst = tifffile.imread(out / "instances" / f"{well}_instances.tif")
        _check_instances(mine, inst, tifffile.imread(out / "labels" / f"{well}_labels.tif"), 12)
        assert tifffile.TiffFile(out / "probs" / f"{well}_probs.tif").imagej_metadata["Labels"] == \
            ["background", "live", "dead"]

    one = tmp_path / "one"
    assert _run(weights, plate / "A2.tif", one, "--instances") == 0
    assert np.array_equal(tifffile.imread(one / "instances.tif"), tifffile.imread(out / "instances" /
                                                                                  "A2_instances.tif"))
    assert _run(weights, plate / "A2.tif", one) == 0  # a run without --instances: the earlier one's goes
    assert not (one / "instances.tif").exists()
    assert list(pd.read_csv(one / "objects.csv").columns) == ["well", "id", "x", "y", "area", "class"]
