"""``devolens identify``: name every nucleus of a lineage table (founder and depth 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from devolens.cli._common import check_csv_out, check_threads, choice, json_number

#: the words of --smooth
SMOOTHS = ("lineage", "tracklets", "none")
#: the words of --orient (devolens.predict.identity.ORIENTS, not imported here: that would import torch for --help)
ORIENTS = ("auto", "skewness")
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

#: what pred_founder and pred_depth1 hold: the identity model's classes (devolens.predict.identity.identity_label; the
#: card's founder and depth-1 classes), not Sulston names of the germline cells
CLASSES_HELP = (
    "pred_founder is one of the model's founder classes AB, MS, E, C, D, EMS, P and Z: P stands for the germline "
    "cells P0-P4 and Z for Z2 and Z3, so a P2, P3 or P4 row reads P and a Z2 or Z3 row reads Z. pred_depth1 is the "
    "founder and its first division letter (ABa, ABp, MSa, MSp, Ea, Ep, Ca, Cp, Da, Dp), or the founder itself for a "
    "cell not yet divided (AB, MS, E, C, D, EMS) and for P and Z, which have no depth-1 classes."
)

#: the CSV's confidence column is written to 6 decimals (as the records write their numbers)
CONFIDENCE_DECIMALS = 6

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
                 "names (columns time or frame, x, y, z; optional embryo, size: each nucleus's diameter in the unit "
                 "of x and y). time must hold whole time points (whole numbers: 2.5 is refused, and a frame name such "
                 "as t030 too: write 30); identify reads 3-D positions: a table whose z is the same "
                 "for every nucleus (a 2-D projection) is named with a note that its names are unreliable; an "
                 "embryo whose x and y are the same for every nucleus (positions lost) is left out, with a note (a "
                 "table of no other embryo is refused)."
        ),
        out: Path = typer.Option(
            ..., "--out", "-o",
            help="Output CSV (a .csv file): the input rows, sorted by time and with the tidy column names (time, cell, x, y, z, "
                 "size: a TrackMate table's POSITION_X... and FRAME renamed, RADIUS as size = 2 x radius), plus "
                 "pred_founder, pred_depth1 and confidence (0..1, to 6 decimals; written atomically); join back on "
                 "time and position. "
                 + CLASSES_HELP + " " + CONFIDENCE_HELP
                 + " Beside the CSV, NAME.json records how it was made (command line, devolens "
                 "and torch versions, model, the sha256 of its weights and of all its files, the sha256 and size "
                 "of the table and of the files read with it, the options (--tta, --smooth, --threads, --mirror, "
                 "--orient), the z-scale used and how it was decided (and the file it was read from), the notes "
                 "printed). An existing CSV and its record are replaced, the two together.",
        ),
        model: str = typer.Option("identity", "--model", "-m", help="Zoo model name (see `devolens models`)."),
        zscale: float = typer.Option(
            None, "--zscale",
            help="z plane spacing in xy pixels (the z step divided by the xy pixel size); default: from the table's "
                 "metadata, else estimated from the cloud's shape (noted, with the value used). One far from that "
                 "estimate is noted.",
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
                 "a flipped image), which otherwise keeps most founders (of a whole table; a short one can lose them "
                 "too) but loses most depth-1 names with unchanged confidence. identify does not detect mirroring: "
                 "check a few known cells (e.g. ABa/ABp, MSa/MSp) "
                 "with and without it.",
        ),
        orient: str = typer.Option(
            "auto", "--orient", callback=choice(*ORIENTS),
            help="How each embryo is oriented: its axes come from its nuclei's pooled cloud, their directions from "
                 "the cloud's skewness, right on whole tables but often wrong on tables that stop early. 'auto' "
                 "(default): an embryo whose largest time point holds under 200 nuclei is named in each turn of its "
                 "frame (four; under 30 nuclei, the skewness's and its AP reversal) and the turn the model names most "
                 "confidently is kept, at up to five times the network's work. Held out, on tables stopped at 28-150 "
                 "nuclei this kept the best turn for all 7 embryos (with the z scale known: give --zscale where the "
                 "table has no AuxInfo; estimated, under 30 nuclei it often did not); at 15-16 nuclei it was often "
                 "wrong, though better than the skewness. 'skewness': the skewness always. The turn kept is noted "
                 "and recorded "
                 "(frame_turn in NAME.json).",
        ),
        threads: int = typer.Option(
            None, "--threads", help=f"Torch CPU threads (default: torch's, at most {DEFAULT_THREADS}).",
        ),
    ) -> None:
        """Predict each nucleus's founder (AB, MS, E, C, D, EMS; P: P0-P4, Z: Z2/Z3) and depth-1 name (ABa, MSp, ...).

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
        from devolens.io.atomic import TEXT_ERRORS, output_file
        from devolens.io.tables import read_positions
        from devolens.io.together import write_together
        from devolens.models import card, load

        if threads:
            apply_threads(threads)
        else:
            torch.set_num_threads(max(1, min(DEFAULT_THREADS, torch.get_num_threads())))
        from devolens.predict.identity import check_zscale

        check_zscale(zscale)  # (NaN, inf, 0: one message, the library's)
        if tta is not None and not 1 <= tta <= MAX_TTA:
            raise DevolensError(f"--tta must be within 1..{MAX_TTA}, got {tta} (the views are rotations about the AP "
                                f"axis within +-0.3 rad: {MAX_TTA} are under 2.3 degrees apart, and each view is one "
                                "more pass of the networks)")
        check_out(out, table)
        from devolens.cli._common import checked_record

        record = checked_record(record_path(out))  # how the CSV was made, beside it (replaced, as the CSV is)
        check_out(record, table)  # not the input, nor a file read with it (a tidy table's .meta.json)
        for written in (out, record):  # a read-only one is refused before the work, not after it
            output_file(written)
        check_writable(out)  # before the table is read and named
        df = read_positions(table)
        notes = list(df.attrs.get("notes") or ())
        for text in notes:  # units read from the file, a zip's second copy...
            show_note(text)
        if len(df) == 0:
            raise DevolensError("the table has no nuclei", path=table)
        from devolens.cli.predict import _check_model_task

        # named by the kind the commands call it (livedead's card's task is a sentence), as segment's refusal
        _check_model_task(model, "identity", card(model))
        if smooth not in SMOOTHS:
            raise DevolensError(f"--smooth must be lineage, tracklets or none, got {smooth!r}")
        if orient not in ORIENTS:
            raise DevolensError(f"--orient must be auto or skewness, got {orient!r}")
        options = {"smooth": smooth, "orient": orient} if tta is None else {"tta": tta, "smooth": smooth,
                                                                            "orient": orient}
        predictor = load(model, **options)
        import warnings

        from devolens.errors import IdentityWarning

        with progress_bar("identify") as cb, warnings.catch_warnings():
            warnings.simplefilter("ignore", IdentityWarning)  # the same words are printed as notes below
            result = predictor.predict(df, zscale=zscale, progress=cb, mirror=mirror)
        found = _input_notes(result.attrs, table)
        inputs = _table_inputs(table, df.attrs)  # (hashed once: the z scale's file is one of them)
        decided = _zscale_record(zscale, df, result, table, inputs=inputs)
        if decided["by"] == "estimated":  # (a given or read one far from the estimate has its own note)
            found.insert(0, _estimated_zscale_note(decided, table, df.attrs))
        notes += found
        text = _identify_record(table, out, model, predictor, zscale=decided,
                                notes=notes, threads=threads, mirror=mirror, attrs=df.attrs, inputs=inputs,
                                frame_turn=result.attrs.get("frame_turn"))
        # the CSV and its record: both this run's or both the previous run's (the record last); each written through
        # a link there to its file, text as write_csv writes it (a file name's bytes that are not UTF-8 escaped)
        write_together({
            output_file(out): lambda tmp: cells_for_csv(result).to_csv(tmp, index=False, errors=TEXT_ERRORS),
            output_file(record): lambda tmp: tmp.write_text(text, encoding="utf-8", errors=TEXT_ERRORS)})
        n_t = result["time"].nunique()
        console.print(f"{len(result)} nuclei at {n_t} time points -> {out}")
        for note in found:
            show_note(note)


