"""``devolens render``: lineage tables (or simulated embryos) to frames, labels and frames.csv."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Tuple

import typer

from devolens.cli._common import choice
from devolens.provenance import absolute_path, command_line, input_entry, run_context

_HELP = """Render a lineage table (or simulated embryos) as microscopy frames with ground truth.

Writes DIR/frames/tNNN.png, DIR/labels/tNNN_labels.tif (uint16 instance labels 1..K),
DIR/frames.csv (file,time,embryo,A,E,M,P,C,D,Z,total,artifact), DIR/render.json and, for
nuclei, DIR/objects.csv (file,label,cell,x,y,depth,radius,area,visible,label_x,label_y: each
labelled nucleus of the clean frames, only the header when none is clean; x,y its 3-D centre
projected into the frame, which for a partly hidden nucleus can fall outside its label, even in
a nearer nucleus's; label_x,label_y the centroid of its label's pixels, what `devolens segment`'s
objects.csv calls x,y; depth its centre's distance from the embryo's mid plane along the optical
axis, negative nearer the objective; radius its drawn semi-major axis; x, y, depth, radius and
label_x, label_y in frame pixels, to 3 decimals; visible the share of it not hidden behind nearer
nuclei; every column: docs/outputs.md); with --kind
membrane also DIR/membranes/tNNN_membrane.png; with --video DIR/video.mp4 and a last frames.csv
column video_frame (see --video). frames.csv's embryo (and
render.json's embryos) is the table's own embryo name, as it joins back to the table; file names clean it
(emb A/1: frames/emb_A_1_tNNN.png).
Rendering again into DIR replaces the previous render whole; other files in DIR are kept
(files of your own in its frames/, labels/ or membranes/ are refused: move them first).

frames.csv's counts are the table's at the row's time point, whatever the artifact: a
duplicate frame counts its own time point while its image and labels repeat the previous
frame's. render.json records where each frame artifact is (a red patch's box, a red line's
rows, a dark or bright frame's factor); a red patch zeroes the labels under it and the
others are renumbered 1..K.

