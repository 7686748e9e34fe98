"""Datasets, indexing, group splits and augmentation."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings, strategies as st

from _train_data import disc_frame, make_pairs, make_render_like
from devolens.data.augment import PRESETS, build_augment, reseed, resolve_spec
from devolens.data.datasets import (H5TileDataset, PopulationDataset, SegmentationDataset, find_pairs, index_dataset,
                                    labels_to_target, split_by_group)
from devolens.errors import DevolensError


def test_find_pairs_matches_by_name_and_reports_unmatched(tmp_path):
    make_pairs(tmp_path, groups=2, per_group=2, extra_image=True, extra_mask=True)
    idx = find_pairs(tmp_path / "images", tmp_path / "masks")
    assert len(idx.pairs) == 4
    assert all(m.stem == i.stem + "_labels" for i, m in idx.pairs)
    assert [p.name for p in idx.unmatched_images] == ["lonely.png"]
    assert [p.name for p in idx.unmatched_masks] == ["orphan_labels.tif"]
    df = index_dataset(tmp_path)
    assert len(df) == 4 and set(df["group"]) == {"emb0", "emb1"}
    assert sorted(df.attrs["unmatched"]) == ["images/lonely.png", "masks/orphan_labels.tif"]


def test_index_render_layout(tmp_path):
    make_render_like(tmp_path, embryos=2, per_embryo=3)
    df = index_dataset(tmp_path)
    assert len(df) == 6 and df.attrs["layout"] == "render"
    assert df["labels"].notna().all() and set(df["group"]) == {"sim0", "sim1"}
    with pytest.raises(DevolensError, match="no labelled data"):
        index_dataset(tmp_path / "frames")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=60), st.floats(0.05, 0.9), st.integers(0, 1000))
def test_a_group_never_straddles_the_split(groups, frac, seed):
    df = pd.DataFrame({"embryo": [f"e{g}" for g in groups], "x": range(len(groups))})
    if df["embryo"].nunique() < 2:
        with pytest.raises(DevolensError, match="only one group"):
            split_by_group(df, "embryo", frac, seed)
        return
    tr, va = split_by_group(df, "embryo", frac, seed)
    assert set(tr["embryo"]).isdisjoint(set(va["embryo"]))
    assert len(tr) + len(va) == len(df) and len(tr) > 0 and len(va) > 0
    assert sorted(tr.index.tolist() + va.index.tolist()) == list(range(len(df)))


def test_split_is_seeded_and_reaches_the_fraction():
    df = pd.DataFrame({"embryo": np.repeat([f"e{i}" for i in range(10)], 5)})
    a = split_by_group(df, "embryo", 0.3, 1)[1]
    b = split_by_group(df, "embryo", 0.3, 1)[1]
    assert a.index.equals(b.index) and len(a) == 15
    with pytest.raises(DevolensError, match="not in the data"):
        split_by_group(df, "plate", 0.3, 1)


def test_boundary_target():
    lab = np.zeros((7, 12), np.uint16)
    lab[1:6, 1:6] = 1
    lab[1:6, 6:11] = 2  # touching nucleus
    t = labels_to_target(lab, "boundary")
    assert set(np.unique(t)) == {0, 1, 2}
    assert t[3, 3] == 1 and t[1, 3] == 2
    assert t[3, 5] == 2 and t[3, 6] == 2  # the shared border is boundary on both sides
    assert (labels_to_target(lab, "semantic") == (lab > 0)).all()


def test_segmentation_dataset_items(tmp_path):
    make_pairs(tmp_path, groups=1, per_group=2, size=40)
    df = index_dataset(tmp_path)
    ds = SegmentationDataset(df["image"], df["labels"], target="semantic", channels=3, pad_multiple=32)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32  # padded 40 -> 64
    assert item["target"].shape == (64, 64) and item["target"].dtype == torch.int64
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    ds2 = SegmentationDataset(df["image"], df["labels"], target="boundary", size=(32, 32))
    assert ds2[1]["image"].shape == (1, 32, 32) and int(ds2[1]["target"].max()) == 2


def test_thresholded_masks_become_one_instance_per_blob(tmp_path):
    import tifffile

    from devolens.data.datasets import thresholded
    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import build_data
    from _train_data import tiny_recipe

    make_pairs(tmp_path, groups=2, per_group=2, size=48)
    masks = sorted((tmp_path / "masks").iterdir())
    truth = tifffile.imread(masks[0])
    for m in masks:  # what a threshold in an image editor gives: 0 and 255
        tifffile.imwrite(m, (tifffile.imread(m) > 0).astype(np.uint8) * 255)
    assert thresholded(tifffile.imread(masks[0])) is not None and thresholded(truth) is None
    df = index_dataset(tmp_path)
    item = SegmentationDataset(df["image"], df["labels"], target="boundary")[0]
    blobs = int(thresholded((truth > 0).astype(np.uint8)).max())  # touching discs make one blob
    assert 1 < blobs <= truth.max() and len(np.unique(item["labels"].numpy())) - 1 == blobs
    bundle = build_data(resolved(load_recipe(tiny_recipe(data={"target": "boundary", "val_fraction": 0.5}))), tmp_path)
    assert any("thresholded mask" in n for n in bundle.notes)
    from devolens.train.trainer import train

    said: list[str] = []  # said before the first epoch, not after the run
    train(tiny_recipe(data={"target": "boundary", "val_fraction": 0.5}, train={"epochs": 1, "batch_size": 2}),
          tmp_path, tmp_path / "run", info=said.append,
          epoch_callback=lambda e, row: said.append("epoch done"))
    assert "validation samples; device" in said[0] and "thresholded mask" in said[1] and said[-1] == "epoch done"


def test_a_stack_as_training_image_is_refused_with_its_name(tmp_path):
    import tifffile

    make_pairs(tmp_path, groups=1, per_group=2, size=40)
    stack = sorted((tmp_path / "images").iterdir())[0].with_suffix(".tif")
    for p in (tmp_path / "images").iterdir():
        p.unlink()
    tifffile.imwrite(stack, np.zeros((5, 40, 40), np.uint8))  # a z-stack where a plane was expected
    df = index_dataset(tmp_path)
    with pytest.raises(DevolensError, match=f"{stack.name}.*not a 2-D image"):
        SegmentationDataset(df["image"], df["labels"], target="semantic")[0]


def test_spatial_augmentation_moves_image_and_mask_together():
    rng = np.random.default_rng(0)
    _, lab = disc_frame(rng, 64, n=4)
    img = (lab > 0).astype(np.float32)[..., None]
    aug = build_augment("nuclei", strength=1.0, overrides={
        "brightness_contrast": False, "gamma": False, "noise": False, "blur": False,
        "affine": {"p": 1.0}, "elastic": {"p": 1.0}})
    moved = 0
    for s in range(10):
        reseed(aug, s)
        out = aug(image=img, mask=lab)
        fg_img, fg_mask = out["image"][..., 0] > 0.5, out["mask"] > 0
        assert set(np.unique(out["mask"])) <= set(np.unique(lab))  # nearest-neighbour labels
        assert (fg_img == fg_mask).mean() > 0.97
        moved += not np.array_equal(out["mask"], lab)
    assert moved >= 8


def test_intensity_augmentation_leaves_the_mask_alone():
    rng = np.random.default_rng(1)
    im, lab = disc_frame(rng, 64)
    aug = build_augment("nuclei", overrides={k: False for k in ("hflip", "vflip", "rot90", "affine", "elastic")} |
                        {"noise": {"p": 1.0}, "brightness_contrast": {"p": 1.0}})
    reseed(aug, 0)
    out = aug(image=(im[..., None] / 255).astype(np.float32), mask=lab)
    assert np.array_equal(out["mask"], lab)
    assert not np.allclose(out["image"][..., 0], im / 255)


def test_saturate_clips_the_bright_end_and_is_in_no_preset():
    assert all("saturate" not in spec for spec in PRESETS.values())  # the shipped recipes' draws stay as they were
    x = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))[..., None]
    aug = build_augment("nuclei", overrides={k: False for k in resolve_spec("nuclei")} |
                        {"saturate": {"p": 1.0, "gain": 3.0}})
    assert [type(t).__name__ for t in aug.transforms] == ["RandomBrightnessContrast"]
    for seed in range(5):
        reseed(aug, seed)
        out = aug(image=x)["image"][..., 0]
        gain = out[0, 1] / x[0, 1, 0]
        assert 1.0 <= gain <= 3.0 + 1e-4 and out.max() <= 1.0  # multiplied, clipped at the top
        np.testing.assert_allclose(out, np.minimum(x[..., 0] * gain, 1.0), atol=1e-5)


def test_presets_strength_and_overrides():
    assert set(PRESETS) >= {"nuclei", "membrane", "livedead", "population"}
    assert "elastic" not in resolve_spec("nuclei", {"elastic": False})
    assert resolve_spec("population", {"elastic": True})["elastic"]["p"] > 0
    assert resolve_spec("nuclei", {"noise": {"std": 0.3}})["noise"]["std"] == 0.3
    with pytest.raises(DevolensError):
        build_augment("nuclei", overrides={"warp": True})
    with pytest.raises(DevolensError):
        build_augment("nucleus")
    weak = build_augment("nuclei", strength=0.0)
    assert all(type(t).__name__ in ("HorizontalFlip", "VerticalFlip", "RandomRotate90") for t in weak.transforms)
    assert build_augment("none") is None


def test_dataset_augmentation_is_reproducible_per_epoch(tmp_path):
    make_pairs(tmp_path, groups=1, per_group=1)
    df = index_dataset(tmp_path)
    ds = SegmentationDataset(df["image"], df["labels"], augment=build_augment("nuclei"), seed=3)
    a = ds[0]["image"]
    assert torch.equal(a, ds[0]["image"])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[0]["image"])
    # transforms draw independently: over many seeds the image is almost never untouched
    raw = SegmentationDataset(df["image"], df["labels"])[0]["image"]
    same = 0
    for e in range(30):
        ds.set_epoch(e)
        same += torch.equal(ds[0]["image"], raw)
    assert same <= 3


def test_population_dataset(tmp_path):
    make_render_like(tmp_path, embryos=1, per_embryo=2)
    df = index_dataset(tmp_path)
    ds = PopulationDataset(df["image"], df[["A", "E", "total"]].to_numpy(), size=(32, 32))
    item = ds[1]
    assert item["image"].shape == (1, 32, 32)
    assert item["target"].tolist() == df.loc[1, ["A", "E", "total"]].astype(float).tolist()


@pytest.mark.parametrize("kind", ["population", "segmentation"])
def test_non_square_samples_keep_their_size_under_quarter_turns(tmp_path, kind):
    """rot90 of a non-square sample would break batching: it becomes a half turn."""
    make_render_like(tmp_path, embryos=1, per_embryo=3)
    df = index_dataset(tmp_path)
    aug = build_augment("population", overrides={"rot90": {"p": 1.0}, "hflip": False, "vflip": False,
                                                 "brightness_contrast": False, "gamma": False, "noise": False,
                                                 "blur": False})
    if kind == "population":
        ds = PopulationDataset(df["image"], df[["total"]].to_numpy(), size=(32, 48), augment=aug, pad_multiple=1)
    else:
        ds = SegmentationDataset(df["image"], df["labels"], target="semantic", size=(32, 48), augment=aug,
                                 pad_multiple=1)
    plain = (PopulationDataset(df["image"], df[["total"]].to_numpy(), size=(32, 48), pad_multiple=1)
             if kind == "population" else
             SegmentationDataset(df["image"], df["labels"], target="semantic", size=(32, 48), pad_multiple=1))
    for i in range(len(ds)):
        item, ref = ds[i], plain[i]
        assert item["image"].shape == (1, 32, 48)
        # the content is the sample turned by a half turn (or not at all), never squeezed
        img, r = item["image"][0].numpy(), ref["image"][0].numpy()
        assert np.allclose(img, r, atol=1e-4) or np.allclose(img, r[::-1, ::-1], atol=1e-4)
        if kind == "segmentation":
            assert item["target"].shape == (32, 48)
    loader = torch.utils.data.DataLoader(ds, batch_size=3)
    assert next(iter(loader))["image"].shape == (3, 1, 32, 48)


def test_h5_tile_dataset(tmp_path):
    import h5py

    imgs = np.random.default_rng(0).integers(0, 65535, (5, 2, 16, 16), dtype=np.uint16)
    labs = np.zeros((5, 16, 16), np.uint8)
    labs[:, 4:8, 4:8] = 2
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["images"], f["labels"] = imgs, labs
    ds = H5TileDataset(tmp_path / "t.h5", target="classes")
    assert len(ds) == 5
    item = ds[3]
    assert item["image"].shape == (2, 16, 16)
    assert np.allclose(item["image"].numpy(), imgs[3] / 65535, atol=1e-6)
    assert item["target"][5, 5] == 2
    with pytest.raises(DevolensError, match="no dataset"):
        H5TileDataset(tmp_path / "t.h5", images_key="x")


def test_live_render_dataset():
    pytest.importorskip("devolens.render.nuclei")
    from devolens.data.datasets import LiveRenderDataset
    from devolens.render.dataset import simulate_tables

    tab = simulate_tables(1, seed=0, n_cells=12)[0]
    times = sorted(tab["time"].unique())[-2:]
    ds = LiveRenderDataset([tab], [(0, int(t)) for t in times], size=(64, 64), seed=1)
    a = ds[0]
    assert a["image"].shape == (1, 64, 64) and a["target"].shape == (64, 64)
    assert int(a["target"].sum()) > 0
    ds.set_epoch(1)
    assert not torch.equal(a["image"], ds[0]["image"])  # a new render each epoch
    pop = LiveRenderDataset([tab], [(0, int(times[-1]))], task="population", size=(64, 64))
    assert float(pop[0]["target"][-1]) == float((tab["time"] == times[-1]).sum())


def test_inner_boundaries_match_scikit_image():
    """The OpenCV path for 8/16-bit labels gives find_boundaries(mode="inner") exactly: random labels, blocky labels,
    single rows and columns, labels touching every edge, and strided views."""
    from skimage.segmentation import find_boundaries

    from devolens.data.datasets import inner_boundaries

    rng = np.random.default_rng(0)
    for t in range(200):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        lab = rng.integers(0, int(rng.integers(1, 6)), (h, w)).astype(np.uint8 if t % 2 else np.uint16)
        if t % 3 == 0:
            lab = np.kron(lab, np.ones((3, 3), lab.dtype))[:h, :w]
        if t % 5 == 0:
            lab = np.rot90(lab)  # a view, not contiguous
        want = find_boundaries(lab.astype(np.int64), mode="inner") & (lab > 0)
        np.testing.assert_array_equal(inner_boundaries(lab), want)
        np.testing.assert_array_equal(inner_boundaries(lab.astype(np.int32)), want)  # the scikit-image path
