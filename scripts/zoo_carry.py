"""Card entries of one zoo folder that another lacks: carry them over, or list them.

``scripts/zoo_refresh.sh`` re-derives a staged zoo's parts step by step, and each step writes its card section
afresh: figures that no step measures again (robustness figures typed in from ``benchmarks/eval_robustness.py``,
the held-out figures of a step run without ``EVAL=1``) are then missing from the staged card. For the same
network they still hold and are carried over from the package's card; for new weights they were measured on
the previous network, so they are only listed (``--list-only``), with the command that measures them again
(their ``how``), never copied.

Usage::

    python scripts/zoo_carry.py src/devolens/models/zoo runs/refresh/zoo [--models nuclei population] [--list-only]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def missing(a: dict, b: dict, path: tuple = ()) -> list[tuple]:
    """Key paths of ``a`` (nested dicts) that ``b`` lacks, outermost first."""
    out = []
    for key, value in a.items():
        if key not in b:
            out.append(path + (key,))
        elif isinstance(value, dict) and isinstance(b[key], dict):
            out.extend(missing(value, b[key], path + (key,)))
    return out


def _get(card: dict, path: tuple):
    for key in path:
        card = card[key]
    return card


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="zoo folder the entries come from (the package's)")
    ap.add_argument("to", type=Path, help="zoo folder whose cards lack them (a staged one)")
    ap.add_argument("--models", nargs="+", default=["nuclei", "population"])
    ap.add_argument("--list-only", action="store_true", help="new weights: list, do not copy")
    a = ap.parse_args(argv)
    from zoo_ship import write_card

    for name in a.models:
        src, dst = a.source / name / "card.json", a.to / name / "card.json"
        if not src.is_file() or not dst.is_file():
            raise SystemExit(f"{name}: no card.json in {src.parent if not src.is_file() else dst.parent}")
        old, new = json.loads(src.read_text()), json.loads(dst.read_text())
        paths = missing(old, new)
        for path in paths:
            value = _get(old, path)
            how = value.get("how", "") if isinstance(value, dict) else ""
            print(f"{name}: {'.'.join(map(str, path))}" + (" (not measured on these weights: re-measure it; "
                  f"how: {how[:300]})" if a.list_only else " carried over"))
            if not a.list_only:
                _get(new, path[:-1])[path[-1]] = value
        if paths and not a.list_only:
            write_card(new, dst.parent)
        if not paths:
            print(f"{name}: nothing missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
