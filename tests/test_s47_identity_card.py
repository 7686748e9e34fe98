"""The identity card's held-out figures are the ones measured on current code (forty-seventh session: the recipe's three
fold-model runs retrained, current lineage smoothing), and README and benchmarks/RESULTS.md quote them."""
import json
from pathlib import Path

from devolens.models.zoo import ZOO_DIR

ROOT = Path(__file__).resolve().parents[1]


def _card() -> dict:
    return json.loads((ZOO_DIR / "identity" / "card.json").read_text())


def test_identity_card_says_its_figures_come_from_fold_models_that_exist():
    card = _card()
    m = card["metrics"]
    setting = card["metrics_setting"]["measured"]
    assert "forty-seventh session" in setting and "current lineage smoothing" in setting
    assert "before the fortieth session" not in setting
    for run in ("runs/identity_s47", "runs/identity_s47_e40", "runs/identity_s47_s1"):
        assert run in card["metrics_setting"]["command"] and run in m["confidence_reliability"]["how"]
    assert not any("no longer in runs/" in x or "whose fold models are gone" in x for x in card["limits"])
    # the headline is the mean over the held-out embryos of the figures the card gives per embryo
    per = m["per_embryo"]
    for key, col in (("founder_accuracy", "founder_acc"), ("founder_macro_f1", "founder_f1"),
                     ("depth1_accuracy", "depth1_acc"), ("depth1_macro_f1", "depth1_f1")):
        assert abs(m[key]["value"] - sum(e[col] for e in per.values()) / len(per)) < 1e-4, key
    rel = m["confidence_reliability"]["value"]
    assert abs(sum(b["share"] for b in rel.values()) - 1) < 1e-3
    assert f"{rel['>= 0.99']['share']:.1%} of rows had confidence >= 0.99" in card["limits"][0]


def test_readme_and_results_quote_the_identity_headline():
    m = _card()["metrics"]
    said = f"{m['founder_accuracy']['value']:.3f} / {m['depth1_accuracy']['value']:.3f}"
    row = next(x for x in (ROOT / "README.md").read_text().splitlines() if x.startswith("| `identity` |"))
    assert f"leave-one-embryo-out accuracy {said}" in row and row.endswith("| 0.95 / 0.90: met |")
    row = next(x for x in (ROOT / "benchmarks" / "RESULTS.md").read_text().splitlines() if x.startswith("| 5 identity |"))
    f, d = said.split(" / ")
    assert f"**{f}** and **{d}**" in row and "forty-seventh session" in row and "| met" in row
