"""The giant-image path (s46): a tile store another program holds open is one error line in `train` and
`evaluate`, not h5py's traceback; a nucleus on a block seam, measured a hair differently by the two blocks, is one
object (was two: the second block's rim around the first's outline an extra label and objects.csv row, or none);
the CLI's error for a well HDF5 of several 3-D datasets names --dataset."""

from __future__ import annotations

import os
import warnings

import h5py
import numpy as np
import pytest
import tifffile

from devolens.errors import DevolensError
from devolens.predict import blocks
from devolens.predict.postprocess import object_arrays
from test_s41_wells import _locked  # (another program holding an HDF5 file open)
from test_s46_images import _Network  # (what segment_blocks uses of a network)


# --------------------------------------------------------------------- 2. a nucleus on a block seam
class _TwoViews:
    """Objects = connected components above a threshold that differs block by block (the first block's 0.5, the
    next's 0.3): the blocks outline an object on their seam differently, as a network in two contexts does."""

    def __init__(self):
        self.network = _Network()
        self.card_scale, self.diameter_ref = 1.0, 4.0
        self.postprocess_options: dict = {}
        self.calls = 0

    def _finish(self, probs, shape, options=None):
        import cv2

        from devolens.predict.segment import SegmentationResult

        threshold = 0.5 if self.calls % 2 == 0 else 0.3
        self.calls += 1
        n, lab = cv2.connectedComponents((probs[0] > threshold).astype(np.uint8), connectivity=4)
        lab = lab.astype(np.uint16)
        return SegmentationResult(probability=probs[0], labels=lab, centroids=object_arrays(lab))


def _seam_nucleus(rim_rows: tuple[int, ...], rim_widths: tuple[int, ...], core_rows: range) -> np.ndarray:
    """A 512 x 100 image (two blocks, their seam at row 256) of one nucleus: a bright 5-pixel-wide body on
    ``core_rows`` (1000) and a dim rim (400: above the second block's threshold only)."""
    img = np.zeros((512, 100), np.uint16)
    img[core_rows.start:core_rows.stop, 40:45] = 1000
    for r, w in zip(rim_rows, rim_widths):
        img[r, 40:40 + w] = 400
    return img


@pytest.mark.parametrize("case", ["twice", "never", "ring"])
def test_a_nucleus_on_a_block_seam_is_one_object(case):
    if case == "ring":  # the first block sees a 6-pixel body (centroid 254.5), the second it and 20 pixels of rim
        # below (256.8): less than half of the second's object on the first's, but all of the first's under it
        img = np.zeros((512, 100), np.uint16)
        img[256:260, 40:45] = 400
        img[254:256, 41:44] = 1000
    elif case == "twice":  # body's centroid 255.5 (the first block's core), body + rim's 256.1 (the second's)
        img = _seam_nucleus((259, 260), (5, 1), range(253, 259))
    else:  # body's centroid 256.5 (the second block's core), body + rim's 255.9 (the first's): neither kept it
        img = _seam_nucleus((253, 252), (5, 1), range(254, 260))
    pred = _TwoViews()
    assert blocks._Plan(pred, img.shape).cores == [(0, 256, 0, 100), (256, 512, 0, 100)]
    res = blocks.segment_blocks(pred, img)
    assert res.count == 1
    lab = res.labels
    assert int(lab.max()) == 1 and list(res.objects["label"]) == [1]
    # the first block's outline with the second's rim joined to it
    np.testing.assert_array_equal(lab == 1, img > 0)
    assert res.objects["area"][0] == int((img > 0).sum())
    ys, xs = np.nonzero(lab)
    assert res.objects["y"][0] == pytest.approx(ys.mean()) and res.objects["x"][0] == pytest.approx(xs.mean())


def test_neighbours_on_a_seam_stay_two_objects():
    """Two nuclei a row apart across the seam, the first's centroid within the second block's slack (both blocks
    claim it: the second's copy is the first), the second's beyond the first's: two objects, each whole."""
    img = np.zeros((512, 100), np.uint16)
    img[252:258, 40:45] = 1000  # centroid 254.5
    img[259:265, 40:45] = 1000  # centroid 261.5
    res = blocks.segment_blocks(_TwoViews(), img)
    assert res.count == 2 and list(res.objects["area"]) == [30, 30]
    np.testing.assert_allclose(res.objects["y"], [254.5, 261.5])
    assert (res.labels[252:258, 40:45] == 1).all() and (res.labels[259:265, 40:45] == 2).all()


# --------------------------------------------------------------------- 1. a tile store another program holds open
@pytest.fixture
def store(tmp_path, monkeypatch):
    from devolens.data.tiling import tile_to_h5
    from devolens.render.wells import simulate_well

    monkeypatch.delenv("HDF5_USE_FILE_LOCKING", raising=False)
    w = simulate_well(seed=2, size=(64, 96), density=700, dead_fraction=0.4)
    tifffile.imwrite(tmp_path / "w.tif", w.image, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "l.tif", w.labels.astype(np.uint8))
    path = tmp_path / "t.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tile_to_h5([tmp_path / "w.tif"], path, [tmp_path / "l.tif"], tile=32, stride=32, keep="all")
    fd = _locked(path)
    try:
        h5py.File(path, "r").close()
    except OSError:
        pass
    else:
        os.close(fd)
        pytest.skip("HDF5 does not lock files here")
    yield path
    os.close(fd)


def test_train_on_a_store_held_open_elsewhere_is_one_error_line(store, tmp_path, capsys):
    """(was a 30-line BlockingIOError traceback from train's _build_h5)"""
    import yaml

    from devolens.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "t", "task": "segmentation", "data": {"target": "classes", "classes": 3, "channels": 2},
        "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [8, 8, 4]},
        "train": {"epochs": 1, "batch_size": 2, "max_batches": 1, "overlay_samples": 0, "threads": 1}}))
    out = tmp_path / "run"
    assert main(["train", str(recipe), "--data", str(store), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "another program has this HDF5 file open" in err and "Traceback" not in err
    assert "BlockingIOError" not in err and not out.exists()


def test_evaluate_reads_a_store_held_open_elsewhere_as_one_error(store):
    """evaluate's tiles (H5TileDataset) and a stream's: the one-line error, not h5py's BlockingIOError."""
    from devolens.data.datasets import H5TileDataset
    from devolens.data.tiling import open_h5

    with pytest.raises(DevolensError, match="another program has this HDF5 file open"):
        H5TileDataset(store)
    with pytest.raises(DevolensError, match="another program has this HDF5 file open"):
        open_h5(store, "r", rdcc_nbytes=1 << 20)
    with pytest.raises(DevolensError, match="no such HDF5 file"):
        open_h5(store.with_name("nope.h5"))


# --------------------------------------------------------------------- 3. a well HDF5 of several 3-D datasets
def test_the_command_names_dataset_as_its_option(tmp_path, capsys):
    from devolens.cli import main
    from devolens.predict.tiled import RowReader

    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["raw"] = np.ones((2, 32, 32), np.uint16)
        f["mask"] = np.zeros((1, 32, 32), np.uint8)
    assert main(["segment", "livedead", str(path), "--out", str(tmp_path / "o"), "--model", "no-such-model"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "several 3-D datasets" in err and "name the well's image (--dataset, or save it as 'image')" in err
    assert "dataset=" not in err
    with pytest.raises(DevolensError, match=r"\(dataset=, or save it as 'image'\)"):  # the library's argument
        RowReader(path)
