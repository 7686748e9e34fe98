"""The well simulator: seeded, labels agree with the object table, CLI and bad options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.render.wells import simulate_well


@pytest.fixture(scope="module")
def well():
    return simulate_well(seed=5, size=(360, 480), density=900, dead_fraction=0.4)


def test_shapes_and_dtypes(well):
    assert well.image.shape == (2, 360, 480) and well.image.dtype == np.uint16
    assert well.labels.shape == (360, 480) and well.labels.dtype == np.uint8
    assert set(np.unique(well.labels)) <= {0, 1, 2}
    assert {"id", "x", "y", "area", "class", "in_focus"} <= set(well.objects.columns)


def test_seeded():
    a = simulate_well(seed=3, size=(200, 260))
    b = simulate_well(seed=3, size=(200, 260))
    c = simulate_well(seed=4, size=(200, 260))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    pd.testing.assert_frame_equal(a.objects, b.objects)
    assert not np.array_equal(a.image, c.image)


def test_labels_agree_with_object_table(well):
    obj = well.objects
    assert len(obj) > 20
    # every object owns exactly `area` pixels of the instance map, of its class
    areas = np.bincount(well.instances.ravel(), minlength=len(obj) + 1)[1:]
    assert np.array_equal(areas, obj["area"].to_numpy())
    lut = np.concatenate([[0], obj["class"].to_numpy()])
    assert np.array_equal(lut[well.instances], well.labels)
    # the centre pixel of each nucleus carries its class (x, y count from the first pixel's centre: the nearest)
    yi, xi = np.rint(obj["y"]).astype(int), np.rint(obj["x"]).astype(int)
    assert np.array_equal(well.labels[yi, xi], obj["class"].to_numpy())
    # nuclei are separated: one connected component per object and class
    for k in (1, 2):
        _, n = ndimage.label(well.labels == k)
        assert n == int((obj["class"] == k).sum())
    assert well.counts["live"] + well.counts["dead"] == len(obj)


def test_dead_nuclei_are_draq7_bright(well):
    img = well.image.astype(np.float64)
    dead = well.labels == 2
    live = well.labels == 1
    assert img[1][dead].mean() > 1.5 * img[1][live].mean()


def test_dead_fraction_extremes():
    w0 = simulate_well(seed=1, size=(200, 200), density=800, dead_fraction=0.0)
    w1 = simulate_well(seed=1, size=(200, 200), density=800, dead_fraction=1.0)
    assert (w0.labels == 2).sum() == 0 and (w0.labels == 1).sum() > 0
    assert (w1.labels == 1).sum() == 0 and (w1.labels == 2).sum() > 0


def test_bad_options():
    with pytest.raises(DevolensError):
        simulate_well(seed=0, size=(4, 100))
    with pytest.raises(DevolensError):
        simulate_well(seed=0, size=(100, 100), dead_fraction=1.5)


def test_cli_simulate_well(tmp_path):
    out, lab = tmp_path / "w.tif", tmp_path / "l.tif"
    code = main(["simulate", "well", "--out", str(out), "--labels", str(lab), "--size", "180x240",
                 "--seed", "2", "--dead-fraction", "0.5"])
    assert code == 0
    img, labels = tifffile.imread(out), tifffile.imread(lab)
    assert img.shape == (2, 180, 240) and img.dtype == np.uint16
    assert labels.shape == (180, 240) and labels.dtype == np.uint8
    obj = pd.read_csv(tmp_path / "w.objects.csv")
    ref = simulate_well(seed=2, size=(180, 240), dead_fraction=0.5)
    assert np.array_equal(img, ref.image) and len(obj) == len(ref.objects)


def test_cli_bad_size_writes_nothing(tmp_path):
    out, lab = tmp_path / "w.tif", tmp_path / "l.tif"
    code = main(["simulate", "well", "--out", str(out), "--labels", str(lab), "--size", "big"])
    assert code == 2
    assert not out.exists() and not lab.exists()
