"""``devolens simulate``: digital embryos (and, later, digital wells)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from devolens.cli._common import choice

#: the words of --start
STARTS = ("P0", "4cell")

simulate_app = typer.Typer(
    help="Simulate data: a digital C. elegans embryo as a tidy lineage table, or a two-channel live/dead well.",
    no_args_is_help=True,
)


@simulate_app.command("embryo")
def embryo(
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed (non-negative); the same seed gives the same embryo."),
    cells: Optional[int] = typer.Option(
        None, "--cells", min=1, max=2000,
        help="Stop at the first time point with at least this many cells (default 360 when --times is not given; "
        "at most 2000: an embryo hatches with 558).",
    ),
    times: Optional[int] = typer.Option(
        None, "--times", min=1, max=600, help="Stop after this many time points (about 90 s each; at most 600)."
    ),
    start: Optional[str] = typer.Option(
        None, "--start", callback=choice(*STARTS), show_default=False,
        help="Start from the zygote ('P0') or from the 4-cell stage ('4cell'); default the --params file's \"start\", "
        "else P0.",
    ),
    params: Optional[Path] = typer.Option(
        None, "--params", help="JSON file overriding the shipped fitted simulator parameters (optional)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o",
        help="Output tidy CSV (embryo,time,cell,x,y,z,size; x,y,size in pixels, z in planes); "
        "a .meta.json with zscale/ellipse is written beside it. An existing CSV and .meta.json are replaced.",
    ),
) -> None:
    """Grow a digital embryo (Sulston lineage, fitted cell cycles, positions in the eggshell)."""
    from devolens.cli._common import check_not_folder_typed, count_of, note, summary
    from devolens.errors import DevolensError
    from devolens.lineage.simulate import read_params_file, simulate_embryo

    if start is not None and start not in STARTS:
        raise typer.BadParameter("must be 'P0' or '4cell'", param_hint="--start")
    check_not_folder_typed(out)
    if out.exists() and out.is_dir():
        raise DevolensError("is a folder; give a CSV file name", path=out)
    if params is not None:  # the table (or its .meta.json beside it) must not replace the parameters it came from
        for path in (out, out.with_name(out.stem + ".meta.json")):
            _not_params(path, params)
        given = read_params_file(params)
        file_start = given.get("start") if isinstance(given, dict) else None
        if start is not None and isinstance(file_start, str) and file_start != start:
            note(f"--start {start} overrides the start {file_start!r} of {params}: the embryo starts from {start} "
                 "(leave --start out to start from the file's)")
    df = simulate_embryo(seed, n_cells=cells, n_times=times, params=params, start=start)
    start = df.attrs["start"]  # what it started from: --start, else the file's, else P0
    try:
        from devolens.io.tables import write_tidy
    except ImportError:  # pragma: no cover - foundation module missing
        from devolens.io.atomic import write_csv

        write_csv(df, out)
    else:
        write_tidy(df, out)
    _add_provenance(out, seed=seed, cells=cells, times=times, start=start, params=params)
    counts = df.groupby("time").size()
    summary(f"wrote {out}: {count_of(len(df), 'row')}, {count_of(len(counts), 'time point')}, "
            f"{count_of(int(counts.iloc[-1]), 'cell')} at the end")
    hatched = hatching_note([df], "--cells")
    if hatched:
        note(hatched)


def _not_params(path: Path, params: Path) -> None:
    """Refuse an output ``path`` that is a folder or the ``--params`` file itself. Only that file: a parameter file
    is no table, so :func:`~devolens.cli._common.check_out`'s files read with a table (an EPIC table's AuxInfo, a
    tidy table's ``.meta.json``) are none of its own: ``emb.meta.json`` beside ``emb.json`` was a first run's own
    output, and a second ``--params emb.json --out emb.csv`` was refused as overwriting it."""
    from devolens.cli._common import same_file
    from devolens.errors import DevolensError

    if path.is_dir():
        raise DevolensError("output path is a folder", path=path)
    if path.exists() and params.exists() and same_file(path, params):
        raise DevolensError("output would overwrite the input; choose another file", path=path)


def hatching_note(tables, option: str, times=None) -> Optional[str]:
    """The note for simulated embryos that grow past hatching, or None when none does: the simulator's cells keep
    dividing past the :data:`~devolens.lineage.simulate.HATCHING_CELLS` (558) a C. elegans embryo hatches with, so
    those time points are not a real embryo's.

    Parameters
    ----------
    tables : list of DataFrame
        Simulated embryos' tidy tables (``embryo``, ``time`` columns).
    option : str
        The option that stops them earlier, named in the note (``--cells``, ``--sim-cells``).
    times : list, optional
        Per table, the time points used of it (those rendered); default all.

    Returns
    -------
    str or None
        From which time point each embryo that passes hatching has more cells (the embryo named when there are
        several); None when none passes it.
    """
    from devolens.lineage.simulate import HATCHING_CELLS

    past = []
    for i, table in enumerate(tables):
        counts = table.groupby("time").size()
        if times is not None and times[i] is not None:
            counts = counts[counts.index.isin(list(times[i]))]
        over = counts[counts > HATCHING_CELLS]
        if len(over):
            past.append((str(table["embryo"].iloc[0]), int(over.index.min())))
    if not past:
        return None
    one = len(tables) == 1
    if one:
        where = f"from time point {past[0][1]} the embryo has"
    else:
        shown = ", ".join(f"{t} in {name}" for name, t in past[:5])
        more = f" (and {len(past) - 5} more embryos)" if len(past) > 5 else ""
        where = f"from time point {shown}{more} the {'embryo has' if len(past) == 1 else 'embryos have'}"
    return (f"{where} more than the {HATCHING_CELLS} cells a C. elegans embryo hatches with: the simulator's cells "
            "(but Z2 and Z3) keep dividing where a real embryo's stop, so those time points are not a real embryo's "
            f"({option} stops {'it' if one or len(past) == 1 else 'them'} earlier)")


def _add_provenance(out: Path, *, seed: int, cells: Optional[int], times: Optional[int], start: str,
                    params: Optional[Path]) -> None:
    """Record in the ``.meta.json`` beside ``out`` what made the embryo: the options, the parameters file (its
    absolute path and the sha256 of its bytes), the devolens version (``devolens``, as every record of devolens
    names it, and ``devolens_version``, the older key, kept for earlier readers) and the command line.
    ``read_tidy`` reads only its own keys of it, so a table read back is the same."""
    import json

    from devolens.provenance import command_line, file_sha256, run_context, version_keys
    from devolens.io.atomic import write_text
    from devolens.io.tables import _meta_path

    path = _meta_path(out)
    try:
        meta = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, UnicodeDecodeError, ValueError):
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    meta.setdefault("seed", seed)
    meta.update({
        "cells": cells, "times": times, "start": start,
        "params": None if params is None else str(params.absolute()),
        "params_sha256": None if params is None else file_sha256(params),
        **version_keys(), "command": command_line("devolens simulate embryo"), **run_context(),
    })
    write_text(path, json.dumps(meta, indent=1, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command group to the root ``devolens`` app."""
    app.add_typer(simulate_app, name="simulate")
