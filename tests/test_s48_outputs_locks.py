"""Session 48: outputs and locks.

- ``lineage convert`` and ``clean`` name their ``.meta.json`` by the CSV's stem: ``--out in.tsv`` (or ``in.txt``,
  ``in``) replaced the input ``in.csv``'s own ``in.meta.json`` without a word; now refused, as ``populations`` refuses
  ``--out in.meta.json``.
- ``tune`` locks its ``--out`` for the whole study: two calls on one ``--out`` both ran a trial (two for
  ``--trials 1``), each printing its own best; now the second is refused, as ``train`` refuses a second run.
- ``train`` named an output it could not write by its absolute path (``/home/.../run/best.safetensors``): the
  temporary files of ``write_together`` and ``atomic_path`` are now named as the output is.
- ``segment livedead`` says when instances.tif is uint32 (over 65535 nuclei), names probs.tif and instances.tif in
  its summary line, and compresses labels.tif and instances.tif (deflate, as ``segment nuclei``'s label TIFFs).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from devolens.cli import main
from devolens.errors import DevolensError


def run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ---------------------------------------------------------------------------------------- lineage convert / clean


@pytest.fixture()
def table(tmp_path, capsys) -> Path:
    """A simulated embryo's table with its ``.meta.json`` (the simulation's record), as the walkthrough's in.csv."""
    code, _, err = run(["simulate", "embryo", "--out", str(tmp_path / "in.csv"), "--seed", "1", "--cells", "60"],
                       capsys)
    assert code == 0, err
    assert (tmp_path / "in.meta.json").is_file()
    return tmp_path / "in.csv"


