"""More QA of training on a biologist's own data: one annotated image (or one embryo) split into regions for
validation, colour masks with smoothed (anti-aliased) edges refused, and every mask checked before training."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile

from _train_data import disc_frame, make_pairs, tiny_recipe
from devolens.data.datasets import SegmentationDataset, edge_fragments, index_dataset, read_mask, regions
from devolens.errors import DevolensError
from devolens.train.evaluate import evaluate_run
from devolens.train.recipe import load_recipe
from devolens.train.trainer import build_data, check_masks, region_side, train


def quick(**over) -> dict:
    base = {"train": {"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0, "max_batches": 1}}
    return tiny_recipe(**{**base, **over})


def one_image(root: Path, size=(256, 256), seed: int = 0, name: str = "big") -> Path:
    """images/NAME.png + masks/NAME_labels.tif: one annotated field with many discs."""
    rng = np.random.default_rng(seed)
    img, lab = disc_frame(rng, max(size), n=40, radius=(5, 9))
    img, lab = img[: size[0], : size[1]], lab[: size[0], : size[1]]
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    iio.imwrite(root / "images" / f"{name}.png", img)
    tifffile.imwrite(root / "masks" / f"{name}_labels.tif", lab)
    return root


def colour_nuclei(n: int = 300, size: int = 1024, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A clean colour mask: one flat colour per nucleus on black, and its labels."""
    rng = np.random.default_rng(seed)
    _, lab = disc_frame(rng, size, n=n, radius=(6, 14))
    palette = rng.integers(40, 256, (int(lab.max()) + 1, 3)).astype(np.uint8)
    return np.where(lab[..., None] > 0, palette[lab], 0).astype(np.uint8), lab


# ----------------------------------------------------------------------------- one image, one group
def test_one_image_is_split_into_regions_that_validate_or_train(tmp_path):
    data = one_image(tmp_path / "one")
    bundle = build_data(load_recipe(quick(data={"val_fraction": 0.2})), data)
    split = bundle.split
    assert len(split) == 4 and set(split["group"]) == {"r0c0", "r0c1", "r1c0", "r1c1"}
    assert (split["side"] == "val").sum() == 1 and len(bundle.train) == 3 and len(bundle.val) == 1
    note = [n for n in bundle.notes if n.startswith("one image")]
    assert note == ["one image (big.png): cut into 4 regions of about 128x128 px (2x2); whole regions validate: 1 of "
                    "the 4 (25 %)"]
    assert all(s.startswith("images/big.png[") for s in split["sample"])
    item = bundle.val[0]
    assert item["image"].shape == (1, 128, 128) and item["labels"].shape == (128, 128)
    # the regions tile the image: every pixel in exactly one of them
    cover = np.zeros((256, 256), int)
    for _, _, y0, y1, x0, x1 in regions((256, 256), region_side(load_recipe(quick()))):
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()


def test_one_image_trains_resumes_and_evaluates(tmp_path):
    data = one_image(tmp_path / "one")
    run = tmp_path / "run"
    said: list[str] = []
    train(quick(), data, run, info=said.append)
    assert any(s.startswith("note: one image (big.png): cut into 4 regions") for s in said)
    recorded = json.loads((run / "run.json").read_text())["data"]["fingerprint"]
    assert recorded == build_data(load_recipe(quick()), data).fingerprint  # stable: --resume accepts the data
    res = train(quick(), data, run, resume=True, epochs=2)
    assert list(res.history["epoch"]) == [0, 1]
    other = one_image(tmp_path / "other", seed=7)  # the same name, another image
    with pytest.raises(DevolensError, match="differ from those the run was trained on"):
        train(quick(), other, run, resume=True, epochs=3)
    ev = evaluate_run(run, data)  # the whole image, as any data folder
    assert ev["n"] == 1 and ev["metrics"]["val_f1"] is not None


def test_one_group_of_several_images_holds_out_the_same_regions_of_each(tmp_path):
    data = make_pairs(tmp_path / "emb", groups=1, per_group=3, size=256)
    bundle = build_data(load_recipe(quick(data={"val_fraction": 0.2})), data)
    split = bundle.split
    assert len(split) == 12 and split.groupby("group")["side"].nunique().max() == 1
    val = split[split["side"] == "val"]
    assert len(val) == 3 and val["group"].nunique() == 1  # one region, in every image
    assert ("one group (emb0, 3 images): each image cut into 4 regions of about 128x128 px (2x2); whole regions "
            "validate, the same in every image: 1 of the 4 (25 %)") in bundle.notes


