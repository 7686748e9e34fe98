"""A lab's own labelled nucleus images (session 37 walkthrough): masks beside their images are no frames to segment,
mask suffixes in any case, a note on nuclei too small at data.scale, and split leaks (a copy on both sides, one
movie's frames named by their time point alone)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _discs(seed: int, diameter: float, side: int = 96, n: int = 12) -> np.ndarray:
    """Instance labels of ``n`` separate discs of ``diameter`` px on a ``side`` square."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    lab = np.zeros((side, side), np.uint16)
    r = diameter / 2
    placed = 0
    for _ in range(500):
        if placed == n:
            break
        cy, cx = rng.uniform(r + 1, side - r - 1, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        grown = (yy - cy) ** 2 + (xx - cx) ** 2 <= (r + 2) ** 2
        if (lab[grown] != 0).any():
            continue
        placed += 1
        lab[disc] = placed
    return lab


def _pair(folder: Path, stem: str, seed: int, diameter: float = 10.0, mask_suffix: str = "_masks",
          side: int = 96) -> None:
    lab = _discs(seed, diameter, side)
    img = (np.where(lab > 0, 180, 20) + np.random.default_rng(seed).integers(0, 10, lab.shape)).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / f"{stem}.tif", img)
    tifffile.imwrite(folder / f"{stem}{mask_suffix}.tif", lab)


def _recipe():
    from devolens.train.recipe import load_recipe

    return load_recipe(ROOT / "recipes" / "finetune_own_nuclei.yaml")


# 1. segment leaves out the masks of a folder's images -------------------------------------------------------------


