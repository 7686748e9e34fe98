"""Provenance: which weights made an output and how (weights_sha256, segment.json, population's .json)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main


def _folder(path: Path, n=3) -> Path:
    from devolens.io.images import write_png

    path.mkdir()
    for i in range(n):
        rng = np.random.default_rng(i)
        yy, xx = np.mgrid[:48, :70]
        img = np.zeros((48, 70), np.float32)
        for _ in range(5):
            cy, cx = rng.uniform(5, 43), rng.uniform(5, 65)
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20.0)
        write_png((np.clip(img, 0, 1) * 220).astype(np.uint8), path / f"t{i + 1:03d}.png")
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_weights_sha256_of_zoo_names_folders_and_runs(tiny_zoo, tmp_path):
    from devolens.errors import DevolensError
    from devolens.models import zoo

    expected = _sha(tiny_zoo / "nuclei" / "weights.safetensors")
    assert zoo.weights_sha256("nuclei") == expected and len(expected) == 64
    assert zoo.weights_sha256(tiny_zoo / "nuclei") == expected  # an exported-style folder
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(b"weights of a run")
    assert zoo.weights_sha256(run) == hashlib.sha256(b"weights of a run").hexdigest()
    # cached per path and mtime: a rewritten file is hashed again
    (run / "best.safetensors").write_bytes(b"other weights")
    os.utime(run / "best.safetensors", ns=(1, 10**18))
    assert zoo.weights_sha256(run) == hashlib.sha256(b"other weights").hexdigest()
    with pytest.raises(DevolensError):
        zoo.weights_sha256("no_such_model")
    (tiny_zoo / "membrane" / "weights.safetensors").unlink()
    with pytest.raises(DevolensError, match="weights not found"):
        zoo.weights_sha256("membrane")


def test_models_list_and_show_print_the_digest(tiny_zoo, capsys):
    from devolens.models import zoo

    digest = zoo.weights_sha256("nuclei")
    assert main(["models"]) == 0
    assert digest[:12] in capsys.readouterr().out
    assert main(["models", "show", "nuclei"]) == 0
    assert digest in capsys.readouterr().out
    assert main(["models", "show", "nuclei", "--json"]) == 0  # card.json as it is
    assert "weights_sha256" not in json.loads(capsys.readouterr().out)


def _with_reference(zoo_root: Path, diameter: float = 24.0) -> None:
    """Give the tiny nuclei card a reference object diameter (so that --diameter PX is accepted)."""
    from devolens.models import zoo

    path = zoo_root / "nuclei" / "card.json"
    card = json.loads(path.read_text())
    card["input"]["diameter"] = {"reference": diameter}
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()


def test_segment_json_records_how_the_labels_were_made(tiny_zoo, tmp_path, monkeypatch):
    from devolens.models import zoo

    _with_reference(tiny_zoo)
    src = _folder(tmp_path / "frames", n=2)
    out = tmp_path / "seg"
    argv = ["/opt/venv/bin/devolens", "segment", "nuclei", str(src), "--out", str(out), "--tta", "2",
            "--batch-size", "3", "--diameter", "20", "--no-flatten"]
    monkeypatch.setattr(sys, "argv", argv)
    assert main(argv[1:]) == 0
    record = json.loads((out / "segment.json").read_text())
    assert record["command"] == "devolens segment nuclei " + " ".join(argv[3:])
    assert record["weights_sha256"] == zoo.weights_sha256("nuclei")
    assert record["frames"] == 2 and record["model"] == "nuclei" and record["input"] == str(src)  # kept keys
    opts = record["options"]
    assert opts["tta"] == 2 and opts["batch_size"] == 3 and opts["diameter"] == 20.0 and opts["flatten"] is False
    assert opts["flatten_width"] == 0.0 and opts["precision"] == "auto" and opts["device"] == "cpu"
    assert opts["stack_z"] == "project" and opts["pages"] == "time" and opts["skip_flagged"] is None
    assert record["magnification_estimate"]["by"] == "hand"
    assert record["magnification_estimate"]["diameter"] == 20.0
    import torch

    assert record["torch"] == torch.__version__.split("+")[0] or record["torch"] == torch.__version__


def test_segment_json_without_the_programs_argv_names_the_command(tiny_zoo, tmp_path):
    """main([...]) from a script or a test: sys.argv is not the command's; the record says which command ran."""
    src = _folder(tmp_path / "frames", n=1)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "none"]) == 0
    record = json.loads((out / "segment.json").read_text())
    assert record["command"] == "devolens segment nuclei"
    assert record["magnification_estimate"] == {"by": "none", "resize": 1.0}


