"""An analyst's walkthrough of training their own nuclei model: tune's --out, resumed studies, train/val
folders, mask names, out of memory, pruning notes, interruptions, logs without a terminal, epoch numbers."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml

from _train_data import disc_frame, make_pairs, tiny_recipe
from devolens.train.recipe import load_recipe


def _tune_recipe(tmp_path: Path) -> Path:
    rec = tiny_recipe(
        train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
        tune={"trials": 1, "epochs": 1, "space": {
            "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "augment.strength": {"type": "float", "low": 0.0, "high": 1.0},
        }},
    )
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(rec))
    return path


def _cli(args, capsys):
    from devolens.cli import main

    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, got.out, " ".join(got.err.split())


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("small"), groups=2, per_group=2, size=32)


def _fake_run(out: Path, epoch: int = 3) -> Path:
    """A folder that looks like a training run with a checkpoint after ``epoch`` epochs."""
    out.mkdir(parents=True)
    (out / "checkpoint.safetensors").write_bytes(b"")
    (out / "checkpoint.json").write_text(json.dumps({"extra": {"epoch": epoch}}))
    (out / "best.json").write_text("{}")
    (out / "run.json").write_text("{}")
    return out


# ---------------------------------------------------------------- 1. tune's --out
def test_tune_refuses_a_training_run_and_a_folder_of_other_things(small, tmp_path, capsys):
    recipe = _tune_recipe(tmp_path)
    run = _fake_run(tmp_path / "run")
    code, _, err = _cli(["tune", recipe, "-d", small, "-o", run], capsys)
    assert code == 2 and "training run" in err and err.count("error:") == 1
    assert (run / "best.json").read_text() == "{}" and not (run / "study.db").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = _cli(["tune", recipe, "-d", small, "-o", other], capsys)
    assert code == 2 and "holds no devolens tuning study" in err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_tune_goes_on_in_its_own_folder(tmp_path):
    from devolens.train.trainer import check_run_folder

    out = tmp_path / "t"
    (out / "trials" / "trial_0000").mkdir(parents=True)
    for name in ("study.db", "study.db-journal", "trials.csv", "best_recipe.yaml", "best.json"):
        (out / name).write_text("")
    check_run_folder(out, tmp_path / "data", inside_data=True, tuning=True)  # an earlier tune's --out: fine


# ---------------------------------------------------------------- 2. resumed studies draw afresh
def test_a_resumed_study_does_not_repeat_its_first_trials(small, tmp_path):
    import optuna

    from devolens.train.tuning import tune

    rec = yaml.safe_load(_tune_recipe(tmp_path).read_text())
    out = tmp_path / "study"
    tune(rec, small, out, trials=1)
    tune(rec, small, out, trials=2)  # "run again to add trials": another process, another draw
    study = optuna.load_study(study_name="test", storage=f"sqlite:///{out / 'study.db'}")
    first, second = (t.params for t in study.trials)
    assert first != second
    # a new study stays reproducible
    tune(rec, small, tmp_path / "again", trials=1)
    again = optuna.load_study(study_name="test", storage=f"sqlite:///{tmp_path / 'again' / 'study.db'}")
    assert again.trials[0].params == first


# ---------------------------------------------------------------- 3. images/train + images/val
def _split_folders(root: Path, names=("train", "val"), sizes=(6, 2)) -> Path:
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    for name, n in zip(names, sizes):
        for sub in ("images", "masks"):
            (root / sub / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, lab = disc_frame(rng, 32)
            iio.imwrite(root / "images" / name / f"img{i:03d}.png", img)
            tifffile.imwrite(root / "masks" / name / f"img{i:03d}_masks.tif", lab)
    return root


@pytest.mark.parametrize("names", [("train", "val"), ("Training", "VALID"), ("train", "test")])
def test_train_and_val_folders_set_the_split(tmp_path, names):
    from devolens.train.trainer import build_data

    data = _split_folders(tmp_path / "d", names)
    bundle = build_data(load_recipe(tiny_recipe()), data)
    split = bundle.split
    val = set(split[split.side == "val"]["sample"])
    assert val == {f"images/{names[1]}/img{i:03d}.png" for i in range(2)}
    assert len(split[split.side == "train"]) == 6
    assert any("folders split them" in n for n in bundle.notes)


def test_other_layouts_split_by_group_as_before(tmp_path):
    from devolens.train.trainer import build_data

    data = _split_folders(tmp_path / "d", ("embryoA", "embryoB", "embryoC"), (2, 2, 2))
    bundle = build_data(load_recipe(tiny_recipe()), data)
    assert not any("folders split them" in n for n in bundle.notes)
    assert bundle.split.groupby("group")["side"].nunique().max() == 1


# ---------------------------------------------------------------- 4. mask names
def test_cellpose_qupath_and_ome_mask_names_pair(tmp_path):
    from devolens.data.datasets import find_pairs

    imgs, masks = tmp_path / "images", tmp_path / "masks"
    imgs.mkdir()
    masks.mkdir()
    z = np.zeros((8, 8), np.uint16)
    for name in ("img000.tif", "qp.tif", "x.ome.tif", "y.ome.tif"):
        tifffile.imwrite(imgs / name, z)
    for name in ("img000_cp_masks.tif", "qp-labels.tif", "x_labels.tif", "y_masks.tif"):
        tifffile.imwrite(masks / name, z)
    idx = find_pairs(imgs, masks)
    got = {i.name: m.name for i, m in idx.pairs}
    assert got == {"img000.tif": "img000_cp_masks.tif", "qp.tif": "qp-labels.tif", "x.ome.tif": "x_labels.tif",
                   "y.ome.tif": "y_masks.tif"}
    assert not idx.unmatched_images and not idx.unmatched_masks
    # cellpose's one-folder layout: the _cp_masks files are the masks
    one = tmp_path / "one"
    one.mkdir()
    tifffile.imwrite(one / "a.tif", z)
    tifffile.imwrite(one / "a_cp_masks.tif", z)
    tifffile.imwrite(one / "b.ome.tif", z)
    tifffile.imwrite(one / "b_masks.tif", z)
    got = {i.name: m.name for i, m in find_pairs(one, one).pairs}
    assert got == {"a.tif": "a_cp_masks.tif", "b.ome.tif": "b_masks.tif"}


# ---------------------------------------------------------------- 5. out of memory
@pytest.mark.parametrize("exc", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 1073741824 bytes. Error code 12 (Cannot allocate memory)"),
    MemoryError(),
    # OpenCV in an augmentation (its error type is cv2.error; a RuntimeError would not tell the recogniser)
    pytest.param("cv2", id="opencv"),
])
def test_out_of_memory_is_one_line_that_says_what_to_lower(small, tmp_path, capsys, monkeypatch, exc):
    """Exit 75 (EX_TEMPFAIL), as every command's out of memory (it was 2 until the twenty-ninth session)."""
    import devolens.train.trainer as trainer

    if exc == "cv2":
        import cv2

        exc = cv2.error("OpenCV(4.10.0) alloc.cpp:73: error: (-4:Insufficient memory) Failed to allocate 1073741824 "
                        "bytes in function 'OutOfMemoryError'")

    def oom(*a, **k):
        raise exc

    monkeypatch.setattr(trainer, "train", oom)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe()))
    code, _, err = _cli(["train", recipe, "-d", small, "-o", tmp_path / "new"], capsys)
    assert code == 75 and err.startswith("error: out of memory") and "train.batch_size (now 4) or data.scale" in err
    assert "Traceback" not in err and err.count("error:") == 1
    run = _fake_run(tmp_path / "run", epoch=3)
    (run / "recipe.yaml").write_text(yaml.safe_dump(tiny_recipe()))
    code, _, err = _cli(["train", recipe, "-d", small, "-o", run, "--resume"], capsys)
    assert code == 75 and "checkpoint (epoch 3)" in err and "--resume" in err


