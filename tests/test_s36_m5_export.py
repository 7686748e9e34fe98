"""``devolens models export NAME`` copies a shipped model; ``models show`` says where a model's files are and which
weights they are; an exported run's card says what the folder alone cannot (recipe, data, commands, versions, the
post-processing applied)."""

from __future__ import annotations

import json
import shutil

import pytest

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.models import zoo
from devolens.models.export import POSTPROCESS_DEFAULTS, export_run, export_shipped
from devolens.provenance import file_sha256, version
from test_models_export import run  # noqa: F401  (a fixture: a one-epoch segmentation run)


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------- models export NAME
def test_exporting_a_shipped_model_copies_its_folder(tmp_path, capsys):
    """`models export nuclei --to DIR` (it said "not a training run: no such folder") copies the shipped folder as it
    ships: weights, card.json, card.md and the size models and ONNX graphs the card names, byte for byte, the weights matching the
    card's weights_sha256; again into the same folder replaces it, a folder holding other files is refused, and
    --kind / --scale (a run's options) are refused before anything is written."""
    out = tmp_path / "my_nuclei"
    assert main(["models", "export", "nuclei", "--to", str(out)]) == 0
    err = capsys.readouterr().err
    shipped = zoo.ZOO_DIR / "nuclei"
    assert _names(out) == ["card.json", "card.md", "onnx_encoder.onnx", "onnx_int8.onnx", "onnx_int8.safetensors",
                           "size_model.safetensors", "size_model_backdrop.safetensors", "weights.safetensors"]
    for name in _names(out):
        assert (out / name).read_bytes() == (shipped / name).read_bytes(), name
    card = json.loads((out / "card.json").read_text())
    assert card["weights_sha256"] == file_sha256(out / "weights.safetensors")
    assert "nuclei (shipped) ->" in err and f"--model {out}" in err
    assert zoo.load(out).size_model is not None  # the copy estimates the magnification as the shipped model does

    assert main(["models", "export", "nuclei", "--to", str(out)]) == 0  # an earlier export: replaced
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["models", "export", "nuclei", "--to", str(out)]) == 2
    assert "not an empty folder or an earlier export" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    assert main(["models", "export", "nuclei", "--to", str(tmp_path / "x"), "--scale", "0.5"]) == 2
    assert "--kind and --scale apply to a training run" in capsys.readouterr().err and not (tmp_path / "x").exists()
    with pytest.raises(DevolensError, match="shipped nuclei model's own folder"):
        export_shipped("nuclei", shipped)
    with pytest.raises(DevolensError, match="no model named 'nope'"):
        export_shipped("nope", tmp_path / "y")


def test_a_run_exported_over_a_shipped_copy_leaves_no_size_models(run, tmp_path):  # noqa: F811
    """An earlier export of a shipped model (size models beside the weights) replaced by a run's: the folder then
    holds the run's export alone (no size model its card does not name)."""
    out = tmp_path / "exp"
    export_shipped("membrane", out)
    assert "size_model.safetensors" in _names(out)
    export_run(run, out)
    assert _names(out) == ["card.json", "card.md", "weights.safetensors"]
    export_shipped("membrane", out)  # and back
    assert "size_model.safetensors" in _names(out)


def test_a_folder_named_like_a_shipped_model_is_given_as_a_path(run, tmp_path, monkeypatch, capsys):  # noqa: F811
    """A run folder called nuclei in the working directory: `models export nuclei` copies the shipped model (a name
    is the shipped model's, as for --model) and says how to give the folder; ./nuclei exports the run."""
    shutil.copytree(run, tmp_path / "nuclei")
    monkeypatch.chdir(tmp_path)
    assert main(["models", "export", "nuclei", "--to", "a"]) == 0
    assert "give ./nuclei" in capsys.readouterr().err
    assert main(["models", "export", "./nuclei", "--to", "b"]) == 0
    assert json.loads((tmp_path / "b" / "card.json").read_text())["summary"].startswith("nuclei segmentation of your")


