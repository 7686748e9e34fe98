"""A model folder is data: its card.json is checked when read (devolens.models.zoo.check_card) so that it can name
only devolens' own predictors (never a module to import, walkthrough 31 finding 1), only files inside the folder,
and sizes within bounds, each refusal one line naming the card and the field (finding 7); the shipped cards, their
copies and a card devolens writes itself (models export) still load."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.models import zoo


def _folder(tmp_path, name="m", edit=None, source="nuclei"):
    """A model folder holding a copy of the shipped ``source`` card (no weights: every refusal here comes before
    they are read), changed by ``edit(card)``."""
    folder = tmp_path / name
    folder.mkdir()
    card = json.loads((zoo.ZOO_DIR / source / "card.json").read_text())
    if edit is not None:
        edit(card)
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def _auto(card):
    return card["input"]["diameter"]["auto"]


def _set(path, value):
    """An edit setting the card's ``path`` (dotted) to ``value``."""
    def edit(card):
        *parents, last = path.split(".")
        for key in parents:
            card = card[key]
        card[last] = value
    return edit


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# ------------------------------------------------------------------------ 1: the predictor is looked up, never imported
def test_a_card_naming_a_module_beside_it_runs_nothing(tmp_path, monkeypatch):
    folder = _folder(tmp_path, edit=_set("predictor", "s31_payload:X"))
    (folder / "s31_payload.py").write_text("import pathlib\npathlib.Path(__file__).with_name('RAN').write_text('x')\n"
                                           "class X:\n    pass\n")
    monkeypatch.syspath_prepend(str(folder))  # as `python -m devolens` run from inside the folder
    monkeypatch.chdir(folder)
    monkeypatch.delitem(sys.modules, "s31_payload", raising=False)
    with pytest.raises(DevolensError, match=r"card\.json: predictor must be one of devolens' own predictors .*"
                                            r"got 's31_payload:X'"):
        zoo.load(".")
    assert not (folder / "RAN").exists() and "s31_payload" not in sys.modules
    with pytest.raises(DevolensError, match="predictor must be"):
        zoo.card(folder)  # refused when read, before any load


@pytest.mark.parametrize("value", ["this:NucleiPredictor", "os:system", "devolens.predict.segment:SegmentPredictor",
                                   "devolens.predict.segment:NucleiPredictor ", 3])
def test_a_card_predictor_not_devolens_own_is_refused_on_the_command_line(tmp_path, capsys, monkeypatch, value):
    import imageio.v3 as iio

    monkeypatch.delitem(sys.modules, "this", raising=False)
    folder = _folder(tmp_path, edit=_set("predictor", value))
    iio.imwrite(tmp_path / "img.png", np.zeros((64, 64), np.uint8))
    code = main(["segment", "nuclei", str(tmp_path / "img.png"), "--model", str(folder),
                 "--out", str(tmp_path / "seg")])
    err = _error(capsys)
    assert code == 2 and str(folder / "card.json") in err and "predictor must be" in err and repr(value) in err
    assert "this" not in sys.modules and not (tmp_path / "seg").exists()


def test_a_card_without_a_predictor_names_the_key_and_the_usual_value(tmp_path):
    folder = _folder(tmp_path, edit=lambda card: card.pop("predictor"))
    assert zoo.card(folder)["task"] == "nuclei"  # read (evaluate --weights takes such a card for its settings)
    with pytest.raises(DevolensError, match=r"card\.json: card has no 'predictor' .*"
                                            r"'devolens\.predict\.segment:NucleiPredictor' for a nuclei model"):
        zoo.load(folder)


