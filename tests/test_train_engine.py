"""The training engine end to end on tiny data: overfitting, exact resume, pruning,
checkpoints, the population task, and the CLI (train / evaluate)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import yaml

from _train_data import make_pairs, make_render_like, tiny_recipe
from devolens.errors import DevolensError
from devolens.models.architectures import load_model
from devolens.train.trainer import select_pruned, train


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A tiny dataset written by the renderer: 3 simulated embryos, 96x96 grey frames."""
    render = pytest.importorskip("devolens.render.dataset")
    root = tmp_path_factory.mktemp("rendered")
    tables = render.simulate_tables(3, seed=0, n_cells=40)
    render.render_dataset(tables, root, size=(96, 96), every=5, rgb=False)
    return root


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=3, per_group=6, size=64)


@pytest.fixture(scope="module")
def pairs32(tmp_path_factory):
    """``pairs`` at 32x32 (the same 12 training and 6 validation images): for the runs that compare loader
    processes with one process, whose meaning does not depend on the image size."""
    return make_pairs(tmp_path_factory.mktemp("pairs32"), groups=3, per_group=6, size=32)


@pytest.mark.slow
def test_cli_overfits_a_rendered_dataset_and_evaluates(rendered, tmp_path, capsys):
    from devolens.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(train={"epochs": 5, "batch_size": 4, "threads": 1})))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--data", str(rendered), "--out", str(run), "--export",
                 str(tmp_path / "half.safetensors")]) == 0
    half, cfg = load_model(tmp_path / "half.safetensors")
    assert cfg["dtype"] == "float16" and cfg["recipe"]["name"] == "test"
    hist = pd.read_csv(run / "history.csv")
    assert len(hist) == 5 and hist["train_loss"].iloc[-1] < 0.5 * hist["train_loss"].iloc[0]
    # chance: predicting every pixel as nucleus
    import tifffile

    fg = np.mean([(tifffile.imread(p) > 0).mean() for p in (rendered / "labels").glob("*.tif")])
    chance = 2 * fg / (1 + fg)
    best = hist["val_dice"].max()
    assert best > chance + 0.4, (best, chance)
    for name in ("best.safetensors", "best.json", "checkpoint.safetensors", "checkpoint.json", "sample_losses.csv",
                 "split.csv", "history.png", "progress.gif", "recipe.yaml", "run.json"):
        assert (run / name).exists(), name
    split = pd.read_csv(run / "split.csv")
    assert set(split[split.side == "train"].group).isdisjoint(split[split.side == "val"].group)
    import imageio.v2 as imageio

    assert len(imageio.mimread(run / "progress.gif")) == 5
    err = " ".join(capsys.readouterr().err.split())  # how to segment with it (a segmentation run)
    assert "devolens segment nuclei INPUT --model" in err and "devolens models export" in err
    # evaluate the best checkpoint: prints and writes JSON
    assert main(["evaluate", str(run), "--data", str(rendered)]) == 0
    printed = capsys.readouterr().out
    result = json.loads((run / f"eval_{rendered.name}.json").read_text())
    assert result["metrics"]["val_dice"] > chance + 0.3 and "\ndice: " in "\n" + printed  # (printed without val_)
    # an existing run is not overwritten
    assert main(["train", str(recipe), "--data", str(rendered), "--out", str(run)]) == 2


