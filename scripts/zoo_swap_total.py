"""Stage the population model with another whole-frame total regressor, the rest of it unchanged.

A copy of the zoo (every other model linked, the population folder copied) whose population weights hold the
given run's regressor (``total_regressor.*``, fp16, as the tables file stores it) in place of the shipped one, and
whose card's ``total_regressor`` names the run, its network and input size. The composition table, the
calibration and the clock are the shipped ones, byte for byte. The weight of the calibration in the total is
``--weight`` (default: the shipped one) until ``benchmarks/choose_total_weight.py --zoo STAGED`` chooses it on the
development renders; ``--weight`` then writes the choice. The held-out figures are for
``benchmarks/eval_zoo.py population --zoo STAGED`` to measure; the staged card's metrics are still the shipped
regressor's until then (``total_regressor.measured`` says so).

Usage::

    python scripts/zoo_swap_total.py RUN --out runs/stage_pop [--weight 0.4] [--note TEXT]

``RUN`` holds ``best.json`` (``scripts/gpu_train.py``'s or ``devolens train``'s) and the weights as
``best.safetensors`` or ``best16.safetensors`` (``scripts/gpu_population_total.sh`` copies fp16 weights).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))
from zoo_population import regressor_parts  # noqa: E402  (the tables file's reading of a run, as --total-run's)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="the staged zoo folder (made; refused if it exists)")
    ap.add_argument("--zoo", type=Path, default=ROOT / "src/devolens/models/zoo", help="the zoo to copy")
    ap.add_argument("--weight", type=float, default=None, help="weight of the calibration in the total (0-1)")
    ap.add_argument("--note", default="", help="how the run was trained, for the card's total_regressor.trained")
    a = ap.parse_args()
    if a.weight is not None and not 0.0 <= a.weight <= 1.0:
        raise SystemExit("--weight must lie between 0 and 1")
    if a.out.exists():
        raise SystemExit(f"{a.out} exists: give a new folder")
    from safetensors.numpy import load_file

    from devolens.io.tensors import save_tensors
    from devolens.models.export import write_card

    tensors, spec = regressor_parts(a.run)
    a.out.mkdir(parents=True)
    for model in sorted(p for p in a.zoo.iterdir() if p.is_dir() and (p / "card.json").is_file()):
        if model.name != "population":
            (a.out / model.name).symlink_to(model.resolve(), target_is_directory=True)
    pop = a.out / "population"
    shutil.copytree(a.zoo / "population", pop, ignore=shutil.ignore_patterns("__pycache__"))
    arrays = {k: v for k, v in load_file(str(pop / "weights.safetensors")).items()
              if not k.startswith("total_regressor.")}
    save_tensors({**arrays, **tensors}, pop / "weights.safetensors")
    card = json.loads((pop / "card.json").read_text())
    old = card.get("total_regressor", {})
    weight = old.get("weight_calibration", 0.5) if a.weight is None else a.weight
    card["total_regressor"] = {**spec, "weight_calibration": weight,
                               "trained": a.note or "see the run's best.json",
                               "measured": ("staged by scripts/zoo_swap_total.py in place of the regressor of run "
                                            f"{old.get('run')}: the weight {weight} is "
                                            + ("given (--weight)" if a.weight is not None else "the shipped one")
                                            + "; the card's metrics are the shipped regressor's until "
                                              "benchmarks/eval_zoo.py population measures this one")}
    write_card(card, pop)  # with the sha256 of the new weights
    print(f"staged {a.out}: population with the regressor of {a.run} ({spec['config']}, input "
          f"{spec['input_size'][0]}x{spec['input_size'][1]}, epoch {spec['epoch']}), calibration weight {weight}")


if __name__ == "__main__":
    main()