def test_other_runtime_errors_keep_their_traceback(small, tmp_path, monkeypatch):
    import devolens.train.trainer as trainer
    from devolens.cli import main

    def bug(*a, **k):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(trainer, "train", bug)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe()))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        main(["train", str(recipe), "-d", str(small), "-o", str(tmp_path / "new")])


# ---------------------------------------------------------------- 6. --prune-top that cannot prune
def test_prune_top_within_the_warm_up_says_why_nothing_is_pruned(small, tmp_path):
    from devolens.train.trainer import train

    said: list[str] = []
    rec = tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0, "prune_after": 2})
    res = train(rec, small, tmp_path / "run", prune_top=25, info=said.append)
    assert res.pruned is None
    assert any("nothing will be pruned" in s and "--epochs 3" in s for s in said)


def test_prune_top_on_resume_past_the_warm_up_says_why(small, tmp_path):
    from devolens.train.trainer import train

    rec = tiny_recipe(train={"epochs": 2, "batch_size": 4, "threads": 1, "overlay_samples": 0, "prune_after": 1})
    train(rec, small, tmp_path / "run")
    said: list[str] = []
    res = train(rec, small, tmp_path / "run", resume=True, epochs=3, prune_top=25, info=said.append)
    assert res.pruned is None and any("nothing will be pruned" in s and "new run" in s for s in said)