def test_resume_continues_exactly(pairs, tmp_path):
    rec = tiny_recipe(scheduler={"name": "plateau", "patience": 1}, augment={"preset": "nuclei", "strength": 1.0},
                      optimizer={"name": "adamw", "lr": 0.003, "weight_decay": 0.01})
    full: list[tuple[int, int, float]] = []
    train(rec, pairs, tmp_path / "full", epochs=3, step_callback=lambda e, s, v: full.append((e, s, v)))
    part: list[tuple[int, int, float]] = []
    train(rec, pairs, tmp_path / "part", epochs=2, step_callback=lambda e, s, v: part.append((e, s, v)))
    torch.manual_seed(1234)  # disturb the global RNG: resume must restore it
    np.random.seed(99)
    resumed: list[tuple[int, int, float]] = []
    notes: list[str] = []
    res = train(rec, pairs, tmp_path / "part", epochs=3, resume=True,
                step_callback=lambda e, s, v: resumed.append((e, s, v)), info=notes.append)
    assert "resuming after epoch 2, up to epoch 3" in notes  # says how far it goes
    assert part == full[: len(part)]
    epoch2 = [v for e, s, v in full if e == 2]
    assert resumed[0][:2] == (2, 0)
    assert [v for _, _, v in resumed] == pytest.approx(epoch2, rel=1e-6, abs=1e-7)
    h_full = pd.read_csv(tmp_path / "full" / "history.csv")
    assert len(res.history) == 3
    assert res.history["val_loss"].tolist() == pytest.approx(h_full["val_loss"].tolist(), rel=1e-6)
    assert res.history["lr"].tolist() == pytest.approx(h_full["lr"].tolist())
    sl = pd.read_csv(tmp_path / "part" / "sample_losses.csv")
    assert sorted(sl["epoch"].unique()) == [0, 1, 2]


def test_sample_losses_are_appended_epoch_by_epoch_as_one_whole_table(tmp_path, monkeypatch):
    """sample_losses.csv grows by each epoch's rows (the earlier ones copied as bytes, not formatted again); the
    file is always the whole table as one write of it would be, a failed write leaves the last one, and a resumed
    run drops the rows of epochs its checkpoint did not reach."""
    from devolens.train.trainer import _SampleLosses

    path = tmp_path / "sample_losses.csv"
    ids = ["a", "b,quoted", "c"]
    rng = np.random.default_rng(0)
    sl = _SampleLosses(path, ids)
    rows: list[dict] = []
    for epoch in range(3):
        for index in ([2, 0], [1]):  # two steps an epoch
            vals = rng.random(len(index)).astype(np.float32).astype(np.float64)
            sl.add(epoch, np.array(index), vals)
            rows += [{"epoch": epoch, "sample": ids[i], "loss": v} for i, v in zip(index, vals.tolist())]
        sl.write()
        whole = tmp_path / "whole.csv"
        pd.DataFrame(rows, columns=["epoch", "sample", "loss"]).to_csv(whole, index=False)
        assert path.read_bytes() == whole.read_bytes()
    assert sl.frame(before=1)["sample"].tolist() == ["c", "a", "b,quoted"]
    before = path.read_bytes()
    sl.add(3, np.array([0]), np.array([0.5]))
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        sl.write()
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["sample_losses.csv",
                                                                                           "whole.csv"]
    again = _SampleLosses(path, ids)
    again.resume(2)  # the checkpoint had 2 epochs: the file's third goes
    again.add(2, np.array([1]), np.array([0.25]))
    again.write()
    back = pd.read_csv(path, dtype={"sample": str})
    assert back["epoch"].tolist() == [0, 0, 0, 1, 1, 1, 2] and back["loss"].iloc[-1] == 0.25
    assert back.iloc[:6].equals(pd.DataFrame(rows[:6]))


