"""`devolens tile --ignore VALUE`: label images with an 'ignore' value (unannotated regions, as nnU-Net's ignore
label) tile into a store that records it; its pixels are no class (class_counts, the keep rule), the tile streams
give them the target IGNORE_INDEX, and training and validation leave them out."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import tifffile
import torch

from devolens.data.datasets import IGNORE_INDEX
from devolens.data.h5stream import H5TileStream
from devolens.data.tiling import open_store, store_stats, tile_arrays, tile_to_h5
from devolens.errors import DevolensError

from _lineage_builders import run_cli

#: the stripe of the 256x256 well painted 'ignore' (columns): it halves the tiles of two columns of 64 px tiles
STRIPE = slice(160, 224)


@pytest.fixture(scope="module")
def well(tmp_path_factory):
    """A 256x256 live/dead well whose labels hold 255 over a stripe of columns, where its image is 0 in both
    channels (1 at least elsewhere): a network's input tells the region."""
    from devolens.render.wells import simulate_well

    d = tmp_path_factory.mktemp("well")
    w = simulate_well(seed=4, size=(256, 256), density=1500, dead_fraction=0.5)
    image = np.maximum(w.image, 1).astype(np.uint16)
    image[:, :, STRIPE] = 0
    labels = w.labels.astype(np.uint8).copy()
    labels[:, STRIPE] = 255
    tifffile.imwrite(d / "w.tif", image)
    tifffile.imwrite(d / "l.tif", labels)
    return d / "w.tif", d / "l.tif", labels


def _store(well, path, **kw):
    image, labels, _ = well
    kw = {"tile": 64, "stride": 64, "ignore": 255, **kw}
    tile_to_h5([image], path, [labels], **kw)
    return path


def test_ignore_pixels_are_no_class(tmp_path):
    """class_counts count no 'ignore' pixel (as background or a class), and a tile of background and 'ignore'
    alone is not 'mixed'."""
    img = np.ones((2, 16, 32), np.uint16)
    lab = np.zeros((16, 32), np.uint8)
    lab[:, 8:16] = 255  # tile 0: background and ignore only
    lab[2:6, 20:24] = 1  # tile 1: a nucleus, background
    lab[8:16, 24:32] = 255
    got = tile_arrays(img, lab, tile=16, stride=16, keep="all", ignore=255)
    assert got["class_counts"].tolist() == [[128, 0, 0], [176, 16, 0]]
    mixed = tile_arrays(img, lab, tile=16, stride=16, keep="mixed", ignore=255)
    assert mixed["coords"].tolist() == [[0, 16]]
    assert np.array_equal(mixed["labels"][0], lab[:, 16:])  # stored as it is


def test_store_records_ignore_and_counts_without_it(tmp_path, well):
    _, _, labels = well
    store = _store(well, tmp_path / "t.h5", keep="all")
    with open_store(store) as f:
        assert int(f.attrs["ignore"]) == 255
        lab, cc = f["labels"][:], f["class_counts"][:]
    assert (lab == 255).sum() == (labels == 255).sum()  # every tile kept, none overlapping
    assert np.array_equal(cc.sum(axis=1) + (lab == 255).sum(axis=(1, 2)), np.full(len(lab), 64 * 64))
    for k in range(3):
        assert np.array_equal(cc[:, k], (lab == k).sum(axis=(1, 2)))
    stats = store_stats(store)
    assert stats.attrs["ignore"] == 255 and stats.attrs["ignored"] == (labels == 255).sum()
    assert stats["pixels"].sum() == (labels != 255).sum()


