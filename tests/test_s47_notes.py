"""s47: notes of folder listings and of training's split and pruning.

- a folder's images named *_labels are skipped as label images with a note naming them, and the overlay note
  counts the images read as frames, not "all its images", where the folder holds others;
- one embryo's time points are blocked from its first one (times 1-10 were a block of 9 and one of 1), and the
  split's explanation comes before its fraction note;
- --prune-top that leaves few training samples says so, and one that leaves none is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _train_data import disc_frame, make_pairs, tiny_recipe
from devolens.io.frames import left_out_note


def png(path: Path) -> Path:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.full((16, 16), 40, np.uint8))
    return path


def test_label_images_skipped_are_named(tmp_path):
    for name in ("t1.png", "emb_labels.png", "x_labels_labels.png"):
        png(tmp_path / "f" / name)
    note = left_out_note(tmp_path / "f")
    assert note is not None
    assert "2 images named *_labels skipped as label images" in note
    assert "emb_labels.png, x_labels_labels.png" in note


def test_overlay_note_counts_the_images_read(tmp_path):
    for name in ("t1_overlay.png", "emb_labels.png", "x_labels_labels.png"):
        png(tmp_path / "f" / name)
    note = left_out_note(tmp_path / "f")
    assert "all its images" not in note
    assert "the only image read as a frame, of 3 in the folder, named *_overlay" in note
    # a folder of overlays alone keeps its words
    png(tmp_path / "g" / "a_overlay.png")
    png(tmp_path / "g" / "b_overlay.png")
    assert "all its images named *_overlay" in left_out_note(tmp_path / "g")


def render_like(root: Path, times) -> Path:
    """A render output's layout: frames/tNNN.png, labels/tNNN_labels.tif, frames.csv of one embryo."""
    import imageio.v3 as iio
    import tifffile

    rng = np.random.default_rng(0)
    (root / "frames").mkdir(parents=True)
    (root / "labels").mkdir()
    rows = []
    for t in times:
        img, lab = disc_frame(rng, 32)
        iio.imwrite(root / "frames" / f"t{t:03d}.png", img)
        tifffile.imwrite(root / "labels" / f"t{t:03d}_labels.tif", lab)
        rows.append({"file": f"frames/t{t:03d}.png", "time": t, "embryo": "sim1"})
    pd.DataFrame(rows).to_csv(root / "frames.csv", index=False)
    return root


def quick(**data) -> dict:
    return tiny_recipe(data={"target": "semantic", "channels": 1, "size": [32, 32], **data},
                       train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0, "max_batches": 1})


def test_one_embryo_blocks_start_at_its_first_time_point(tmp_path):
    from devolens.train.trainer import train

    data = render_like(tmp_path / "r", range(1, 11))
    said: list[str] = []
    train(quick(val_fraction=0.25), data, tmp_path / "run", info=said.append)
    split = pd.read_csv(tmp_path / "run" / "split.csv")
    n_val = int((split["side"] == "val").sum())
    assert 2 <= n_val <= 4, split  # was 9 (or 1): times 1-9 one block, 10 another
    assert split.groupby("group").size().nunique() == 1  # blocks of equal size
    explain = next(i for i, s in enumerate(said) if "split by blocks of time points" in s)
    fraction = [i for i, s in enumerate(said) if "of the samples validate" in s]
    assert all(explain < i for i in fraction)


def test_fraction_note_comes_after_the_split_note(tmp_path):
    from devolens.train.trainer import train

    data = render_like(tmp_path / "r", range(1, 21))  # two blocks of 10: half validates
    said: list[str] = []
    train(quick(val_fraction=0.2), data, tmp_path / "run", info=said.append)
    explain = next(i for i, s in enumerate(said) if "split by blocks of time points" in s)
    fraction = next(i for i, s in enumerate(said) if "of the samples validate" in s)
    assert explain < fraction


def test_pruning_that_keeps_few_samples_is_noted(tmp_path):
    from devolens.train.trainer import _few_kept, train

    data = make_pairs(tmp_path / "d", groups=5, per_group=1, size=32)  # 4 train, 1 validates
    rec = quick(val_fraction=0.2)
    rec["train"].update(epochs=2, prune_after=1)
    said: list[str] = []
    train(rec, data, tmp_path / "run", prune_top=80, info=said.append)
    assert any("pruning 80 % keeps 1 of 4 training samples" in s for s in said), said
    import json

    notes = json.loads((tmp_path / "run" / "run.json").read_text())["notes"]
    assert any(n.startswith("pruning 80 % keeps 1 of 4") for n in notes)
    assert _few_kept(10, 100) is None and _few_kept(10, 4) is None  # 90 of 100 kept; 10 % of 4 drops none
    assert "keeps 40 of 100" in _few_kept(60, 100)  # under half


def test_pruning_every_sample_is_refused(tmp_path):
    from devolens.errors import DevolensError
    from devolens.train.trainer import train

    data = make_pairs(tmp_path / "d", groups=3, per_group=2, size=32)
    with pytest.raises(DevolensError, match=r"^prune_top must be in \[0, 100\)"):
        train(quick(val_fraction=0.34), data, tmp_path / "run", prune_top=100)
    assert not (tmp_path / "run").exists()