def test_segment_input_leaves_out_masks_beside_their_images(tmp_path):
    from devolens.io.frames import folder_files, iter_path_frames, left_out_note

    for name in ("img_05.tif", "img_05_masks.tif", "x07.png", "x07_cp_masks.png", "y08.png", "y08_Masks.png",
                 "y-label.png", "y-label_masks.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / name)
    _, names, total = iter_path_frames(tmp_path)
    assert names == ["img_05.tif", "x07.png", "y08.png", "y-label.png"] and total == 4
    assert [p.name for p in folder_files(tmp_path)] == names
    note = left_out_note(tmp_path)
    assert note.startswith("note: ")
    assert "4 masks (img_05_masks.tif, x07_cp_masks.png, y08_Masks.png and 1 more)" in note


def test_masks_without_their_images_are_read_as_images(tmp_path):
    from devolens.io.frames import folder_files, left_out_note

    for name in ("a_masks.tif", "b_masks.tif", "c_labels.tif"):
        tifffile.imwrite(tmp_path / name, np.zeros((8, 8), np.uint16))
    assert [p.name for p in folder_files(tmp_path)] == ["a_masks.tif", "b_masks.tif"]  # *_labels: label images
    # (s47) the label image skipped is named, the masks read as images are not
    assert left_out_note(tmp_path) == ("note: 1 image named *_labels skipped as label images (a render's ground "
                                       "truth, a segmentation's results), not frames: c_labels.tif; rename it, if "
                                       "it is an image to analyse")


# 3. mask suffixes in any case ---------------------------------------------------------------------------------------


def test_mask_suffixes_pair_in_any_case(tmp_path):
    from devolens.data.datasets import index_dataset

    _pair(tmp_path / "side", "img_05", 1, mask_suffix="_Masks")
    _pair(tmp_path / "side", "img_06", 2, mask_suffix="_MASK")
    df = index_dataset(tmp_path / "side")  # cellpose's layout, told by the masks' names
    assert sorted(Path(p).name for p in df["labels"]) == ["img_05_Masks.tif", "img_06_MASK.tif"]
    assert not df.attrs["unmatched"]
    for stem, suffix in (("a", "_Labels"), ("b_IMG", "_masks")):
        _pair(tmp_path / "two" / "images", stem, 3)
        (tmp_path / "two" / "masks").mkdir(exist_ok=True)
        shutil.move(tmp_path / "two" / "images" / f"{stem}_masks.tif",
                    tmp_path / "two" / "masks" / f"{stem.split('_')[0]}{suffix}.tif")
    df = index_dataset(tmp_path / "two")
    assert sorted(Path(p).name for p in df["labels"]) == ["a_Labels.tif", "b_masks.tif"]


# 2. nuclei too small (or large) at data.scale -----------------------------------------------------------------------


def test_size_note_says_the_scale_that_brings_nuclei_in_range(tmp_path):
    from devolens.data.datasets import object_diameter, size_notes

    for k in range(3):
        _pair(tmp_path, f"img_{k}", k, diameter=10.0)
    masks = sorted(str(p) for p in tmp_path.glob("*_masks.tif"))
    d, objects, n = object_diameter(masks)
    assert 9.0 < d < 11.0 and objects == 36 and n == 3
    notes = size_notes(masks, 0.5, "nuclei")
    assert len(notes) == 1 and "below the 8-25 px" in notes[0] and "data.scale: 1.4" in notes[0]
    assert size_notes(masks, 1.0, "nuclei") == []  # ~10 px: within range
    assert size_notes(masks, 0.5, None) == [] and size_notes(masks, 0.5, "nuclei", size=[64, 64]) == []
    big = size_notes(masks, 3.0, "nuclei")
    assert len(big) == 1 and "above the 8-25 px" in big[0]


def test_the_range_is_the_one_the_card_and_the_recipe_state():
    from devolens.data.datasets import OBJECT_DIAMETER_PX

    low, high = OBJECT_DIAMETER_PX["nuclei"]
    said = f"{low:g}-{high:g} px"
    card = json.loads((ROOT / "src/devolens/models/zoo/nuclei/card.json").read_text(encoding="utf-8"))
    assert said in card["input"]["note"]
    assert said in (ROOT / "recipes" / "finetune_own_nuclei.yaml").read_text(encoding="utf-8")


def test_build_data_notes_small_nuclei_at_the_recipe_scale(tmp_path):
    from devolens.train.trainer import build_data

    for k in range(3):
        _pair(tmp_path, f"img_{k}", k, diameter=10.0, side=300)
    notes = build_data(_recipe(), tmp_path).notes  # the recipe's data.scale 0.5: ~5 px
    assert any("the nuclei in the masks are a median" in n and "data.scale: 1.4" in n for n in notes)


# 4. split leaks -----------------------------------------------------------------------------------------------------


def test_a_copy_on_both_sides_of_the_split_is_noted(tmp_path):
    from devolens.train.trainer import build_data

    for k in range(3):
        _pair(tmp_path / "train", f"img_{k}", k, diameter=20.0, side=64)
    _pair(tmp_path / "test", "x07", 7, diameter=20.0, side=64)
    shutil.copy(tmp_path / "train" / "img_1.tif", tmp_path / "test" / "dup_01.tif")
    shutil.copy(tmp_path / "train" / "img_1_masks.tif", tmp_path / "test" / "dup_01_masks.tif")
    bundle = build_data(_recipe(), tmp_path)
    leak = [n for n in bundle.notes if "byte for byte" in n]
    assert len(leak) == 1 and "test/dup_01.tif = train/img_1.tif" in leak[0]
    (tmp_path / "test" / "dup_01.tif").unlink()
    (tmp_path / "test" / "dup_01_masks.tif").unlink()
    assert not [n for n in build_data(_recipe(), tmp_path).notes if "byte for byte" in n]


def test_split_copies_within_regions_of_one_image(tmp_path):
    import pandas as pd

    from devolens.data.datasets import split_copies

    _pair(tmp_path, "a", 1)
    shutil.copy(tmp_path / "a.tif", tmp_path / "b.tif")
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    # the same region of every image validates: a copy's other regions are no leak
    train = pd.DataFrame({"image": [a, b], "region": ["r0c0", "r0c0"]})
    val = pd.DataFrame({"image": [a, b], "region": ["r0c1", "r0c1"]})
    assert split_copies(train, val) == []
    val = pd.DataFrame({"image": [b], "region": ["r0c0"]})
    assert len(split_copies(train.iloc[:1], val)) == 1


def test_frames_named_by_time_point_alone_are_one_movie(tmp_path):
    from devolens.data.datasets import index_dataset

    for t in range(1, 7):
        _pair(tmp_path / "images", f"t{t:03d}", t, side=32)
        (tmp_path / "masks").mkdir(exist_ok=True)
        shutil.move(tmp_path / "images" / f"t{t:03d}_masks.tif", tmp_path / "masks" / f"t{t:03d}_masks.tif")
    _pair(tmp_path / "images", "emb_t001", 9, side=32)
    shutil.move(tmp_path / "images" / "emb_t001_masks.tif", tmp_path / "masks" / "emb_t001_masks.tif")
    df = index_dataset(tmp_path)
    groups = dict(zip(df["sample"], df["group"]))
    assert len({groups[f"images/t{t:03d}.tif"] for t in range(1, 7)}) == 1
    assert groups["images/emb_t001.tif"] == "emb" and groups["images/t001.tif"] != "emb"