def test_loader_processes_decode_once_and_train_exactly_as_one_process(pairs, pairs32, tmp_path, monkeypatch):
    """With train.num_workers > 0 the engine decodes the training files once up front (shared with the forked
    loader processes) and training samples leave their instance labels behind; the run is the one-process run's
    to the bit (boundary target: the OpenCV boundaries, augmentation seeds per sample and epoch)."""
    from devolens.data.datasets import SegmentationDataset, index_dataset
    from devolens.train.trainer import _TrainItems

    base = dict(data={"target": "boundary", "channels": 1, "val_fraction": 0.34},
                loss={"name": "ce_dice", "class_weights": [1.0, 1.0, 2.0]}, augment={"preset": "nuclei", "strength": 1.0})
    for workers, lazy in ((0, False), (2, False), (0, True)):
        # lazy: losses read back from the device every SYNC_EVERY steps and at the epoch's end (a GPU's way)
        monkeypatch.setattr("devolens.train.trainer._lazy_sync", lambda device: lazy)
        notes: list[str] = []
        rec = tiny_recipe(**base, train={"epochs": 2, "batch_size": 4, "threads": 1, "num_workers": workers,
                                         "monitor": "val_f1"})
        train(rec, pairs32, tmp_path / f"w{workers}{lazy}", info=notes.append)
        assert any("decoded into memory" in n for n in notes) == (workers > 0)
    for other in ("w2False", "w0True"):
        for name in ("sample_losses.csv", "best.safetensors", "checkpoint.safetensors"):
            assert (tmp_path / "w0False" / name).read_bytes() == (tmp_path / other / name).read_bytes(), (other, name)
        h0, h2 = (pd.read_csv(tmp_path / w / "history.csv").drop(columns=["seconds", "validation_seconds", "loader_seconds"]) for w in ("w0False", other))
        pd.testing.assert_frame_equal(h0, h2)
    # processes that outlive an epoch (no cache) in epochs cut short (train.max_batches): still the same run
    for workers in (0, 2):
        rec = tiny_recipe(**{**base, "data": {**base["data"], "cache": False}},
                          train={"epochs": 3, "batch_size": 4, "threads": 1, "num_workers": workers, "max_batches": 1})
        train(rec, pairs32, tmp_path / f"capped{workers}")
    for name in ("sample_losses.csv", "checkpoint.safetensors"):
        assert (tmp_path / "capped0" / name).read_bytes() == (tmp_path / "capped2" / name).read_bytes(), name
    df = index_dataset(pairs)
    ds = SegmentationDataset(list(df["image"][:2]), list(df["labels"][:2]), target="boundary")
    assert ds.preload() == 2 and len(ds._cache) == 2 and ds.preload() == 0  # cached ones are not read again
    item = _TrainItems(ds)[(1, 0)]
    assert "labels" not in item and int(item["index"]) == 1 and "labels" in ds[1]
    # two regions of one image: one file pair, decoded once
    regions = SegmentationDataset([df["image"][0]] * 2, [df["labels"][0]] * 2, boxes=[(0, 32, 0, 64), (32, 64, 0, 64)])
    assert regions.preload(threads=2) == 1 and len(regions._cache) == 1
    # the memory it will take is said once the first file is decoded (its size times the files)
    told: list = []
    ds = SegmentationDataset(list(df["image"][:3]), list(df["labels"][:3]))
    assert ds.preload(threads=2, announce=lambda n, b: told.append((n, b, len(ds._cache)))) == 3
    img, lab, _ = ds._cache[(ds.images[0], ds.labels[0])]
    assert told == [(3, 3 * (img.nbytes + lab.nbytes), 1)]


def test_preloading_only_where_it_helps(pairs, tmp_path, monkeypatch):
    """Not when epochs read a share of the data (train.max_batches: loader processes decode and forget it, as
    before), nor when loader processes are not forked (each would receive a copy of the decoded files)."""
    import multiprocessing

    from devolens.data.datasets import SegmentationDataset, index_dataset
    from devolens.train.trainer import _shares_preloaded

    df = index_dataset(pairs)
    ds = SegmentationDataset(list(df["image"]), list(df["labels"]))
    assert _shares_preloaded(ds, len(ds), len(ds)) == (multiprocessing.get_start_method() == "fork")
    assert not _shares_preloaded(ds, len(ds) - 1, len(ds))
    ds.cache = False
    assert not _shares_preloaded(ds, len(ds), len(ds))
    ds.cache = True
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda *a, **k: "spawn")
    assert not _shares_preloaded(ds, len(ds), len(ds))
    notes: list[str] = []
    rec = tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "num_workers": 1, "max_batches": 1})
    monkeypatch.undo()
    train(rec, pairs, tmp_path / "capped", info=notes.append)
    assert not any("decod" in n for n in notes)