def cells_for_csv(result):
    """The identity model's rows as identify writes them to its CSV: ``confidence`` rounded to
    :data:`CONFIDENCE_DECIMALS` (the demo's ``cells.csv`` too)."""
    return result.round({"confidence": CONFIDENCE_DECIMALS})


def record_path(out: Path) -> Path:
    """Where ``identify`` records how its CSV was made: beside it, same name, ``.json`` (``NAME.record.json`` when
    the CSV is itself named ``.json``)."""
    record = out.with_suffix(".json")
    return out.with_name(f"{out.stem}.record.json") if record == out else record


def _zscale_record(given, table, result, path: Optional[Path] = None, *, inputs: Optional[list] = None) -> dict:
    """How the z plane spacing (xy pixels) was decided: ``by`` ``"given"`` (--zscale), ``"table"`` (the table's
    metadata; ``file``: the file it was read from, an EPIC table's AuxInfo or a tidy table's ``.meta.json``, with its
    sha256 and size, :func:`devolens.provenance.input_entry`, where ``path``, the table read, is given) or
    ``"estimated"`` (per embryo, as the model's frames estimated it from the nucleus cloud it read:
    ``result.attrs["frame_zscale"]``). ``inputs``: the record's entries of the files read (:func:`_table_inputs`),
    the file's taken from them (not hashed again) when there."""
    if given is not None:
        return {"by": "given", "value": float(given)}
    known = (table.attrs or {}).get("zscale")
    if known is not None:
        read = None if path is None else _metadata_file(path, table.attrs)
        if read is None:
            return {"by": "table", "value": float(known)}
        from devolens.provenance import input_entry

        entry = next((e for e in inputs or () if e.get("path") == str(read.absolute())), None)
        return {"by": "table", "value": float(known), "file": entry if entry is not None else input_entry(read)}
    per = {str(k): json_number(float(v)) for k, v in (result.attrs.get("frame_zscale") or {}).items()}
    return {"by": "estimated", "per_embryo": per}