The simulated microscope (blur, brightness, noise, background, compression:
the optics; for membranes the membrane parameters) and the pose are drawn at
random from --seed for each embryo (for each frame with --vary frame), so a
model trained on renders does not learn one microscope; --optics FILE.json
fixes some or all of those fields. The default pose scales the embryo to the
frame: --size zooms in, it does not show more around the embryo.
render.json records per embryo the optics (or membrane parameters) and pose
used, the pose's scale in frame pixels per table pixel, and per frame its
seed (membranes: the slice z in table planes; with --vary frame also its own
optics and pose): with the same whole TABLE that is enough to render the frame
again (the pose is relative to the embryo's geometry, measured on all of the
table's rows: a part of the table gives another frame). A frame pixel's size in
micrometres is recorded as unknown: lineage tables record no pixel size.
"""


#: the words of --pose and --vary
POSES, VARY = ("default", "random"), ("embryo", "frame")
#: the sides --size allows, in pixels (stated in its help and its error)
MIN_SIZE, MAX_SIZE = 16, 8192


def _parse_times(spec: str) -> tuple[list[int], set[int]]:
    """The time points of ``--times`` (``10,20,30``, ``10-50``, both mixed) and those of them that only a range
    gives (of ``1-5,3``: 1, 2, 4, 5): a table's gap inside a range is skipped (:func:`_within_table`), a time point
    named on its own is not."""
    from devolens.errors import DevolensError

    times: list[int] = []
    single: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise DevolensError(f"--times: the range {part!r} runs backwards (write it {hi}-{lo})")
                times.extend(range(lo, hi + 1))
            else:
                times.append(int(part))
                single.add(times[-1])
        except ValueError:
            raise DevolensError(f"--times: cannot parse {part!r} (use e.g. 10,20,30 or 10-50)") from None
    if not times:
        raise DevolensError("--times is empty")
    return times, set(times) - single


def _within_table(table, times: list[int], ranged: set[int]) -> list[int]:
    """``times`` without the time points of a ``--times`` range (``ranged``) that ``table`` lacks (a gap in it,
    or past its ends), with a note naming them; as they are when none would be left. In a table whose time points
    are a step apart (time in seconds, 0, 90, 180...) or in irregular units, a range means the table's time points
    within it: the times between two of them are not said to be missing. When a time point named on
    its own is missing too, the range's are still left out, without a note: :func:`~devolens.render.dataset.
    select_times` then names only those given on their own, and what the table has."""
    from devolens.cli._common import note
    from devolens.io.tables import time_points_text, time_spans_text

    kept, absent, present = _range_kept(table, times, ranged)
    if not absent:
        return kept
    if not kept:  # select_times says what the table has
        return [t for t in times if t in set(absent)]
    note(f"--times: time point(s) {time_spans_text(absent)} of the range are not in the table (it has "
         f"{time_points_text(present)}): skipped")
    return kept


def _range_kept(table, times: list[int], ranged: set[int]) -> tuple[list[int], list[int], set]:
    """What :func:`_within_table` keeps of ``times`` in ``table``, unsaid: the time points kept; those of the
    range left out for being absent from ``table`` (empty when none is, or when a time point named on its own is
    absent too: an error follows, naming it alone); and ``table``'s time points. No time point kept, and some left
    out: ``table`` has none of ``times``."""
    from devolens.io.tables import time_unit

    present = set(table["time"].tolist())
    step, irregular = time_unit(present)
    if (step != 1 or irregular is not None) and present:  # a table in seconds: a range means its times within it
        first, last = min(present), max(present)
        off = {t for t in ranged if t not in present and first < t < last
               and (irregular is not None or (t - first) % step)}  # between two of the table's time points
        if any(t not in off for t in times):  # else select_times says what the table has
            times, ranged = [t for t in times if t not in off], ranged - off
    absent = sorted(t for t in ranged if t not in present)
    if not absent:
        return times, [], present
    if any(t not in present for t in set(times) - ranged):  # an error follows: it names these alone
        return [t for t in times if t in present or t not in ranged], [], present
    return [t for t in times if t in present], absent, present


#: notes on the simulated embryos' --times said one by one; the others summed up in one
_EMBRYO_NOTES = 5


def _within_embryos(tables, times: list[int], ranged: set[int]) -> list[list[int]]:
    """Each simulated embryo's time points of ``--times``, as :func:`_within_table` takes them of a table: the
    range's time points an embryo lacks (past its end: embryos grow at their own pace) left out of it, with a note
    naming the embryo; an embryo with none of them is not rendered (an empty list), with a note.

    Raises
    ------
    DevolensError
        No embryo has any of the time points (their time points said, and how to grow them longer).
    """
    from devolens.cli._common import note
    from devolens.errors import DevolensError
    from devolens.io.tables import time_points_text, time_spans_text

    names = [str(t["embryo"].iloc[0]) for t in tables]
    found = [_range_kept(t, times, ranged) for t in tables]
    if all(absent and not kept for kept, absent, _ in found):
        has = "; ".join(f"{name} has {time_points_text(present)}"
                        for name, (_, _, present) in list(zip(names, found))[:_EMBRYO_NOTES])
        more = f"; and {len(names) - _EMBRYO_NOTES} more" if len(names) > _EMBRYO_NOTES else ""
        raise DevolensError(f"--times: none of the time points {time_spans_text(times)} is in the simulated "
                            f"embryo{'s' if len(names) > 1 else ''} ({has}{more}): give time points within them, or "
                            "a larger --sim-cells to grow them longer")
    said, out = 0, []
    for name, (kept, absent, present) in zip(names, found):
        if absent:
            if said < _EMBRYO_NOTES:
                note(f"--times: time point(s) {time_spans_text(absent)} of the range are not in simulated embryo "
                     f"{name} (it has {time_points_text(present)}): "
                     + ("skipped" if kept else "none of its frames rendered"))
            said += 1
        out.append(kept)
    if said > _EMBRYO_NOTES:
        note(f"--times: {said - _EMBRYO_NOTES} more simulated embryos lack time points of the range (past their "
             "end): those skipped")
    return out


def _past_cliff_notes(df, table: Path, embryo: str | None, times: list[int]) -> None:
    """Notes when frames to render (``times``) lie past an annotation cliff of ``df``, the table of one embryo as
    read (:func:`~devolens.lineage.cliffs.find_cliffs` with the ``lineage cliffs`` command's defaults): after it
    curation stopped, so those frames draw and frames.csv counts what was left of the table, not the embryo (the
    frames are rendered as they are). One note for the first cliff of the total, naming it and the lineages falling
    with it and pointing to ``lineage clean``, which cuts the table there; one for lineage cliffs and names that stop
    (``lineage clean`` cuts at neither: their letters' counts alone are not the embryo's). ``embryo``: the
    ``--embryo`` given, repeated in the commands suggested. Nothing for a table the counts cannot be made of
    (``lineage cliffs`` says why)."""
    import shlex

    from devolens.cli._common import note
    from devolens.cli.lineage import _fall, _lineage_fall, _names_stop_text
    from devolens.errors import DevolensError
    from devolens.io.tables import time_spans_text
    from devolens.lineage.cliffs import find_cliffs

    if not times:
        return
    try:
        rep = find_cliffs(df)
    except DevolensError:
        return
    arg = shlex.quote(str(table)) + (f" --embryo {shlex.quote(embryo)}" if embryo is not None else "")
    last = max(times)

    def past(after: int, it: str = "it") -> str:  # "the frames past it (2 of the 3: time points 170, 180)"
        later = [t for t in times if t > after]
        return (f"the frame{'s' if len(later) != 1 else ''} past {it} ({len(later)} of the {len(times)}: time "
                f"point{'s' if len(later) != 1 else ''} {time_spans_text(later)})")

    cut = rep.cliffs[0].time if rep.cliffs else None  # what lies past the first cliff of the total is said at once
    if cut is not None and last > cut:
        c = rep.cliffs[0]
        with_it = [_lineage_fall(x) for x in rep.letters if x.first_bad_time == c.first_bad_time]
        note(f"rendering past the annotation cliff after time {c.time} ({_fall(c)}"
             + (f"; {', '.join(with_it)}" if with_it else "")
             + f", no recovery: curation stopped?): {past(c.time)} draw and count what is left of the table, not the "
             f"embryo; `devolens lineage cliffs {arg}` lists the cliffs, `devolens lineage clean {arg} --out "
             f"CLEAN.csv` cuts the table after time {c.time}: render CLEAN.csv")
    # lineage cliffs and names that stop before the cut (or with no cliff), among the frames: a falling lineage's
    # count in frames.csv is not the embryo's, though the total goes on (what falls with the total is said above)
    falls = {x.first_bad_time for x in rep.cliffs}
    found = [(x.time, f"the lineage cliff after time {x.time} ({_lineage_fall(x)})") for x in rep.letters
             if x.first_bad_time not in falls]
    if rep.names_stop is not None:
        found.append((rep.names_stop.time, f"where {_names_stop_text(rep.names_stop)}"))
    found = sorted((t, text) for t, text in found if t < last and (cut is None or t < cut))
    if found:
        many = len(found) > 1
        first = past(found[0][0], "the first" if many else "it")
        note(f"rendering past {'; '.join(text for _, text in found)}: in {first} frames.csv's lineage counts are "
             f"not the embryo's while its total goes on (curation stopped there?); `devolens lineage cliffs {arg}` "
             f"lists {'them' if many else 'it'} (`devolens lineage clean` cuts at cliffs of the total only)")


