"""``devolens lineage``: convert lineage tables, count populations, find cliffs, clean.

TABLE may be an EPIC CD CSV (its AuxInfo/TIME files beside it are picked up), a tidy CSV,
or an AceTree nuclei zip or folder; the format is detected from the content.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import typer

from devolens.cli._common import check_out as _common_check_out, count_of as _count, note as _print_note
from devolens.cli._common import summary as _summary
from devolens.errors import DevolensError
from devolens.lineage.letters import LETTER_KEY_LINE

TABLE_HELP = (
    "Lineage table: an EPIC CD CSV (AuxInfo/TIME files beside it are used), a tidy CSV, "
    "or an AceTree nuclei zip/folder. The format is detected from the content."
)
_DETECT_HELP = (
    "Cliff detector: smallest fall from the running peak, in cells, that apoptosis cannot explain."
)


#: Image formats of ``--plot`` (matplotlib writes them all; .jpg/.jpeg through Pillow).
PLOT_SUFFIXES: tuple[str, ...] = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


EMBRYO_HELP = (
    "Keep only this embryo's rows (the value of the table's embryo column) before anything else: for a "
    "table that holds several embryos."
)


#: The notes being recorded for an output's record (:func:`_notes_said`): each a list and whether it holds its
#: notes back (printed by the command later) rather than printing them as they come.
_RECORDERS: list[tuple[list[str], bool]] = []


def note(text: str) -> None:
    """:func:`devolens.cli._common.note`, and the note kept by each :func:`_notes_said` open; not printed while one
    of them holds its notes back."""
    for said, _ in _RECORDERS:
        said.append(text)
    if not any(hold for _, hold in _RECORDERS):
        _print_note(text)


@contextlib.contextmanager
def _notes_said(hold: bool = False) -> Iterator[list[str]]:
    """Yield the list of the notes said inside (:func:`note`), for an output's record; with ``hold`` they are not
    printed (the command prints them after its outputs, as it did before it recorded them)."""
    said: list[str] = []
    _RECORDERS.append((said, hold))
    try:
        yield said
    finally:
        _RECORDERS.pop()


def _embryos_text(names: list[str], limit: int = 10) -> str:
    """``a, b, c`` of the embryo names, the first ``limit`` of them, then how many more."""
    more = f" (and {len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _embryos_said(df) -> str:
    """``embryo NAME`` of a table of one embryo; ``N embryos (a, b)`` of one of several."""
    names = [str(e) for e in df["embryo"].astype(str).unique()]
    return f"embryo {names[0]}" if len(names) == 1 else f"{len(names)} embryos ({_embryos_text(names)})"


def _one_embryo(df, embryo: str | None, *, one: bool):
    """The rows of embryo ``embryo`` of ``df`` (``--embryo``); an unknown name is refused, naming the table's
    embryos. Without ``embryo``, ``one`` refuses a table of several embryos (the commands that count one embryo),
    naming them and ``--embryo NAME``."""
    if "embryo" not in df.columns:
        return df
    names = [str(e) for e in df["embryo"].astype(str).unique()]
    if embryo is None:
        if one and len(names) > 1:
            raise DevolensError(f"table holds {len(names)} embryos ({_embryos_text(names)}); pick one with "
                                "--embryo NAME")
        return df
    if embryo not in names:
        which = f"{len(names)} embryos" if len(names) != 1 else "1 embryo"
        raise DevolensError(f"--embryo {embryo}: no such embryo; the table holds {which} ({_embryos_text(names)})")
    attrs = dict(df.attrs)
    others = tuple(f"embryo {e}: " for e in names if e != embryo)  # the reader's notes on the other embryos
    out = df.loc[df["embryo"].astype(str) == embryo].reset_index(drop=True)
    out.attrs = attrs
    if attrs.get("notes"):
        out.attrs["notes"] = [t for t in attrs["notes"] if not t.startswith(others)]
    return out


def _read(table: Path, *, drop_copies: bool = False, embryo: str | None = None, one: bool = False):
    """Read TABLE; with ``drop_copies``, drop exact copies of rows with a note (see ``drop_duplicate_rows``).

    For the commands that count or rewrite rows (populations, convert, cliffs): a table saved twice would
    count every cell twice, silently. ``clean`` reads the rows as they are: dropping duplicated names and
    copies is its job and its report counts them (its cliffs are found on the counts without them).
    ``embryo`` (``--embryo``) keeps that embryo's rows first; ``one`` refuses several embryos without it
    (:func:`_one_embryo`).
    """
    from devolens.io.tables import drop_duplicate_rows, read_table
    from devolens.lineage.populations import copies_note

    df = _one_embryo(read_table(table), embryo, one=one)
    for text in df.attrs.get("notes") or ():  # what the reader decided about the file (a zip's second copy...)
        note(text)
    if not drop_copies:
        return df
    df, dup = drop_duplicate_rows(df)
    if dup.exact:
        note(copies_note(dup.exact))
    if dup.same_name:
        t, cell = dup.first_same_name
        note(f"{dup.same_name} row(s) repeat a cell name at one time point with another position or size (first "
              f"{cell} at time {t}): kept; `devolens lineage clean` keeps the first row of each name")
    return df


def _fall(c) -> str:
    """:func:`~devolens.lineage.cliffs.describe_fall` (imported when a cliff is told: every command's start imports
    this module, and the cliffs module brings pandas)."""
    from devolens.lineage.cliffs import describe_fall

    return describe_fall(c)


#: The lineage each population letter searched for lineage cliffs counts, in words.
_LINEAGE = {"A": "AB", "E": "E", "M": "MS", "C": "C", "D": "D"}


def _lineage_fall(c) -> str:
    """``the MS lineage (M) 32 -> 0 cells at time 101`` of a :class:`~devolens.lineage.cliffs.LetterCliff`."""
    return f"the {_LINEAGE.get(c.letter, c.letter)} lineage ({c.letter}) {_fall(c)}"


def _dip_text(d) -> str:
    """``time 150 has 86 cells between 188 and 190: a damaged or half-curated time point?`` of a
    :class:`~devolens.lineage.cliffs.Dip`."""
    if d.first_time == d.last_time:
        return (f"time {d.first_time} has {_count(d.cells[0], 'cell')} between {d.before} and {d.after}: a damaged or "
                "half-curated time point?")
    cells = " and ".join(map(str, d.cells)) if len(d.cells) == 2 else ", ".join(map(str, d.cells))
    return (f"times {d.first_time}-{d.last_time} have {cells} cells between {d.before} and {d.after}: damaged or "
            "half-curated time points?")


def _lone_text(x) -> str:
    """``time 1050 stands alone, 910 time points after time 140 (1 cell): a mistyped time?`` (then ``(time 78 is
    missing: 780 mistyped?)`` when the rest of the table misses one time point) of a
    :class:`~devolens.lineage.cliffs.LoneTime`; the time points are the table's own (one per its step: time 94500
    is 910 time points after time 12600 in a table in seconds at 90 s, as the note on the step reads it)."""
    side = "after" if x.time > x.nearest else "before"
    hole = f" (time {x.missing} is missing: {x.time} mistyped?)" if x.missing is not None else ""
    return (f"time {x.time} stands alone, {x.time_points} time points {side} time {x.nearest} "
            f"({x.cells} cell{'s' if x.cells != 1 else ''}): a mistyped time?{hole}")


def _names_stop_text(c) -> str:
    """``names stop after time T (later cells unnamed; named cells B -> A at time T')`` of the names-stop
    :class:`~devolens.lineage.cliffs.Cliff` of a cliff report."""
    return f"names stop after time {c.time} (later cells unnamed; named cells {_fall(c)})"


def _listed(texts: list[str], limit: int = 3) -> str:
    """The first ``limit`` of ``texts`` joined with ``; ``, then how many more."""
    more = f" (and {len(texts) - limit} more)" if len(texts) > limit else ""
    return "; ".join(texts[:limit]) + more


def _finding_notes(rep, arg: str, who: str = "", *, cleaning: bool = False) -> None:
    """The notes on what a cliff report finds besides the cliffs of the total: lone time points (a mistyped
    time), lineage cliffs (one lineage's curation stopped) and dips (a damaged time point). ``arg``: the table
    quoted for a command line; ``cleaning``: said by ``lineage clean`` (which cuts at cliffs of the total only)."""
    from dataclasses import replace

    if cleaning and rep.cliffs:  # what lies after the cut is gone: only what the cleaned table keeps is said
        last = rep.last_good_time
        stop = rep.names_stop
        rep = replace(rep, letters=[c for c in rep.letters if c.first_bad_time <= last],
                      dips=[d for d in rep.dips if d.last_time < last],
                      names_stop=stop if stop is not None and stop.first_bad_time <= last else None)
    elif rep.cliffs:  # a lineage falling with the total is the total's cliff, said as such
        falls = {c.first_bad_time for c in rep.cliffs}
        rep = replace(rep, letters=[c for c in rep.letters if c.first_bad_time not in falls])
    if rep.lone:
        what = "dropped from the cleaned table" if cleaning else (
            f"no annotation cliff; `devolens lineage clean {arg} --out CLEAN.csv` drops "
            f"{'them' if len(rep.lone) > 1 else 'it'}")
        note(f"{who}{_listed([_lone_text(x) for x in rep.lone])} ({what})")
    if rep.names_stop is not None:
        note(f"{who}{_names_stop_text(rep.names_stop)}: every lineage's count falls to none while the cells go on, "
             "so no lineage's later counts are the embryo's (only the total is)")
    if rep.letters:
        many = len(rep.letters) > 1
        tail = ("`lineage clean` cuts at cliffs of the total only, so the cleaned table keeps them" if cleaning
                else f"`devolens lineage cliffs {arg}` lists them")
        note(f"{who}lineage cliff{'s' if many else ''}: {_listed([_lineage_fall(c) for c in rep.letters], 5)}, and "
             f"no recovery while the other cells go on (curation of {'those lineages' if many else 'that lineage'} "
             f"stopped?), so {'their' if many else 'its'} later counts are not the embryo's; {tail}")
    if rep.dips:
        note(f"{who}{_listed([_dip_text(d) for d in rep.dips])} (a dip that recovers: the counts there are not "
             "the embryo's)")


def _cliff_note(df, table: Path, embryo=None, picked: str | None = None):
    """One line when the counts of ``df`` (a table of one embryo) fall off an annotation cliff
    (:func:`~devolens.lineage.cliffs.find_cliffs` with the ``cliffs`` command's defaults, on the same counts):
    curation stopped, and the counts after it are not the embryo's. Then the lone time points, lineage cliffs and
    dips (:func:`_finding_notes`). Nothing when there is none. ``picked``: the ``--embryo`` given, repeated in the
    commands suggested. Returns the :class:`~devolens.lineage.cliffs.CliffReport` the notes say."""
    import shlex

    from devolens.lineage.cliffs import find_cliffs

    rep = find_cliffs(df)
    who = f"embryo {embryo}: " if embryo is not None else ""
    arg = shlex.quote(str(table)) + (f" --embryo {shlex.quote(picked)}" if picked is not None else "")
    found = rep.cliffs
    if not found:
        _finding_notes(rep, arg, who)
        return rep
    c = found[0]
    more = f" (and {len(found) - 1} later)" if len(found) > 1 else ""
    # find_cliffs counts a name repeated at one time point once; populations counts its rows: said, so the note's
    # counts are not taken for the table's
    once = " (each cell name counted once)" if len(rep.duplicates) else ""
    note(f"{who}annotation cliff after time {c.time}{more}: {_fall(c)}{once}, "
         f"no recovery (curation stopped?), so the later counts are not the embryo's; `devolens lineage cliffs {arg}` "
         f"lists the cliffs, `devolens lineage clean {arg} --out CLEAN.csv` cuts the table after time {c.time}")
    _finding_notes(rep, arg, who)
    return rep


def _check_out(path: Path, table: Path) -> None:
    """Refuse an output file before any work: the input or a file read with it, a folder
    (:func:`devolens.cli._common.check_out`), or a read-only file (:func:`devolens.io.atomic.output_file`: the
    rename that replaces it would ignore its mode)."""
    from devolens.io.atomic import output_file

    _common_check_out(path, table)
    output_file(path)


def _check_tidy_out(out_path: Path, table: Path) -> None:
    """:func:`_check_out` for the files ``lineage convert`` and ``clean`` write: the CSV and the ``.meta.json``
    beside it, named by the CSV's stem (``--out in.tsv`` writes ``in.meta.json``: the input ``in.csv``'s own, the
    record of what made it, was replaced without a word)."""
    from devolens.io.tables import _meta_path

    _check_out(out_path, table)
    sidecar = _meta_path(out_path)
    try:
        _check_out(sidecar, table)
    except DevolensError as exc:
        raise DevolensError(f"its metadata goes to {sidecar.name} beside it: {exc.message}", path=out_path) from None


def _check_plot(plot: Path, out_path: Path, table: Path) -> None:
    """Refuse a --plot path before any work: an image format matplotlib cannot write (``.txt`` ended in a
    traceback after the table was read), a folder, the input, or the --out file itself."""
    if plot.suffix.lower() not in PLOT_SUFFIXES:
        got = f"'{plot.suffix}'" if plot.suffix else "no extension"
        raise DevolensError(f"--plot must end in {', '.join(PLOT_SUFFIXES)} (the image format), got {got}", path=plot)
    _check_out(plot, table)
    if plot.absolute() == out_path.absolute():
        raise DevolensError("--plot and --out are the same file; give the image its own name", path=plot)


def _convert_cliff_notes(df, table: Path) -> None:
    """:func:`_cliff_note` for each embryo of a converted table. Converting does not need whole time points or one
    embryo per table: a table the counts cannot be made of gets no note (``lineage cliffs`` says why)."""
    several = "embryo" in df.columns and df["embryo"].nunique(dropna=False) > 1
    for embryo, sub in (df.groupby("embryo", sort=False, dropna=False) if several else [(None, df)]):
        try:  # a table that cannot be counted (fractional times...) is refused by the counting, before any note
            _cliff_note(sub, table, embryo)
        except DevolensError:
            continue


@contextlib.contextmanager
def _about(table: Path) -> Iterator[None]:
    """Name TABLE in library errors that do not name a file themselves."""
    try:
        yield
    except DevolensError as exc:
        if exc.path is None:
            raise DevolensError(str(exc), path=table) from None
        raise


def _write(fn, path: Path, *args) -> None:
    try:
        fn(*args)
    except OSError as exc:
        from devolens.io.atomic import cannot_write

        raise cannot_write(exc, path) from None


def _named(write, path: Path):
    """``write`` (a writer of :func:`~devolens.io.together.write_together`), its OSErrors named by ``path``."""
    return lambda tmp: _write(write, path, tmp)


#: What ``lineage convert`` and ``lineage clean`` add to the ``.meta.json`` beside their CSV, after the keys
#: :func:`~devolens.io.tables.write_tidy` writes (said in their ``--out`` help and the README).
META_RECORD_HELP = (
    "The .meta.json holds the table's metadata (zscale, ellipse, time_seconds, seconds_per_time, axis, ...) and "
    '"format", the format its rows were first read from (an EPIC table converted and converted again stays "epic"), '
    'then "source_format" (the same), "input_format" (the format of the file this command read: epic, acetree or '
    'tidy), "devolens" (the version, as every record of devolens names it; "devolens_version", the older key, '
    'holds the same), "command", "input" (absolute) and "inputs" (the table and the files read with it, each with '
    "its absolute path and sha256)."
)
#: what ``lineage convert`` and ``clean`` do with an existing ``--out`` (:func:`~devolens.io.tables.write_tidy`)
TIDY_REPLACED_HELP = "An existing CSV and its .meta.json are replaced, the two together."


def _tidy_record(df, table: Path, command: str) -> dict:
    """What made a tidy CSV written from ``df`` (read from ``table``), for its ``.meta.json`` after the entries
    :func:`~devolens.io.tables.write_tidy` writes (:data:`META_RECORD_HELP`)."""
    from devolens.cli.render import _inputs
    from devolens.provenance import command_line, version_keys

    return {"source_format": df.attrs.get("origin_format", df.attrs.get("format")),
            "input_format": df.attrs.get("format"), **version_keys(),
            "command": command_line(command), "input": str(table.absolute()), "inputs": _inputs(table)}


def _populations_record(df, table: Path, out_path: Path, plot: Path | None, rep, notes: list[str]) -> str:
    """The JSON written beside ``lineage populations``' CSV (``NAME.json``, as ``population`` and ``identify``
    name theirs): ``command``, ``input``, ``output`` (absolute), ``devolens`` (the version), ``inputs`` (the table
    and the files read with it, each with its sha256, as ``render.json`` lists them), ``embryo``, ``plot`` (None:
    none drawn), then the cliff report the notes said, keyed as ``lineage cliffs --json`` prints it (``cliffs``: the
    annotation cliffs, each with ``time``, its last good time point, and ``first_bad_time``; ``last_good_time``:
    the rows of later time points are not the embryo's counts; ``duplicates``; ``letters``, ``dips``, ``lone_times``
    and ``names_stop`` when found), and ``notes``: the notes printed, in order."""
    from devolens.cli.render import _inputs
    from devolens.provenance import command_line, record_text, version

    return record_text({
        "command": command_line("devolens lineage populations"), "input": str(table.absolute()),
        "output": str(out_path.absolute()), "devolens": version(), "inputs": _inputs(table),
        "embryo": str(df["embryo"].iloc[0]), "plot": None if plot is None else str(plot.absolute()),
        **rep.to_dict(), "notes": list(notes),
    })


def _cliff_marks(rep) -> list[tuple[float, str]]:
    """The ``marks`` of :func:`~devolens.viz.plots.plot_populations` for the annotation cliffs of ``rep``: a dashed
    line at each cliff's last good time point."""
    return [(c.time, f"annotation cliff after time {c.time}") for c in rep.cliffs]


def _cliffs_of(table: Path, as_json: bool, embryo: str | None, *, min_drop: int, min_fraction: float, window: int,
               echo: bool = True) -> dict:
    """``lineage cliffs`` of one table: its lines (or, with ``as_json`` and ``echo``, its JSON) printed; returns the
    report as JSON data. Errors name the table."""
    from devolens.lineage.cliffs import find_cliffs
    from devolens.lineage.populations import invalid_names_note, unnamed_note, unnamed_rows

    with _about(table):
        df = _read(table, drop_copies=True, embryo=embryo, one=True)  # as populations counts: copies noted
        rep = find_cliffs(df, min_drop=min_drop, min_fraction=min_fraction, window=window)
    blank = unnamed_rows(df)
    if blank:  # lineage cliffs are searched on the named cells only: "no cliff" alone would overstate the check
        note(unnamed_note(blank, len(df)))
    invalid = invalid_names_note(df)
    if invalid:
        note(invalid)
    for text in rep.notes:  # (names that are Sulston names but for their case: in no lineage cliff)
        note(text)
    data = rep.to_dict()
    if as_json:
        if echo:
            typer.echo(json.dumps(data))
        return data
    name = df["embryo"].iloc[0]
    if not rep.cliffs:
        typer.echo(f"{name}: no annotation cliff; last good time point {rep.last_good_time}")
    for c in rep.cliffs:
        typer.echo(f"{name}: cliff after time {c.time}: {_fall(c)}")
    if rep.cliffs:
        typer.echo(f"{name}: last good time point {rep.last_good_time}")
    for c in rep.letters:
        typer.echo(f"{name}: lineage cliff after time {c.time}: {_lineage_fall(c)} (curation of that lineage "
                   "stopped?)")
    if rep.names_stop is not None:
        typer.echo(f"{name}: {_names_stop_text(rep.names_stop)}")
    for d in rep.dips:
        typer.echo(f"{name}: dip: {_dip_text(d)}")
    for x in rep.lone:
        typer.echo(f"{name}: {_lone_text(x)} (no cliff: left out of the counts searched)")
    nd = len(rep.duplicates)
    if nd:
        first = rep.duplicates.iloc[0]
        typer.echo(
            f"{name}: {nd} duplicated name(s) at one time point, first {first['cell']} at time {first['time']}"
        )
    else:
        typer.echo(f"{name}: no duplicated names")
    return data


def register(app: typer.Typer) -> None:
    """Add the ``lineage`` command group to the ``devolens`` app."""
    group = typer.Typer(
        help="Lineage tables: convert to tidy CSV, per-lineage populations, annotation cliffs, cleaning.",
        no_args_is_help=True,
    )

    @group.command("convert")
    def convert(
        table: Path = typer.Argument(..., help=TABLE_HELP, show_default=False),
        out_path: Path = typer.Option(
            ..., "--out", "-o", help="Tidy CSV to write (embryo,time,cell,x,y,z,size[,blot]); metadata "
            "(z scale, ellipse, timing) goes to <name>.meta.json beside it. blot: an EPIC table's blot column as "
            "read (EPIC's background-corrected reporter expression in the nucleus; it may be negative), kept "
            "as a number, passed through (identify's CSV keeps it too) and used in no count or prediction; only EPIC "
            "tables have it. " + META_RECORD_HELP + " " + TIDY_REPLACED_HELP,
            show_default=False,
        ),
    ) -> None:
        """Convert TABLE to the tidy CSV (one row per nucleus per time point)."""
        from devolens.io.tables import write_tidy

        _check_tidy_out(out_path, table)
        with _about(table):
            df = _read(table, drop_copies=True)
        _write(write_tidy, out_path, df, out_path, True, _tidy_record(df, table, "devolens lineage convert"))
        _summary(
            f"wrote {out_path}: {_count(len(df), 'row')}, {_count(df['time'].nunique(), 'time point')}, "
            f"format {df.attrs.get('format')}, {_embryos_said(df)}"
        )
        _convert_cliff_notes(df, table)

    @group.command("populations", help="Count cells per population letter (A E M P C D Z) and in total at each "
                   f"time point. Letters: {LETTER_KEY_LINE}.")
    def populations_cmd(
        table: Path = typer.Argument(..., help=TABLE_HELP, show_default=False),
        out_path: Path = typer.Option(
            ..., "--out", "-o", help="CSV to write with columns time,A,E,M,P,C,D,Z,total (cells per time point). "
            "Beside it, NAME.json records how it was made (command, input and its sha256, devolens version, notes) "
            'and the annotation cliffs found, as `lineage cliffs --json` gives them: "cliffs" (each with "time", its '
            'last good time point) and "last_good_time" (rows of later time points are not the embryo\'s counts). '
            "An existing CSV and its record (and --plot) are replaced, together.",
            show_default=False,
        ),
        plot: Path | None = typer.Option(
            None, "--plot", help="Also draw the population curves to this image (.png, .svg, .pdf or .jpg); an "
            "annotation cliff is drawn as a dashed line at its last good time point.",
            show_default=False,
        ),
        embryo: str | None = typer.Option(None, "--embryo", metavar="NAME", help=EMBRYO_HELP, show_default=False),
    ) -> None:
        """Count cells per population letter (A E M P C D Z) and in total at each time point."""
        from devolens.cli.identify import record_path
        from devolens.io.together import write_together
        from devolens.lineage.populations import populations

        _check_out(out_path, table)
        record = record_path(out_path)  # NAME.json, as population and identify name theirs
        _check_out(record, table)
        if plot is not None:
            _check_plot(plot, out_path, table)  # (an image: never the record's .json)
        with _notes_said() as said:  # the reader's notes, printed as they come
            with _about(table):
                df = _read(table, drop_copies=True, embryo=embryo, one=True)
                pops = populations(df)
            with _notes_said(hold=True) as later:  # said after the outputs, as before they were recorded
                rep = _cliff_note(df, table, picked=embryo)
                # populations' own notes (copies dropped on reading): rows of no name, counted in the total only,
                # and mis-capitalised names: a letter's curve would dip without a word
                for text in pops.attrs.get("notes", ()):
                    note(text)
        text = _populations_record(df, table, out_path, plot, rep, said)
        # the CSV, its plot and its record: all this run's or all the previous run's, whatever stops the run (the
        # plot drawn before anything is committed; the record last)
        # each through a link there to its file (output_file), as write_csv writes; text as it writes it (TEXT_ERRORS)
        from devolens.io.atomic import TEXT_ERRORS, output_file

        writers = {output_file(out_path): _named(lambda tmp: pops.to_csv(tmp, index=False, errors=TEXT_ERRORS),
                                                 out_path)}
        if plot is not None:
            from devolens.viz.plots import plot_populations

            writers[output_file(plot)] = _named(lambda tmp: plot_populations(pops, tmp, str(df["embryo"].iloc[0]),
                                                                             marks=_cliff_marks(rep)), plot)
        writers[output_file(record)] = _named(lambda tmp: tmp.write_text(text, encoding="utf-8",
                                                                         errors=TEXT_ERRORS), record)
        write_together(writers)
        msg = f"wrote {out_path}: {_count(len(pops), 'time point')}, up to {_count(int(pops['total'].max()), 'cell')}"
        if plot is not None:
            msg += f"; plot {plot}"
        _summary(msg)
        for line in later:
            _print_note(line)

    @group.command("cliffs")
    def cliffs_cmd(
        tables: list[Path] = typer.Argument(
            ..., metavar="TABLE", show_default=False,
            help=TABLE_HELP + " Several tables (CD*.csv): each is checked in turn, a block of output per table "
            "(its path first); one that cannot be read gets its error line, the others are still checked, and the "
            "exit code is 2.",
        ),
        as_json: bool = typer.Option(
            False, "--json", help='Print JSON: {"cliffs": [{"time", "before", "after", "first_bad_time", '
            '"after_time"}], "last_good_time": t, "duplicates": [{"time", "cell", "count"}]} (time = last good time '
            "point before each cliff, first_bad_time = first time point of the fall, after_time = the time point of "
            "after, its bottom; duplicates: cell names found count times at one time point), and only when found: "
            '"letters": [{"letter", "time", "before", "after", "first_bad_time", "after_time"}] (lineage cliffs: '
            'A, E, M, C or D falls to nearly none while the other cells go on), "dips": [{"first_time", "last_time", '
            '"cells", "before", "after"}] (one or two time points far below both neighbours), "lone_times": '
            '[{"time", "cells", "nearest"}] (a time point far from the rest: a mistyped time?), "names_stop": {"time", '
            '"before", "after", "first_bad_time", "after_time"} (every lineage falls to none at once while the cells '
            "go on unnamed: naming stopped; the counts are the named cells). With several tables: one object keyed by "
            'each table\'s path, {"error": message} for a table that cannot be read.',
        ),
        min_drop: int = typer.Option(10, "--min-drop", min=1, help=_DETECT_HELP),
        min_fraction: float = typer.Option(
            0.2, "--min-fraction", min=0.0, max=1.0,
            help="Cliff detector: smallest fall as a fraction of the running peak count.",
        ),
        window: int = typer.Option(
            10, "--window", min=1,
            help="Cliff detector: time points after a fall within which a return to the peak makes it a dip, not a cliff.",
        ),
        embryo: str | None = typer.Option(
            None, "--embryo", metavar="NAME", show_default=False,
            help=EMBRYO_HELP + " With several tables, the embryo of that name in each.",
        ),
    ) -> None:
        """Find annotation cliffs (a fall in cell count that does not recover) and duplicated names; also lineage
        cliffs (one lineage's count falls to nearly none), dips that recover, and lone time points."""
        several = len(tables) > 1
        if not several:  # as always: an error is the command's error
            _cliffs_of(tables[0], as_json, embryo, min_drop=min_drop, min_fraction=min_fraction, window=window)
            return
        found, failed = {}, False
        for k, table in enumerate(tables):
            if not as_json:
                if k:
                    typer.echo("")
                typer.echo(f"{table}:")
            try:
                found[str(table)] = _cliffs_of(table, as_json, embryo, min_drop=min_drop, min_fraction=min_fraction,
                                               window=window, echo=not as_json)
            except DevolensError as exc:
                failed = True
                typer.echo(f"error: {exc}", err=True)
                found[str(table)] = {"error": exc.message}
        if as_json:
            typer.echo(json.dumps(found))
        if failed:
            raise typer.Exit(2)

    @group.command("clean")
    def clean_cmd(
        table: Path = typer.Argument(..., help=TABLE_HELP, show_default=False),
        out_path: Path = typer.Option(
            ..., "--out", "-o", help="Tidy CSV to write: cut after the last good time point, duplicates dropped. "
            + META_RECORD_HELP + ' Then "clean": what was cut: "cut_after_time" (the first cliff\'s last good time '
            'point; null: no cliff, nothing cut), "options" (the detector\'s), the rows in and out and how many were '
            'dropped after the cliff ("rows_after_cliff", in "times_dropped" time points), as duplicated names '
            '("duplicate_rows"), as copies ("copy_rows") and at lone time points ("lone_rows", the times in '
            '"lone_times"), and the cliff report (keys as `lineage cliffs --json` prints them). ' + TIDY_REPLACED_HELP,
            show_default=False,
        ),
        min_drop: int = typer.Option(10, "--min-drop", min=1, help=_DETECT_HELP),
        min_fraction: float = typer.Option(
            0.2, "--min-fraction", min=0.0, max=1.0,
            help="Cliff detector: smallest fall as a fraction of the running peak count.",
        ),
        window: int = typer.Option(
            10, "--window", min=1,
            help="Cliff detector: time points after a fall within which a return to the peak makes it a dip, not a cliff.",
        ),
        embryo: str | None = typer.Option(None, "--embryo", metavar="NAME", help=EMBRYO_HELP, show_default=False),
    ) -> None:
        """Cut TABLE at its first annotation cliff, drop duplicated names, write a tidy CSV."""
        from devolens.io.tables import write_tidy
        from devolens.lineage.cliffs import clean_table

        _check_tidy_out(out_path, table)
        with _about(table):
            df = _read(table, embryo=embryo, one=True)
            clean, rep = clean_table(df, min_drop=min_drop, min_fraction=min_fraction, window=window)
        meta = _tidy_record(clean, table, "devolens lineage clean")
        removed = rep.to_dict()
        removed.setdefault("lone_times", [])  # (always there: what a pipeline reads)
        meta["clean"] = {"cut_after_time": rep.cliffs.cliffs[0].time if rep.cliffs.cliffs else None,
                         "options": {"min_drop": min_drop, "min_fraction": min_fraction, "window": window,
                                     "embryo": embryo}, **removed}
        _write(write_tidy, out_path, clean, out_path, True, meta)
        if rep.cliffs.cliffs:
            c = rep.cliffs.cliffs[0]
            cut = (
                f"cut after time {c.time} ({_fall(c)}): dropped {_count(rep.rows_after_cliff, 'row')} "
                f"in {_count(rep.times_dropped, 'time point')}"
            )
        else:
            cut = "no cliff"
        copies = f" and {rep.copy_rows} unnamed row(s) that repeat an earlier row exactly" if rep.copy_rows else ""
        lone = rep.cliffs.lone
        if lone:
            times = ", ".join(str(x.time) for x in lone)
            copies += (f"; dropped {rep.lone_rows} row(s) at time{'s' if len(lone) > 1 else ''} {times}, standing "
                       "alone (a mistyped time?)")
        _summary(
            f"wrote {out_path}: {rep.rows_out} of {_count(rep.rows_in, 'row')}; {cut}; "
            f"dropped {rep.duplicate_rows} duplicated-name row(s){copies}"
        )
        import shlex

        _finding_notes(rep.cliffs, shlex.quote(str(table)), cleaning=True)

    app.add_typer(group, name="lineage")
