"""What the outputs record of how they were made: ``devolens identify``'s JSON beside its CSV, and a training
run's threads, versions, command line (each session, --resume included) and starting weights' sha256."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest
import torch
import yaml

from _train_data import make_pairs, tiny_recipe
from test_identity import needs_zoo, toy_embryo


def _cli(args):
    from devolens.cli import main

    return main(args)


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- identify
@needs_zoo
def test_identify_writes_its_record_beside_the_csv(tmp_path, capsys, monkeypatch, keep_threads):
    import devolens.predict.identity as identity
    from devolens import __version__
    from devolens.models import zoo

    src = tmp_path / "toy.csv"
    toy_embryo(times=3).to_csv(src, index=False)
    out = tmp_path / "cells.csv"
    used = []  # the z-scale the model's embryo frame really used
    real = identity.embryo_frame
    monkeypatch.setattr(identity, "embryo_frame", lambda *a, **k: used.append(real(*a, **k).zscale) or real(*a, **k))
    monkeypatch.setattr(sys, "argv", ["/opt/bin/devolens", "identify", str(src), "--out", str(out), "--tta", "1"])
    (tmp_path / "cells.json").write_text("old")  # a file there is replaced, as the CSV is
    assert _cli(["identify", str(src), "--out", str(out), "--tta", "1"]) == 0
    rec = json.loads((tmp_path / "cells.json").read_text())
    assert rec["command"] == f"devolens identify {src} --out {out} --tta 1"
    assert rec["model"] == "identity" and rec["weights_sha256"] == zoo.weights_sha256("identity")
    assert rec["weights_sha256"] == _sha(zoo.ZOO_DIR / "identity" / "weights.safetensors")
    assert rec["devolens"] and rec["devolens"].split(".")[0] == __version__.split(".")[0]
    assert rec["torch"] == torch.__version__.split("+")[0] or rec["torch"] == torch.__version__
    assert rec["options"] == {"tta": 1, "smooth": "lineage", "threads": None, "mirror": False, "orient": "auto"}
    assert rec["zscale"]["by"] == "estimated"
    assert rec["zscale"]["per_embryo"] == {"toy": pytest.approx(used[0], rel=1e-5)}
    assert any("stops at" in n for n in rec["notes"])  # the notes printed
    assert rec["output"] == str(out.absolute())
    capsys.readouterr()

    monkeypatch.setattr(identity, "embryo_frame", real)
    monkeypatch.setattr(sys, "argv", ["pytest"])  # not the devolens program (a library call): the command's name
    assert _cli(["identify", str(src), "--out", str(out), "--tta", "2", "--smooth", "none", "--zscale", "0.8"]) == 0
    rec = json.loads((tmp_path / "cells.json").read_text())
    assert rec["zscale"] == {"by": "given", "value": 0.8}
    assert rec["options"] == {"tta": 2, "smooth": "none", "threads": None, "mirror": False, "orient": "auto"}
    assert rec["command"] == "devolens identify"


@needs_zoo
def test_identify_refuses_a_folder_where_its_record_goes(tmp_path, capsys, keep_threads):
    src = tmp_path / "toy.csv"
    toy_embryo(times=2).to_csv(src, index=False)
    (tmp_path / "cells.json").mkdir()
    out = tmp_path / "cells.csv"
    assert _cli(["identify", str(src), "--out", str(out)]) == 2
    assert not out.exists() and "is a folder" in capsys.readouterr().err


def test_identify_record_is_never_the_csv_nor_the_input(tmp_path, capsys):
    from devolens.cli.identify import record_path

    assert record_path(tmp_path / "a.csv") == tmp_path / "a.json"
    assert record_path(tmp_path / "a.json") == tmp_path / "a.record.json"
    src = tmp_path / "cells.json"  # a table named .json: its record path would replace it
    src.write_text("time,x,y,z\n1,1,2,3\n")
    before = src.read_bytes()
    assert _cli(["identify", str(src), "--out", str(tmp_path / "cells.csv")]) == 2
    assert src.read_bytes() == before and "overwrite the input" in capsys.readouterr().err


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=3, per_group=4, size=64)


def test_train_records_threads_versions_command_and_sessions(pairs, tmp_path, monkeypatch, keep_threads):
    from devolens.cli import _version

    recipe = tmp_path / "r.yaml"  # threads not set in the recipe: --threads says it
    recipe.write_text(yaml.safe_dump(tiny_recipe(train={"epochs": 1, "batch_size": 4, "overlay_samples": 0})))
    run = tmp_path / "run"
    argv = ["train", str(recipe), "--data", str(pairs), "--out", str(run), "--threads", "1"]
    monkeypatch.setattr(sys, "argv", ["devolens", *argv])
    assert _cli(argv) == 0
    assert yaml.safe_load((run / "recipe.yaml").read_text())["train"]["threads"] == 1
    assert json.loads((run / "best.json").read_text())["recipe"]["train"]["threads"] == 1
    info = json.loads((run / "run.json").read_text())
    assert info["threads"] == 1 and info["torch"] == torch.__version__ and info["devolens"] == _version()
    assert info["command"] == "devolens " + " ".join(argv)
    assert info["init"] is None
    assert info["sessions"] == [{"from_epoch": 0, "command": info["command"], "threads": 1,
                                 "devolens": _version(), "torch": torch.__version__}]

    again = ["train", str(recipe), "--data", str(pairs), "--out", str(run), "--resume", "--epochs", "2",
             "--threads", "2"]
    monkeypatch.setattr(sys, "argv", ["devolens", *again])
    assert _cli(again) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["epochs_done"] == 2
    assert info["threads"] == 2 and info["command"] == "devolens " + " ".join(again)  # the latest session
    assert [(s["from_epoch"], s["threads"]) for s in info["sessions"]] == [(0, 1), (1, 2)]
    assert info["sessions"][0]["command"] == "devolens " + " ".join(argv)
    assert yaml.safe_load((run / "recipe.yaml").read_text())["train"]["threads"] == 1  # the run's own recipe


def test_train_records_threads_in_use_and_init_weights(pairs, tmp_path, keep_threads):
    from devolens.train.trainer import train

    torch.set_num_threads(2)
    first = train(tiny_recipe(train={"epochs": 1, "batch_size": 4, "overlay_samples": 0}), pairs, tmp_path / "a")
    info = json.loads((first.run_dir / "run.json").read_text())
    assert info["threads"] == 2 and info["command"] is None  # torch's count in use; a library call
    assert yaml.safe_load((first.run_dir / "recipe.yaml").read_text())["train"]["threads"] is None
    rec = tiny_recipe(train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    rec["model"]["init"] = str(first.run_dir)
    second = train(rec, pairs, tmp_path / "b")
    info = json.loads((second.run_dir / "run.json").read_text())
    assert info["threads"] == 1
    best = first.run_dir / "best.safetensors"
    assert info["init"] == {"source": str(first.run_dir), "file": str(best.resolve()), "sha256": _sha(best)}
