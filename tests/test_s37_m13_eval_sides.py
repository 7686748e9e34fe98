"""Mends of the thirty-seventh session (M13) to how `devolens evaluate` finds the scored images a run trained or
validated on (:func:`devolens.train.evaluate.run_sides`): it digested every image of the run's data folder before the
few it scored (seconds to minutes before any scoring); images moved out of that folder after training (a test set
carved out later) were reported as never seen; weights given as an exported model folder got no word; and the tile
store's fingerprint formula was copied from the trainer instead of shared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from devolens.data.datasets import index_dataset


def _pair(folder: Path, name: str, rng, shape=(32, 32)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / f"{name}.tif", rng.integers(0, 255, shape, dtype=np.uint8))
    mask = np.zeros(shape, np.uint16)
    mask[2:9, 2:9] = 1
    tifffile.imwrite(folder / f"{name}_masks.tif", mask)


def _fake_run(root: Path, data: Path, sides: dict[str, str]) -> Path:
    """A run folder with the run.json and split.csv run_sides reads: trained on ``data``, split as ``sides``."""
    run = root / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": {"path": str(data)}}))
    pd.DataFrame(list(sides.items()), columns=["sample", "side"]).to_csv(run / "split.csv", index=False)
    return run


@pytest.fixture
def trained(tmp_path):
    """A data folder of 12 images (cellpose layout; 10 of one size, 2 of another) and a run split 8 train / 4 val."""
    rng = np.random.default_rng(3)
    data = tmp_path / "train"
    for i in range(12):
        _pair(data, f"im{i:02d}", rng, (32, 32) if i < 10 else (40, 40))
    sides = {f"im{i:02d}.tif": "val" if i % 3 == 0 else "train" for i in range(12)}
    return _fake_run(tmp_path, data, sides), data, sides


@pytest.fixture
def digests(monkeypatch):
    """The files :func:`devolens.train.trainer.file_digest` is asked to digest (resolved paths), in order."""
    import devolens.train.trainer as T

    asked: list[Path] = []
    real = T.file_digest

    def counted(path, *args, **kwargs):
        asked.append(Path(path).resolve())
        return real(path, *args, **kwargs)

    monkeypatch.setattr(T, "file_digest", counted)
    return asked


# ---------------------------------------------------------------------------- cost
def test_only_training_images_like_a_scored_one_are_digested(trained, tmp_path, digests):
    """Scoring 3 images against a run of 12 digested all 12 training images first (3000 images: 3-4 s before any
    scoring). Now the scored images are digested, and a training image only where a scored one has its size and the
    same bytes at its middle: here the two copies, which are still found (none of the 40x40 images is read)."""
    from devolens.train.evaluate import run_sides

    run, data, sides = trained
    rng = np.random.default_rng(9)
    scored = tmp_path / "scored"
    _pair(scored, "new", rng)  # another image of the training images' size
    shutil.copyfile(data / "im01.tif", scored / "copy_a.tif")  # a training image
    shutil.copyfile(data / "im01_masks.tif", scored / "copy_a_masks.tif")
    shutil.copyfile(data / "im09.tif", scored / "copy_b.tif")  # a validation image, renamed
    shutil.copyfile(data / "im09_masks.tif", scored / "copy_b_masks.tif")
    df = index_dataset(scored)
    got, how, _ = run_sides(run, df)
    assert dict(zip(df["sample"], got)) == {"copy_a.tif": "train", "copy_b.tif": "val", "new.tif": "none"}
    assert how == "image contents"
    touched = {p for p in digests if p.parent == data.resolve()}
    assert touched == {(data / "im01.tif").resolve(), (data / "im09.tif").resolve()}


def test_scoring_the_runs_own_folder_digests_nothing(trained, digests):
    """`evaluate RUN --data` the very folder the run trained on digested all its images twice over; now its sample
    names are its split.csv's: nothing is read, and the note says how they matched."""
    from devolens.train.evaluate import run_sides, seen_note

    run, data, sides = trained
    df = index_dataset(data)
    got, how, _ = run_sides(run, df)
    assert dict(zip(df["sample"], got)) == sides
    assert how == "names in its data folder" and digests == []
    said = seen_note({"train": 8, "val": 4, "of": 12, "by": how, "run": str(run)})
    assert "(its split.csv, the very data folder it trained on, matched by name)" in said


