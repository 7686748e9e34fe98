"""A lab's own count model, end to end (fifty-sixth session): how a count run of `devolens train` does when it is used.

The steps a user takes, each as the `devolens` command (run in subprocesses, timed):

1. gather render folders into one training folder (``scripts/zoo_population.py --gather DIR --gather-from ...``: the
   frames and a frames.csv of their counts; the held-out embryos are refused there);
2. ``devolens train RECIPE --data DIR --out RUN`` (default ``recipes/population_total.yaml``: a ResNet18 regressor of
   the total on whole frames at 128x192);
3. ``devolens evaluate RUN --data HELD_OUT`` on each held-out render folder (per-frame CSV);
4. ``devolens population HELD_OUT/frames --model RUN --out CSV`` on the same frames, whose totals must equal the
   per-frame CSV's predictions (the command prepares frames as the run's training frames were).

Printed: the training time, the held-out total error (MAE / mean true total, over all held-out frames, and per
folder), the largest difference between `population`'s CSV and `evaluate`'s per-frame predictions, and, for scale, the
shipped population model's figure on the same held-out renders from its card (`total_mae_heldout` over the mean
total, the same 145 frames of val_L3 and val_sim). A demonstration of the feature on renders, not a target: the
shipped model's total regressor was trained on about 8x the frames.

Usage::

    python benchmarks/own_count_run.py [--train runs/zoo/render/dev_L2 runs/zoo/render/dev_sim ...]
        [--held-out runs/zoo/render/val_L3 runs/zoo/render/val_sim] [--recipe recipes/population_total.yaml]
        [--epochs N] [--out runs/own_count]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RENDERS = ROOT / "runs" / "zoo" / "render"


def _run(args: list[str]) -> float:
    """Run a command, failing loudly; its wall time (s)."""
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", nargs="+", type=Path, default=[RENDERS / n for n in (
        "dev_L2", "dev_sim", "dev_sim2", "dev_L2_framed", "dev_sim_framed")], help="render folders to train on")
    ap.add_argument("--held-out", nargs="+", type=Path, default=[RENDERS / "val_L3", RENDERS / "val_sim"],
                    help="render folders of embryos the run never saw")
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "population_total.yaml")
    ap.add_argument("--epochs", type=int, default=None, help="train.epochs (default: the recipe's)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "own_count", help="work folder (replaced)")
    args = ap.parse_args()
    missing = [str(p) for p in [*args.train, *args.held_out] if not (p / "frames.csv").is_file()]
    if missing:
        sys.exit(f"render folders not found: {', '.join(missing)} (scripts/zoo_renders.sh makes them)")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    cli = [sys.executable, "-m", "devolens", "-q"]
    data, run = args.out / "data", args.out / "run"
    _run([sys.executable, str(ROOT / "scripts" / "zoo_population.py"), "--gather", str(data),
          "--gather-from", *map(str, args.train)])
    recipe = args.recipe
    if args.epochs is not None:
        import yaml

        rec = yaml.safe_load(args.recipe.read_text())
        rec["train"]["epochs"] = args.epochs
        rec.setdefault("scheduler", {})["t0"] = args.epochs
        recipe = args.out / "recipe.yaml"
        recipe.write_text(yaml.safe_dump(rec))
    n_train = len(pd.read_csv(data / "frames.csv"))
    t_train = _run([*cli, "train", str(recipe), "--data", str(data), "--out", str(run), "--no-plots"])
    errors, truths, worst = [], [], 0.0
    print(f"trained on {n_train} frames of {len(args.train)} render folders in {t_train:.0f} s "
          f"({json.loads((run / 'run.json').read_text())['epochs_done']} epochs)")
    for folder in args.held_out:
        ev = args.out / f"eval_{folder.name}.json"
        _run([*cli, "evaluate", str(run), "--data", str(folder), "--json", str(ev)])
        rows = pd.read_csv(json.loads(ev.read_text())["images_csv"])
        csv = args.out / f"pops_{folder.name}.csv"
        _run([*cli, "population", str(folder / "frames"), "--model", str(run), "--out", str(csv), "--no-plot"])
        pops = pd.read_csv(csv, dtype={"frame": str})
        pred = dict(zip(pops["frame"], pops["total"]))
        said = np.array([pred[Path(f).stem] for f in rows["file"]], float)
        worst = max(worst, float(np.nanmax(np.abs(said - np.clip(rows["pred_total"], 0, None)))))
        err = np.abs(rows["pred_total"].clip(lower=0) - rows["true_total"]).to_numpy()
        errors.append(err)
        truths.append(rows["true_total"].to_numpy())
        print(f"{folder.name}: {len(rows)} frames, total MAE {err.mean():.2f} cells, "
              f"MAE / mean {err.mean() / rows['true_total'].mean():.3f}")
    err, truth = np.concatenate(errors), np.concatenate(truths)
    print(f"held out ({len(err)} frames): total MAE {err.mean():.2f} cells, MAE / mean {err.mean() / truth.mean():.3f}")
    print(f"population's CSV against evaluate's per-frame predictions: largest difference {worst:.3f} cells "
          "(the CSV rounds to 2 decimals)")
    card = json.loads((ROOT / "src" / "devolens" / "models" / "zoo" / "population" / "card.json").read_text())
    m = card["metrics"]
    print(f"shipped population model (its card, val_L3 + val_sim): total MAE {m['total_mae_heldout']['value']:.2f} "
          f"cells, MAE / mean {m['mae_over_mean_per_letter_heldout']['total']:.3f}")


if __name__ == "__main__":
    main()