def test_init_starts_from_earlier_weights(pairs, tmp_path):
    rec = tiny_recipe(train={"epochs": 2, "batch_size": 4, "threads": 1, "overlay_samples": 0})
    first = train(rec, pairs, tmp_path / "first")
    best = first.run_dir / "best.safetensors"
    assert best.exists()
    tuned: list[tuple[int, int, float]] = []
    scratch: list[tuple[int, int, float]] = []
    train({**rec, "model": {**rec.get("model", {}), "init": str(best)}}, pairs, tmp_path / "tuned", epochs=1,
          step_callback=lambda e, s, v: tuned.append((e, s, v)))
    train(rec, pairs, tmp_path / "scratch", epochs=1, step_callback=lambda e, s, v: scratch.append((e, s, v)))
    # the first batch is the same batch: starting from trained weights gives a lower loss
    assert tuned[0][2] < scratch[0][2]
    with pytest.raises(DevolensError, match="model.init"):
        train({**rec, "model": {**rec.get("model", {}), "init": str(tmp_path / "missing.safetensors")}}, pairs,
              tmp_path / "bad")


def test_init_names_a_shipped_model_as_zoo_name(tmp_path):
    from devolens.models import zoo
    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import build_from_recipe, init_path, init_weights

    if "nuclei" not in zoo.available():
        pytest.skip("nuclei model not shipped")
    assert init_path("zoo:nuclei") == zoo.ZOO_DIR / "nuclei"
    arch = zoo.card("nuclei")["architecture"]
    rec = resolved(load_recipe(tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34},
                               model={"arch": "unet", "encoder": arch["encoder"], "encoder_depth": arch["encoder_depth"],
                                      "decoder_channels": arch["decoder_channels"], "init": "zoo:nuclei"},
                               loss={"name": "ce_dice"})))
    model = init_weights(build_from_recipe(rec), rec["model"]["init"])
    from safetensors.torch import load_file

    shipped = load_file(str(zoo.ZOO_DIR / "nuclei" / "weights.safetensors"))
    key = next(k for k in shipped if k.endswith("conv1.weight"))
    assert torch.equal(model.state_dict()[key], shipped[key].float())
    with pytest.raises(DevolensError, match="no shipped model 'nope'"):
        init_path("zoo:nope")


def test_device_setting_cpu_auto_and_missing_cuda(pairs, tmp_path, capsys):
    from devolens.cli import main
    from devolens.train.trainer import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    res = train(tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "device": "cpu"}), pairs, tmp_path / "r")
    assert res.device == "cpu" and json.loads((tmp_path / "r" / "run.json").read_text())["device"] == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(DevolensError, match="sees no CUDA GPU"):
            resolve_device("cuda")
        recipe = tmp_path / "r.yaml"
        recipe.write_text(yaml.safe_dump(tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1})))
        assert main(["train", str(recipe), "--data", str(pairs), "--out", str(tmp_path / "c"), "--device", "cuda"]) == 2
        assert "sees no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "c" / "checkpoint.json").exists()