def test_a_shipped_card_is_held_to_the_same_list(tmp_path, monkeypatch):
    """A zoo folder of use_folder's (the maintainer's staging copy) cannot import a module either."""
    staged = tmp_path / "stage"
    staged.mkdir()
    _folder(staged, name="nuclei", edit=_set("predictor", "this:X"))
    monkeypatch.setattr(zoo, "ZOO_DIR", staged)
    zoo.card.cache_clear()
    monkeypatch.delitem(sys.modules, "this", raising=False)
    try:
        with pytest.raises(DevolensError, match=r"stage/nuclei/card\.json: predictor must be .* got 'this:X'"):
            zoo.load("nuclei")
    finally:
        zoo.card.cache_clear()
    assert "this" not in sys.modules


def test_a_card_without_an_architecture_is_refused_before_the_predictor_is_built(tmp_path):
    folder = _folder(tmp_path, edit=lambda card: card.pop("architecture"))
    assert zoo.card(folder)["task"] == "nuclei"  # still says what it is (a live/dead command refuses it so)
    with pytest.raises(DevolensError, match=r"card\.json: card has no 'architecture'"):
        zoo.load(folder)


# ---------------------------------------------------------------------------- 7: files, sizes
@pytest.mark.parametrize("edit, field, shown", [
    (lambda c: _auto(c).update(file="/etc/passwd"), "input.diameter.auto.file", "/etc/passwd"),
    (lambda c: _auto(c).update(file="../other/size_model.safetensors"), "input.diameter.auto.file", "../other"),
    (lambda c: _auto(c).update(file="~/size_model.safetensors"), "input.diameter.auto.file", "~/size"),
    (lambda c: _auto(c)["backdrop"].update(file="/etc/passwd"), "input.diameter.auto.backdrop.file", "/etc/passwd"),
    (lambda c: c.update(weights_file="/etc/passwd"), "weights_file", "/etc/passwd"),
    (lambda c: c.update(weights_file="sub/../../w.safetensors"), "weights_file", "sub/../../w"),
    (lambda c: c.update(weights_file=""), "weights_file", "''"),
])
def test_a_card_naming_a_file_outside_its_folder_is_refused(tmp_path, edit, field, shown):
    folder = _folder(tmp_path, edit=edit)
    with pytest.raises(DevolensError) as err:
        zoo.load(folder)
    text = str(err.value)
    assert text.startswith(f"{folder / 'card.json'}: {field} must name a file inside the model's folder")
    assert shown in text


def test_a_card_file_that_is_a_link_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"x")
    folder = _folder(tmp_path, edit=lambda c: _auto(c).update(file="link.safetensors"))
    (folder / "link.safetensors").symlink_to(outside)
    with pytest.raises(DevolensError, match=r"input\.diameter\.auto\.file must name a file inside"):
        zoo.card(folder)


@pytest.mark.parametrize("edit, match", [
    (_set("architecture.decoder_channels", [200000, 32, 16, 8]),
     r"architecture\.decoder_channels must be whole numbers .* from 1 to 1024, got \[200000, 32, 16, 8\]"),
    (_set("architecture.decoder_channels", 5000), r"architecture\.decoder_channels must be"),
    (_set("architecture.decoder_channels", [64, 32, 0, 8]), r"architecture\.decoder_channels must be"),
    (_set("architecture.encoder_depth", 40), r"architecture\.encoder_depth must be a whole number from 1 to 5"),
    (_set("architecture.in_channels", 0), r"architecture\.in_channels must be a whole number from 1 to 4, got 0"),
    (_set("architecture.classes", 1e9), r"architecture\.classes must be"),
    (_set("architecture.classes", True), r"architecture\.classes must be"),
    (_set("architecture.encoder_weights", "imagenet"), r"architecture\.encoder_weights must be null"),
    (_set("architecture", "a U-Net"), r"architecture is not a mapping"),
    (_set("input.multiple", 0), r"input\.multiple must be a multiple of the network's stride \(16, "
                                r"2\*\*encoder_depth\) from 16 to 512 pixels, got 0"),
    (_set("input.multiple", -16), r"input\.multiple must be"),
    (_set("input.multiple", 24), r"input\.multiple must be"),
    (_set("input.multiple", 16.0), r"input\.multiple must be"),
    (_set("input.multiple", 2 ** 20), r"input\.multiple must be"),
    (_set("input.tile", 0), r"input\.tile must be null \(whole images\) or a side from 32 .* got 0"),
    (_set("input.tile", "big"), r"input\.tile must be"),
    (_set("input.tile", 10 ** 6), r"input\.tile must be"),
])
def test_a_card_with_sizes_out_of_bounds_is_refused_naming_the_field(tmp_path, capsys, edit, match):
    folder = _folder(tmp_path, edit=edit)
    with pytest.raises(DevolensError, match=rf"^{folder / 'card.json'}: {match}"):
        zoo.card(folder)
    assert main(["models", "show", str(folder)]) == 2
    assert "card.json" in _error(capsys)