@pytest.mark.parametrize("command", ["convert", "clean"])
@pytest.mark.parametrize("name", ["in.tsv", "in.txt", "in"])
def test_lineage_out_whose_sidecar_is_the_inputs_is_refused(table, capsys, command, name):
    meta = table.with_name("in.meta.json")
    before = meta.read_bytes()
    out = table.with_name(name)
    code, _, err = run(["lineage", command, str(table), "--out", str(out)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"error: {out}: its metadata goes to in.meta.json beside it: output would overwrite in.meta.json, read " \
           "with in.csv" in err
    assert meta.read_bytes() == before  # the simulation's record kept
    assert not out.exists()


@pytest.mark.parametrize("command", ["convert", "clean"])
def test_lineage_out_elsewhere_still_written(table, capsys, command):
    out = table.with_name("other.tsv")
    code, _, err = run(["lineage", command, str(table), "--out", str(out)], capsys)
    assert code == 0, err
    record = json.loads(table.with_name("other.meta.json").read_text())
    assert record["command"].startswith(f"devolens lineage {command}")
    assert "seed" in json.loads(table.with_name("in.meta.json").read_text())  # the input's own, as it was


def test_lineage_sidecar_that_is_a_folder_is_refused_before_work(table, capsys):
    (table.parent / "d.meta.json").mkdir()
    code, _, err = run(["lineage", "convert", str(table), "--out", str(table.with_name("d.csv"))], capsys)
    assert code == 2
    assert "d.csv: its metadata goes to d.meta.json beside it: output path is a folder" in err
    assert not table.with_name("d.csv").exists()


# ---------------------------------------------------------------------------------------- tune's lock


def _recipe() -> dict:
    from _train_data import tiny_recipe

    return tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                       tune={"trials": 1, "epochs": 1, "space": {
                           "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}})


@pytest.fixture()
def tune_data(tmp_path, monkeypatch) -> Path:
    """A data folder, read once (``train`` is faked by each test: no real training)."""
    pytest.importorskip("optuna")
    import devolens.train.trainer as trainer
    from _train_data import make_pairs
    from devolens.train.recipe import load_recipe, resolved

    folder = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    bundle = trainer.build_data(resolved(load_recipe(_recipe())), folder)
    monkeypatch.setattr(trainer, "build_data", lambda res, where: bundle)
    return folder


def _fake_train(monkeypatch, during=None) -> list:
    import devolens.train.trainer as trainer

    trained: list = []

    def train(rec, folder, out, **kw):
        Path(out).mkdir(parents=True, exist_ok=True)
        trained.append(Path(out))
        if during is not None:
            during(Path(out))
        return SimpleNamespace(best_value=0.5, start_value=None, start_note=None)

    monkeypatch.setattr(trainer, "train", train)
    return trained


def test_second_tune_on_the_same_out_is_refused(tmp_path, tune_data, monkeypatch):
    optuna = pytest.importorskip("optuna")
    from devolens.train.tuning import tune

    out = tmp_path / "tu"
    second: list = []

    def during(_run):  # while the first call's trial trains, a second call on the same --out
        try:
            tune(_recipe(), tune_data, out, trials=1)
        except DevolensError as exc:
            second.append(exc)
        else:
            second.append(None)

    trained = _fake_train(monkeypatch, during)
    res = tune(_recipe(), tune_data, out, trials=1)
    assert len(second) == 1 and isinstance(second[0], DevolensError), second
    assert "another devolens run is writing here" in str(second[0])
    assert second[0].path == out
    assert len(trained) == 1  # the second trained nothing
    study = optuna.load_study(study_name=res.study_name, storage=res.storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"]
    # the lock goes with the call: the same command again goes on (no trial to add: --trials 1 holds)
    again = tune(_recipe(), tune_data, out, trials=2)
    assert again.n_new == 1
    assert not (tmp_path / ".tu.lock").exists()


def test_tune_workers_with_their_own_out_share_a_storage(tmp_path, tune_data, monkeypatch):
    # (as documented: separate --out folders sharing --storage keep working, the second while the first runs)
    optuna = pytest.importorskip("optuna")
    from devolens.train.tuning import tune

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    other: list = []

    def during(run_dir):
        if run_dir.parent.parent.name == "a" and not other:  # (a's first trial: b runs meanwhile)
            other.append(None)
            other[0] = tune(_recipe(), tune_data, tmp_path / "b", trials=3, storage=storage)

    _fake_train(monkeypatch, during)
    tune(_recipe(), tune_data, tmp_path / "a", trials=3, storage=storage)
    study = optuna.load_study(study_name=other[0].study_name, storage=storage)
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 3


def test_a_refused_tune_leaves_no_folder(tmp_path, tune_data, monkeypatch):
    from devolens.io.atomic import output_lock
    from devolens.train.tuning import tune

    monkeypatch.chdir(tmp_path)
    out = Path("new") / "tu"
    (tmp_path / "new").mkdir()
    lock = output_lock(out)  # another run holds it
    try:
        with pytest.raises(DevolensError) as got:
            tune(_recipe(), tune_data, out, trials=1)
    finally:
        lock.release()
    assert str(got.value).startswith("new/tu: another devolens run is writing here (pid ")  # named as given
    assert not out.exists()


def test_trains_lock_refusal_names_the_folder_as_given(tmp_path, monkeypatch):
    from _train_data import make_pairs, tiny_recipe
    from devolens.io.atomic import output_lock
    from devolens.train.trainer import train

    make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    monkeypatch.chdir(tmp_path)
    lock = output_lock(Path("o_tr"))
    try:
        with pytest.raises(DevolensError) as got:
            train(tiny_recipe(train={"epochs": 1}), "data", "o_tr")
    finally:
        lock.release()
    assert str(got.value).startswith("o_tr: another devolens run is writing here (pid ")


# ---------------------------------------------------------------------------------------- errors named as given


def _efbig_save_file(*args, **kwargs):
    from safetensors import SafetensorError

    raise SafetensorError("I/O error: File too large (os error 27)")


def test_a_models_write_error_names_the_output_as_given(tmp_path, monkeypatch):
    # train's best.safetensors (save_model: write_together, save_tensors): `o_tr/best.safetensors`, as typed
    import safetensors.torch
    import torch

    from devolens.models.architectures import save_model

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(safetensors.torch, "save_file", _efbig_save_file)
    with pytest.raises(DevolensError) as got:
        save_model(torch.nn.Linear(2, 2), Path("o_tr") / "best.safetensors")
    assert str(got.value) == "o_tr/best.safetensors: cannot write output: File too large"
    assert [p.name for p in (tmp_path / "o_tr").iterdir()] == []  # nor a temporary left


def test_atomic_paths_temporary_is_named_as_the_output(tmp_path, monkeypatch):
    from devolens.io.atomic import atomic_path, cannot_write_errno

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DevolensError) as got:
        with atomic_path(Path("run") / "samples" / "epoch_000.npz") as tmp:
            assert not tmp.is_absolute() and tmp.parent == Path("run/samples")
            raise cannot_write_errno(27, tmp)
    assert str(got.value) == "run/samples/epoch_000.npz: cannot write output: File too large"


def test_train_cli_names_its_outputs_as_given(tmp_path, monkeypatch, capsys):
    # the walkthrough's command under `ulimit -f 100`: best.safetensors refused, named as --out was typed
    import safetensors.torch

    from _train_data import make_pairs, tiny_recipe
    from devolens.train.recipe import dump_recipe

    make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    recipe = tmp_path / "r.yaml"
    dump_recipe(tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0}), recipe)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(safetensors.torch, "save_file", _efbig_save_file)
    code, _, err = run(["train", "r.yaml", "--data", "data", "--out", "o_tr", "--no-plots"], capsys)
    assert code != 0
    assert "error: o_tr/" in err and "cannot write output: File too large" in err, err
    assert str(tmp_path) not in err


# ---------------------------------------------------------------------------------------- segment livedead


def _simulated_well(tmp_path, capsys) -> Path:
    code, _, err = run(["simulate", "well", "--out", str(tmp_path / "w.tif"), "--labels", str(tmp_path / "wl.tif"),
                        "--size", "160x200", "--seed", "2"], capsys)
    assert code == 0, err
    return tmp_path / "w.tif"


def test_livedead_compresses_its_labels_and_names_every_file(tmp_path, capsys):
    image = _simulated_well(tmp_path, capsys)
    out = tmp_path / "ld"
    code, stdout, err = run(["segment", "livedead", str(image), "--out", str(out), "--instances", "--probabilities",
                             "--pixel-size", "0.5", "--no-overlay"], capsys)
    assert code == 0, err
    assert f"wrote {out}/labels.tif, objects.csv, counts.csv, probs.tif, instances.tif: " in stdout + err
    import pandas as pd

    from devolens.io.stacks import pixel_size

    rows = pd.read_csv(out / "objects.csv")
    for name, dtype in (("labels.tif", np.uint8), ("instances.tif", np.uint16)):
        with tifffile.TiffFile(out / name) as tf:
            assert tf.pages[0].compression == 8  # deflate, as segment nuclei's label TIFFs
            assert tf.pages[0].dtype == dtype and tf.is_imagej
        assert pixel_size(out / name) == (0.5, 0.5, "µm")
    labels, inst = tifffile.imread(out / "labels.tif"), tifffile.imread(out / "instances.tif")
    assert inst.max() == len(rows) and set(np.unique(labels)) <= {0, 1, 2}
    assert ((inst > 0) == (labels > 0)).all()
    assert "uint32" not in stdout + err


def test_livedead_plate_summary_names_its_folders(tmp_path, capsys):
    image = _simulated_well(tmp_path, capsys)
    plate = tmp_path / "plate"
    plate.mkdir()
    shutil.copy(image, plate / "a.tif")
    out = tmp_path / "ldp"
    code, stdout, err = run(["segment", "livedead", str(plate), "--out", str(out), "--instances", "--no-overlay"],
                            capsys)
    assert code == 0, err
    assert f"wrote {out}: 1 wells, labels/, objects.csv, counts.csv (a row per well), instances/: " in stdout + err
    with tifffile.TiffFile(out / "instances" / "a_instances.tif") as tf:
        assert tf.pages[0].compression == 8


def test_livedead_says_when_instances_are_uint32(tmp_path, capsys, monkeypatch):
    # a synthetic well result of 70000 objects (no 65536 real nuclei): segment_livedead_file faked, writing its files
    # as the real one does (uncompressed, in place: TiffRowWriter)
    from devolens.predict import livedead
    from devolens.predict.tiled import TiffRowWriter

    n = 70000
    ids = np.arange(1, n + 1, dtype=np.uint32).reshape(175, 400)

    def fake(path, out_dir, **kw):
        out_dir = Path(out_dir)
        with TiffRowWriter(out_dir / "labels.tif", ids.shape, np.uint8) as w:
            w.write(0, np.ones(ids.shape, np.uint8))
        with TiffRowWriter(out_dir / "instances.tif", ids.shape, np.uint32) as w:
            w.write(0, ids)
        (out_dir / "objects.csv").write_text("well,id,x,y,area,class\n")
        (out_dir / "counts.csv").write_text(f"well,live,dead,fraction_dead\nw,{n},0,0.0\n")
        return {"live": n, "dead": 0, "fraction_dead": 0.0}

    monkeypatch.setattr(livedead, "segment_livedead_file", fake)
    image = tmp_path / "w.tif"
    tifffile.imwrite(image, np.zeros((2, 175, 400), np.uint16))
    out = tmp_path / "big"
    code, stdout, err = run(["segment", "livedead", str(image), "--out", str(out), "--instances", "--no-overlay"],
                            capsys)
    assert code == 0, err
    said = "w: over 65535 nuclei, so instances.tif is uint32 (uint16 numbers 65535 at most)"
    assert f"note: {said}" in stdout + err
    assert said in json.loads((out / "livedead.json").read_text())["notes"]
    with tifffile.TiffFile(out / "instances.tif") as tf:
        assert tf.pages[0].compression == 8 and tf.pages[0].dtype == np.uint32
    assert np.array_equal(tifffile.imread(out / "instances.tif"), ids)


def test_segment_nuclei_says_uint32_in_the_same_words():
    from devolens.cli.predict import _giants_note

    note = _giants_note([("big", (300, 300), 4, True)], "nuclei")
    assert note.endswith("; big: over 65535 nuclei, so the label TIFF is uint32 (uint16 numbers 65535 at most)")