def test_channels_last_trains_the_same_network(pairs, tmp_path, monkeypatch):
    """train.channels_last (a GPU's faster convolutions) changes the memory layout only: the same losses and
    weights to float rounding, saved and resumed as ever."""
    from safetensors.torch import load_file

    from devolens.train import trainer

    # the batch and the first convolution's weights in the channels-last layout, per training step (3-channel
    # images: with one channel the two layouts are the same memory)
    seen: list[tuple[bool, bool]] = []
    build = trainer.build_from_recipe

    def last(t):
        return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()

    def spied(rec):
        model = build(rec)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        model.register_forward_pre_hook(lambda m, args: seen.append((last(args[0]), last(conv.weight)))
                                        if m.training else None)
        return model

    monkeypatch.setattr(trainer, "build_from_recipe", spied)
    runs = {}
    for cl in (False, True):
        rec = tiny_recipe(data={"target": "boundary", "channels": 3, "val_fraction": 0.34},
                          loss={"name": "ce_dice"}, train={"epochs": 1, "batch_size": 4, "threads": 1,
                                                          "channels_last": cl})
        seen.clear()
        runs[cl] = train(rec, pairs, tmp_path / str(cl))
        assert seen and set(seen) == {(cl, cl)}
    np.testing.assert_allclose(runs[True].history["train_loss"], runs[False].history["train_loss"], rtol=1e-4)
    a, b = (load_file(str(tmp_path / str(cl) / "best.safetensors")) for cl in (False, True))
    assert a.keys() == b.keys()
    for k in a:  # Adam turns rounding differences into steps of up to the learning rate (0.003) for a few weights
        d = (b[k].double() - a[k].double()).abs()
        assert float(d.max()) <= 0.01 and float(d.norm()) <= 0.01 * float(a[k].double().norm()) + 1e-3, k
    moments = []
    real_load = trainer.load_checkpoint

    def spy_load(ckpt, model, opt, *args, **kw):
        extra = real_load(ckpt, model, opt, *args, **kw)
        moments.append(opt)
        return extra

    monkeypatch.setattr(trainer, "load_checkpoint", spy_load)
    res = train(rec, pairs, tmp_path / "True", epochs=2, resume=True)  # the checkpoint reloads into the layout
    assert len(res.history) == 2 and np.isfinite(res.history["train_loss"]).all()
    conv = [p for g in moments[0].param_groups for p in g["params"] if p.ndim == 4 and p.shape[1] > 1][0]
    assert last(conv) and last(moments[0].state[conv]["exp_avg"])  # the moments follow their parameters


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_resumes_and_evaluates_on_a_gpu(pairs, tmp_path):
    from devolens.train.evaluate import evaluate_run

    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34},
                      loss={"name": "ce_dice", "class_weights": "inverse_sqrt"},
                      train={"epochs": 1, "batch_size": 4, "amp": "bf16", "device": "cuda", "monitor": "val_f1"})
    res = train(rec, pairs, tmp_path / "gpu")
    assert res.device.startswith("cuda") and np.isfinite(res.history["train_loss"]).all()
    res = train(rec, pairs, tmp_path / "gpu", epochs=2, resume=True)
    assert len(res.history) == 2
    model, cfg = load_model(tmp_path / "gpu" / "best.safetensors")  # saved on the CPU side
    assert next(model.parameters()).device.type == "cpu"
    assert "val_f1" in evaluate_run(tmp_path / "gpu", pairs)["metrics"]


def test_resume_and_overwrite_errors(pairs, tmp_path):
    with pytest.raises(DevolensError, match="no checkpoint"):
        train(tiny_recipe(), pairs, tmp_path / "nothing", resume=True)


def test_select_pruned_takes_exactly_the_top_percent():
    df = pd.DataFrame({"sample": [f"s{i}" for i in range(10)] * 2, "loss": list(range(10)) + list(range(10))})
    top = select_pruned(df, 25)
    assert top["sample"].tolist() == ["s9", "s8"]  # floor(10 * 25 / 100) = 2
    assert len(select_pruned(df, 0)) == 0 and len(select_pruned(df, 30)) == 3
    with pytest.raises(DevolensError):
        select_pruned(df, 150)


def test_pruning_drops_the_top_percent_after_warmup(pairs, tmp_path):
    rec = tiny_recipe(train={"epochs": 2, "batch_size": 4, "threads": 1, "prune_after": 1, "overlay_samples": 0})
    res = train(rec, pairs, tmp_path / "run", prune_top=25)
    sl = pd.read_csv(tmp_path / "run" / "sample_losses.csv")
    warm = sl[sl.epoch == 0].groupby("sample")["loss"].mean().sort_values(ascending=False)
    n = len(warm)
    pruned = pd.read_csv(tmp_path / "run" / "pruned.csv")
    assert len(pruned) == n * 25 // 100
    assert pruned["sample"].tolist() == warm.index[: len(pruned)].tolist()
    after = set(sl[sl.epoch == 1]["sample"])
    assert after == set(warm.index) - set(pruned["sample"])
    assert res.history["n_train"].tolist() == [n, n - len(pruned)]
    # trained afresh on the rest (train.prune_restart): the best model is one of those epochs, never the warm-up's
    rec = tiny_recipe(train={"epochs": 3, "batch_size": 4, "threads": 1, "prune_after": 2, "overlay_samples": 0,
                             "monitor": "val_loss"})
    res = train(rec, pairs, tmp_path / "restart", prune_top=25)
    assert res.best_epoch == 2 and json.loads((tmp_path / "restart" / "best.json").read_text())["epoch"] == 2