def _estimated_zscale_note(decided: dict, path: Path, attrs: dict) -> str:
    """The note on a z plane spacing estimated from the nucleus cloud (``decided``: :func:`_zscale_record`'s, ``by``
    ``"estimated"``): the value used, where none was found (``path``: the table read; ``attrs``: its, as read) and
    to give ``--zscale``. A table that never carries one (an AceTree series, a positions CSV) gets it every time."""
    from devolens.io.tables import epic_companions, meta_sidecar

    values = sorted(float(v) for v in (decided.get("per_embryo") or {}).values())
    if not values:
        used = "no embryo left to estimate it from"
    elif len(values) == 1 or values[0] == values[-1]:
        used = f"{values[0]:.2f} xy pixels"
    else:
        used = f"{values[0]:.2f}-{values[-1]:.2f} xy pixels over {len(values)} embryos"
    fmt, path = (attrs or {}).get("format"), Path(path)
    if fmt == "epic":
        aux = epic_companions(path)[0]
        where = "its AuxInfo gives none" if aux.is_file() else f"no AuxInfo file ({aux.name}) beside the table"
    elif fmt == "tidy":
        meta = meta_sidecar(path)
        where = f"{meta.name} gives none" if meta.is_file() else f"no {meta.name} beside the table"
    else:
        where = "the table gives none"
    near = bool(values) and 0.6 <= values[0] and values[-1] <= 1.6  # (z already in xy pixels: a WormGUIDES series)
    return (f"z plane spacing estimated from the shape of the nucleus cloud ({used}): no --zscale given and {where}; "
            "give --zscale if known, as the names depend on it: the size of one unit of the table's z column in xy "
            "pixels (z in planes of 1 µm at 0.09 µm pixels: 11"
            + ("; near 1, as here, z is probably in xy pixels already: --zscale 1)" if near
               else "; z already in xy pixels: 1)"))


