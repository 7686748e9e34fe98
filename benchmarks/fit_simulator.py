"""Fit the digital-embryo simulator from the shared real embryos.

Reads the EPIC CD tables (+ AuxInfo/TIME) in $DEVOLENS_DATA/epic (default ../shared/data)
and, for cell-cycle lengths only, the AceTree embryo; writes the fitted numbers (no data)
to src/devolens/lineage/simulator_params.json, which the package ships and loads by default.

Usage:
    .venv/bin/python benchmarks/fit_simulator.py [--data DIR] [--out PATH] [--no-acetree] [--exclude L3 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from devolens.io.atomic import write_text  # noqa: E402
from devolens.io.tables import read_table  # noqa: E402
from devolens.lineage.fit import fit_simulator_params  # noqa: E402


def data_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("DEVOLENS_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="shared data folder (default $DEVOLENS_DATA or ../shared/data)")
    ap.add_argument("--out", default=str(ROOT / "src" / "devolens" / "lineage" / "simulator_params.json"))
    ap.add_argument("--no-acetree", action="store_true", help="do not use the AceTree embryo for cycle lengths")
    ap.add_argument("--no-calibrate", action="store_true", help="keep the default physics (skip the ~30 s calibration)")
    ap.add_argument("--exclude", nargs="+", default=[], metavar="TEXT",
                    help="leave out the EPIC tables whose file name contains any of these (e.g. the held-out embryo "
                         "20241010_JIM767_25_L3)")
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    files = [f for f in sorted((data / "epic").glob("CD*.csv")) if not any(x in f.name for x in args.exclude)]
    if not files:
        print(f"no EPIC tables under {data / 'epic'}", file=sys.stderr)
        return 2
    tables = [read_table(f) for f in files]
    extra = []
    zpath = data / "acetree" / "wormguides_nuclei.zip"
    if zpath.exists() and not args.no_acetree:
        extra.append(read_table(zpath))
    params = fit_simulator_params(tables, cycle_tables=extra, calibrate=not args.no_calibrate)
    write_text(args.out, json.dumps(params, indent=1) + "\n")
    cyc = params["cycle"]
    print(f"embryos: {', '.join(params['embryos'])}; cycle-only: {', '.join(params['cycle_embryos']) or '-'}")
    print(f"tempo per embryo: {cyc['tempo']}  (sd log {cyc['tempo_sd_log']})")
    print(f"cell-cycle groups fitted: {sum(1 for s in cyc['group_source'].values() if s == 'fit')}, "
          f"names: {len(cyc['by_name'])}, growth/generation: {cyc['growth']}, cell sd log: {cyc['cell_sd_log']}")
    for k, v in cyc["by_group"].items():
        print(f"  {k:6s} {v['mean']:7.2f} tp  n={v['n']:4d} divided={v['n_divided']:4d}  ({cyc['group_source'][k]})")
    s = params["size"]
    print(f"nuclear size = {s['s0']} * n^-{s['alpha']}  (sd log cell {s['sd_log_cell']}, time {s['sd_log_time']})")
    print(f"embryo: {params['embryo']}")
    print(f"zscale {params['zscale']}, seconds/time point {params['seconds_per_time']}")
    print(f"apoptoses: {params['apoptosis']}")
    print(f"division letters (non-ap): {len(params['division_letters'])}")
    print(f"observed packing/motion: {params['observed']}")
    print(f"physics (calibrated by simulation, error {params.get('physics_calibration_error')}): {params['physics']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