def test_class_weights_from_frequencies_and_bf16(pairs, tmp_path, monkeypatch):
    from devolens.models import quantize

    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: True)  # bf16 runs (an AVX2-only CPU would run fp32)
    rec = tiny_recipe(loss={"name": "focal_dice", "class_weights": "median_frequency"},
                      train={"epochs": 1, "batch_size": 4, "threads": 1, "amp": "bf16", "max_batches": 2})
    res = train(rec, pairs, tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    w = info["class_weights"]
    assert len(w) == 2 and w[1] > w[0] and info["amp"] == "bf16"  # foreground is rarer
    assert np.isfinite(res.history["train_loss"].iloc[0])


def test_boundary_target_and_cosine_kicks(pairs, tmp_path):
    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34},
                      loss={"name": "ce_dice", "class_weights": "inverse_sqrt"},
                      scheduler={"name": "cosine_kicks", "period": 2, "floor": 0.1},
                      train={"epochs": 2, "batch_size": 4, "threads": 1, "monitor": "val_f1"})
    res = train(rec, pairs, tmp_path / "run")
    assert {"val_iou_2", "val_ap_2", "val_f1"} <= set(res.history.columns)
    assert res.history["lr"].iloc[1] < res.history["lr"].iloc[0]
    model, cfg = load_model(tmp_path / "run" / "best.safetensors")
    assert cfg["model"]["classes"] == 3 and cfg["input"]["target"] == "boundary"


def test_population_task(tmp_path):
    data = make_render_like(tmp_path / "data", embryos=3, per_embryo=4)
    rec = tiny_recipe(task="population", model={"width": 8}, loss={"name": "poisson"},
                      augment={"preset": "population"}, data={"channels": 1, "counts": ["A", "E", "total"]},
                      train={"epochs": 2, "batch_size": 4, "threads": 1})
    res = train(rec, data, tmp_path / "run")
    assert res.monitor == "val_mae"
    assert {"val_mae_A", "val_mae_E", "val_mae_total", "val_count_mae"} <= set(res.history.columns)
    assert np.isfinite(res.history["val_mae"]).all()
    from devolens.train.evaluate import evaluate_run

    ev = evaluate_run(tmp_path / "run", data)
    assert ev["n"] == 12 and ev["metrics"]["val_mae_total"] is not None


def test_monitor_must_exist(pairs, tmp_path):
    with pytest.raises(DevolensError, match="train.monitor"):
        train(tiny_recipe(train={"monitor": "val_accuracy"}), pairs, tmp_path / "run")


def test_overlay_colours():
    from devolens.viz.overlays import FN_COLOUR, FP_COLOUR, TP_COLOUR, overlay_errors

    img = np.zeros((4, 4), np.uint8)
    truth = np.array([[1, 1, 0, 0]] * 4)
    pred = np.array([[1, 0, 1, 0]] * 4)
    rgb = overlay_errors(img, truth, pred, alpha=1.0)
    assert tuple(rgb[0, 0]) == TP_COLOUR and tuple(rgb[0, 1]) == FN_COLOUR and tuple(rgb[0, 2]) == FP_COLOUR
    assert tuple(rgb[0, 3]) == (0, 0, 0)


