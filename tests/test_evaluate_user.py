"""`devolens evaluate` as a user meets it: a zoo model's own post-processing, a per-image CSV, train's mask
notes, refusing a zoo model of another task."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from _train_data import make_pairs, train_tiny_run
from devolens.errors import DevolensError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("ev"))


def _zoo_folder(run: Path, root: Path, task: str, postprocess: dict | None) -> Path:
    """A model folder of the run's own network with a card of ``task``."""
    import shutil

    folder = root / f"zoo_{task}"
    folder.mkdir(exist_ok=True)
    shutil.copy(run / "best.safetensors", folder / "weights.safetensors")
    card = {"name": f"my_{task}", "task": task, "input": {"scale": 1.0}}
    if postprocess is not None:
        card["postprocess"] = postprocess
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def _cli(args, capsys):
    from devolens.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), err


def _own_match(pred: np.ndarray, true: np.ndarray) -> tuple[int, int, int]:
    """Independent one-to-one matching at IoU > 0.5: every pair's IoU by brute force."""
    P = [v for v in np.unique(pred) if v]
    T = [v for v in np.unique(true) if v]
    tp = 0
    for t in T:
        for p in P:
            a, b = true == t, pred == p
            if (a & b).sum() / (a | b).sum() > 0.5:  # above 0.5 a pair is unique both ways
                tp += 1
    return tp, len(P) - tp, len(T) - tp


# ---------------------------------------------------------------- 1. a zoo model's own post-processing
def test_zoo_weights_use_the_cards_postprocess(tiny_run, tmp_path, capsys):
    from devolens.train.evaluate import evaluate_run

    run, data = tiny_run
    pp = {"threshold": 0.6, "seed_threshold": 0.7, "split_seeds": True}
    folder = _zoo_folder(run, tmp_path, "nuclei", pp)
    res = evaluate_run(run, data, weights=folder)
    assert res["postprocess_from"] == f"card {folder}"
    assert res["validate"]["instances"] == "watershed"
    assert {k: res["validate"]["postprocess"][k] for k in pp} == pp
    own = evaluate_run(run, data, weights=folder, validate={"postprocess": {"threshold": 0.5}})
    assert own["postprocess_from"] == f"card {folder} with --postprocess"
    assert own["validate"]["postprocess"]["threshold"] == 0.5 and own["validate"]["postprocess"]["split_seeds"]
    assert evaluate_run(run, data)["postprocess_from"] == "run recipe"
    code, out, _ = _cli(["evaluate", run, "-d", data, "--weights", folder], capsys)
    assert code == 0 and "post-processing: card" in out and '"split_seeds": true' in out
    saved = json.loads((run / f"eval_A_{folder.name}.json").read_text())
    assert saved["postprocess_from"].startswith("card ")


def test_help_explains_metrics_and_magnification(capsys):
    code, out, _ = _cli(["evaluate", "--help"], capsys)
    assert "pixel-level" in out and "not the instance AP" in out and "IoU > 0.5" in out
    assert "does not estimate magnification" in out and "--diameter" in out and "working scale" in out


# ---------------------------------------------------------------- 6. a zoo model of another task
def test_zoo_model_of_another_task_is_refused(tiny_run, tmp_path):
    from devolens.train.evaluate import evaluate_run

    run, data = tiny_run
    with pytest.raises(DevolensError, match="'membrane' model, but this run segments nuclei"):
        evaluate_run(run, data, weights=_zoo_folder(run, tmp_path, "membrane", {"threshold": 0.5}))
    with pytest.raises(DevolensError, match="'membrane' model, but this run segments nuclei"):
        evaluate_run(run, data, weights="zoo:membrane")  # refused before its weights are tried


