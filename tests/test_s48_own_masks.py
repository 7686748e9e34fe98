"""Training on one's own masks (session 48): a background other than 0 (ilastik's Simple Segmentation), label values
reused across nuclei in any type, images annotated only in cellpose ``_seg.npy`` files beside masks, and StarDist's
``train/`` + ``test/`` layout."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

from devolens.data.datasets import (background_label, index_dataset, label_repeats, object_diameter,
                                    repeated_labels, seg_npy_hint, size_notes)
from devolens.errors import DevolensError
from devolens.train.evaluate import data_notes
from devolens.train.trainer import check_masks


def _labels(seed: int, size: int = 96, n: int = 12, r: int = 5) -> np.ndarray:
    """Round nuclei labelled 1..n, apart from each other and from the edges."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((size, size), np.uint16)
    yy, xx = np.mgrid[:size, :size]
    k = 0
    for _ in range(n * 20):
        cy, cx = rng.uniform(r + 2, size - r - 2, 2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        if lab[disk].any():
            continue
        k += 1
        lab[disk] = k
        if k == n:
            break
    return lab


def _folder(root, masks, name="d"):
    data = root / name
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i, m in enumerate(masks):
        tifffile.imwrite(data / "images" / f"a{i}.tif", (np.asarray(m) > 0).astype(np.uint8) * 200)
        tifffile.imwrite(data / "masks" / f"a{i}.tif", m)
    return data


def test_ilastik_background_refused(tmp_path):
    masks = [np.where(_labels(i) > 0, 2, 1).astype(np.uint8) for i in range(4)]
    assert background_label(masks[0]) == 1
    df = index_dataset(_folder(tmp_path, masks))
    with pytest.raises(DevolensError, match=r"label 1 covers most of a0\.tif and touches every edge.*ilastik"):
        check_masks(df)
    assert size_notes(df["labels"], 1.0, "nuclei") == []  # no data.scale advice from the 'background nucleus'
    assert object_diameter(df["labels"])[0] is None


def test_big_nucleus_in_a_crop_passes(tmp_path):
    big = np.ones((40, 40), np.uint16)  # one nucleus filling its crop, touching every edge
    assert background_label(big) == 1
    masks = [big] + [_labels(i) for i in range(3)]  # a minority: not refused
    df = index_dataset(_folder(tmp_path, masks))
    check_masks(df)
    assert background_label(_labels(0)) == 0


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.uint8])
def test_cycled_labels_noted_in_any_type(tmp_path, dtype):
    lab = _labels(1, size=128, n=20)
    cycled = np.where(lab > 0, (lab.astype(np.int64) - 1) % 3 + 1, 0).astype(dtype)
    assert repeated_labels(cycled) == 3
    assert label_repeats(cycled) == (3, 3)
    assert repeated_labels(lab.astype(dtype)) == 0  # one value per nucleus: nothing repeats
    df = index_dataset(_folder(tmp_path, [cycled] * 3))
    notes = check_masks(df)
    assert any("label values repeat in separate nuclei: 3 of 3 labels in a0.tif" in n and "one value per nucleus" in n
               for n in notes), notes
    assert size_notes(df["labels"], 1.0, "nuclei") == []  # sizes of several nuclei together: no advice


def test_wrapped_8bit_note_kept(tmp_path):
    lab = np.zeros((160, 160), np.int64)
    for k in range(18 * 18):  # 324 square nuclei, labelled 1..324 row by row
        y, x = divmod(k, 18)
        lab[y * 9 + 2:y * 9 + 6, x * 9 + 2:x * 9 + 6] = k + 1
    wrapped = (lab % 256).astype(np.uint8)  # 256 becomes 0, 257..324 repeat 1..68 far below
    assert repeated_labels(wrapped) == 68
    df = index_dataset(_folder(tmp_path, [wrapped] * 2))
    assert any("save the labels as 16-bit TIFF" in n for n in check_masks(df))


def test_seg_npy_beside_unmatched_images_said(tmp_path):
    data = tmp_path / "cp"
    data.mkdir()
    for i in range(4):
        lab = _labels(i)
        tifffile.imwrite(data / f"img_{i:03d}.tif", (lab > 0).astype(np.uint8) * 200)
        if i < 2:
            tifffile.imwrite(data / f"img_{i:03d}_masks.tif", lab)
        else:
            np.save(data / f"img_{i:03d}_seg.npy", np.zeros(3))  # stand-in: never loaded
    df = index_dataset(data)
    assert df.attrs["unmatched_seg"] == ["img_002.tif", "img_003.tif"]
    hint = seg_npy_hint(df.attrs["unmatched_seg"])
    assert "img_002.tif, img_003.tif" in hint and "--save_png" in hint
    assert any("without a partner" in n and "_seg.npy" in n and "--save_png" in n for n in data_notes(df))


def test_stardist_layout_names_its_data_folders(tmp_path):
    root = tmp_path / "G"
    for side in ("train", "test"):
        _folder(root, [_labels(0)], side)
    with pytest.raises(DevolensError, match=r"sub-folders test/, train/ are data folders.*data='\S*G/train'"
                                            r".*evaluate RUN --data \S*G/test"):
        index_dataset(root)


def test_unknown_sub_folders_named(tmp_path):
    root = tmp_path / "R"
    (root / "raw").mkdir(parents=True)
    (root / "gt").mkdir()
    with pytest.raises(DevolensError, match=r"sub-folders gt/, raw/, but no images folder named images or frames or "
                                            r"imgs and no masks folder named masks or labels or label"):
        index_dataset(root)
    (root / "raw").rename(root / "Images")  # images/ + annotations/: the masks' folder is the one to rename
    with pytest.raises(DevolensError, match=r"sub-folders Images/, gt/, but no masks folder named masks or labels or "
                                            r"label: rename it"):
        index_dataset(root)