def _optics_file(path: Path, kind: str) -> dict:
    """The fields of ``--optics FILE.json`` for a render of ``kind``: a JSON object of
    :class:`~devolens.render.optics.OpticsParams` fields (:class:`~devolens.render.membranes.MembraneParams`
    fields for membranes), some or all; or an object holding them under ``optics`` (``membrane``); or an earlier
    render's render.json, whose embryos' block is taken when they all have the same one. Checked as
    :func:`~devolens.render.dataset.fixed_params` checks them, errors naming the file.

    Raises
    ------
    DevolensError
        Unreadable or no JSON object; a render.json of the other kind, of ``--vary frame`` (each frame had its
        own optics) or whose embryos differ; unknown field names (listed) or a value out of range.
    """
    from devolens.errors import DevolensError
    from devolens.render.dataset import fixed_params

    block, other = ("optics", "membrane") if kind == "nuclei" else ("membrane", "optics")
    cls = "OpticsParams" if kind == "nuclei" else "MembraneParams"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DevolensError("--optics: file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DevolensError(f"--optics: cannot read the file ({exc.__class__.__name__})", path=path) from None
    except ValueError as exc:
        raise DevolensError(f"--optics: not valid JSON ({exc})", path=path) from None
    if not isinstance(data, dict):
        raise DevolensError(f"--optics: expected a JSON object of {cls} fields, e.g. {{\"psf_xy\": 2.5}}, got a "
                            f"{type(data).__name__}", path=path)
    if isinstance(data.get("embryos"), dict):  # an earlier render's render.json
        if data.get("vary") == "frame":
            raise DevolensError(f"--optics: a render of --vary frame, whose frames each drew their own {block}: copy "
                                f"one frame's {block!r} block (embryos > NAME > frames) into a file of its own",
                                path=path)
        found = {name: e.get(block) for name, e in data["embryos"].items()
                 if isinstance(e, dict) and isinstance(e.get(block), dict)}
        if not found:
            made = data.get("kind")
            raise DevolensError(f"--optics: a render.json with no {block!r} block"
                                + (f" (a {made} render)" if made in ("nuclei", "membrane") and made != kind else "")
                                + f": --kind {kind} takes {cls} fields", path=path)
        distinct = {json.dumps(v, sort_keys=True) for v in found.values()}
        if len(distinct) > 1:
            raise DevolensError(f"--optics: the render.json holds {len(found)} embryos with different {block} "
                                f"({', '.join(list(found)[:4])}{', ...' if len(found) > 4 else ''}): copy one "
                                f"embryo's {block!r} block into a file of its own", path=path)
        fields = next(iter(found.values()))
    elif isinstance(data.get(block), dict):
        fields = data[block]
    elif isinstance(data.get(other), dict) and set(data) <= {other, "embryos"}:
        raise DevolensError(f"--optics: holds {other!r} fields, of the other kind of render: --kind {kind} takes "
                            f"{cls} fields", path=path)
    else:
        fields = data
    try:
        return fixed_params(fields, kind)
    except DevolensError as exc:
        raise DevolensError(f"--optics: {exc.message}", path=path) from None


def _inputs(table: Path) -> list[dict]:
    """The files a render of ``table`` reads: the table (a file, or an AceTree folder: ``sha256_of`` says which
    the hash covers), and the files read with it that exist (an EPIC table's AuxInfo and TIME files, a tidy
    table's ``.meta.json``); each as the other commands' records list their inputs
    (:func:`devolens.provenance.input_entry`: its absolute path, bytes and sha256)."""
    from devolens.io.tables import epic_companions, meta_sidecar

    paths = [table]
    if table.is_file():
        paths += [p for p in (*epic_companions(table), meta_sidecar(table)) if p.is_file()]
    return [input_entry(p) for p in paths]


def _simulated(table, cells: Optional[int]) -> dict:
    """render.json's entry of a simulated embryo (``simulated``): its name (``embryo``: ``simN``), its simulation
    ``seed`` (N: :func:`devolens.render.dataset.simulate_tables` derives it from ``--seed``) and the ``command`` that
    writes its table (``devolens simulate embryo --seed N``, with ``--cells`` as ``--sim-cells``)."""
    name = str(table["embryo"].iloc[0]) if len(table) and "embryo" in table.columns else None
    seed = int(table.attrs["seed"]) if table.attrs.get("seed") is not None else int(str(name)[3:])
    return {"embryo": name or f"sim{seed}", "seed": seed,
            "command": f"devolens simulate embryo --seed {seed}" + (f" --cells {cells}" if cells is not None else "")}


def _check_out_folder(out: Path, table: Path | None) -> None:
    """Refuse an --out that a render cannot own, before any work: one that would overwrite the input, and what
    :func:`~devolens.render.dataset.check_render_folder` refuses (a file; a folder that is no render but holds
    e.g. frames/ or labels/, most likely the user's data). A render replaces its own entries in --out
    (:data:`~devolens.render.dataset.OUTPUT_ENTRIES`; :func:`~devolens.render.dataset.render_dataset` stages it
    and moves it into place). --out's lock is taken first and held until the command ends
    (:func:`~devolens.cli._common.hold_output_folder`): a second run writing it is refused now, before any frame."""
    from devolens.cli._common import hold_output_folder
    from devolens.errors import DevolensError
    from devolens.render.dataset import OUTPUT_ENTRIES, check_render_folder

    hold_output_folder(out)
    if table is not None and table.exists():
        src = table.resolve()
        for name in OUTPUT_ENTRIES:
            owned = (out / name).resolve()
            if src == owned or owned in src.parents:
                raise DevolensError(f"output would overwrite the input ({name} in --out); choose another folder",
                                    path=table)
    check_render_folder(out)


def render(
    table: Optional[Path] = typer.Argument(
        None, help="Lineage table (EPIC CD csv, AceTree zip/folder or tidy csv). Omit with --simulate."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder (created; a previous render in it is replaced, other files kept)."
    ),
    kind: str = typer.Option("nuclei", "--kind", callback=choice("nuclei", "membrane"), help="nuclei: histone-GFP maximum projections; membrane: membrane-marker z-slices."),
    every: int = typer.Option(1, "--every", help="Render every K-th time point (K >= 1) of those the table has (or --times lists): time points missing from the table are not counted, so in a table with gaps the frames are not evenly spaced in time."),
    times: Optional[str] = typer.Option(
        None, "--times", help="Time points to render, e.g. '10,20,30' or '10-50' (default all). A range's time points "
        "the table lacks are skipped with a note; with --simulate, each embryo's (they end at different time points)."
    ),
    size: Tuple[int, int] = typer.Option(
        (512, 752), "--size", help=f"Frame height and width in pixels, each {MIN_SIZE} to {MAX_SIZE}, e.g. --size 256 256. "
        "The embryo is scaled to "
        "the frame (its eggshell 80 % of the width, or of the height across): a larger --size zooms in, it does not "
        "show more around the embryo; render.json records the scale (frame pixels per table pixel)."
    ),
    artifacts: float = typer.Option(
        0.0, "--artifacts", help="Probability (0..1) that a frame gets an artifact (black, dark, red line/patch, "
        "duplicate, dropped); recorded in frames.csv, and where each is (a red patch's box...) in render.json."
    ),
    video: bool = typer.Option(
        False, "--video", help="Also write DIR/video.mp4, a timelapse of the frames, H.264 (lossy: a grey level or "
        "so from the PNGs) (with --simulate N, the N "
        "embryos one after another), at a steady --fps. A dropped frame (--artifacts) is left out of the video, so "
        "after it video frame N is no longer frames.csv's row N: frames.csv gets a column video_frame, each row's "
        "frame in the video (0-based, as curate and segment number a video's frames; empty for a dropped row), to "
        "join on. An odd side in --size makes the video one pixel larger on it than the frames "
        "and labels (its last row or column repeated: H.264's yuv420p needs even sides), with a note."
    ),
    fps: float = typer.Option(8.0, "--fps", help="Frames per second of the video (0.001 to 100000)."),
    seed: int = typer.Option(0, "--seed", help="Master random seed; the same seed gives the same output."),
    simulate: Optional[int] = typer.Option(
        None, "--simulate", help="Render N simulated embryos instead of TABLE (seeds derived from --seed; "
        "files named frames/<embryo>_tNNN.png). The embryo named simN is `devolens simulate embryo --seed N` (with "
        "--cells as --sim-cells): render.json lists each one's seed and that command (simulated)."
    ),
    sim_cells: Optional[int] = typer.Option(
        None, "--sim-cells", help="With --simulate: grow each embryo up to this many cells, 1 to 2000 (default: the "
        "simulator's, 360); a C. elegans embryo hatches with 558: the frames past that are not a real embryo's."
    ),
    pose: str = typer.Option("default", "--pose", callback=choice(*POSES), help="default: embryo centred and horizontal; random: random rotation, mirror, scale, placement."),
    vary: str = typer.Option(
        "embryo", "--vary", callback=choice(*VARY),
        help="Draw the optics (drawn at random unless --optics fixes them) and the pose once per 'embryo' (steady "
        "timelapse) or for every 'frame' (render.json then records each frame's own).",
    ),
    optics: Optional[Path] = typer.Option(
        None, "--optics", metavar="FILE.json", show_default=False,
        help="Fix the simulated microscope instead of drawing it at random: a JSON object of optics fields (e.g. "
        '{"psf_xy": 3, "photons": 40}; --kind membrane: membrane fields), or an earlier render.json (its '
        "embryos' optics). Fields not given are drawn as without it; everything else stays as it was drawn.",
    ),
    min_visible: float = typer.Option(
        0.0, "--min-visible", metavar="FRACTION",
        help="Nuclei: leave unlabelled (and out of objects.csv) a nucleus with less than this share (0..1) of it "
        "visible, the rest hidden behind nearer nuclei; 0 labels every nucleus with a visible pixel.",
    ),
    drop_slivers: bool = typer.Option(
        False, "--drop-slivers",
        help="Nuclei: label only the largest connected visible piece of each nucleus; the 1-2 px pieces of a "
        "partly hidden nucleus peeking out apart from it become background.",
    ),
    grey: bool = typer.Option(False, "--grey", help="Greyscale nuclei frames (the green channel) instead of RGB."),
    embryo: Optional[str] = typer.Option(
        None, "--embryo", metavar="NAME", show_default=False,
        help="With a TABLE that holds several embryos: render only this one (the value of its embryo column).",
    ),
    workers: int = typer.Option(1, "--workers", help="Processes rendering in parallel (same output for any number)."),
) -> None:
    """Render a lineage table (or simulated embryos) as microscopy frames with ground truth."""
    from devolens.cli._common import console, note, progress_bar
    from devolens.errors import DevolensError
    from devolens.render.dataset import KINDS, render_dataset

    # validate everything before any output exists
    if table is None and simulate is None:
        raise DevolensError("nothing to render: give a lineage TABLE, or --simulate N for N simulated embryos")
    if table is not None and simulate is not None:
        raise DevolensError("give either a TABLE or --simulate N, not both")
    if embryo is not None and table is None:  # simulated embryos are all rendered
        raise DevolensError("--embryo applies only to a TABLE (--simulate renders every simulated embryo)")
    if sim_cells is not None and simulate is None:  # it would be ignored: the table's cells are rendered
        raise DevolensError("--sim-cells applies only with --simulate N (a TABLE is rendered as it is)")
    if kind not in KINDS:
        raise DevolensError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if every < 1:
        raise DevolensError(f"--every must be at least 1, got {every}")
    if not 0.0 <= artifacts <= 1.0:
        raise DevolensError(f"--artifacts must be in [0, 1], got {artifacts}")
    from devolens.io.video import check_fps

    check_fps(fps, "--fps")  # before rendering: the video is written last
    if pose not in POSES:
        raise DevolensError(f"--pose must be 'default' or 'random', got {pose!r}")
    if vary not in VARY:
        raise DevolensError(f"--vary must be 'embryo' or 'frame', got {vary!r}")
    hw = (int(size[0]), int(size[1]))
    if not (MIN_SIZE <= hw[0] <= MAX_SIZE and MIN_SIZE <= hw[1] <= MAX_SIZE):
        raise DevolensError(f"--size must be within {MIN_SIZE}..{MAX_SIZE} pixels, got {hw[0]} {hw[1]}")
    if workers < 1:
        raise DevolensError(f"--workers must be at least 1, got {workers}")
    if seed < 0:
        raise DevolensError(f"--seed must be non-negative, got {seed}")
    if sim_cells is not None:
        from devolens.lineage.simulate import HATCHING_CELLS, MAX_CELLS

        if not 1 <= sim_cells <= MAX_CELLS:
            raise DevolensError(f"--sim-cells must be within 1..{MAX_CELLS} (a C. elegans embryo hatches with "
                                f"{HATCHING_CELLS} cells), got {sim_cells}")
    if not 0.0 <= min_visible <= 1.0:  # NaN too
        raise DevolensError(f"--min-visible must be a share in [0, 1] of a nucleus, got {min_visible}")
    if kind != "nuclei" and (min_visible or drop_slivers):
        raise DevolensError("--min-visible and --drop-slivers apply to nuclei renders, not to --kind membrane")
    fixed = _optics_file(optics, kind) if optics is not None else None
    _check_out_folder(out, table)
    time_list, ranged = _parse_times(times) if times is not None else (None, set())

    if simulate is not None:
        if simulate < 1 or simulate > 10000:
            raise DevolensError(f"--simulate must be within 1..10000, got {simulate}")
        from devolens.render.dataset import simulate_tables

        with progress_bar("simulating") as cb:
            tables = simulate_tables(simulate, seed=seed, n_cells=sim_cells)
            cb(simulate, simulate)
        prefix = True
        each = [time_list] * len(tables)
        if time_list is not None and ranged:  # each embryo its own: they end at different time points
            each = _within_embryos(tables, time_list, ranged)
            # one list for all when every embryo has them all (render.json's times as without a range)
            time_list = each[0] if all(e == each[0] for e in each) else each
    else:
        from devolens.cli.lineage import _about, _read

        # the reader's notes, and exact copies of rows dropped with the note `lineage populations` gives: a table
        # saved twice would count every nucleus twice in frames.csv while the labels draw it once
        with _about(table):
            tables = [_read(table, drop_copies=True, embryo=embryo, one=True)]
        prefix = False
        if time_list is not None and ranged:
            time_list = _within_table(tables[0], time_list, ranged)
        each = [time_list]
    from devolens.render.dataset import select_times

    # raises on bad --times before anything is written; an empty list: an embryo with none of the range's
    plans = [select_times(t, tt, every, what="the table" if simulate is None else f"simulated embryo "
                          f"{t['embryo'].iloc[0]}") if tt is None or len(tt) else []
             for t, tt in zip(tables, each)]
    if simulate is None:  # frames past where curation stopped count and draw no embryo: said (rendered all the same)
        _past_cliff_notes(tables[0], table, embryo, plans[0])
    if simulate is not None:
        from devolens.cli.simulate import hatching_note

        hatched = hatching_note(tables, "--sim-cells", times=plans)
        if hatched:
            note(hatched)

    provenance = {
        "command": command_line("devolens render"),
        "inputs": ([] if table is None else _inputs(table)) + ([] if optics is None else [input_entry(optics)]),
        # the options that decide the output, as given (--out and --workers do not)
        "options": {"table": None if table is None else absolute_path(table), "kind": kind, "times": times,
                    "every": every, "size": list(hw), "artifacts": artifacts, "video": video, "fps": fps,
                    "seed": seed, "simulate": simulate, "sim_cells": sim_cells, "pose": pose, "vary": vary,
                    "grey": grey, "embryo": embryo, "optics": None if optics is None else absolute_path(optics),
                    "min_visible": min_visible, "drop_slivers": drop_slivers},
        **run_context(),  # the working directory the command line's paths are relative to, and the environment
    }
    if simulate is not None:  # each simulated embryo's seed, and the command that writes its table
        provenance["simulated"] = [_simulated(t, sim_cells) for t in tables]
    with progress_bar("rendering") as cb:  # (staged, then the previous render in --out replaced whole)
        df = render_dataset(
            tables, out, kind=kind, times=time_list, every=every, size=hw, artifacts=artifacts,
            video=video, fps=fps, seed=seed, rgb=not grey, pose=pose, vary=vary, optics=fixed, min_visible=min_visible,
            drop_slivers=drop_slivers, prefix=prefix, workers=workers, progress=cb, record=provenance,
        )
    if video and len(df) and (df["file"] != "").any():
        from devolens.io.video import video_size

        even = video_size(*hw)
        if even != hw:
            padded = " and ".join(side for side, odd in (("row", even[0] != hw[0]), ("column", even[1] != hw[1]))
                                  if odd)
            note(f"--size {hw[0]} {hw[1]} has an odd side: video.mp4 is {even[0]} x {even[1]}, its last {padded} "
                 f"a copy of the one before (H.264's yuv420p needs even sides), one pixel more than the frames and "
                 f"labels ({hw[0]} x {hw[1]}): give an even --size for a video of the frames' size")
    n_art = int((df["artifact"] != "").sum())
    console.print(f"wrote {len(df)} frames ({n_art} with artifacts) to {out}/frames.csv")


def register(app: typer.Typer) -> None:
    """Add the ``render`` command to the ``devolens`` app."""
    app.command("render", help=_HELP)(render)