def test_labels_with_255_without_ignore_are_refused_with_the_option_named(tmp_path, well, capsys):
    image, labels, _ = well
    with pytest.raises(DevolensError, match="found 0..255; if 255 marks unannotated regions.*--ignore 255"):
        tile_to_h5([image], tmp_path / "t.h5", [labels], tile=64, stride=64)
    assert not (tmp_path / "t.h5").exists()
    for value, said in ((2, "must lie beyond the class ids 0..2"), (256, "at most 255")):
        with pytest.raises(DevolensError, match=said):
            tile_to_h5([image], tmp_path / "t.h5", [labels], tile=64, ignore=value)
    with pytest.raises(DevolensError, match="give --labels"):
        tile_to_h5([image], tmp_path / "t.h5", keep="all", tile=64, ignore=255)
    lab7 = tifffile.imread(labels)
    lab7[0, 0] = 7
    tifffile.imwrite(tmp_path / "l7.tif", lab7)
    with pytest.raises(DevolensError, match=r"must be in 0..2 or 255 \(--ignore\), found 0..7"):
        tile_to_h5([image], tmp_path / "t.h5", [tmp_path / "l7.tif"], tile=64, ignore=255)


def test_append_takes_the_stores_ignore_value(tmp_path, well, capsys):
    """--append with the store's value adds the tiles; another value, or none (or one to a store without), is
    refused in one line, the store left as it was."""
    from devolens.render.wells import simulate_well

    w = simulate_well(seed=5, size=(128, 128), density=1500, dead_fraction=0.5)
    tifffile.imwrite(tmp_path / "w2.tif", w.image)
    tifffile.imwrite(tmp_path / "l2.tif", w.labels)
    image, labels, _ = well
    store = tmp_path / "t.h5"
    code, _, err = run_cli(["tile", str(image), "--labels", str(labels), "--out", str(store), "--tile", "64",
                            "--ignore", "255"], capsys)
    assert code == 0, err
    before = store.read_bytes()
    add = ["tile", str(tmp_path / "w2.tif"), "--labels", str(tmp_path / "l2.tif"), "--out", str(store), "--tile",
           "64", "--append"]
    for extra, said in (([], "tiled with --ignore 255, this run without --ignore"),
                        (["--ignore", "254"], "tiled with --ignore 255, this run with --ignore 254")):
        code, _, err = run_cli(add + extra, capsys)
        assert code == 2 and said in err and "append with --ignore 255" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert store.read_bytes() == before
    code, _, err = run_cli(add + ["--ignore", "255"], capsys)
    assert code == 0, err
    with open_store(store) as f:
        assert int(f.attrs["ignore"]) == 255 and json.loads(f.attrs["sources"]) == ["w.tif", "w2.tif"]
    plain = tmp_path / "plain.h5"
    tile_to_h5([tmp_path / "w2.tif"], plain, [tmp_path / "l2.tif"], tile=64)
    code, _, err = run_cli(["tile", str(image), "--labels", str(labels), "--out", str(plain), "--tile", "64",
                            "--append", "--ignore", "255"], capsys)
    assert code == 2 and "tiled without --ignore, this run with --ignore 255" in err
    code, out, err = run_cli(["tile", "stats", str(store)], capsys)
    assert code == 0 and "ignore: label 255 marks" in out


def test_store_without_ignore_is_as_before(tmp_path):
    """No --ignore: no attribute, the streams' targets are the labels and their 'ignore' 0."""
    from devolens.render.wells import simulate_well

    w = simulate_well(seed=6, size=(128, 128), density=1500, dead_fraction=0.5)
    tifffile.imwrite(tmp_path / "w.tif", w.image)
    tifffile.imwrite(tmp_path / "l.tif", w.labels)
    store = tmp_path / "t.h5"
    tile_to_h5([tmp_path / "w.tif"], store, [tmp_path / "l.tif"], tile=64, stride=64, keep="all")
    with h5py.File(store) as f:
        assert "ignore" not in f.attrs
    for item in H5TileStream(store, shuffle=False, as_dict=True, classes=3):
        assert int(item["ignore"]) == 0 and torch.equal(item["target"], item["labels"].long())


