"""Write the robustness figures of the nuclei and population cards from ``benchmarks/eval_robustness.py --json``.

The cards hold three such figures (held-out renders under acquisition changes, ``--diameter auto`` unless said):

- nuclei ``metrics.hot_pixels_heldout``: F1 with 0.05 % hot pixels, with the card's outlier removal and without it,
  and as rendered;
- nuclei ``input.diameter.auto.backdrop.heldout_f1_backdrop``: F1 on a bright uneven backdrop with the size model's
  backdrop reader, the same without resizing (``--diameter none``), and as rendered;
- population ``metrics.acquisition_changes_total_heldout``: total MAE / mean total after each change.

Usage (the four measuring commands, then this one; ``scripts/zoo_refresh.sh`` with ``EVAL=1`` runs them all)::

    python benchmarks/eval_robustness.py --zoo Z --only "as rendered" bright hot --json E/nuclei.json
    python benchmarks/eval_robustness.py --zoo Z --only "as rendered" bright --diameter none --json E/nuclei_none.json
    python benchmarks/eval_robustness.py --zoo Z --only "as rendered" hot --outliers 0 --json E/nuclei_outliers0.json
    python benchmarks/eval_robustness.py --zoo Z --model population --json E/population.json
    python scripts/zoo_robustness.py --zoo Z --eval E
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

BRIGHT = "bright uneven background (+0 -> +40 %)"
HOT = "hot pixels (0.05 %)"
FRAMES = "the held-out renders (<= 200 cells, every 2nd frame, 56 frames)"


def _read(folder: Path, name: str, changes: tuple = ()) -> dict:
    """The JSON of one eval_robustness run, checked to hold ``changes`` (all of them, for the population's)."""
    path = folder / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (see the usage: benchmarks/eval_robustness.py --json)")
    found = json.loads(path.read_text())
    lacking = [c for c in changes if c not in found]
    if lacking:
        raise SystemExit(f"{path}: no figures for {', '.join(map(repr, lacking))} (run the command of the usage)")
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", type=Path, default=ROOT / "src" / "devolens" / "models" / "zoo")
    ap.add_argument("--eval", type=Path, required=True, help="folder of the eval_robustness JSON files")
    a = ap.parse_args(argv)
    from zoo_ship import write_card

    auto = _read(a.eval, "nuclei", ("as rendered", BRIGHT, HOT))
    none, raw = _read(a.eval, "nuclei_none", (BRIGHT,)), _read(a.eval, "nuclei_outliers0", (HOT,))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import numpy as np
    from eval_robustness import changes  # every acquisition change: the card lists them all

    pop = _read(a.eval, "population", tuple(changes(np.random.default_rng(0))))
    path = a.zoo / "nuclei" / "card.json"
    card = json.loads(path.read_text())
    card["metrics"]["hot_pixels_heldout"] = {
        "value": {"with_outlier_removal": auto[HOT]["f1"], "without": raw[HOT]["f1"],
                  "as_rendered": auto["as rendered"]["f1"]},
        "how": (f"instance F1 at IoU 0.5 on {FRAMES} with 0.05 % of pixels set to full scale, --diameter auto, with "
                "the card's outlier removal (preprocessing.outliers) and without it (0); as rendered: the frames "
                "unchanged. Commands: python benchmarks/eval_robustness.py --only \"as rendered\" bright hot; python "
                "benchmarks/eval_robustness.py --outliers 0 --only \"as rendered\" hot (written by "
                "scripts/zoo_robustness.py)"),
    }
    backdrop = card["input"]["diameter"]["auto"].get("backdrop")
    if backdrop is None:
        raise SystemExit(f"{path}: no input.diameter.auto.backdrop (fit the size models first)")
    backdrop["heldout_f1_backdrop"] = {
        "value": {"with the backdrop reader": auto[BRIGHT]["f1"], "--diameter none": none[BRIGHT]["f1"],
                  "as rendered": auto["as rendered"]["f1"]},
        "how": (f"instance F1 at IoU 0.5 on {FRAMES} under a bright uneven backdrop (+0 -> +40 % of full scale "
                "across the frame), --diameter auto (the size models with the backdrop reader), and the same without "
                "resizing (--diameter none); as rendered: the frames unchanged, --diameter auto. Commands: python "
                "benchmarks/eval_robustness.py --only \"as rendered\" bright hot; python benchmarks/eval_robustness.py "
                "--diameter none --only \"as rendered\" bright (written by scripts/zoo_robustness.py)"),
    }
    write_card(card, path.parent)
    path = a.zoo / "population" / "card.json"
    card = json.loads(path.read_text())
    card["metrics"]["acquisition_changes_total_heldout"] = {
        "value": {change: row["total"] for change, row in pop.items()},
        "how": ("total MAE / mean total on the 145 held-out frames (val_L3, val_sim; all stages) after each "
                "acquisition change, each frame one input with --diameter auto (per-letter figures: the command's "
                "table, benchmarks/RESULTS.md). Command: python benchmarks/eval_robustness.py --model population "
                "(written by scripts/zoo_robustness.py)"),
    }
    write_card(card, path.parent)
    print(f"robustness figures -> {a.zoo / 'nuclei'} and {a.zoo / 'population'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