# ---------------------------------------------------------------- 7. interruptions
def test_interrupted_train_says_how_to_go_on(small, tmp_path, capsys, monkeypatch):
    import devolens.train.trainer as trainer

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train", stop)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe()))
    run = _fake_run(tmp_path / "run", epoch=4)
    code, _, err = _cli(["train", recipe, "-d", small, "-o", run, "--resume"], capsys)
    assert code == 130 and "error: interrupted" in err
    assert "last checkpoint (epoch 4)" in err and "--resume" in err


def test_interrupted_tune_writes_the_finished_trials(small, tmp_path, monkeypatch):
    import devolens.train.trainer as trainer
    from devolens.train.tuning import tune

    real, calls = trainer.train, []

    def third_stops(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(trainer, "train", third_stops)
    said: list[str] = []
    out = tmp_path / "t"
    with pytest.raises(KeyboardInterrupt):
        tune(yaml.safe_load(_tune_recipe(tmp_path).read_text()), small, out, trials=4, info=said.append)
    trials = pd.read_csv(out / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 2
    assert (out / "best_recipe.yaml").exists() and any("run the same command again" in s for s in said)


# ---------------------------------------------------------------- 8 + 9. logs without a terminal, epoch numbers
def test_train_logs_one_line_per_epoch_and_numbers_epochs_consistently(small, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(train={"epochs": 2, "batch_size": 4, "threads": 1,
                                                         "overlay_samples": 0})))
    run = tmp_path / "run"
    code, out, err = _cli(["train", recipe, "-d", small, "-o", run, "--no-plots"], capsys)
    assert code == 0
    assert "epoch 1/2: train_loss" in err and "epoch 2/2: train_loss" in err and "(best val_dice" in err
    summary = json.loads((run / "run.json").read_text())
    best = summary["best_epoch"]
    assert f"at epoch {best + 1} of 2 (epoch {best} in history.csv and run.json, which count from 0)" in " ".join(
        out.split())
    assert "count epochs from 0" in summary["epoch_numbering"]
    assert best in set(pd.read_csv(run / "history.csv")["epoch"])


def test_tune_logs_one_line_per_trial(small, tmp_path, capsys):
    code, out, err = _cli(["tune", _tune_recipe(tmp_path), "-d", small, "-o", tmp_path / "t", "--trials", "2"],
                          capsys)
    assert code == 0
    assert "trial 0 (1/2): val_" in err and "trial 1 (2/2):" in err and "(best val_" in err


# ---------------------------------------------------------------- 10. review: resume, opt-in folder split, names
def _split_sides(split: pd.DataFrame) -> dict:
    return dict(zip(split["sample"].astype(str), split["side"].astype(str)))


def test_a_run_split_by_group_before_resumes_with_its_own_split(tmp_path, monkeypatch):
    """A run trained on images/train + images/val before the folders set the split (simulated: no folder split)
    resumes with the same data, keeping its split.csv."""
    import devolens.train.trainer as trainer

    data = _split_folders(tmp_path / "d", ("train", "val"), (3, 1))
    rec = tiny_recipe(data={"target": "semantic", "channels": 1, "val_fraction": 0.2},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(trainer, "folder_split", lambda df: None)  # the split as before this change: by group
        trainer.train(rec, data, out, device="cpu")
    before = (out / "split.csv").read_text()
    old = _split_sides(pd.read_csv(out / "split.csv", dtype=str))
    assert old != {s: ("val" if "/val/" in s else "train") for s in old}  # the folders would split otherwise
    res = trainer.train(rec, data, out, epochs=2, resume=True, device="cpu")
    assert len(res.history) == 2 and (out / "split.csv").read_text() == before
    assert any("run's own split is kept" in n for n in res.notes)


def test_build_data_keeps_a_run_split_only_for_the_same_samples(tmp_path):
    from devolens.train.trainer import build_data

    data = _split_folders(tmp_path / "d", ("train", "val"), (3, 1))
    rec = load_recipe(tiny_recipe())
    mine = pd.DataFrame({"sample": [f"images/train/img{i:03d}.png" for i in range(3)] + ["images/val/img000.png"],
                         "side": ["val", "train", "train", "train"]})
    assert _split_sides(build_data(rec, data, mine).split) == _split_sides(mine)
    other = mine.iloc[:3]  # other samples: the split as the data say (the resume check then refuses them)
    split = build_data(rec, data, other).split
    assert set(split[split.side == "val"]["sample"]) == {"images/val/img000.png"}


@pytest.mark.parametrize("names", [("embryoA", "embryoB", "Test"), ("train", "val", "embryoC")])
def test_a_val_folder_among_groups_splits_by_group_unless_split_by_folder(tmp_path, names):
    from devolens.train.trainer import build_data

    data = _split_folders(tmp_path / "d", names, (4, 4, 2))
    bundle = build_data(load_recipe(tiny_recipe()), data)
    assert not bundle.by_folder and not any("folders split them" in n for n in bundle.notes)
    assert bundle.split.groupby("group")["side"].nunique().max() == 1
    forced = build_data(load_recipe(tiny_recipe(data__split_by="folder")), data)
    val = set(forced.split[forced.split.side == "val"]["sample"])
    assert forced.by_folder and val == {f"images/{names[1 if names[1] == 'val' else 2]}/img{i:03d}.png"
                                        for i in range(4 if names[1] == "val" else 2)}


def test_split_by_folder_without_a_val_folder_is_an_error(tmp_path):
    from devolens.errors import DevolensError
    from devolens.train.trainer import build_data

    data = _split_folders(tmp_path / "d", ("embryoA", "embryoB"), (2, 2))
    with pytest.raises(DevolensError, match="split_by is 'folder'.*no image lies in one named val"):
        build_data(load_recipe(tiny_recipe(data__split_by="folder")), data)


def test_train_and_test_folders_of_images_beside_their_masks(tmp_path):
    """cellpose's own datasets: train/ and test/ folders, each with x.png beside x_masks.png."""
    import imageio.v3 as iio

    from devolens.train.trainer import build_data

    rng = np.random.default_rng(0)
    for name, n in (("train", 3), ("test", 1)):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(n):
            img, lab = disc_frame(rng, 32)
            iio.imwrite(tmp_path / "d" / name / f"{i:03d}_img.png", img)
            tifffile.imwrite(tmp_path / "d" / name / f"{i:03d}_masks.tif", lab)
    bundle = build_data(load_recipe(tiny_recipe()), tmp_path / "d")
    assert bundle.by_folder
    assert _split_sides(bundle.split) == {"train/000_img.png": "train", "train/001_img.png": "train",
                                          "train/002_img.png": "train", "test/000_img.png": "val"}


def test_an_image_named_like_a_mask_beside_its_own_mask_is_the_image(tmp_path):
    """One folder: y-label.png + y-label_masks.png pair (as before QuPath's -label names), x.png + x-labels.png too."""
    import imageio.v3 as iio

    from devolens.data.datasets import find_pairs, index_dataset

    z = np.zeros((8, 8), np.uint8)
    for name in ("y-label.png", "y-label_masks.png", "x.png", "x-labels.png", "w-mask.tif", "w-mask_cp_masks.tif"):
        (tifffile.imwrite if name.endswith(".tif") else iio.imwrite)(tmp_path / name, z)
    idx = find_pairs(tmp_path, tmp_path)
    assert {i.name: m.name for i, m in idx.pairs} == {"y-label.png": "y-label_masks.png", "x.png": "x-labels.png",
                                                       "w-mask.tif": "w-mask_cp_masks.tif"}
    assert not idx.unmatched_images and not idx.unmatched_masks
    assert sorted(index_dataset(tmp_path)["sample"]) == ["w-mask.tif", "x.png", "y-label.png"]


def test_the_folder_split_and_the_group_split_share_one_construction(tmp_path, monkeypatch):
    """Both splits digest the same inputs for the fingerprint (the files and the recipe's values)."""
    import devolens.train.trainer as trainer

    calls = []
    real = trainer.data_fingerprint

    def spy(*args, **kwargs):
        calls.append((len(args), sorted(kwargs)))
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "data_fingerprint", spy)
    folders = trainer.build_data(load_recipe(tiny_recipe()), _split_folders(tmp_path / "a", ("train", "val")))
    groups = trainer.build_data(load_recipe(tiny_recipe()), _split_folders(tmp_path / "b", ("e1", "e2")))
    assert folders.by_folder and not groups.by_folder
    assert len(calls) == 2 and calls[0] == calls[1]
