"""Mends of the thirty-seventh session (M6) to `devolens evaluate` and `devolens models export` on a run of one's own:
evaluate says which scored images the run trained or validated on (its split.csv, matched by the images' contents:
a copy or a renamed file counts too), counts them in its JSON and marks them per image (run_side), and lists the
files without a partner in its JSON; an exported card says when no epoch beat the starting weights (and their
score), names the run and its split.csv by absolute paths and records the export command as typed."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.data.datasets import index_dataset
from devolens.models.export import export_run


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A one-epoch boundary run (exportable as nuclei) on data "A" (6 pairs and an image without a mask)."""
    from devolens.train.trainer import train

    root = tmp_path_factory.mktemp("s37m6")
    data = make_pairs(root / "A", groups=3, per_group=2, size=32, extra_image=True)
    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34, "normalize": "percentile"},
                      loss={"name": "ce_dice"},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1, "monitor": "val_f1"})
    train(rec, data, root / "run", device="cpu")
    return root / "run", data


def _split(run: Path) -> dict[str, str]:
    df = pd.read_csv(run / "split.csv", dtype=str, keep_default_na=False)
    return dict(zip(df["sample"], df["side"]))


def _evaluate(run, data, out: Path, capsys) -> tuple[dict, list[dict], str]:
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data), "--json", str(out), "--device", "cpu"]) == 0
    err = capsys.readouterr().err.replace("\n", " ")
    with open(out.with_name(f"{out.stem}_images.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    return json.loads(out.read_text()), rows, err


# ---------------------------------------------------------------------------- evaluate
def test_evaluating_on_the_runs_own_images_says_so(own, tmp_path, capsys):
    """`evaluate RUN --data A` on the very images A the run trained on gave no word: val_f1 went to eval_A.json like a
    held-out score. Now a note says how many trained (and validated), the JSON counts them and the per-image CSV marks
    each (train / val as in split.csv); the files without a partner, named in a note, are listed in the JSON."""
    run, data = own
    summary, rows, err = _evaluate(run, data, tmp_path / "ev.json", capsys)
    sides = _split(run)
    n_train, n_val = list(sides.values()).count("train"), list(sides.values()).count("val")
    assert n_train and n_val and n_train + n_val == 6
    seen = summary["in_run_split"]
    assert (seen["train"], seen["val"], seen["of"], seen["by"]) == (n_train, n_val, 6, "names in its data folder")
    assert seen["split_csv"] == str((run / "split.csv").resolve()) and Path(seen["run"]).is_absolute()
    said = (f"note: {n_train} of 6 images are training samples of the run run (its split.csv, the very data folder it "
            "trained on, matched by name)")
    assert said in err and "not a held-out measure" in err and f"{n_val} more are its validation samples" in err
    assert any("not a held-out measure" in n for n in summary["notes"])
    assert {r["file"]: r["run_side"] for r in rows} == sides
    assert summary["unmatched"] == ["images/lonely.png"]
    assert "listed in the metrics JSON ('unmatched')" in err


def test_copies_and_renamed_files_are_matched_by_their_contents(own, tmp_path, capsys):
    """Two of the run's images copied under other names (cellpose's layout, masks beside them) beside a new image:
    the copies are the run's samples (by contents), the new one is not; a folder of new images gets no note."""
    run, data = own
    sides = _split(run)
    picked = [next(s for s, side in sides.items() if side == want) for want in ("train", "val")]
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i, sample in enumerate(picked):
        stem = Path(sample).stem
        shutil.copyfile(data / sample, mixed / f"copy{i}.png")
        shutil.copyfile(data / "masks" / f"{stem}_labels.tif", mixed / f"copy{i}_masks.tif")
    fresh = make_pairs(tmp_path / "fresh", groups=1, per_group=2, size=32, seed=7)
    shutil.copyfile(fresh / "images" / "emb0_t000.png", mixed / "new.png")
    shutil.copyfile(fresh / "masks" / "emb0_t000_labels.tif", mixed / "new_masks.tif")
    summary, rows, err = _evaluate(run, mixed, tmp_path / "mixed.json", capsys)
    assert {r["file"]: r["run_side"] for r in rows} == {"copy0.png": "train", "copy1.png": "val", "new.png": "none"}
    assert (summary["in_run_split"]["train"], summary["in_run_split"]["val"]) == (1, 1)
    assert "1 of 3 images is a training sample of the run run" in err
    assert "1 more is one of its validation samples" in err

    summary, rows, err = _evaluate(run, fresh, tmp_path / "fresh.json", capsys)
    seen = summary["in_run_split"]
    assert (seen["train"], seen["val"], seen["of"]) == (0, 0, 2)
    assert {r["run_side"] for r in rows} == {"none"} and "held-out" not in err and summary["unmatched"] == []


def test_without_the_training_folder_images_are_matched_by_name(own, tmp_path):
    """Where the data folder run.json records is gone, the sample names say it (and the note says how it matched);
    a region of a one-image split (NAME[y0:y1, x0:x1]) is its image's; no split.csv: nothing is said."""
    from devolens.train.evaluate import run_sides, seen_note

    run, data = own
    fake = tmp_path / "run"
    fake.mkdir()
    (fake / "run.json").write_text(json.dumps({"data": {"path": str(tmp_path / "gone")}}))
    pd.DataFrame({"sample": ["images/emb0_t000.png[0:16, 0:32]", "images/emb0_t000.png[16:32, 0:32]",
                             "images/emb0_t001.png"], "group": ["r0c0", "r1c0", "x"],
                  "side": ["val", "train", "val"]}).to_csv(fake / "split.csv", index=False)
    df = index_dataset(data)
    df = df[df["labels"].notna()].reset_index(drop=True)
    sides, how, _ = run_sides(fake, df)
    got = dict(zip(df["sample"], sides))
    # (an image whose regions both trained and validated is said so since session 48: train+val)
    assert how == "names" and got["images/emb0_t000.png"] == "train+val" and got["images/emb0_t001.png"] == "val"
    assert set(got.values()) == {"train+val", "val", "none"}
    said = seen_note({"train": 1, "val": 1, "of": 6, "by": how, "run": str(fake)})
    assert "matched by name: the run's data folder is not there to compare their contents" in said
    (fake / "split.csv").unlink()
    assert run_sides(fake, df) is None


# ---------------------------------------------------------------------------- models export
@pytest.fixture
def fine_tuned(own, tmp_path):
    """A copy of the run whose run.json says, as a fine-tuning's does, that no epoch beat its starting weights."""
    run, _ = own
    copy = tmp_path / "ft1"
    shutil.copytree(run, copy)
    record = json.loads((copy / "run.json").read_text())
    verdict = ("no epoch beat the starting weights (zoo:nuclei: val_f1 0.9000 before the first epoch; best epoch 1: "
               "val_f1 0.1000): keep the zoo model 'nuclei', or fine-tune again with a lower optimizer.lr or more "
               "epochs")
    record["start"] = {"init": "zoo:nuclei", "monitor": "val_f1", "value": 0.9, "not_beaten": verdict}
    (copy / "run.json").write_text(json.dumps(record))
    return copy, verdict


def test_export_says_no_epoch_beat_the_starting_weights(fine_tuned, tmp_path, monkeypatch, capsys):
    """card.md said nothing of a fine-tuning that did not beat its start (card.json's trained.note): now the note heads
    card.md and the console, beside the starting score; the run and its split.csv are named by absolute paths (the
    card said "the run's split.csv lists which", a file not in the folder); the command is recorded as typed, without
    the --kind nuclei --scale 1 the user never gave."""
    run, verdict = fine_tuned
    monkeypatch.chdir(tmp_path)
    argv = ["models", "export", run.name, "--to", "exp1"]
    monkeypatch.setattr(sys, "argv", ["devolens", *argv])
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err.replace("\n", " ")
    assert "starting weights (zoo:nuclei): val_f1 0.900 before the first epoch" in err
    assert f"note: {verdict}" in err
    card = json.loads((tmp_path / "exp1" / "card.json").read_text())
    md = (tmp_path / "exp1" / "card.md").read_text()
    assert md.splitlines()[2] == f"**Note:** {verdict}."
    assert "the starting weights (zoo:nuclei): val_f1 0.9000 before the first epoch, on the same validation split" in md
    split_csv = str((run / "split.csv").resolve())
    assert card["trained"]["run"] == str(run.resolve()) and card["exported"]["from"] == str(run.resolve())
    assert card["trained"]["split_csv"] == split_csv and f"listed in the run's {split_csv}" in md
    assert "split.csv lists which" not in md
    assert card["command"].endswith("; devolens models export ft1 --to exp1") and "--kind" not in card["command"]


def test_export_from_python_records_the_options_given(fine_tuned, tmp_path):
    """A library call records its equivalent command with the options it gave, none it did not."""
    run, _ = fine_tuned
    card = export_run(run, tmp_path / "e1")
    assert card["command"].endswith(f"; devolens models export {run} --to {tmp_path / 'e1'}")
    card = export_run(run, tmp_path / "e2", kind="nuclei", scale=0.5)
    assert card["command"].endswith(f"--to {tmp_path / 'e2'} --kind nuclei --scale 0.5")
    assert card["input"]["scale"] == 0.5 and card["task"] == "nuclei"