# ---------------------------------------------------------------- 2. per-image CSV
def test_per_image_rows_against_independent_matching():
    from devolens.train.evaluate import per_image_rows

    true = np.zeros((20, 20), np.int32)
    true[2:8, 2:8] = 1  # found exactly
    true[10:16, 2:8] = 2  # found as a far too small object: IoU 9/36
    true[2:8, 12:18] = 3  # missed
    pred = np.zeros_like(true)
    pred[2:8, 2:8] = 5
    pred[10:13, 2:5] = 7
    pred[14:19, 12:19] = 9  # nothing there
    (row,) = per_image_rows(["x.tif"], [pred], [true])
    tp, fp, fn = _own_match(pred, true)
    assert (row["tp"], row["fp"], row["fn"]) == (tp, fp, fn) == (1, 2, 2)
    assert row["true_count"] == 3 and row["pred_count"] == 3
    assert row["precision"] == pytest.approx(1 / 3) and row["recall"] == pytest.approx(1 / 3)
    assert row["f1"] == pytest.approx(2 * 1 / (2 * 1 + 2 + 2))


def test_per_image_csv_beside_the_json(tiny_run, capsys):
    run, data = tiny_run
    code, _, err = _cli(["evaluate", run, "-d", data, "--weights", run / "checkpoint.safetensors"], capsys)
    assert code == 0
    path = run / "eval_A_checkpoint_images.csv"
    assert f"per image -> {path}" in " ".join(err.split())  # (a summary line: stderr)
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["file", "true_count", "pred_count", "tp", "fp", "fn", "precision", "recall", "f1",
                            "run_side"]
    masks = sorted((data / "masks").iterdir())
    assert len(rows) == len(masks)
    for r, m in zip(rows, masks):  # scale 1: the truth is the mask file itself
        assert Path(r["file"]).stem == m.name.split("_labels")[0]
        lab = tifffile.imread(m)
        assert int(r["true_count"]) == len(np.unique(lab[lab != 0]))
        tp, fp, fn = int(r["tp"]), int(r["fp"]), int(r["fn"])
        assert tp + fn == int(r["true_count"]) and tp + fp == int(r["pred_count"])
    saved = json.loads((run / "eval_A_checkpoint.json").read_text())
    tp, fp, fn = (sum(int(r[k]) for r in rows) for k in ("tp", "fp", "fn"))
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 1.0
    assert saved["metrics"]["val_f1"] == pytest.approx(f1, abs=1e-9)
    assert saved["images_csv"] == str(path) and "images" not in saved


def test_per_image_rows_are_scored_in_the_loop_without_keeping_arrays(tiny_run, monkeypatch):
    """The rows come from evaluate_model as each sample is scored (no sample's arrays kept, nothing padded to
    the largest image) and equal the rows made the old way, from every sample's kept label maps."""
    import devolens.train.trainer as T
    from devolens.train.evaluate import evaluate_run, per_image_rows

    run, data = tiny_run
    seen, kept = [], []
    orig = T.evaluate_model

    def spy(model, ds, rec, *a, **k):
        seen.append(k)
        kept.append(orig(model, ds, rec, None, batch_size=3, keep=len(ds)))  # the reference: all arrays kept
        return orig(model, ds, rec, *a, **k)

    monkeypatch.setattr(T, "evaluate_model", spy)
    rows = evaluate_run(run, data, weights=run / "checkpoint.safetensors")["images"]
    assert seen[0].get("keep", 0) == 0 and seen[0]["per_image"] is True
    assert list(rows[0]) == ["file", "true_count", "pred_count", "tp", "fp", "fn", "precision", "recall", "f1",
                            "run_side"]
    names = [r["file"] for r in rows]
    masks = sorted((data / "masks").iterdir())
    assert len(rows) == len(masks)
    old = per_image_rows(names, list(kept[0]["samples"]["pred_labels"]), list(kept[0]["samples"]["truth_labels"]))
    assert [{k: v for k, v in r.items() if k != "run_side"} for r in rows] == old  # (run_side: evaluate_run's)