# ---------------------------------------------------------------------------- moved out after training
def test_images_moved_out_of_the_training_folder_are_matched_by_name(trained, tmp_path):
    """A test set carved out after training (a training and a validation image moved, with their masks, from the
    run's data folder into test/) was reported as never seen: only the folder's current images were compared. The
    split.csv samples the folder no longer holds now match by name, and the note says so; an image under the name of
    a sample still in the folder is compared by its contents (here another image: not the run's)."""
    from devolens.train.evaluate import run_sides, seen_note

    run, data, sides = trained
    test = tmp_path / "test"
    test.mkdir()
    for name in ("im00", "im01"):  # val, train
        for suffix in ("", "_masks"):
            shutil.move(data / f"{name}{suffix}.tif", test / f"{name}{suffix}.tif")
    _pair(test, "im02", np.random.default_rng(11))  # im02.tif is still in the training folder: this is another image
    df = index_dataset(test)
    got, how, _ = run_sides(run, df)
    assert dict(zip(df["sample"], got)) == {"im00.tif": "val", "im01.tif": "train", "im02.tif": "none"}
    assert how == "image contents and names"
    said = seen_note({"train": 1, "val": 1, "of": 3, "by": how, "run": str(run)})
    assert "matched by their contents, and by name where its data folder no longer holds the image" in said


# ---------------------------------------------------------------------------- exported model as --weights
def test_weights_of_an_exported_run_are_that_runs(tmp_path, capsys):
    """`evaluate RUN --data A --weights EXPORT` (a `train --export` / `models export` folder) said nothing of the
    images its run trained on; the card's trained.run names the run, whose split.csv is read now."""
    from _train_data import make_pairs, tiny_recipe
    from devolens.cli import main
    from devolens.models.export import export_run
    from devolens.train.evaluate import _weights_run
    from devolens.train.trainer import train

    data = make_pairs(tmp_path / "A", groups=2, per_group=2, size=32)
    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.5, "normalize": "percentile"},
                      loss={"name": "ce_dice"},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1, "monitor": "val_f1"})
    run = tmp_path / "run"
    train(rec, data, run, device="cpu")
    export_run(run, tmp_path / "exp")
    assert _weights_run(tmp_path / "other", tmp_path / "exp") == run.resolve()
    out = tmp_path / "ev.json"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data), "--weights", str(tmp_path / "exp"), "--json", str(out),
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err.replace("\n", " ")
    seen = json.loads(out.read_text())["in_run_split"]
    assert seen is not None and (seen["train"], seen["val"], seen["of"]) == (2, 2, 4)
    assert seen["run"] == str(run.resolve()) and "not a held-out measure" in err
    # the run gone (or its split.csv): no run to say it of
    (run / "split.csv").unlink()
    assert _weights_run(tmp_path / "other", tmp_path / "exp") is None


# ---------------------------------------------------------------------------- one store fingerprint
def test_a_tile_stores_fingerprint_has_one_formula(tmp_path, monkeypatch):
    """evaluate recognised a run's tile store by a copy of the trainer's fingerprint formula: a change to one would
    silently miss every store. Both now call trainer.store_fingerprint."""
    import h5py

    import devolens.train.trainer as T
    from _train_data import tiny_recipe
    from devolens.train.evaluate import _store_seen
    from devolens.train.recipe import resolved, validate_recipe

    rng = np.random.default_rng(0)
    store = tmp_path / "tiles.h5"
    with h5py.File(store, "w") as f:
        f["images"] = rng.integers(0, 4000, (8, 1, 32, 32)).astype(np.uint16)
        f["labels"] = (rng.random((8, 32, 32)) > 0.7).astype(np.uint8)
        f["source"] = np.repeat(np.arange(2), 4).astype(np.int32)
    rec = resolved(validate_recipe(tiny_recipe(data={"target": "classes", "classes": 2, "channels": 1,
                                                     "val_fraction": 0.5})))
    assert T.build_data(rec, store).fingerprint == T.store_fingerprint(store, 8)
    monkeypatch.setattr(T, "store_fingerprint", lambda path, n: f"one formula {n}")
    bundle = T.build_data(rec, store)
    assert bundle.fingerprint == "one formula 8"
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": {"path": str(store), "fingerprint": "one formula 8"}}))
    bundle.split.to_csv(run / "split.csv", index=False)
    seen = _store_seen(run, store, 8)
    assert seen is not None and seen["by"] == "store contents" and seen["train"] + seen["val"] == 8