def test_an_identity_cards_network_sizes_are_bounded_too(tmp_path):
    folder = _folder(tmp_path, source="identity", edit=_set("architecture.network.width", 10 ** 7))
    with pytest.raises(DevolensError, match=r"architecture\.network\.width must be a whole number from 1 to 1024"):
        zoo.card(folder)


@pytest.mark.parametrize("value", ["/tmp/elsewhere", "../nuclei", "./nuclei", None])
def test_a_population_card_takes_its_nuclei_model_from_the_zoo_only(tmp_path, value):
    folder = _folder(tmp_path, source="population", edit=_set("nuclei_model", value))
    with pytest.raises(DevolensError, match=r"nuclei_model must be a shipped model's name .*got "):
        zoo.card(folder)


def test_a_population_cards_regressor_is_bounded_too(tmp_path):
    folder = _folder(tmp_path, source="population", edit=_set("total_regressor.config.width", 10 ** 6))
    with pytest.raises(DevolensError, match=r"total_regressor\.config\.width must be"):
        zoo.card(folder)


def test_a_runs_network_sizes_are_bounded_when_its_card_is_made(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(b"")
    (run / "best.json").write_text(json.dumps({
        "task": "segmentation", "recipe": {"name": "my_nuclei"}, "metrics": {},
        "input": {"target": "boundary", "channels": 1, "normalize": "dtype"},
        "model": {"kind": "segmentation", "arch": "unet", "encoder": "resnet18", "in_channels": 1, "classes": 3,
                  "encoder_depth": 4, "decoder_channels": [200000, 32, 16, 8]}}))
    with pytest.raises(DevolensError, match=r"run/best\.json: model\.decoder_channels must be whole numbers"):
        zoo.load(run)


# ---------------------------------------------------------------------------- what must still load
@pytest.mark.parametrize("name", zoo.available())
def test_every_shipped_card_passes_the_checks(name):
    path = zoo.ZOO_DIR / name / "card.json"
    assert zoo.check_card(json.loads(path.read_text()), path)["name"] == name
    assert zoo.card(name)["predictor"] in zoo.PREDICTORS.values()


@pytest.mark.parametrize("name", ["nuclei", "identity", "population"])
def test_a_copy_of_a_shipped_folder_loads(tmp_path, name):
    """A copied zoo folder is the model as shipped (identity's card describes its input in words: not refused)."""
    if not (zoo.ZOO_DIR / name / "weights.safetensors").is_file():
        pytest.skip("weights not shipped")
    folder = tmp_path / f"my_{name}"
    shutil.copytree(zoo.ZOO_DIR / name, folder)
    predictor = zoo.load(folder)
    assert type(predictor).__name__ == zoo.PREDICTORS[name].partition(":")[2]


def test_the_predictors_allowed_are_devolens_own_and_cover_export_kinds():
    from devolens.models.export import KINDS

    assert set(KINDS.values()) <= set(zoo.PREDICTORS.values())
    assert all(v.startswith("devolens.predict.") for v in zoo.PREDICTORS.values())
    assert {zoo.card(n)["predictor"] for n in zoo.available()} <= set(zoo.PREDICTORS.values())