def _metadata_file(path: Path, attrs: dict) -> Optional[Path]:
    """The file beside the table ``path`` whose metadata (z scale, timing) the reader took (``attrs``: the table's):
    an EPIC table's AuxInfo (:func:`devolens.io.tables.epic_companions`), a tidy table's ``.meta.json``; None for
    none (an AceTree table, a file not there)."""
    from devolens.io.tables import epic_companions, meta_sidecar

    fmt = (attrs or {}).get("format")
    path = Path(path)
    if not path.is_file() or fmt not in ("epic", "tidy"):
        return None
    found = epic_companions(path)[0] if fmt == "epic" else meta_sidecar(path)
    return found if found.is_file() else None


def _table_inputs(table: Path, attrs: dict) -> list[dict]:
    """identify's ``inputs``: the table (a file, or an AceTree folder: every file under it) and the files read with
    it that exist (an EPIC table's AuxInfo and TIME files, a tidy table's ``.meta.json``), each with its absolute
    path, size and sha256 (:func:`devolens.provenance.input_entry`)."""
    from devolens.io.tables import epic_companions
    from devolens.provenance import input_entry

    table = Path(table)
    read = [table]
    if table.is_file() and (attrs or {}).get("format") == "epic":
        read += [p for p in epic_companions(table) if p.is_file()]
    elif table.is_file():
        read += [p for p in (_metadata_file(table, attrs),) if p is not None]
    return [input_entry(p) for p in read if p.exists()]


def _identify_record(table: Path, out: Path, model: str, predictor, *, zscale: dict, notes: list,
                     threads: Optional[int] = None, mirror: bool = False, attrs: Optional[dict] = None,
                     inputs: Optional[list] = None, frame_turn: Optional[dict] = None) -> str:
    """The JSON written beside identify's CSV: the command line, the versions of devolens and PyTorch, the model and
    its weights' sha256 and its files' (``model_sha256``: card and weights, :func:`devolens.provenance.model_sha256`),
    the input's sha256 and size and those of the files read with it (``inputs``: :func:`_table_inputs`; ``attrs``:
    the table's, as read), the options (``tta``: the views averaged; ``smooth``; ``threads``, ``--threads`` or None;
    ``mirror``, false unless given; ``orient``; ``threads`` at the top, the older key, holds the same), the z-scale
    (with the file it was read from: :func:`_zscale_record`), ``frame_turn`` (embryo -> the turn of its frame kept
    where ``--orient auto`` chose it by the model's confidence: an embryo whose table stops early; ``{}`` for none;
    with ``--mirror``, a turn of the mirror image's frame)
    and the notes printed. ``inputs``: the entries of the files read, when already made (:func:`_table_inputs`)."""
    from devolens.models import zoo
    from devolens.provenance import model_sha256, record_header, record_text, torch_version, version

    return record_text({
        **record_header("devolens identify", table, model, out),
        "inputs": inputs if inputs is not None else _table_inputs(table, attrs or {}),
        "weights_sha256": zoo.weights_sha256(model), "model_sha256": model_sha256(model), "devolens": version(),
        # --threads (None: the default) among the options, as every command records it; it does not change the names
        "torch": torch_version(), "options": {"tta": int(predictor.tta), "smooth": predictor.smooth, "threads": threads,
                                             "mirror": bool(mirror),
                                             "orient": getattr(predictor, "orient", None)},  # every option
        "threads": threads,  # the older key, kept for earlier readers (as devolens_version): the same as options'
        "zscale": zscale, "frame_turn": dict(frame_turn or {}), "notes": list(notes),
    })


def _input_notes(attrs: dict, table: Optional[Path] = None) -> list[str]:
    """One-line notes on what the predictor found in the input, worded for the command (``--smooth none``): those
    of :func:`devolens.predict.identity.input_notes`, which the predictor issues as warnings. ``table``: the
    input's path, quoted in the commands suggested."""
    from devolens.predict.identity import input_notes

    return input_notes(attrs, table, command=True)