def test_trains_on_an_hdf5_tile_store(tmp_path):
    import h5py

    from _train_data import disc_frame

    rng = np.random.default_rng(0)
    imgs, labs = [], []
    for _ in range(12):
        im, lab = disc_frame(rng, 32, radius=(3, 6))
        imgs.append(np.stack([im.astype(np.uint16) * 200, (lab > 0).astype(np.uint16) * 30000]))
        labs.append(np.where(lab > 0, 1 + (lab % 2), 0).astype(np.uint8))  # classes 1 and 2
    with h5py.File(tmp_path / "tiles.h5", "w") as f:
        f["images"], f["labels"] = np.stack(imgs), np.stack(labs)
        f["source"] = np.repeat(np.arange(3), 4).astype(np.int32)
    rec = tiny_recipe(data={"target": "classes", "classes": 3, "channels": 2, "val_fraction": 0.34},
                      loss={"name": "ce_dice"}, augment={"preset": "livedead"})
    res = train(rec, tmp_path / "tiles.h5", tmp_path / "run")
    split = pd.read_csv(tmp_path / "run" / "split.csv")
    assert set(split[split.side == "train"].group).isdisjoint(split[split.side == "val"].group)
    assert len(res.history) == 2 and "val_iou_2" in res.history.columns
    from devolens.train.evaluate import evaluate_run

    assert evaluate_run(tmp_path / "run", tmp_path / "tiles.h5")["n"] == 12


def test_a_log_normalised_tile_store_run_evaluates(tmp_path):
    """A run trained on a `devolens tile` store with data.normalize 'log' (the livedead recipe's: streamed by
    H5TileStream) is scored by evaluate_run on the same store (its tiles read with the same log scale), and a
    folder of images takes 'log' too."""
    import h5py

    from _train_data import disc_frame
    from devolens.data.datasets import normalize_image
    from devolens.data.h5stream import normalize_uint16
    from devolens.train.evaluate import evaluate_run

    rng = np.random.default_rng(1)
    imgs, labs = [], []
    for _ in range(12):
        im, lab = disc_frame(rng, 32, radius=(3, 6))
        imgs.append(np.stack([im.astype(np.uint16) * 200 + 100, (lab > 0).astype(np.uint16) * 30000 + 100]))
        labs.append(np.where(lab > 0, 1 + (lab % 2), 0).astype(np.uint8))
    with h5py.File(tmp_path / "tiles.h5", "w") as f:
        f["images"], f["labels"] = np.stack(imgs), np.stack(labs)
        f["source"] = np.repeat(np.arange(3), 4).astype(np.int32)
        f.attrs["format"] = "devolens-tiles"
    rec = tiny_recipe(data={"target": "classes", "classes": 3, "channels": 2, "val_fraction": 0.34,
                            "normalize": "log"}, loss={"name": "ce_dice"}, augment={"preset": "livedead"},
                      train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0})
    train(rec, tmp_path / "tiles.h5", tmp_path / "run")
    ev = evaluate_run(tmp_path / "run", tmp_path / "tiles.h5")
    assert ev["n"] == 12 and ev["metrics"]["val_iou"] is not None
    x = np.array([[[0, 100], [65535, 7]]], np.uint16).transpose(1, 2, 0)
    assert np.array_equal(normalize_image(x, "log"), normalize_uint16(x))


