"""Fit the digital-embryo simulator from the shared real embryos.

Reads the EPIC CD tables (+ AuxInfo/TIME) in $DEVOLENS_DATA/epic (default ../shared/data)
and, for cell-cycle lengths only, the AceTree embryo; writes the fitted numbers (no data)
to src/devolens/lineage/simulator_params.json, which the package ships and loads by default.

The shipped simulator_params.json was fitted on all six EPIC tables (20240930_JIM762_L4,
20241009_JIM767_25_L1, 20241009_JIM767_25_L5, 20241010_JIM767_25_L2, 20241107_JIM767_25_L1 and
the held-out embryo 20241010_JIM767_25_L3), with the AceTree embryo (wormguides_nuclei) for
cell-cycle lengths only: its "embryos" and "cycle_embryos" keys list them. The models trained
on simulated embryos were trained with it, so it is left as it is; the next retraining should
fit without the held-out embryo: --exclude 20241010_JIM767_25_L3 --out PATH.

--exclude NAME (repeatable) leaves out the table whose embryo name (as the fit lists it) or
file stem (CD20241010_JIM767_25_L3) is NAME; a NAME that is no table's is refused, naming them.

Usage:
    .venv/bin/python benchmarks/fit_simulator.py [--data DIR] [--out PATH] [--no-acetree] [--no-calibrate]
        [--exclude NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from devolens.errors import DevolensError  # noqa: E402
from devolens.io.atomic import write_text  # noqa: E402
from devolens.io.tables import read_table  # noqa: E402
from devolens.lineage.fit import fit_simulator_params  # noqa: E402


def data_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("DEVOLENS_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def table_names(path: Path, table) -> tuple[str, ...]:
    """The names ``--exclude`` takes for a table read from ``path``: its embryo name (the ``embryo`` column, as
    :func:`~devolens.lineage.fit.fit_simulator_params` lists it) and its file stem (a zip's name without .zip)."""
    names = [path.stem]
    if table is not None and "embryo" in table.columns and len(table):  # (None: left out by its file stem, unread)
        names.insert(0, str(table["embryo"].iloc[0]))
    return tuple(dict.fromkeys(names))


def pick_tables(named: list[tuple[Path, object]], exclude: list[str]) -> tuple[list, list, list[str]]:
    """``(kept, dropped, unknown)`` of ``named`` (``(path, table)`` pairs): the tables none of whose names
    (:func:`table_names`) is in ``exclude``, those left out, and the NAMEs that are no table's."""
    want = list(dict.fromkeys(exclude))
    kept, dropped, used = [], [], set()
    for path, table in named:
        hit = [x for x in want if x in table_names(path, table)]
        used.update(hit)
        (dropped if hit else kept).append((path, table))
    return kept, dropped, [x for x in want if x not in used]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="shared data folder (default $DEVOLENS_DATA or ../shared/data)")
    ap.add_argument("--out", default=str(ROOT / "src" / "devolens" / "lineage" / "simulator_params.json"))
    ap.add_argument("--no-acetree", action="store_true", help="do not use the AceTree embryo for cycle lengths")
    ap.add_argument("--no-calibrate", action="store_true", help="keep the default physics (skip the ~30 s calibration)")
    ap.add_argument("--exclude", action="extend", nargs="+", default=[], metavar="NAME",
                    help="leave out the table whose embryo name or file stem is NAME (repeatable; e.g. the held-out "
                         "embryo: --exclude 20241010_JIM767_25_L3)")
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    files = sorted((data / "epic").glob("CD*.csv"))
    if not files:
        print(f"error: no EPIC tables (CD*.csv) under {data / 'epic'}; give the shared data folder with --data DIR",
              file=sys.stderr)
        return 2
    stems = set(args.exclude)  # a table named by its file stem is left out unread (one that fails to read, too)

    def read(path: Path):
        return None if path.stem in stems else read_table(path)

    zpath = data / "acetree" / "wormguides_nuclei.zip"
    try:
        epic = [(f, read(f)) for f in files]
        acetree = [(zpath, None if args.no_acetree else read(zpath))] if zpath.exists() else []
    except DevolensError as exc:
        print(f"error: {exc} (leave the table out with --exclude {Path(exc.path or '').stem or 'NAME'})",
              file=sys.stderr)
        return 2
    kept, dropped, unknown = pick_tables(epic + acetree, args.exclude)
    if unknown:
        names = ", ".join(table_names(p, t)[0] for p, t in epic + acetree)
        print(f"error: --exclude {', '.join(unknown)}: no such table under {data} (the tables: {names}; a table's "
              "file stem names it too); nothing was fitted", file=sys.stderr)
        return 2
    keep = {p for p, _ in kept}
    tables = [t for p, t in epic if p in keep]
    extra = [t for p, t in acetree if p in keep and t is not None]  # (cell-cycle lengths only; not --no-acetree)
    if not tables:
        print(f"error: every EPIC table under {data / 'epic'} is excluded; leave at least one to fit on",
              file=sys.stderr)
        return 2
    for p, t in dropped:
        print(f"note: left out {p.name} ({table_names(p, t)[0]})", file=sys.stderr)
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
