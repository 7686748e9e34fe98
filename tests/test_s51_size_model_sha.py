"""Session 51: a model's size models (the magnification estimate's ``size_model*.safetensors``) have their sha256
recorded in its card (``files_sha256``, written by ``write_card``: shipped cards and exports), shown in card.md's
Weights section, and checked on load as the weights are (:class:`devolens.errors.WeightsWarning`). Before, a copied
model's size model could be replaced or damaged with nothing to tell."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest

from devolens.errors import WeightsWarning
from devolens.models import zoo
from devolens.models.export import _card_files, export_shipped, weights_md
from devolens.provenance import file_sha256


@pytest.mark.parametrize("name", ["nuclei", "membrane"])
def test_shipped_cards_record_their_size_models(name):
    card = zoo.card(name)
    names = _card_files(card)
    assert names and card["files_sha256"] == {n: file_sha256(zoo.ZOO_DIR / name / n) for n in sorted(names)}
    assert zoo.weights_mismatch(zoo.ZOO_DIR / name, card) is None
    md = (zoo.ZOO_DIR / name / "card.md").read_text(encoding="utf-8")
    for n, sha in card["files_sha256"].items():
        assert f"- `{n}`, sha256 `{sha}`" in md


def test_a_replaced_size_model_in_a_copy_is_warned_of_on_load(tmp_path):
    folder = tmp_path / "my_nuclei"
    card = export_shipped("nuclei", folder)
    assert json.loads((folder / "card.json").read_text())["files_sha256"] == card["files_sha256"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeightsWarning)
        zoo.load(folder)  # a faithful copy: nothing to say
    # the backdrop size model replaced by the other one (a valid file, not the card's)
    shutil.copyfile(folder / "size_model.safetensors", folder / "size_model_backdrop.safetensors")
    problem = zoo.weights_mismatch(folder, json.loads((folder / "card.json").read_text()))
    assert problem is not None and "size_model_backdrop.safetensors is not the one its card records" in problem
    assert "copy the model's folder again" in problem
    with pytest.warns(WeightsWarning, match="files_sha256"):
        zoo.load(folder)


def test_the_weights_section_lists_size_models_only_where_recorded():
    bare = weights_md({"weights_sha256": "ab" * 32})
    assert bare[-1] == "" and not any("size models" in line for line in bare)
    sized = weights_md({"weights_sha256": "ab" * 32, "files_sha256": {"size_model.safetensors": "cd" * 32}})
    assert f"- `size_model.safetensors`, sha256 `{'cd' * 32}`" in sized
    assert weights_md({"files_sha256": {"a": "b"}}) == []  # (no weights recorded: no section)
