"""Add the developmental clock (`devolens population --clock`) to the population model.

The reference curve is the median total-cells curve of the real EPIC training embryos (the
population model's; CD20241010_JIM767_25_L3 stays held out), each cut at its annotation
cliff and shifted onto the longest one (:func:`devolens.predict.clock.canonical_curve`). It
is written into the model's ``weights.safetensors`` (``clock_tau``, ``clock_log_total``, the
other tensors kept) and described in its card (``clock``), whose Markdown is re-written.

Usage::

    python scripts/zoo_clock.py [--to src/devolens/models/zoo/population] [--data ../shared/data]
        [--metrics runs/zoo/eval_population.json]   # from benchmarks/eval_zoo.py population --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("CD20240930_JIM762_L4", "CD20241009_JIM767_25_L1", "CD20241009_JIM767_25_L5", "CD20241010_JIM767_25_L2",
          "CD20241107_JIM767_25_L1")


def main() -> None:
    from safetensors.numpy import load_file

    from devolens.io.tables import read_table
    from devolens.io.tensors import save_tensors
    from devolens.lineage.cliffs import clean_table
    from devolens.lineage.populations import populations
    from devolens.predict.clock import canonical_curve, extend_curve

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--to", type=Path, default=ROOT / "src/devolens/models/zoo/population")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("DEVOLENS_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--metrics", type=Path, default=None,
                    help="metrics JSON of benchmarks/eval_zoo.py population: its clock figures go into the card")
    a = ap.parse_args()
    curves, seconds = [], []
    for name in TABLES:
        table, _ = clean_table(read_table(a.data / "epic" / f"{name}.csv"))
        curves.append(populations(table).set_index("time")["total"])
        if table.attrs.get("seconds_per_time"):
            seconds.append(float(table.attrs["seconds_per_time"]))
    tau, log_total = canonical_curve(curves)
    n_epic, top_epic = len(tau), float(np.exp(log_total[-1]))
    # the EPIC tables stop near 400 cells (annotation); the AceTree embryo goes on to the comma stage
    # (~570 cells, 60 s per time point): fitted onto the EPIC curve, its later time points continue it
    ace, _ = clean_table(read_table(a.data / "acetree" / "wormguides_nuclei.zip"))
    tau, log_total, ace_fit = extend_curve(tau, log_total, populations(ace).set_index("time")["total"])
    weights = a.to / "weights.safetensors"
    arrays = load_file(str(weights))
    arrays["clock_tau"] = tau.astype(np.float32)
    arrays["clock_log_total"] = log_total.astype(np.float32)
    save_tensors(arrays, weights)  # readable by all (safetensors' save_file alone: 0600)
    card_path = a.to / "card.json"
    card = json.loads(card_path.read_text())
    card["clock"] = {
        "use": "devolens population MOVIE --clock (Python: PopulationPredictor.clock_fit)",
        "curve": (f"median total cells against time point of {len(TABLES)} real EPIC training embryos "
                  f"({', '.join(TABLES)}), each cut at its annotation cliff and shifted onto the longest "
                  f"({n_epic} time points, {np.exp(log_total[0]):.0f} to {top_epic:.0f} cells), continued to "
                  f"{np.exp(log_total[-1]):.0f} cells by the AceTree training embryo (wormguides_nuclei.zip) fitted "
                  f"onto it ({ace_fit.rate:.2f} reference time points per AceTree time point, median residual "
                  f"{ace_fit.residual:.3f}); {len(tau)} points in all; tensors clock_tau, clock_log_total"),
        "seconds_per_time_point": round(float(np.median(seconds)), 1) if seconds else None,
        "fit": ("log total(frame) = log C(offset + rate x frame position), offset and rate by grid search with a Huber "
                "loss (0.15 in log) on the per-frame totals; each frame's total read off the fitted curve, letters "
                "from the composition table"),
        "command": "python scripts/zoo_clock.py",
    }
    if a.metrics is not None:  # the clock's figures from benchmarks/eval_zoo.py population --json FILE
        measured = json.loads(a.metrics.read_text())
        card.setdefault("metrics", {}).update({k: v for k, v in measured.items() if "clock" in k})
    sys.path.insert(0, str(ROOT / "scripts"))
    from zoo_ship import write_card

    write_card(card, a.to)
    print(f"clock curve: {len(tau)} points, {np.exp(log_total[0]):.0f}-{np.exp(log_total[-1]):.0f} cells (AceTree pace "
          f"{ace_fit.rate:.2f}, residual {ace_fit.residual:.3f}) -> {weights}")


if __name__ == "__main__":
    main()
