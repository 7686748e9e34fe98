"""``devolens identify``: name every nucleus of a lineage table (founder and depth 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from devolens.cli._common import check_csv_out, check_threads, choice, json_number

#: the words of --smooth
SMOOTHS = ("lineage", "tracklets", "none")
#: what the confidence column is, with the held-out figures of the card's "Confidence" section: measured on the
#: leave-one-embryo-out fold models of the recipe (benchmarks/train_identity.py, runs/identity_calib*: every named row
#: of the 7 real embryos pooled), not on the shipped ensemble, which was trained on every shared embryo; the late-stage
#: figures in-sample (the shipped model on the AceTree embryo, rows binned by the nuclei at their time point)
CONFIDENCE_HELP = (
    "confidence is the model's own probability for the named depth-1 class (each network's softmax, averaged over "
    "the 3-network ensemble, then combined over the cell's lineage tree); the founder's probability is at least as "
    "high. It ranks the names for checking but is not the chance that a name is right. Measured on held-out fold "
    "models of the same recipe (each trained without the embryo it named; the shipped model's own held-out "
    "reliability cannot be measured, every shared embryo being its training data): 82.5 % of rows had confidence "
    ">= 0.99 and there the founder was right 97.2 % of the time, the depth-1 name 92.2 %; at 0.7-0.9 the depth-1 name "
    "was right 68 % of the time (founder 78 %); and 48 % of the founder errors had confidence >= 0.99. It stays high "
    "at late stages while the depth-1 names get worse (in-sample, on the AceTree embryo: right for every nucleus up "
    "to 15 cells, 81 % above 520 cells, at a mean confidence of 0.98-0.99 at every stage). On inputs unlike the 7 real "
    "training embryos (a simulated embryo, a table that stops early, a mirrored one) it stays high while the names "
    "go wrong; identify notes the first two. Details: `devolens models show identity`."
)


#: torch threads identify takes by default, at most (its networks are small: more threads only wait on each other)
DEFAULT_THREADS = 4

#: most test-time views of --tta: the views are rotations about the AP axis spread evenly over +-0.3 rad
#: (:func:`devolens.predict.identity.views`), so 16 are under 2.3 degrees apart, and each costs one more pass of
#: every network of the ensemble (the card's default is 1; 3 were scored)
MAX_TTA = 16


def register(app: typer.Typer) -> None:
    """Add the ``identify`` command to ``app``."""

    @app.command("identify")
    def identify(
        table: Path = typer.Argument(
            ..., help="Nuclei over time: EPIC CD csv, AceTree nuclei zip/folder, tidy csv, or a CSV of positions without "
                 "names (columns time or frame, x, y, z; optional embryo, size)."
        ),
        out: Path = typer.Option(
            ..., "--out", "-o",
            help="Output CSV (a .csv file): the input rows, sorted by time and with the tidy column names (time, cell, x, y, z, "
                 "size: a TrackMate table's POSITION_X... and FRAME renamed, RADIUS as size = 2 x radius), plus "
                 "pred_founder, pred_depth1 and confidence (written atomically); join back on time and position. "
                 + CONFIDENCE_HELP + " Beside the CSV, NAME.json records how it was made (command line, devolens "
                 "and torch versions, model, the sha256 of its weights and of all its files, --tta, --smooth, the "
                 "z-scale used and how it was decided, the notes printed).",
        ),
        model: str = typer.Option("identity", "--model", "-m", help="Zoo model name (see `devolens models`)."),
        zscale: float = typer.Option(
            None, "--zscale",
            help="z plane spacing in xy pixels; default: from the table's metadata, else estimated from the cloud.",
        ),
        tta: int = typer.Option(
            None, "--tta", help=f"Views (rotations about the AP axis, within +-0.3 rad) averaged at prediction, 1 to "
            f"{MAX_TTA} (default: the card's). Each view is one more pass of the networks.",
        ),
        smooth: str = typer.Option(
            "lineage", "--smooth", callback=choice(*SMOOTHS),
            help="Use the time course: 'lineage' (tracklets + lineage tree, default), 'tracklets' or 'none' "
                 "(each time point alone). Time points are linked by the table's own regular step (1, 90 s, every 3rd "
                 "time point...); nuclei that move far between time points are not grouped into tracklets.",
        ),
        mirror: bool = typer.Option(
            False, "--mirror",
            help="Name the embryo's mirror image (x reversed before naming; the rows are written as given): for an "
                 "embryo imaged mirrored relative to the training ones (an inverted instead of an upright microscope, "
                 "a flipped image), which otherwise keeps most founders but loses most depth-1 names with unchanged "
                 "confidence. identify does not detect mirroring: check a few known cells (e.g. ABa/ABp, MSa/MSp) "
                 "with and without it.",
        ),
        threads: int = typer.Option(
            None, "--threads", help=f"Torch CPU threads (default: torch's, at most {DEFAULT_THREADS}).",
        ),
    ) -> None:
        """Predict each nucleus's founder (AB, MS, E, C, D, P, Z, EMS) and depth-1 name (ABa, MSp, ...).

        The confidence column ranks the names for checking; it is not the chance that a name is right (see --out).
        """
        from devolens.errors import DevolensError

        check_threads(threads)
        # a CSV, as population's --out (a folder named with a trailing slash, or '-', made a file of that name)
        check_csv_out(out, "the named table")
        import torch

        from devolens.cli._common import (
            apply_threads, check_out, check_writable, console, note as show_note, progress_bar,
        )
        from devolens.io.tables import read_positions
        from devolens.io.together import write_together
        from devolens.models import card, load

        if threads:
            apply_threads(threads)
        else:
            torch.set_num_threads(max(1, min(DEFAULT_THREADS, torch.get_num_threads())))
        if zscale is not None and not zscale > 0:
            raise DevolensError(f"--zscale must be > 0, got {zscale}")
        if tta is not None and not 1 <= tta <= MAX_TTA:
            raise DevolensError(f"--tta must be within 1..{MAX_TTA}, got {tta} (the views are rotations about the AP "
                                f"axis within +-0.3 rad: {MAX_TTA} are under 2.3 degrees apart, and each view is one "
                                "more pass of the networks)")
        check_out(out, table)
        record = record_path(out)  # how the CSV was made, beside it (replaced, as the CSV is)
        if record.is_dir():
            raise DevolensError(f"{record.name} (the record written beside the CSV) is a folder: choose another --out",
                                path=record)
        check_out(record, table)  # not the input, nor a file read with it (a tidy table's .meta.json)
        check_writable(out)  # before the table is read and named
        df = read_positions(table)
        notes = list(df.attrs.get("notes") or ())
        for text in notes:  # units read from the file, a zip's second copy...
            show_note(text)
        if len(df) == 0:
            raise DevolensError("the table has no nuclei", path=table)
        if card(model).get("task") != "identity":
            raise DevolensError(f"model {model!r} is not an identity model (task {card(model).get('task')!r})")
        if smooth not in SMOOTHS:
            raise DevolensError(f"--smooth must be lineage, tracklets or none, got {smooth!r}")
        options = {"smooth": smooth} if tta is None else {"tta": tta, "smooth": smooth}
        predictor = load(model, **options)
        with progress_bar("identify") as cb:
            result = predictor.predict(df, zscale=zscale, progress=cb, mirror=mirror)
        found = _input_notes(result.attrs, table)
        notes += found
        text = _identify_record(table, out, model, predictor, zscale=_zscale_record(zscale, df, result), notes=notes,
                                threads=threads, mirror=mirror)
        write_together({  # the CSV and its record: both this run's or both the previous run's (the record last)
            out: lambda tmp: result.to_csv(tmp, index=False),  # (as write_csv writes it)
            record: lambda tmp: tmp.write_text(text, encoding="utf-8")})
        n_t = result["time"].nunique()
        console.print(f"{len(result)} nuclei at {n_t} time points -> {out}")
        for note in found:
            show_note(note)


def record_path(out: Path) -> Path:
    """Where ``identify`` records how its CSV was made: beside it, same name, ``.json`` (``NAME.record.json`` when
    the CSV is itself named ``.json``)."""
    record = out.with_suffix(".json")
    return out.with_name(f"{out.stem}.record.json") if record == out else record


def _zscale_record(given, table, result) -> dict:
    """How the z plane spacing (xy pixels) was decided: ``by`` ``"given"`` (--zscale), ``"table"`` (the table's
    metadata) or ``"estimated"`` (per embryo, as the model's frames estimated it from the nucleus cloud it read:
    ``result.attrs["frame_zscale"]``)."""
    if given is not None:
        return {"by": "given", "value": float(given)}
    known = (table.attrs or {}).get("zscale")
    if known is not None:
        return {"by": "table", "value": float(known)}
    per = {str(k): json_number(float(v)) for k, v in (result.attrs.get("frame_zscale") or {}).items()}
    return {"by": "estimated", "per_embryo": per}


def _identify_record(table: Path, out: Path, model: str, predictor, *, zscale: dict, notes: list,
                     threads: Optional[int] = None, mirror: bool = False) -> str:
    """The JSON written beside identify's CSV: the command line, the versions of devolens and PyTorch, the model and
    its weights' sha256 and its files' (``model_sha256``: card and weights, :func:`devolens.provenance.model_sha256`),
    the options (``tta``: the views averaged; ``smooth``; ``mirror`` when given), ``--threads``,
    the z-scale and the notes printed."""
    from devolens.models import zoo
    from devolens.provenance import model_sha256, record_header, record_text, torch_version, version

    return record_text({
        **record_header("devolens identify", table, model, out),
        "weights_sha256": zoo.weights_sha256(model), "model_sha256": model_sha256(model), "devolens": version(),
        "torch": torch_version(), "options": {"tta": int(predictor.tta), "smooth": predictor.smooth,
                                             **({"mirror": True} if mirror else {})},  # (--mirror: when given)
        "threads": threads,  # --threads (None: the default); not an option that changes the names
        "zscale": zscale, "notes": list(notes),
    })


#: nuclei in an embryo's largest time point under which identify notes that its table stops early
SHORT_CLOUD = 200
#: skewness of the pooled cloud (AP, or minus the third axis's) under which identify notes that the embryo's
#: orientation is close to a guess: the 7 real training embryos, whole, have 0.11-0.39 and 0.10-0.17; 16 simulated
#: embryos 0.00-0.12 and 0.000-0.039; real EPIC tables cut at 100-150 cells mostly under 0.05 (the card's limits)
WEAK_SKEW = 0.05
#: AP skewness of the pooled cloud above which identify notes a lopsided embryo: the 7 real training embryos, whole,
#: cut at 150-350 cells or started at 20-200, have at most 0.42 (the AceTree one); one debris spot per time point
#: 300 px beyond an embryo made 0.46, three 0.53 (such spots are now set aside: predict/identity.stray_nuclei)
LOPSIDED_SKEW = 0.45
#: tracklets (of two or more nuclei) per nucleus of an embryo's largest time point above which identify notes that its
#: tracks break far more than a complete table's: 2.0-2.5 on the 7 real embryos; 3.4-3.6 with 10 % of their nuclei
#: removed at random (the lineage smoothing still beat none), 6.1-6.6 with 20 % (none did better); 4.1 with 5 % more
#: rows of random positions (the smoothing still better)
BROKEN_TRACKS = 5.0
#: share of an embryo's nuclei within 3 % of their x or y range from one edge (predict/identity.edge_crowding) above
#: which identify notes a cut-off embryo: whole real embryos at most 0.9 %, cut at 100-200 cells 1.6 %; with 10-50 %
#: of a real embryo cut away along x or y 2.2-6.7 %
CROWDED_EDGE = 0.02
#: fewest nuclei at an embryo's largest time point for the crowded-edge note (early tables crowd edges by chance:
#: up to 3.2 % on real tables cut at 60 cells)
CROWDED_EDGE_CELLS = 100


def _who(embryo: str, many: bool, possessive: bool = False) -> str:
    """``the table`` (or ``the table's``) for a table of one embryo, else ``embryo NAME`` (``embryo NAME's``)."""
    if not many:
        return "the table's" if possessive else "the table"
    return f"embryo {embryo}'s" if possessive else f"embryo {embryo}"


def _cliff_notes(attrs: dict, table: Optional[Path] = None) -> list[str]:
    """The note on each embryo whose count of nuclei falls off an annotation cliff (``attrs["annotation_cliffs"]``,
    :func:`devolens.predict.identity.annotation_cliffs`): its time, what identify did about it and the
    ``devolens lineage clean`` command that cuts the table there (``table``: the input, quoted in it)."""
    import shlex

    from devolens.cli.lineage import _fall
    from devolens.lineage.cliffs import Cliff

    cliffs = attrs.get("annotation_cliffs") or {}
    many = len(attrs.get("largest_clouds") or cliffs) > 1
    notes = []
    for embryo, found in cliffs.items():
        c = Cliff(**found)
        arg = "TABLE" if table is None else shlex.quote(str(table))
        if many:
            arg += f" --embryo {shlex.quote(str(embryo))}"
        notes.append(f"{_who(embryo, many)}: annotation cliff after time {c.time}: {_fall(c)}, no recovery "
                     f"(curation stopped?): the rows after time {c.time} (a part of the embryo) were named apart from "
                     f"those before (the embryo's frame read from the rows up to time {c.time}, no smoothing across "
                     f"the cliff), so the names up to time {c.time} are those of the table cut there; the later names "
                     f"are not to be trusted; `devolens lineage clean {arg} --out CLEAN.csv` cuts the table after "
                     f"time {c.time}")
    return notes


def _input_notes(attrs: dict, table: Optional[Path] = None) -> list[str]:
    """One-line notes on what the predictor found in the input (duplicate nuclei, time gaps, an annotation cliff,
    debris, missing nuclei, sparse time sampling, a lopsided or cut-off embryo). ``table``: the input's path, quoted
    in the commands suggested."""
    notes = _cliff_notes(attrs, table)
    n_polar = int(attrs.get("polar_bodies") or 0)
    if n_polar:
        notes.append(f"{n_polar} row(s) are polar bodies (polar1, polar2): left out of the embryo's clouds, no "
                     "prediction (empty columns)")
    n_unplaced = int(attrs.get("unplaced") or 0)
    if n_unplaced:
        notes.append(f"{n_unplaced} row(s) have no position (x = y = z = 0, no size: placeholder rows for time points "
                     "before tracking started?): left out of the clouds, no prediction (empty columns)")
    n_dup = int(attrs.get("duplicate_nuclei") or 0)
    if n_dup:
        notes.append(f"{n_dup} row(s) repeat an earlier nucleus (same time point, x, y, z and name): predicted once on "
                     "the cloud without the copies; each copy has its original's prediction")
    n_stray = int(attrs.get("stray_nuclei") or 0)
    if n_stray:
        notes.append(f"{n_stray} row(s) lie far outside the space the rest of their embryo's nuclei fill (debris, a "
                     "mis-tracked spot?): left out of the embryo's clouds so that they do not turn its frame, no "
                     "prediction (empty columns)")
    clouds = attrs.get("largest_clouds") or {}
    short = None
    if clouds and min(clouds.values()) < SHORT_CLOUD:  # the embryo whose table stops earliest
        embryo = short = min(clouds, key=clouds.get)
        largest = clouds[embryo]
        who = "the table" if len(clouds) == 1 else f"embryo {embryo}"
        notes.append(f"{who} stops at {largest} nuclei: the model reads an embryo's orientation from its whole time "
                     "course, and on tables that stop early it can be wrong, with high confidence (two real embryos it "
                     "was trained on, cut at 100-172 cells: founder accuracy 0.62-0.95, mostly under 0.70; at 8-15 "
                     "cells 0.00-0.29; whole, 0.95-0.96): check the names against known cells")
    skews = attrs.get("frame_skewness") or {}
    weak = {e: min(ap, -third) for e, (ap, third) in skews.items() if min(ap, -third) < WEAK_SKEW and e != short}
    if weak:  # (the short table's note says it already)
        embryo = min(weak, key=weak.get)
        ap, third = skews[embryo]
        who = "the table's" if len(skews) == 1 else f"embryo {embryo}'s" + (
            f" (and {len(weak) - 1} more)" if len(weak) > 1 else "")
        third_text = f"{third:.2f}".replace("-0.00", "0.00")  # (rounded to zero: no sign)
        notes.append(f"{who} nucleus cloud is nearly symmetric (skewness {ap:.2f} along its long axis, {third_text} "
                     "along its shortest; the 7 real training embryos: 0.11 to 0.39 and -0.10 to -0.17), and the model "
                     "orients the embryo by these two: anterior/posterior or the turn about the long axis may be a "
                     "guess, and the names wrong with high confidence (a simulated embryo? an embryo unlike the "
                     "training ones?): check the names against known cells")
    many = len(clouds) > 1
    for embryo, skew in skews.items():
        if skew[0] > LOPSIDED_SKEW:
            notes.append(f"{_who(embryo, many, True)} nucleus cloud is more lopsided than the training embryos' "
                         f"(skewness {skew[0]:.2f} along its long axis; the 7 real ones: 0.11 to 0.39), and the model "
                         "orients the embryo by it: nuclei outside the embryo, part of it cut off, an embryo unlike "
                         "the training ones? The names may be wrong with high confidence: check them against known "
                         "cells")
    for embryo, (edge, share) in (attrs.get("edge_crowding") or {}).items():
        if share > CROWDED_EDGE and clouds.get(embryo, 0) >= CROWDED_EDGE_CELLS:
            axis, side = edge.split()
            side = "smallest" if side == "min" else "largest"
            notes.append(f"{share:.1%} of {_who(embryo, many, True)} nuclei lie within 3 % of their {axis} range of "
                         f"the {side} {axis} (whole real embryos: under 1 %): is the embryo cut off by the edge of the "
                         "field of view? The model reads whole embryos (one cut in half lost most names, with high "
                         "confidence): name whole embryos only")
    for embryo, found in (attrs.get("tracking") or {}).items():
        who = _who(embryo, many)
        if found.get("sparse"):
            notes.append(f"{who}: nuclei move far between consecutive time points (median {found['motion']:.2f} of "
                         "their spacing; 0.12-0.20 on the training tables at 60-90 s): sparse time sampling? Nuclei "
                         "are not grouped into tracklets; each is smoothed with its nearest neighbour a time point "
                         "earlier")
            continue
        if found.get("gap_links"):
            notes.append(f"{who}: {found['gap_links']} nuclei are missing at one time point but present before and "
                         "after, near the same place (nuclei not detected?): the time course links them across the gap")
        if found.get("per_nucleus", 0) > BROKEN_TRACKS:
            notes.append(f"{who}: tracks of nuclei break without a division far more often than in a complete table "
                         f"({found['per_nucleus']:.1f} tracklets per nucleus of its largest time point; complete real "
                         "tables 2.0-2.5): many nuclei missing? The lineage smoothing may then do worse than none: "
                         "compare with --smooth none")
    breaks = attrs.get("time_breaks") or []
    if breaks:
        embryo, before, after = breaks[0]
        more = f" (and {len(breaks) - 1} more)" if len(breaks) > 1 else ""
        # the 'why': one such row (time 1e9) used to pass its one-nucleus guess up a real cell's lineage
        notes.append(f"embryo {embryo}: time point {after} is {after - before} after the previous one ({before}), far "
                     f"more than the table's usual spacing{more} (a mistyped time?): the time course is not smoothed "
                     "across the gap")
    return notes