def test_streams_give_ignore_pixels_the_ignore_index(tmp_path, well):
    store = _store(well, tmp_path / "t.h5", keep="all")
    with h5py.File(store) as f:
        lab = f["labels"][:]
    items = list(H5TileStream(store, shuffle=False, as_dict=True, classes=3))  # 255 is no class beyond 3
    assert len(items) == len(lab) and (lab == 255).any()
    for item, stored in zip(items, lab):
        assert int(item["ignore"]) == 255
        assert np.array_equal(item["target"].numpy() == IGNORE_INDEX, stored == 255)
        assert np.array_equal(item["labels"].numpy(), stored)  # the stored values: validation's 'void'
        assert np.array_equal(item["target"].numpy()[stored != 255], stored[stored != 255])
    for x, y in H5TileStream(store, shuffle=False):  # tuples likewise
        assert y.dtype == torch.int64 and set(torch.unique(y).tolist()) <= {IGNORE_INDEX, 0, 1, 2}
    s = H5TileStream(store, indices=[1, 2])
    freq = np.array([(lab[[1, 2]] == k).sum() for k in range(3)], float)
    assert np.allclose(s.class_frequencies(), freq / freq.sum())  # the class weights' counts
    lab[0, 0, 0] = 7  # a class beyond data.classes is still refused
    with h5py.File(store, "a") as f:
        f["labels"][0] = lab[0]
    with pytest.raises(DevolensError, match="tile 0 holds class 7"):
        list(H5TileStream(store, shuffle=False, classes=3))


class _Junk(torch.nn.Module):
    """The trained network, with confident 'dead' logits wherever the input is 0 (the well's 'ignore' stripe)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        y = self.net(x)
        junk = torch.tensor([-20.0, -20.0, 20.0], dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
        return torch.where((x <= 0).all(dim=1, keepdim=True), junk, y)


def test_trains_from_a_store_leaving_the_ignore_region_out(tmp_path, well):
    """A livedead-like run trains one epoch from the store; neither the training loss nor validation's loss and
    pixel scores change with what the network says in the 'ignore' stripe."""
    from torch.utils.data import DataLoader

    from devolens.models.architectures import load_model
    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import _loss_fn, build_data, evaluate_model, train

    store = _store(well, tmp_path / "t.h5")
    rec = {"name": "t", "task": "segmentation", "seed": 0,
           "data": {"target": "classes", "classes": 3, "channels": 2, "normalize": "log", "val_fraction": 0.3},
           "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [8, 8, 4]},
           "loss": {"name": "ce_dice", "class_weights": "inverse_sqrt"},
           "augment": {"preset": "livedead"},
           "train": {"epochs": 1, "batch_size": 4, "max_batches": 2, "overlay_samples": 0, "threads": 1,
                     "monitor": "val_ap"}}
    res = train(rec, store, tmp_path / "run")
    assert len(res.history) == 1 and np.isfinite(res.history["val_loss"].iloc[0])
    net, _ = load_model(tmp_path / "run" / "best.safetensors")
    net.eval()
    recipe = resolved(load_recipe(rec))
    bundle = build_data(load_recipe(rec), store)
    loss_fn, _ = _loss_fn(recipe, bundle.train)
    junk = _Junk(net).eval()
    batch = next(iter(DataLoader(bundle.train, batch_size=4)))
    assert (batch["target"] == IGNORE_INDEX).any()
    with torch.no_grad():
        a, b = net(batch["image"]), junk(batch["image"])
        assert not torch.equal(a, b)
        assert torch.allclose(loss_fn(a, batch["target"]), loss_fn(b, batch["target"]), atol=1e-6)
    assert any((item["target"] == IGNORE_INDEX).any() for item in bundle.val)
    one = evaluate_model(net, bundle.val, recipe, loss_fn)["metrics"]
    two = evaluate_model(junk, bundle.val, recipe, loss_fn)["metrics"]
    pixel = ["val_loss"] + [f"val_{m}_{c}" for m in ("iou", "dice", "ap") for c in range(3)]
    assert {k: one[k] for k in pixel} == pytest.approx({k: two[k] for k in pixel}, nan_ok=True)