def test_sizing_record_says_how_the_magnification_was_decided():
    """--diameter auto: the estimate's fields; each: one entry per image, named by its frame where known."""
    from devolens.cli.predict import _sizing_record
    from devolens.predict.sizing import DiameterEstimate

    est = DiameterEstimate(diameter=50.0, magnification=np.float32(0.7), per_image=[0.7, 0.71], trusted=2,
                           resize=np.float64(0.7))
    auto = _sizing_record("auto", est, resize=0.7)
    assert auto["by"] == "auto" and auto["magnification"] == pytest.approx(0.7) and auto["diameter"] == 50.0
    assert auto["trusted"] == 2 and auto["per_image"] == [0.7, 0.71] and auto["resize"] == pytest.approx(0.7)
    json.dumps(auto)  # plain JSON (numpy scalars converted)
    assert _sizing_record("auto", None)["note"].startswith("no estimate")
    each = _sizing_record("each", estimates=[est, est], frames=["a", "b"])
    assert [e["frame"] for e in each["per_image"]] == ["a", "b"] and "per_image" not in each["per_image"][0]
    assert _sizing_record("each", estimates=[])["per_image"] is None  # not at hand: said so
    assert _sizing_record("each", estimates=[])["note"]
    assert _sizing_record(20.0) == {"by": "hand", "diameter": 20.0}
    assert _sizing_record(None, resize=1.0) == {"by": "none", "resize": 1.0}


def test_population_writes_its_record_beside_the_csv(tiny_zoo, tmp_path, monkeypatch):
    from devolens.models import zoo

    src = _folder(tmp_path / "frames", n=3)
    out = tmp_path / "pops.csv"
    argv = ["devolens", "population", str(src), "--out", str(out), "--monotone", "--no-plot"]
    monkeypatch.setattr(sys, "argv", argv)
    assert main(argv[1:]) == 0
    record = json.loads((tmp_path / "pops.json").read_text())
    assert record["command"] == "devolens population " + " ".join(argv[2:])
    assert record["model"] == "population" and record["weights_sha256"] == zoo.weights_sha256("population")
    assert record["nuclei_model"] == "nuclei" and record["nuclei_weights_sha256"] == zoo.weights_sha256("nuclei")
    assert record["precision"] in ("int8", "bf16", "fp32") and record["devolens"] and record["torch"]
    assert record["options"]["monotone"] is True and record["options"]["clock"] is False
    assert set(record["monotone_left_out"]) == {"dark", "implausible"} and record["clock"] is None
    assert record["frames"] == len(pd.read_csv(out))
    # replaced on a new run, as the CSV is
    monkeypatch.setattr(sys, "argv", ["python"])
    assert main(["population", str(src), "--out", str(out), "--no-plot"]) == 0
    again = json.loads((tmp_path / "pops.json").read_text())
    assert again["command"] == "devolens population" and again["monotone_left_out"] is None


def test_population_record_of_a_clock_fit(tiny_zoo, tmp_path):
    src = _folder(tmp_path / "frames", n=8)
    out = tmp_path / "clock.csv"
    code = main(["population", str(src), "--out", str(out), "--clock", "--no-plot"])
    if code != 0:
        pytest.skip("the tiny model's clock does not fit these frames")
    fit = json.loads((tmp_path / "clock.json").read_text())["clock"]
    assert set(fit) == {"offset", "rate", "residual"} and all(isinstance(v, float) for v in fit.values())


def test_population_refuses_a_folder_where_its_record_goes(tiny_zoo, tmp_path, capsys):
    src = _folder(tmp_path / "frames", n=2)
    (tmp_path / "pops.json").mkdir()
    assert main(["population", str(src), "--out", str(tmp_path / "pops.csv")]) == 2
    assert "pops.json" in capsys.readouterr().err and not (tmp_path / "pops.csv").exists()


def test_population_help_mentions_the_record(capsys):
    assert main(["population", "--help"]) == 0
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).replace("│", " ").split())  # however the help wraps
    assert "NAME.json records how it" in text
