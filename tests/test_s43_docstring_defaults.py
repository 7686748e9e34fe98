"""help(NucleiPredictor) gave postprocess defaults (0.5, 0.5, split_seeds False, isolated_fraction 0) that the shipped
model does not run (its card: 0.6, 0.7, True, 0.25); a cellpose user read them as what ran (session-43 walkthrough)."""
import json
from importlib import resources

from devolens.predict.segment import MembranePredictor, NucleiPredictor


def _card(name: str) -> dict:
    return json.loads((resources.files("devolens") / "models" / "zoo" / name / "card.json").read_text())


def _words(value) -> str:
    return str(value) if not isinstance(value, float) or not value.is_integer() else f"{value:g}"


def test_the_nuclei_docstring_gives_the_card_s_postprocess_values():
    doc = " ".join(NucleiPredictor.__doc__.split())
    post = _card("nuclei")["postprocess"]
    for key, value in post.items():
        value = {1.0: "1.0"}.get(value, _words(value)) if key == "smooth" else _words(value)
        assert f"{key} {value}" in doc, (key, value)
    assert "working-resolution pixels" in doc and "set it to 0 to keep them" in doc


def test_the_membrane_docstring_gives_the_card_s_postprocess_values():
    doc = " ".join(MembranePredictor.__doc__.split())
    post = _card("membrane")["postprocess"]
    for key, value in post.items():
        assert f"``{key}`` ({_words(value) if key != 'smooth' else '1.0'})" in doc, (key, value)
