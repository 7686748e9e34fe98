"""The identity card's mirror limit, held out: each embryo named by the fold models that never saw it, as filmed,
with x mirrored (an inverted microscope's image), and mirrored but named with ``mirror=True`` (``identify
--mirror``).

The fold models come from ``benchmarks/train_identity.py --no-final --cache DIR`` runs (the recipe's three runs:
give their caches in the recipe's order; the folds' members' probabilities are averaged as the shipped ensemble's
are). Prints founder and depth-1 accuracy per held-out embryo and their range, the figures of the card's limit, and
how much higher the mean confidence is as filmed than on the mirrored copy (whether confidence tells handedness)::

    python benchmarks/eval_identity_mirror.py --caches runs/identity runs/identity_e40 runs/identity_s1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_identity import data_root, load_fold, load_tables, scores  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def ensemble(caches: list[Path], tag: str, tta: int):
    """The fold ``tag``'s models of every cache as one predictor (as train_identity's ``--members``)."""
    from devolens.predict.identity import IdentityPredictor

    preds = [load_fold(c, tag)[0] for c in caches]
    first = preds[0]
    return IdentityPredictor(torch.nn.ModuleList([p.model for p in preds]), first.founders, first.depth1, tta=tta)


def mirrored(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with x reversed about its middle (the embryo's mirror image), its attributes kept."""
    out = table.copy()
    out["x"] = float(table["x"].max()) + float(table["x"].min()) - table["x"]
    out.attrs = dict(table.attrs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--caches", nargs="+", required=True, help="train_identity.py caches of fold models")
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "identity.yaml"))
    ap.add_argument("--data", default=None, help="data root (default $DEVOLENS_DATA or ../shared/data)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    from devolens.predict.identity import identity_labels

    torch.set_num_threads(args.threads)
    recipe = yaml.safe_load(Path(args.recipe).read_text())
    tta = int(recipe.get("predict", {}).get("tta", 1))
    caches = [Path(c) for c in args.caches]
    rows = []
    for table in load_tables(recipe, data_root(args.data)):
        name = str(table["embryo"].iloc[0])
        tag = f"fold_{name}"
        missing = [str(c) for c in caches if not (c / tag / "card.json").is_file()]
        if missing:
            raise SystemExit(f"no fold model {tag} in {', '.join(missing)}: train_identity.py --no-final first")
        pred = ensemble(caches, tag, tta)
        l0, l1 = identity_labels(table["cell"], 0), identity_labels(table["cell"], 1)
        row = {"embryo": name}
        confidence = {}
        flipped = mirrored(table)
        for how, tab, mirror in (("as filmed", table, False), ("x mirrored", flipped, False),
                                 ("mirrored, --mirror", flipped, True)):
            out = pred.predict(tab, mirror=mirror)
            row[f"{how} founder"] = scores(out["pred_founder"].to_numpy(), l0)["accuracy"]
            row[f"{how} depth-1"] = scores(out["pred_depth1"].to_numpy(), l1)["accuracy"]
            confidence[how] = float(out["confidence"].mean())
        # whether the mean confidence tells the handedness: the embryo as filmed against its mirror image named as
        # such (the x-mirrored copy named without --mirror); > 0: the true handedness is the more confident
        row["confidence margin"] = confidence["as filmed"] - confidence["x mirrored"]
        rows.append(row)
        print(" ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    res = pd.DataFrame(rows).set_index("embryo")
    print(f"\nheld out, {len(caches)}-member fold ensembles ({', '.join(map(str, caches))}):")
    print(res.round(3).to_string())
    print("range (min-max over the held-out embryos):")
    for col in res.columns:
        print(f"  {col}: {res[col].min():.2f}-{res[col].max():.2f} (mean {res[col].mean():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