# ---------------------------------------------------------------------------- models show: files and sha256
def test_models_show_says_where_the_files_are_and_their_sha256(tmp_path, capsys):
    """`models show NAME` ends with the model's folder and its weights' sha256; --json adds "files" (folder,
    weights file, bytes, sha256) to the card; weights that are not those the card records are warned of."""
    digest = file_sha256(zoo.ZOO_DIR / "nuclei" / "weights.safetensors")
    assert main(["models", "show", "nuclei"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert str((zoo.ZOO_DIR / "nuclei").resolve()) in text and digest in text
    assert main(["models", "show", "nuclei", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["files"].pop("model_sha256") and shown["files"].pop("safetensors")  # (the records' digests)
    assert [f["file"] for f in shown["files"].pop("onnx")] == ["onnx_encoder.onnx", "onnx_int8.onnx"]
    assert shown["files"] == {"folder": str((zoo.ZOO_DIR / "nuclei").resolve()),
                              "weights": {"file": "weights.safetensors",
                                          "bytes": (zoo.ZOO_DIR / "nuclei" / "weights.safetensors").stat().st_size,
                                          "sha256": digest}}
    assert shown["weights_sha256"] == digest and shown["task"] == "nuclei"  # the card as it is, besides
    out = tmp_path / "copy"
    export_shipped("population", out)
    shutil.copy(zoo.ZOO_DIR / "membrane" / "weights.safetensors", out / "weights.safetensors")
    assert main(["models", "show", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "weights_sha256" in captured.err
    assert json.loads(captured.out)["files"]["weights"]["sha256"] == file_sha256(out / "weights.safetensors")


# ---------------------------------------------------------------------------- an exported run's card
def test_an_exported_runs_card_describes_itself(run, tmp_path):  # noqa: F811
    """The exported card carries the run's recipe (its content, not a path into the run), its data (path, samples,
    fingerprint of run.json), the training command as run (no <data> placeholder), the devolens and torch versions
    of the training and of the export, the post-processing the predictor applies (its defaults written out, no empty
    heading in card.md), how devolens runs the network and the weights' sha256."""
    record = json.loads((run / "run.json").read_text())
    best = json.loads((run / "best.json").read_text())
    out = tmp_path / "exp"
    export_run(run, out)
    card = json.loads((out / "card.json").read_text())
    md = (out / "card.md").read_text()
    assert card["recipe"] == best["recipe"] and '"name": ' in md
    data = record["data"]
    assert data["path"] in card["training_data"] and data["fingerprint"] in card["training_data"]
    assert card["trained"]["data"] == {k: data[k] for k in ("path", "samples", "fingerprint")}
    # (trained through the Python API, the fixture's run records no command line: the equivalent, with its data)
    assert record["command"] is None and card["command"].startswith(f"devolens train <recipe: the card's> --data "
                                                                    f"{data['path']} --out {run}")
    assert card["trained"]["devolens"] == record["devolens"] and card["exported"]["devolens"] == version()
    assert card["exported"]["torch"] and "Trained with devolens" in md
    assert card["postprocess"] == POSTPROCESS_DEFAULTS["nuclei"]
    section = md.split("## Post-processing")[1].split("##")[0]
    assert "**min_size**: 8" in section and "**threshold**: 0.5" in section
    assert card["inference"]["probability"].startswith("1 - p(background)")
    assert card["weights_sha256"] == file_sha256(out / "weights.safetensors")
    assert zoo.load(out).postprocess_options == POSTPROCESS_DEFAULTS["nuclei"]


def test_an_exported_runs_command_is_the_one_run(run, tmp_path):  # noqa: F811
    """A run trained from the command line (run.json's sessions record each command; a resumed run's same command
    once): the card's command is those commands, then the export's."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    record = json.loads((copy / "run.json").read_text())
    first, resumed = "devolens train r.yaml --data d --out run", "devolens train r.yaml --data d --out run --resume"
    record["command"] = resumed
    record["sessions"] = [{"command": first}, {"command": first}, {"command": resumed}]
    (copy / "run.json").write_text(json.dumps(record))
    card = export_run(copy, tmp_path / "exp")
    assert card["command"].startswith(f"{first}; {resumed}; devolens models export {copy}")


def test_a_runs_card_shown_names_the_defaults_it_applies(run, capsys):  # noqa: F811
    """`models show RUN` (a card made from the run, its postprocess {}): the Post-processing section lists the
    predictor's defaults, said to be defaults, instead of an empty heading."""
    assert main(["models", "show", str(run)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    section = text.split("Post-processing")[1].split("Inference")[0].split("Training data")[0]
    assert "min_size: 8 (the predictor's default)" in section