def test_several_groups_split_by_group_as_before(tmp_path):
    data = make_pairs(tmp_path / "three", groups=3, per_group=2, size=256)
    bundle = build_data(load_recipe(quick(data={"val_fraction": 0.34})), data)
    assert len(bundle.split) == 6 and set(bundle.split["group"]) == {"emb0", "emb1", "emb2"}
    assert not any("region" in n for n in bundle.notes) and bundle.train[0]["image"].shape[-2:] == (256, 256)


def test_an_image_too_small_to_split_is_refused_and_small_images_of_one_group_split_by_image(tmp_path):
    data = one_image(tmp_path / "small", size=(100, 300))
    with pytest.raises(DevolensError, match=r"one annotated image of 300x100 px: too small to hold out a region .*"
                                            r"at least 128x128 px.*annotate a second image"):
        build_data(load_recipe(quick()), data)
    data = one_image(tmp_path / "scaled", size=(200, 200))  # 256 px of the file at data.scale 0.5
    with pytest.raises(DevolensError, match=r"at least 256x256 px \(128 px at data.scale 0.5\)"):
        build_data(load_recipe(quick(data={"scale": 0.5})), data)
    data = make_pairs(tmp_path / "few", groups=1, per_group=3, size=64)
    bundle = build_data(load_recipe(quick()), data)
    assert any("split by sample (its images are too small to hold out regions" in n for n in bundle.notes)
    assert set(bundle.split["group"]) == set(bundle.split["sample"])


