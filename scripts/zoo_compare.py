"""Differences between two zoo folders (e.g. the package's and one staged by ``scripts/zoo_refresh.sh``).

For each model folder present in both: every ``card.json`` value that differs (numbers with their relative
difference; text shortened), and for each ``*.safetensors`` file the tensors that differ (largest absolute
difference) or exist in one only. Prints nothing for identical parts; the exit code is 1 when anything
differs beyond ``--rtol`` (numbers and tensors) or in text.

Usage::

    python scripts/zoo_compare.py src/devolens/models/zoo runs/refresh/zoo [--models nuclei population]
        [--rtol 0] [--ignore-text]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def _walk(a, b, path: str, out: list, rtol: float, ignore_text: bool) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append((True, f"{path}.{k}: only in {'second' if k not in a else 'first'}"))
            else:
                _walk(a[k], b[k], f"{path}.{k}", out, rtol, ignore_text)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{path}[{i}]", out, rtol, ignore_text)
    elif (isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool)
          and not isinstance(b, bool)):
        if a != b and not (math.isnan(a) and math.isnan(b)):
            rel = abs(a - b) / max(abs(a), abs(b), 1e-12)
            if not (math.isfinite(rel) and rel <= rtol):
                out.append((True, f"{path}: {a} -> {b} (relative {rel:.2e})"))
    elif a != b or type(a) is not type(b):  # 1 and true are equal to Python, not to a card's reader
        short = lambda v: (repr(v)[:117] + "...") if len(repr(v)) > 120 else repr(v)  # noqa: E731
        out.append((not (ignore_text and isinstance(a, str) and isinstance(b, str)),
                    f"{path}: {short(a)} -> {short(b)}"))


def _tensors(fa: Path, fb: Path, rtol: float) -> list:
    import numpy as np
    from safetensors.numpy import load_file

    a, b = load_file(str(fa)), load_file(str(fb))
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            out.append((True, f"{fb.name}:{k}: only in {'second' if k not in a else 'first'}"))
            continue
        if a[k].dtype != b[k].dtype:
            out.append((True, f"{fb.name}:{k}: dtype {a[k].dtype} -> {b[k].dtype}"))
        x, y = a[k].astype(np.float64), b[k].astype(np.float64)
        if x.shape != y.shape:
            out.append((True, f"{fb.name}:{k}: shape {x.shape} -> {y.shape}"))
            continue
        if not all(np.array_equal(f(x), f(y)) for f in (np.isnan, np.isposinf, np.isneginf)):
            out.append((True, f"{fb.name}:{k}: NaN or infinite values differ"))
            continue
        finite = np.isfinite(x)
        diff = float(np.max(np.abs(x[finite] - y[finite]))) if finite.any() else 0.0
        if diff > 0:
            scale = float(np.max(np.abs(x[finite])))
            rel = diff / max(scale, 1e-12)
            if rel > rtol:
                out.append((True, f"{fb.name}:{k}: max |difference| {diff:.3g} ({rel:.2e} of the largest value)"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--models", nargs="*", default=None, help="model folders to compare (default: all in both)")
    ap.add_argument("--rtol", type=float, default=0.0, help="relative differences up to this are not reported")
    ap.add_argument("--ignore-text", action="store_true", help="report differing text but do not count it")
    a = ap.parse_args(argv)
    for folder in (a.first, a.second):
        if not folder.is_dir():
            raise SystemExit(f"{folder}: no such folder")
    one = {p.parent.name for p in a.first.glob("*/card.json")}
    two = {p.parent.name for p in a.second.glob("*/card.json")}
    differs = False
    if a.models is None:
        for name in sorted(one ^ two):
            print(f"{name}: only in {a.first if name in one else a.second}")
            differs = True
    names = a.models or sorted(one & two)
    if not names:
        raise SystemExit("no model folder (with a card.json) in both")
    for name in names:
        fa, fb = a.first / name, a.second / name
        if not (fa / "card.json").is_file() or not (fb / "card.json").is_file():
            raise SystemExit(f"{name}: no card.json in {fa if not (fa / 'card.json').is_file() else fb}")
        found = []
        _walk(json.loads((fa / "card.json").read_text()), json.loads((fb / "card.json").read_text()), "card",
              found, a.rtol, a.ignore_text)
        for f in sorted(set(p.name for p in fa.glob("*.safetensors")) | set(p.name for p in fb.glob("*.safetensors"))):
            if not (fa / f).is_file() or not (fb / f).is_file():
                found.append((True, f"{f}: only in {'second' if not (fa / f).is_file() else 'first'}"))
            else:
                found.extend(_tensors(fa / f, fb / f, a.rtol))
        print(f"{name}: {'identical' if not found else f'{len(found)} difference(s)'}")
        for counts, line in found:
            print(f"  {line}{'' if counts else '  (text, ignored)'}")
        differs |= any(counts for counts, _ in found)
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