def test_class_masks_beyond_the_recipes_classes_are_refused_before_training(tmp_path):
    """target 'classes': a mask holding a class id >= data.classes is refused before the first epoch, naming the
    file and the key (it failed in the loss after a whole epoch, with a traceback); a tile store likewise, by the
    classes its labels hold."""
    import h5py

    from devolens.io.images import write_label_tif

    data = make_pairs(tmp_path / "d", groups=3, per_group=3, size=32)
    masks = sorted((data / "masks").glob("*_labels.tif"))
    assert len(masks) == 9
    for m in masks:
        write_label_tif(np.minimum(tifffile.imread(m), 2).astype(np.uint16), m)
    bad = np.minimum(tifffile.imread(masks[4]), 2).astype(np.uint16)
    bad[0, 0] = 5
    write_label_tif(bad, masks[4])
    rec = tiny_recipe(data={"target": "classes", "classes": 3, "channels": 1, "val_fraction": 0.34},
                      loss={"name": "ce_dice"}, train={"epochs": 1, "batch_size": 4, "threads": 1})
    with pytest.raises(DevolensError, match=f"{masks[4].name}: holds class 5, but data.classes is 3"):
        train(rec, data, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    imgs = np.zeros((6, 1, 16, 16), np.uint16)
    labs = np.zeros((6, 16, 16), np.uint8)
    labs[:, 4:8, 4:8] = 2
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["images"], f["labels"] = imgs, labs
        f["class_counts"] = np.stack([np.bincount(lab.ravel(), minlength=3) for lab in labs])
        f["source"] = np.arange(6).astype(np.int32)
    rec2 = tiny_recipe(data={"target": "classes", "classes": 2, "channels": 1, "val_fraction": 0.34},
                       loss={"name": "ce_dice"})
    with pytest.raises(DevolensError, match="labels hold class 2, but data.classes is 2"):
        train(rec2, tmp_path / "t.h5", tmp_path / "run2")


def test_trains_on_live_renders(tmp_path):
    pytest.importorskip("devolens.render.nuclei")
    from devolens.data.datasets import LiveRenderDataset
    from devolens.render.dataset import simulate_tables
    from devolens.train.trainer import DataBundle

    tabs = simulate_tables(2, seed=3, n_cells=16)
    pick = lambda k: [(k, int(t)) for t in sorted(tabs[k]["time"].unique())[-6::2]]
    bundle = DataBundle(
        train=LiveRenderDataset(tabs, pick(0), size=(64, 64), seed=1),
        val=LiveRenderDataset(tabs, pick(1), size=(64, 64), seed=2, fixed=True),
        split=pd.DataFrame({"sample": ["a"], "group": ["g"], "side": ["train"]}),
    )
    res = train(tiny_recipe(), bundle, tmp_path / "run")
    sl = pd.read_csv(tmp_path / "run" / "sample_losses.csv")
    assert len(res.history) == 2 and len(sl) == 2 * 3 and sl["sample"].str.contains(":t").all()


def test_loader_processes_outlive_an_epoch_only_where_they_hold_nothing_new(pairs32, tmp_path, monkeypatch):
    """One DataLoader and its processes serve every epoch where the processes hold nothing of their own (the
    decoded files shared from before the fork, or no cache); where each would cache its own reads (epochs capped by
    train.max_batches: no preload) they start afresh every epoch, as their caches would otherwise grow. Training is
    the same either way, and no process outlives a run that stops with an error."""
    import multiprocessing
    import os

    from devolens.train import trainer

    pids = tmp_path / "pids.txt"
    real_get = trainer._TrainItems.__getitem__

    def get(self, k):  # runs in the loader processes: they say who they are through a file
        with open(pids, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return real_get(self, k)

    monkeypatch.setattr(trainer._TrainItems, "__getitem__", get)
    fork = multiprocessing.get_start_method() == "fork"
    for cache, max_batches, persistent in ((True, None, fork), (False, None, True), (True, 1, False),
                                           (False, 1, True)):
        pids.write_text("")
        rec = tiny_recipe(data={"target": "semantic", "channels": 1, "val_fraction": 0.34, "cache": cache},
                          train={"epochs": 3, "batch_size": 4, "threads": 1, "num_workers": 2,
                                 "max_batches": max_batches})
        train(rec, pairs32, tmp_path / f"c{cache}{max_batches}")
        seen = set(pids.read_text().split())
        assert str(os.getpid()) not in seen and len(seen) == (2 if persistent else 6), (cache, max_batches, seen)
    assert not multiprocessing.active_children()

    def stop(epoch, row):
        raise RuntimeError("stopped by the caller")

    rec = tiny_recipe(data={"target": "semantic", "channels": 1, "val_fraction": 0.34, "cache": False},
                      train={"epochs": 3, "batch_size": 4, "threads": 1, "num_workers": 2})
    with pytest.raises(RuntimeError, match="stopped") as kept:  # the traceback (and its frames) still held
        train(rec, pairs32, tmp_path / "stopped", epoch_callback=stop)
    assert kept.value is not None and not multiprocessing.active_children()
