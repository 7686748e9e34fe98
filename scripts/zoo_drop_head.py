"""Drop a nuclei network's distance head: the 3-class network that was trained beside it.

A ``model.distance_head`` recipe (recipes/nuclei_gpu_distance.yaml) trains a 4th output channel
(each pixel's distance to its nucleus edge) beside the 3 classes (background, interior,
boundary). The predictor's softmax covers the classes only, so the first 3 channels of the
output layer are a complete 3-class network: same architecture, size and speed as one trained
without the head. This writes them as one (weights + the ``.json`` config beside them, the
config's ``classes`` and ``recipe.model.distance_head`` set back, ``derived_from`` saying what
was done), for ``scripts/zoo_ship.py nuclei`` / ``scripts/zoo_refresh.sh`` to ship with the
card head ``three_class``: the twenty-second session's GPU run kept the distance task as an
auxiliary one, its seeds being worse than the interior's (benchmarks/RESULTS.md, nuclei).

Usage::

    python scripts/zoo_drop_head.py RUN/best.safetensors OUT.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HEAD = "segmentation_head."


def drop_head(source: Path, out: Path) -> dict:
    """Write ``out`` (+ ``.json``): ``source``'s network without its distance channel; returns the config."""
    from devolens.io.tensors import load_tensors, save_tensors

    cfg_file = source.with_suffix(".json")
    if not source.is_file() or not cfg_file.is_file():
        raise SystemExit(f"{source}: need the weights and their .json config beside them")
    cfg = json.loads(cfg_file.read_text())
    model = dict(cfg.get("model") or {})
    recipe = json.loads(json.dumps(cfg.get("recipe") or {}))
    if not (recipe.get("model") or {}).get("distance_head") or model.get("classes") != 4:
        raise SystemExit(f"{source}: not a 3-class network with a distance head (recipe model.distance_head, 4 outputs)")
    state = load_tensors(source)
    layers = {k.rsplit(".", 1)[0] for k in state if k.startswith(HEAD) and k[len(HEAD):].split(".")[0].isdigit()}
    if not layers:
        raise SystemExit(f"{source}: no {HEAD}N.* tensors")
    last = max(layers, key=lambda name: int(name[len(HEAD):].split(".")[0]))  # the output layer: a row per channel
    for k in (f"{last}.weight", f"{last}.bias"):
        if k not in state or state[k].shape[0] != 4:
            raise SystemExit(f"{source}: {k} does not have 4 output channels")
        state[k] = state[k][:3].contiguous()
    model["classes"] = 3
    recipe["model"]["distance_head"] = False
    cfg.pop("devolens_unit", None)  # the source pair's id (devolens.io.together): not of these new weights
    cfg.update(model=model, recipe=recipe,
               derived_from="the run's weights without their distance head (output channel 4), by "
                            "scripts/zoo_drop_head.py; 'value' and the recipe's validate.postprocess are those of "
                            "the network with it (seeds from the head)")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(state, out, metadata={"format": "pt"})  # readable by all (save_file alone: 0600)
    out.with_suffix(".json").write_text(json.dumps(cfg, indent=2))
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="weights of a run with a distance head (its .json beside them)")
    ap.add_argument("out", type=Path, help="where the 3-class weights go (.json written beside them)")
    a = ap.parse_args()
    if a.out.resolve() == a.source.resolve():
        raise SystemExit("give another output path than the source")
    drop_head(a.source, a.out)
    print(f"wrote {a.out} (3 classes, the distance head dropped)")


if __name__ == "__main__":
    main()
