"""The model cards' figures agree with what was measured (s39): the nuclei card's default-setting figures are the
default setting's (benchmarks/RESULTS.md, "Thirty-seventh session"; they were the int8 figures without the
estimate), the targets table's nuclei row and README give the current figures, the membrane limits give the card's
own zoom figures, and every card with a target states it, `devolens models` saying whether it is met."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from devolens.cli import main
from devolens.models import zoo
from devolens.models.export import card_md

ROOT = Path(__file__).resolve().parents[1]


def _card(name: str) -> dict:
    return json.loads((zoo.ZOO_DIR / name / "card.json").read_text())


def _results() -> str:
    return (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start:] if end < 0 else text[start:end]


def _row(text: str, start: str) -> str:
    """The first line of ``text`` that starts with ``start`` (a Markdown table's row, indented or not)."""
    return next(line.strip() for line in text.splitlines() if line.strip().startswith(start))


def _zoom_f1(card: dict) -> dict:
    return card["input"]["diameter"]["auto"]["heldout_f1"]["value"]


# ---------------------------------------------------------------------------- 1. the nuclei card's default figures
def test_nuclei_default_figures_are_the_default_settings_measurement():
    """metrics_setting.default_figures (card.md and `devolens models` show them) are the figures measured for the
    CLI's default (int8, --diameter auto, keep band from 0.75x; since the fortieth session one image's estimate read in
    its eight mirror images and quarter turns; since the fifty-second session lone small objects judged as specks only
    in images of 100 objects or more): F1 0.815, 0.932 ignoring nuclei less than half visible, count error 13.2; not
    the int8 figures without the estimate (0.803 / 0.920 / 14.6). Read off RESULTS.md's table and the card's own zoom
    figures."""
    section = _section(_results(), "Fifty-second session")
    cells = [c.strip().strip("*") for c in _row(section, "| 1x |").strip("|").split("|")]
    f1 = cells[2]
    visible = cells[3].split("->")[-1].strip()
    count = cells[4].split("->")[-1].strip()
    card = _card("nuclei")
    figures = card["metrics_setting"]["default_figures"]
    assert figures.startswith(f"F1 {f1};"), figures
    assert f"{visible} with nuclei less than half visible ignored" in figures
    assert f"count error {count};" in figures
    zoom = _zoom_f1(card)
    assert f1 == f"{zoom['zoom 1.0']['auto']:.3f}"  # the card's own figure of the default at 1x
    # the limits' figures of the same setting at 0.5x / 1x / 2x
    assert f"F1 {zoom['zoom 0.5']['auto']:.3f} / {f1} / {zoom['zoom 2.0']['auto']:.3f} with it" in card["limits"]
    assert "Fifty-second session" in card["metrics_setting"]["default_source"]
    assert figures in (zoo.ZOO_DIR / "nuclei" / "card.md").read_text()


def test_readme_and_results_give_the_nuclei_default_figures():
    """README's zoo table and RESULTS.md's targets table give the default setting's F1 and second F1 as the card."""
    figures = _card("nuclei")["metrics_setting"]["default_figures"]
    f1, visible = re.match(r"F1 (\S+); (\S+) with nuclei", figures).groups()
    readme = _row((ROOT / "README.md").read_text(encoding="utf-8"), "| `nuclei` |")
    assert f"instance F1 {f1} at IoU 0.5" in readme and f"{visible} ignoring nuclei less than half visible" in readme
    row = _row(_results(), "| 5 nuclei | instance F1")
    assert f"**{f1}** with the default magnification estimate" in row
    assert f"**{visible}** ignoring nuclei less than half visible (the default" in row


# ---------------------------------------------------------------------------- 2. RESULTS.md's nuclei row
def test_results_nuclei_row_gives_the_current_zoom_figures_and_epic_range():
    """The targets table's nuclei row gives the card's 0.5x / 2x figures with the estimate (0.803 / 0.801 since the
    fortieth session's eight-view estimate of one image) as the current ones, and the EPIC-framed range of the card's
    movies, as README."""
    card = _card("nuclei")
    zoom = _zoom_f1(card)
    row = _row(_results(), "| 5 nuclei | instance F1")
    half, double = re.search(r"at 0\.5x / 2x \**([0-9.]+)\** / \**([0-9.]+)\** with the estimate", row).groups()
    assert (half, double) == (f"{zoom['zoom 0.5']['auto']:.3f}", f"{zoom['zoom 2.0']['auto']:.3f}")
    movies = card["metrics"]["instance_f1_iou50_heldout_epic_framing"]["per_movie"].values()
    spread = f"{min(movies):.2f}-{max(movies):.2f} by optics"
    assert spread in row
    assert spread in _row((ROOT / "README.md").read_text(encoding="utf-8"), "| `nuclei` |")
    assert spread.split(" by")[0] in card["limits"]


# ---------------------------------------------------------------------------- 3. membrane zoom figures
def test_membrane_zoom_figures_are_the_cards_measurement():
    """The membrane limits (card.json, card.md, zoo_ship.py's template) and README give the card's heldout_f1 at
    0.5x / 2x (fortieth session: 0.885 / 0.892 with the estimate; 0.819 / 0.801 without)."""
    card = _card("membrane")
    z = {k: {m: f"{v:.3f}" for m, v in d.items()} for k, d in _zoom_f1(card).items()}
    said = (f"cell F1 {z['zoom 0.5']['auto']} / {z['zoom 2.0']['auto']} with it, {z['zoom 0.5']['none']} / "
            f"{z['zoom 2.0']['none']} without (int8)")
    assert said in card["limits"]
    assert said in (zoo.ZOO_DIR / "membrane" / "card.md").read_text()
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("\n", " ")
    assert (f"0.5x / 1x / 2x give cell F1 {z['zoom 0.5']['auto']} / {z['zoom 1.0']['auto']} / {z['zoom 2.0']['auto']} "
            f"with it, {z['zoom 0.5']['none']} / {z['zoom 1.0']['none']} / {z['zoom 2.0']['none']} without") in readme


# ---------------------------------------------------------------------------- 4. targets
def _zoo_ship():
    sys.path.insert(0, str(ROOT / "scripts"))
    import zoo_ship

    return zoo_ship


@pytest.mark.parametrize("name", ["nuclei", "population"])
def test_cards_that_miss_a_target_state_it(name):
    """The nuclei and population cards (and zoo_ship.py's templates, so that a re-ship keeps it) open their limits
    with the issue's targets and say they are not met."""
    card = _card(name)
    template = _zoo_ship().CARDS[name]["limits"]
    for limits in (card["limits"], template):
        assert limits.startswith("Target"), limits[:80]
        head = limits.split("). ")[0]
        assert "not met" in head or "met for A only" in head
    assert card["limits"] == template
    assert card["limits"] in (zoo.ZOO_DIR / name / "card.md").read_text()
    if name == "nuclei":
        assert ">= 0.90" in template and "at least 3x as fast" in template and "2.66x the best" in template
    else:
        per_letter = card["metrics"]["mae_over_mean_per_letter_heldout"]
        said = re.search(r"the card's setting: ([^;]+);", template).group(1)
        for letter in "AEMPCDZ":  # the card's setting, as its metrics (given to 4 decimals) say
            given = float(re.search(rf"\b{letter} ([0-9.]+)", said).group(1))
            assert abs(given - 100 * per_letter[letter]) <= 0.051, letter
        assert [k for k in "AEMPCDZ" if per_letter[k] <= 0.10] == ["A"]


def test_models_listing_says_whether_each_target_is_met(capsys):
    """`devolens models` (table and --json) gives, beside each headline figure with a target, the target and whether
    it is met: nuclei and population not met, identity and livedead met."""
    assert main(["models", "--json"]) == 0
    doc = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    met = {name: {h["metric"]: h["target"]["met"] for h in m["headline"] if h["target"]} for name, m in doc.items()}
    assert met["nuclei"] == {"instance_f1_iou50_heldout_le200": False}
    assert met["population"] == {"mae_over_mean_max_heldout": False}
    assert met["identity"] == {"founder_accuracy": True, "depth1_accuracy": True}
    assert met["livedead"] == {"pr_auc_live": True, "pr_auc_dead": True}
    assert met["membrane"] == {}  # no target
    nuclei = doc["nuclei"]["headline"][0]
    assert nuclei["text"].endswith("0.804 (target >= 0.90: not met)")
    assert doc["population"]["headline"][0]["text"].endswith("20 % (target <= 10 %: not met)")
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "not met" in table and "target" in table


# ---------------------------------------------------------------------------- card.md is card.json
@pytest.mark.parametrize("name", ["nuclei", "membrane", "population"])
def test_card_md_is_written_from_card_json(name):
    """card.md says what card.json says (written by devolens.models.export.card_md): an edit of one alone shows."""
    assert (zoo.ZOO_DIR / name / "card.md").read_text(encoding="utf-8") == card_md(_card(name))