# ---------------------------------------------------------------- 3. train's mask checks and unpaired files
def test_evaluate_gives_trains_mask_notes(tiny_run, tmp_path, capsys):
    from devolens.train.evaluate import evaluate_run

    run, _ = tiny_run
    data = make_pairs(tmp_path / "B", groups=2, per_group=2, size=32, extra_image=True, extra_mask=True)
    for m in (data / "masks").glob("*_labels.tif"):  # thresholded: one value for every object
        lab = tifffile.imread(m)
        tifffile.imwrite(m, ((lab > 0) * 255).astype(np.uint8))
    res = evaluate_run(run, data)
    said = " ".join(res["notes"])
    assert "thresholded mask" in said and "2 files without a partner" in said
    code, out, err = _cli(["evaluate", run, "-d", data], capsys)
    assert code == 0 and "note:" in err and "without a partner" in err and "note:" not in out
    for m in (data / "masks").glob("*_labels.tif"):
        tifffile.imwrite(m, np.zeros((32, 32), np.uint8))
    assert any("hold no object" in n for n in evaluate_run(run, data)["notes"])


# ---------------------------------------------------------------- 4. one blob of touching nuclei
def test_single_blob_of_touching_nuclei_is_flagged_a_single_nucleus_is_not():
    from devolens.data.datasets import thresholded

    yy, xx = np.mgrid[:120, :120]
    touching = np.zeros((120, 120), np.uint8)
    for cy in range(15, 110, 18):  # 36 nuclei of radius 10 on an 18 px grid: all touch, one blob
        for cx in range(15, 110, 18):
            touching[np.hypot(yy - cy, xx - cx) <= 10] = 255
    from devolens.predict.postprocess import label_components

    assert label_components(touching != 0)[1] == 1
    assert thresholded(touching) is not None
    assert thresholded((touching > 0).astype(np.uint8)) is not None  # 0/1 too
    y, x = np.mgrid[:48, :48]
    for a, b in ((22, 22), (22, 11), (22, 7)):  # one nucleus filling a small crop, round to elongated
        crop = ((((y - 24) / b) ** 2 + ((x - 24) / a) ** 2) <= 1).astype(np.uint8) * 255
        assert thresholded(crop) is None


# ---------------------------------------------------------------- 5. cellpose _seg.npy files
def test_cellpose_seg_npy_folder_says_what_to_export(tmp_path):
    import imageio.v3 as iio

    from devolens.data.datasets import index_dataset

    iio.imwrite(tmp_path / "img1.png", np.zeros((16, 16), np.uint8))
    (tmp_path / "img1_seg.npy").write_bytes(b"\x93NUMPY")  # never opened
    with pytest.raises(DevolensError, match="cellpose _seg.npy.*pickle.*--save_png or --save_tif"):
        index_dataset(tmp_path)


def test_zoo_weights_are_scored_at_the_runs_own_scale(tiny_run, tmp_path, monkeypatch):
    """The run's data.scale is what its recipe chose for these images' nuclei: the zoo model is scored at it too
    (a review found the card's scale silently put in its place, skewing the comparison), with a note where the
    card's differs."""
    import devolens.train.trainer as trainer
    from devolens.train.evaluate import evaluate_run

    run, data = tiny_run
    folder = _zoo_folder(run, tmp_path, "nuclei", {"threshold": 0.6})
    card = json.loads((folder / "card.json").read_text())
    card["input"]["scale"] = 0.5
    (folder / "card.json").write_text(json.dumps(card))
    seen = []
    original = trainer.make_dataset
    monkeypatch.setattr(trainer, "make_dataset", lambda rec, df, train: seen.append(rec["data"]["scale"])
                        or original(rec, df, train))
    own = evaluate_run(run, data)
    zoo = evaluate_run(run, data, weights=folder)
    assert seen and len(set(seen)) == 1  # the same scale for the run's weights and the zoo card's
    assert not any("data.scale" in n for n in own["notes"])
    assert any("scored at the run's data.scale" in n and "working scale 0.5" in n for n in zoo["notes"])
