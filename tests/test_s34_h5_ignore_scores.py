"""Scores of a tile store with an 'ignore' value (`devolens tile --ignore`): class-id targets leave the ignored
pixels out of the object scores too (validation, `devolens evaluate`), and `devolens evaluate` reads the store's
value (H5TileDataset)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from devolens.data.datasets import IGNORE_INDEX


class _Echo(torch.nn.Module):
    """Logits from the input: its channels are the classes' scores (x 20)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x * 20 + self.w


def _item(pred: np.ndarray, labels: np.ndarray, ignore: int) -> dict:
    x = np.eye(3, dtype=np.float32)[pred].transpose(2, 0, 1)
    tgt = labels.astype(np.int64)
    tgt[labels == ignore] = IGNORE_INDEX
    return {"image": torch.from_numpy(x), "target": torch.from_numpy(tgt),
            "labels": torch.from_numpy(labels.astype(np.int32)), "index": torch.tensor(0),
            "ignore": torch.tensor(ignore)}


def test_class_objects_on_ignored_pixels_are_no_false_detections():
    """Class-id targets: a predicted object lying on the 'ignore' region is neither found nor false, in val_f1,
    the per-class F1 and the object counts."""
    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import evaluate_model

    labels = np.zeros((32, 32), np.uint8)
    labels[4:10, 4:10] = 1
    labels[20:26, 4:10] = 2
    labels[:, 16:] = 255
    truth = np.where(labels == 255, 0, labels)
    junk = truth.copy()
    junk[4:10, 20:26], junk[20:26, 22:28] = 2, 1  # objects on the ignored half only
    rec = resolved(load_recipe({"name": "t", "task": "segmentation",
                                "data": {"target": "classes", "classes": 3, "channels": 3},
                                "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3}}))
    a = evaluate_model(_Echo(), [_item(truth, labels, 255)], rec)["metrics"]
    b = evaluate_model(_Echo(), [_item(junk, labels, 255)], rec)["metrics"]
    assert a["val_f1"] == 1.0 and a["val_count_mae"] == 0
    for k in ("val_f1", "val_precision", "val_f1_1", "val_f1_2", "val_count_mae", "val_iou", "val_ap"):
        assert b[k] == pytest.approx(a[k]), k


def test_evaluate_reads_a_stores_ignore_value(tmp_path):
    """H5TileDataset (what `devolens evaluate` reads a store with) gives the store's 'ignore' value and its
    pixels the target IGNORE_INDEX; a store without one as before."""
    from devolens.data.datasets import H5TileDataset
    from devolens.data.tiling import tile_to_h5
    from devolens.render.wells import simulate_well

    w = simulate_well(seed=4, size=(128, 128), density=1500, dead_fraction=0.5)
    lab = w.labels.copy()
    lab[:, 96:] = 255
    tifffile.imwrite(tmp_path / "w.tif", w.image)
    tifffile.imwrite(tmp_path / "l.tif", lab)
    tifffile.imwrite(tmp_path / "l0.tif", w.labels)
    tile_to_h5([tmp_path / "w.tif"], tmp_path / "t.h5", [tmp_path / "l.tif"], tile=64, keep="all", ignore=255)
    tile_to_h5([tmp_path / "w.tif"], tmp_path / "p.h5", [tmp_path / "l0.tif"], tile=64, keep="all")
    ds = H5TileDataset(tmp_path / "t.h5", target="classes", normalize="log")
    items = [ds[i] for i in range(len(ds))]
    assert all(int(it["ignore"]) == 255 for it in items)
    assert any((it["target"] == IGNORE_INDEX).any() for it in items)
    for it in items:
        assert torch.equal(it["target"] == IGNORE_INDEX, it["labels"] == 255)
    plain = H5TileDataset(tmp_path / "p.h5", target="classes", normalize="log")
    assert int(plain[0]["ignore"]) == 0 and not (plain[0]["target"] == IGNORE_INDEX).any()