def test_a_region_is_normalised_with_its_whole_images_levels(tmp_path):
    data = one_image(tmp_path / "one", size=(256, 192))
    img = iio.imread(data / "images" / "big.png")
    iio.imwrite(data / "images" / "big.png", np.where(np.arange(192) < 64, img // 4, img).astype(np.uint8))
    df = index_dataset(data)
    whole = SegmentationDataset(df["image"], df["labels"], normalize="percentile", pad_multiple=1)[0]
    box = (128, 256, 0, 96)
    part = SegmentationDataset(df["image"], df["labels"], normalize="percentile", pad_multiple=1, boxes=[box])[0]
    assert np.allclose(part["image"].numpy(), whole["image"].numpy()[:, 128:256, 0:96])
    assert np.array_equal(part["labels"].numpy(), whole["labels"].numpy()[128:256, 0:96])


# ----------------------------------------------------------------------------- smoothed colour masks
def test_colour_masks_with_smoothed_edges_are_refused(tmp_path):
    import cv2

    rgb, lab = colour_nuclei()
    iio.imwrite(tmp_path / "clean.png", rgb)  # hundreds of flat colours: one nucleus each
    got = read_mask(tmp_path / "clean.png")
    pairs = set(zip(got.ravel().tolist(), lab.ravel().tolist()))
    assert len(np.unique(got)) == lab.max() + 1 and len(pairs) == lab.max() + 1
    iio.imwrite(tmp_path / "nearest.png", cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
    assert len(np.unique(read_mask(tmp_path / "nearest.png"))) == lab.max() + 1
    smoothed = {
        "resized.png": cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR),
        "shrunk.png": cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
    }
    overlay = np.zeros((256, 256, 3), np.uint8)  # discs drawn anti-aliased, as a viewer exports an overlay
    rng = np.random.default_rng(3)
    for _ in range(12):
        cv2.circle(overlay, tuple(int(v) for v in rng.integers(20, 236, 2)), int(rng.integers(6, 14)),
                   tuple(int(v) for v in rng.integers(60, 256, 3)), -1, lineType=cv2.LINE_AA)
    smoothed["overlay.png"] = overlay
    smoothed["blurred_grey.png"] = cv2.GaussianBlur((lab > 0).astype(np.uint8) * 255, (5, 5), 1)
    for name, arr in smoothed.items():
        iio.imwrite(tmp_path / name, arr)
        with pytest.raises(DevolensError, match=r"thin edge fragments .*smoothed \(anti-aliased\).*fake nucleus.*"
                                                r"PNG or TIFF.*nearest-neighbour") as err:
            read_mask(tmp_path / name)
        assert name in str(err.value)
    assert "colours in this mask" in str(pytest.raises(DevolensError, read_mask, tmp_path / "overlay.png").value)


def test_paletted_outline_and_point_masks_are_not_taken_for_smoothed(tmp_path):
    from PIL import Image

    _, lab = colour_nuclei(n=200, size=512)
    pal = Image.fromarray((lab % 250).astype(np.uint8), mode="L").convert("P")
    pal.putpalette(np.random.default_rng(0).integers(0, 256, 768).astype(np.uint8).tolist())
    pal.save(tmp_path / "pal.png")
    kinds: list[str] = []
    assert len(np.unique(read_mask(tmp_path / "pal.png", kinds))) == lab.max() + 1 and kinds == []  # by its indices
    from skimage.segmentation import find_boundaries

    rings = np.where(find_boundaries(lab, mode="inner"), lab, 0).astype(np.uint16)  # outlines: no label has an inside
    tifffile.imwrite(tmp_path / "rings.tif", rings)
    assert read_mask(tmp_path / "rings.tif").max() == lab.max()
    dots = np.zeros((64, 64), np.uint16)  # point annotations: every label a single pixel
    dots[8::16, 8::16] = np.arange(1, 17).reshape(4, 4)
    assert edge_fragments(dots) == (16, 16)
    tifffile.imwrite(tmp_path / "dots.tif", dots)
    assert read_mask(tmp_path / "dots.tif").max() == 16


def test_dense_small_partly_hidden_nuclei_are_not_taken_for_smoothed(tmp_path):
    from skimage.draw import disk

    rng = np.random.default_rng(0)  # nuclei drawn over each other (a projection), then seen at a quarter the size
    lab = np.zeros((384, 384), np.uint16)
    for k in range(1, 1201):
        yy, xx = disk(tuple(rng.uniform(8, 376, 2)), rng.uniform(5, 9), shape=lab.shape)
        lab[yy, xx] = k
    small = lab[2::4, 2::4]  # nuclei of 3-4 px, many of them slivers without an inside
    thin, n = edge_fragments(small)
    assert 0.55 < thin / n < 0.7  # more than half: was refused as smoothed
    tifffile.imwrite(tmp_path / "dense.tif", small)
    assert np.array_equal(read_mask(tmp_path / "dense.tif"), small)


def test_colour_masks_are_numbered_by_colour_as_before(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 4, (40, 50, 3)).astype(np.uint8) * 60
    rgb = np.kron(rgb, np.ones((4, 4, 1), np.uint8))  # blocks with an inside
    iio.imwrite(tmp_path / "c.png", rgb)
    colours, inverse = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)  # the former reading
    ids = np.arange(1, len(colours) + 1)
    ids[(colours == 0).all(axis=1)] = 0
    assert np.array_equal(read_mask(tmp_path / "c.png"), ids[inverse.ravel()].reshape(rgb.shape[:2]))


# ----------------------------------------------------------------------------- every mask checked up front
def test_every_mask_is_checked_before_training(tmp_path):
    data = make_pairs(tmp_path / "d", groups=3, per_group=3, size=48)
    last = sorted((data / "masks").iterdir())[-1]
    tifffile.imwrite(last, np.zeros((48, 48), np.uint16))
    notes = build_data(load_recipe(quick()), data).notes
    assert f"1 of the 9 masks holds no object (all 0, e.g. {last.name})" in notes
    tifffile.imwrite(last, np.zeros((40, 48), np.uint16))
    with pytest.raises(DevolensError, match=r"image and mask differ in size \(48x48 and 48x40 pixels.*emb2_t002"):
        build_data(load_recipe(quick()), data)
    rgb, _ = colour_nuclei(n=6, size=48, seed=2)
    import cv2

    iio.imwrite(last.with_suffix(".png"), cv2.GaussianBlur(rgb, (3, 3), 1))
    last.unlink()
    with pytest.raises(DevolensError, match=r"emb2_t002_labels.png.*smoothed"):
        build_data(load_recipe(quick()), data)
    run = tmp_path / "run"
    with pytest.raises(DevolensError, match="smoothed"):
        train(quick(), data, run)
    assert not run.exists()


def test_checking_masks_stops_after_its_time_and_says_so(tmp_path):
    data = make_pairs(tmp_path / "d", groups=2, per_group=3, size=32)
    df = index_dataset(data)
    assert check_masks(df, seconds=0.0) == ["checked the first 1 of the 6 masks before training (0 s); the others "
                                            "are read in the first epoch"]
    assert check_masks(df) == [] and check_masks(df, limit=2) == []


def test_no_sample_left_is_one_line_and_turned_images_have_their_shown_size(tmp_path, monkeypatch):
    from PIL import Image

    from devolens.data.datasets import image_shape, read_image

    empty = pd.DataFrame({"sample": [], "image": [], "labels": [], "group": []})  # e.g. every frame an artifact
    monkeypatch.setattr("devolens.train.trainer.index_dataset", lambda root: empty)
    with pytest.raises(DevolensError, match="need at least 1 sample to train and validate, found 0"):
        build_data(load_recipe(quick()), tmp_path)
    im = Image.fromarray(np.zeros((30, 50), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # shown turned a quarter: 30 wide, 50 high
    im.save(tmp_path / "turned.jpg", exif=exif)
    assert image_shape(tmp_path / "turned.jpg") == read_image(tmp_path / "turned.jpg").shape[:2] == (50, 30)


def test_grey_label_images_of_tiny_nuclei_are_not_taken_for_smoothed(tmp_path):
    # a true label image at low magnification: most nuclei 2 px wide (no inside pixel), a few larger ones
    lab = np.zeros((120, 120), np.uint16)
    k = 0
    for y in range(4, 116, 4):
        for x in range(4, 60, 4):
            k += 1
            lab[y : y + 2, x : x + 2] = k
    for y in range(10, 110, 20):
        k += 1
        lab[y : y + 8, 80 : 88] = k
    assert edge_fragments(lab)[0] > 0.9 * edge_fragments(lab)[1]  # the colour rule would call it smoothed
    tifffile.imwrite(tmp_path / "tiny.tif", lab)
    assert np.array_equal(read_mask(tmp_path / "tiny.tif"), lab)


def test_palette_tiff_masks_are_read_by_their_indices(tmp_path):
    # a label image saved with a random (Glasbey-like) colour table, as Fiji/ilastik can save them
    lab = np.zeros((64, 64), np.uint8)
    lab[5:20, 5:20], lab[30:50, 30:50], lab[40:60, 5:15] = 1, 2, 3
    rng = np.random.default_rng(0)
    cmap = rng.integers(0, 65536, (3, 256), dtype=np.uint16)
    cmap[:, 0] = 0
    tifffile.imwrite(tmp_path / "m.tif", lab, photometric="palette", colormap=cmap)
    assert np.array_equal(read_mask(tmp_path / "m.tif"), lab)
    assert np.array_equal(read_mask(tmp_path / "m.tif", classes=True), lab)  # class ids, not a colour mask


def test_a_mask_of_three_or_four_planes_is_refused(tmp_path):
    """A label z-stack of 3 or 4 planes saved by tifffile's default (planar RGB) was read as a colour mask, each
    combination of plane values one 'object' (8 nuclei became 53): refused like a stack of 5; a colour label image
    saved as RGB (samples last) is still read by its colours."""
    import warnings

    lab = np.zeros((64, 64), np.uint16)
    lab[10:20, 10:20], lab[30:40, 30:44] = 1, 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tifffile: the planar-RGB default for a (3, H, W) array is deprecated
        for n in (3, 4):
            tifffile.imwrite(tmp_path / f"z{n}.tif", np.stack([np.roll(lab, 5 * k, 0) for k in range(n)]))
            with pytest.raises(DevolensError, match=f"a mask of {n} planes"):
                read_mask(tmp_path / f"z{n}.tif")
    colours = np.zeros((64, 64, 3), np.uint8)
    colours[lab == 1], colours[lab == 2] = (200, 20, 90), (10, 180, 60)
    tifffile.imwrite(tmp_path / "colour.tif", colours, photometric="rgb")
    assert len(np.unique(read_mask(tmp_path / "colour.tif"))) == 3
