"""The identity card's mirror limit, held out: each embryo named by the fold models that never saw it, as filmed,
with x mirrored (an inverted microscope's image), and mirrored but named with ``mirror=True`` (``identify
--mirror``).

The fold models come from ``benchmarks/train_identity.py --no-final --cache DIR`` runs (the recipe's three runs:
give their caches in the recipe's order; the folds' members' probabilities are averaged as the shipped ensemble's
are). Prints founder and depth-1 accuracy per held-out embryo and their range, the figures of the card's limit, and
how much higher the mean confidence is as filmed than on the mirrored copy (whether confidence tells handedness).
``--views`` also names parts of each table as a user's table may hold them: ``start100`` from the first time point
with at least 100 nuclei on (a film started late), ``cut150`` / ``cut250`` up to the last time point before one with
more than 150 / 250 nuclei (a film stopped early); a part that is the whole table is skipped. ``--orient``: as
``devolens identify``'s (default auto; skewness: each embryo's frame as its cloud's skewness reads it);
``--no-zscale``: each table's z scale estimated from its cloud, as for a table without its AuxInfo::

    python benchmarks/eval_identity_mirror.py --caches runs/identity runs/identity_e40 runs/identity_s1
    python benchmarks/eval_identity_mirror.py --caches ... --views whole start100 cut150 cut250
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_identity import data_root, load_fold, load_tables, scores  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def ensemble(caches: list[Path], tag: str, tta: int, orient: str = "auto"):
    """The fold ``tag``'s models of every cache as one predictor (as train_identity's ``--members``), orienting
    embryos as ``orient`` says (the predictor's option)."""
    from devolens.predict.identity import IdentityPredictor

    preds = [load_fold(c, tag)[0] for c in caches]
    first = preds[0]
    return IdentityPredictor(torch.nn.ModuleList([p.model for p in preds]), first.founders, first.depth1, tta=tta,
                             orient=orient)


def mirrored(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with x reversed about its middle (the embryo's mirror image), its attributes kept."""
    out = table.copy()
    out["x"] = float(table["x"].max()) + float(table["x"].min()) - table["x"]
    out.attrs = dict(table.attrs)
    return out


def view(table: pd.DataFrame, how: str) -> pd.DataFrame | None:
    """The part of ``table`` named by ``how`` (``whole``, ``start<N>``, ``cut<N>``: see the module's text), its
    attributes kept; None where that part is the whole table (or empty)."""
    if how == "whole":
        return table
    n = int(how.removeprefix("start").removeprefix("cut"))
    counts = table.groupby("time").size()
    if how.startswith("start"):
        first = counts.index[counts.to_numpy() >= n]
        keep = table["time"] >= first[0] if len(first) else None
    else:
        over = counts.index[counts.to_numpy() > n]
        keep = table["time"] < over[0] if len(over) else None
    if keep is None or keep.all() or not keep.any():
        return None
    out = table[keep.to_numpy()].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def named(pred, table: pd.DataFrame) -> dict:
    """Founder and depth-1 accuracy of ``table`` as filmed, x-mirrored and x-mirrored named with ``mirror=True``,
    and the confidence margin (mean confidence as filmed minus the x-mirrored copy's: > 0, the true handedness is
    the more confident)."""
    from devolens.predict.identity import identity_labels

    l0, l1 = identity_labels(table["cell"], 0), identity_labels(table["cell"], 1)
    row, confidence = {}, {}
    flipped = mirrored(table)
    for how, tab, mirror in (("as filmed", table, False), ("x mirrored", flipped, False),
                             ("mirrored, --mirror", flipped, True)):
        out = pred.predict(tab, mirror=mirror)
        row[f"{how} founder"] = scores(out["pred_founder"].to_numpy(), l0)["accuracy"]
        row[f"{how} depth-1"] = scores(out["pred_depth1"].to_numpy(), l1)["accuracy"]
        confidence[how] = float(out["confidence"].mean())
    row["confidence margin"] = confidence["as filmed"] - confidence["x mirrored"]
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--caches", nargs="+", required=True, help="train_identity.py caches of fold models")
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "identity.yaml"))
    ap.add_argument("--data", default=None, help="data root (default $DEVOLENS_DATA or ../shared/data)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--views", nargs="+", default=["whole"],
                    help="parts of each table to name: whole, start<N>, cut<N> (default whole)")
    ap.add_argument("--no-zscale", action="store_true",
                    help="forget each table's z scale (its AuxInfo's) so that it is estimated from the cloud, as for a "
                         "table without metadata")
    ap.add_argument("--orient", default="auto", choices=("auto", "skewness"),
                    help="how the predictor orients each embryo (identify --orient; default auto)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from devolens.errors import IdentityWarning

    warnings.simplefilter("ignore", IdentityWarning)  # (the notes on short or mirrored tables: expected here)
    recipe = yaml.safe_load(Path(args.recipe).read_text())
    tta = int(recipe.get("predict", {}).get("tta", 1))
    caches = [Path(c) for c in args.caches]
    for how in args.views:
        if how != "whole" and not how.removeprefix("start").removeprefix("cut").isdigit():
            raise SystemExit(f"--views: {how!r} is not whole, start<N> or cut<N>")
    rows = []
    for table in load_tables(recipe, data_root(args.data)):
        name = str(table["embryo"].iloc[0])
        tag = f"fold_{name}"
        missing = [str(c) for c in caches if not (c / tag / "card.json").is_file()]
        if missing:
            raise SystemExit(f"no fold model {tag} in {', '.join(missing)}: train_identity.py --no-final first")
        pred = ensemble(caches, tag, tta, args.orient)
        if args.no_zscale:
            table.attrs.pop("zscale", None)
        for part in args.views:
            tab = view(table, part)
            if tab is None:
                print(f"{name} {part}: the whole table, skipped", flush=True)
                continue
            counts = tab.groupby("time").size()
            row = {"embryo": name, "view": part, "nuclei": f"{counts.min()}-{counts.max()}"}
            row.update(named(pred, tab))
            rows.append(row)
            print(" ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    res = pd.DataFrame(rows).set_index(["view", "embryo"])
    print(f"\nheld out, {len(caches)}-member fold ensembles ({', '.join(map(str, caches))}):")
    print(res.round(3).to_string())
    for part, sub in res.groupby(level="view", sort=False):
        print(f"{part}: range (min-max over the {len(sub)} held-out embryos):")
        for col in sub.columns.drop("nuclei"):
            print(f"  {col}: {sub[col].min():.2f}-{sub[col].max():.2f} (mean {sub[col].mean():.3f})")
        lost = int((sub["confidence margin"] <= 0).sum())
        print(f"  the mirror image as confident or more: {lost} of {len(sub)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
