"""Benchmark: read the largest shared lineage tables and compute their populations.

Prints, for the largest EPIC CD CSV and for the AceTree zip, the median wall time of
``read_table`` + ``populations`` and its ratio to a plain pandas baseline measured in the
same run (``pandas.read_csv`` of the same CSV; for the zip, ``pandas.read_csv`` of every
nuclei member, concatenated). Target: under 2 s each.

Usage: ``.venv/bin/python benchmarks/bench_lineage.py [--data DIR] [--repeat N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd

from devolens.io.tables import read_table
from devolens.lineage.populations import populations

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def baseline_zip(path: Path) -> pd.DataFrame:
    with zipfile.ZipFile(path) as zf:
        frames = [pd.read_csv(zf.open(n), header=None) for n in zf.namelist() if n.endswith("-nuclei")]
    return pd.concat(frames, ignore_index=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("DEVOLENS_DATA", ROOT.parent / "shared" / "data")),
                    help="shared data folder (default $DEVOLENS_DATA or ../shared/data)")
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions (median reported)")
    args = ap.parse_args()
    cases = []
    cds = sorted((args.data / "epic").glob("CD*.csv"), key=lambda p: p.stat().st_size)
    if cds:
        cases.append(("largest EPIC CD CSV", cds[-1], lambda p: pd.read_csv(p)))
    z = args.data / "acetree" / "wormguides_nuclei.zip"
    if z.exists():
        cases.append(("AceTree zip", z, baseline_zip))
    if not cases:
        print(f"no shared data under {args.data}; nothing to benchmark")
        return 0
    ok = True
    print(f"# bench_lineage: median of {args.repeat} runs, read_table + populations vs plain pandas")
    for label, path, base in cases:
        df = read_table(path)
        pops = populations(df)
        t_ours = median_time(lambda: populations(read_table(path)), args.repeat)
        t_base = median_time(lambda: base(path), args.repeat)
        status = "OK" if t_ours < TARGET_S else "SLOW"
        ok &= t_ours < TARGET_S
        print(
            f"{label}: {path.name} ({path.stat().st_size / 1e6:.1f} MB, {len(df)} nuclei, {len(pops)} time points): "
            f"read+populations {t_ours:.3f} s, plain pandas baseline {t_base:.3f} s, "
            f"ratio {t_ours / t_base:.2f}x  [{status}: target < {TARGET_S:.0f} s]"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
