"""Session 36 (M9): the well simulator's object table counts x, y from the first pixel's centre, as ``segment``'s and
``render``'s objects.csv do. It counted from the pixel's corner (the drawing's coordinates): every true centre was
0.5 px right of and below the centroid of its own nucleus's pixels, so a perfect ``segment livedead`` read -0.5."""

from __future__ import annotations

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage

from devolens.cli import main
from devolens.render.wells import simulate_well


def _offsets(instances: np.ndarray, objects: pd.DataFrame, shape) -> tuple[np.ndarray, np.ndarray]:
    """Centroid of each object's pixels minus its table x, y, for the nuclei wholly inside the image."""
    n = len(objects)
    cy, cx = np.array(ndimage.center_of_mass(np.ones(instances.shape), instances, np.arange(1, n + 1))).T
    h, w = shape
    r = objects["radius"].to_numpy() * 1.25 + 1  # (the longer semi-axis is at most 1.2 x the mean)
    x, y = objects["x"].to_numpy(), objects["y"].to_numpy()
    inside = (x - r > 0) & (x + r < w - 1) & (y - r > 0) & (y + r < h - 1)
    assert inside.sum() > 20
    return (cx - x)[inside], (cy - y)[inside]


def test_centres_are_the_centroids_of_their_pixels():
    well = simulate_well(seed=5, size=(360, 480), density=900, dead_fraction=0.4)
    dx, dy = _offsets(well.instances, well.objects, well.labels.shape)
    assert abs(dx.mean()) < 0.05 and abs(dy.mean()) < 0.05  # was -0.50 and -0.50
    assert np.abs(dx).max() < 0.35 and np.abs(dy).max() < 0.35  # (a digital ellipse's centroid: within 0.2 here)
    # the pixel nearest each centre is its nucleus's, of its class
    o = well.objects
    hit = well.instances[np.rint(o["y"]).astype(int), np.rint(o["x"]).astype(int)]
    assert np.array_equal(hit, o["id"].to_numpy())


def test_cli_objects_csv_matches_its_label_image(tmp_path):
    """As the walkthrough measured it: ``simulate well``'s objects.csv against its own label TIFF."""
    out, lab = tmp_path / "w.tif", tmp_path / "wl.tif"
    assert main(["simulate", "well", "--out", str(out), "--labels", str(lab), "--size", "200x260",
                 "--seed", "3", "--density", "900"]) == 0
    objects = pd.read_csv(tmp_path / "w.objects.csv")
    labels = tifffile.imread(lab)
    # nuclei are apart (one connected component each): number them as the table does, by the pixel at the centre
    comps, n = ndimage.label(labels > 0)
    assert n == len(objects)
    ids = comps[np.rint(objects["y"]).astype(int), np.rint(objects["x"]).astype(int)]
    assert len(set(ids.tolist()) - {0}) == n
    order = np.zeros(n + 1, int)
    order[ids] = objects["id"].to_numpy()
    instances = order[comps]
    dx, dy = _offsets(instances, objects, labels.shape)
    assert abs(dx.mean()) < 0.05 and abs(dy.mean()) < 0.05
