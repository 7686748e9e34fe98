"""``devolens curate``: find corrupt frames in a timelapse (video or folder of images)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from devolens.cli._common import PAGES_CHOICE, PAGES_HELP, STACK_Z_CHOICE, check_threads

_FRAMES_HELP = (
    "Score every frame of a timelapse and flag the corrupt ones.\n\n"
    "Kinds: black (no signal), dark (far dimmer than the neighbouring frames), bright (far brighter than them: a lamp flicker, saturated), red_line (a thin red "
    "row/column band), red_patch (a red region present in this frame only), duplicate (a repeat of the "
    "previous frame), dropped (a missing time in a folder's numbered file names, tNNN or frame_1, frame_2..., "
    "or frames a constant-rate video's "
    "timestamps skip: a damaged stretch, frames dropped while recording; found with ffmpeg 6.1 or later, the later "
    "frames keeping their numbers), unreadable (a file of a folder that cannot be read), corrupt (a video's "
    "frame decoded from damaged data: one ffmpeg complained about while decoding it, or one decoded from such a "
    "frame before the next key frame; found by decoding the video once more when ffmpeg reports damage). "
    "A frame decoded from damaged data is flagged corrupt, whatever else it shows. Thresholds "
    "are relative to "
    "the sequence itself, so no tuning is needed per recording.\n\n"
    "Writes a CSV with one row per frame (frame, file, time, time_unit, scores, one column per kind, flag, "
    "flagged; frame: a number from 0, a video's or stack's frame number and for a folder its file's place in the "
    "natural order of the file names, and file names the file (the frame column of segment and population holds a "
    "folder's file stems: join on the stem of file); time: seconds for a video and for a TIFF stack that records "
    "its interval, a time point, the number in the file names, for a folder; time_unit says which; then what the "
    "input is: its name, frame count and stack options, a file's size and fingerprint, a folder's files' "
    "fingerprints); `devolens segment` and `devolens population` skip the flagged frames with --skip-flagged REPORT "
    "(or curate on the fly with --skip-flagged auto), refusing the report of another input (another file, or "
    "another folder's files of the same names). Every column, with its unit: docs/outputs.md, linked from the "
    "README's 'Output columns' (scores written to 4 significant digits). Beside it, same name, .json: a record of how it "
    "was made (command line, devolens version, the input's sha256, the options), written with it."
)


def frames(
    path: Path = typer.Argument(
        ..., help="Video file (mp4, mov, avi, mkv, webm, mpg, ts and other ffmpeg formats), animated GIF or WebP, folder of images (png, jpg, tif, webp; a render "
        "output folder with frames/ works too) or TIFF stack (timelapse, z-stack, hyperstack). Frames are "
        "streamed, never all loaded."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Report CSV to write (.csv; one row per frame), with its record beside it (same name, .json: the command "
        "line, devolens version, the input's sha256, the options); the two written together, an existing report and "
        "record replaced."),
    stack_z: str = typer.Option("project", "--stack-z", metavar="project|slices", callback=STACK_Z_CHOICE, help=(
        "TIFF stacks with a Z axis: 'project' (one maximum projection per time point) or 'slices'. Give the reading "
        "of the command that will use the report (`segment membrane` slices by default; `segment nuclei` and "
        "`population` project): the report records it, and a report of another reading is refused.")),
    channel: Optional[int] = typer.Option(None, "--channel", help=(
        "TIFF stacks with a C axis: the channel to score (0-based); required when there are several. A plain TIFF "
        "of 2 to 4 grey pages without axis labels is read as that many channels with it (one frame).")),
    pages: str = typer.Option("time", "--pages", metavar="time|z", callback=PAGES_CHOICE, help=PAGES_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=(
        "CPU threads decoding a video (ffmpeg's; default: ffmpeg's, about one per core); the frames are scored in "
        "one thread.")),
) -> None:
    from devolens.cli._common import (check_csv_out, check_out, check_writable, checked_record, count_of,
                                      progress_bar, summary)
    from devolens.cli.predict import record_path
    from devolens.curate.frames import KINDS, curate_path, report_for_csv, summarize
    from devolens.errors import DevolensError
    from devolens.io.atomic import TEXT_ERRORS
    from devolens.io.together import write_together

    from devolens.io.stacks import check_stack_z

    check_stack_z(stack_z, "--stack-z")  # the library says stack_z
    check_threads(threads)
    out = Path(out)
    check_out(out, Path(path))
    check_csv_out(out, "the report")  # e.g. --out frame.png inside the input folder would replace a frame
    check_writable(out)  # before every frame is scored
    record = checked_record(record_path(out), "report")  # how the report was made, beside it (replaced, as the report is)
    check_writable(record)
    with progress_bar("curate") as callback:
        report = curate_path(path, progress=callback, stack_z=stack_z, channel=channel, pages=pages,
                             decode_threads=threads)
    counts = summarize(report)
    text = _curate_record(Path(path), out, counts, {"stack_z": stack_z, "channel": channel, "pages": pages,
                                                    "threads": threads})
    tidy = report_for_csv(report)  # (scores at 4 significant digits)
    try:  # the report and its record: both this run's or both the previous run's (the record last)
        write_together({out: lambda tmp: tidy.to_csv(tmp, index=False, errors=TEXT_ERRORS),  # (as write_csv)
                        record: lambda tmp: tmp.write_text(text, encoding="utf-8", errors=TEXT_ERRORS)})
    except OSError as exc:
        raise DevolensError(f"cannot write report: {exc.strerror or exc}", path=out) from None
    summary(_summary_line(report, counts) + f" -> {out}")
    from devolens.cli._common import print_stack_notes
    from devolens.io.frames import VIDEO_SUFFIXES
    from devolens.io.stacks import pages_with_channel

    # TIFF inputs: how they were read (a plain TIFF's 2-4 pages with --channel: as channels)
    print_stack_notes(Path(path), pages_with_channel(pages, channel), stack_z)
    from devolens.io.missing import missing_note

    from devolens.cli._common import note

    missing = missing_note(report.attrs.get("missing", ()))
    if missing:  # frames that could not be read: which, and why (file names are not read as markup)
        note(missing)
    if Path(path).is_file() and Path(path).suffix.lower() in VIDEO_SUFFIXES:  # a file cut short: say so
        from devolens.io.frames import cut_short, frame_count_from_info
        from devolens.io.video import video_info

        try:
            short = cut_short(counts["frames"], frame_count_from_info(video_info(path)))
        except DevolensError:
            short = None
        if short:
            note(short)
        from devolens.io.video import video_steady

        if video_steady(path) is False:  # (known once read to its end with its timestamps, as here)
            note(vfr_note(Path(path).name))
    sized = sizes_note(report)
    if sized:
        note(sized)


def sizes_note(report) -> Optional[str]:
    """``curate frames``' note on a folder whose files are not all of its first file's size (cropped frames, or
    another movie's): which; their change from the frame before is not measured (no duplicate test), and their
    levels are compared with frames of another field. None where every frame read has the first's size."""
    if "file" not in report or not len(report):
        return None
    read = report.dropna(subset=["height", "width"])
    read = read[read["file"].notna()]
    if len(read) < 2:
        return None
    first = (int(read["height"].iloc[0]), int(read["width"].iloc[0]))
    other = read[(read["height"].astype(int) != first[0]) | (read["width"].astype(int) != first[1])]
    if not len(other):
        return None
    from devolens.errors import listed

    kinds = sorted({(int(h), int(w)) for h, w in zip(other["height"], other["width"])}, key=lambda s: s[0] * s[1])
    one = len(other) == 1
    named = listed(map(str, other["file"]), 8)
    return (f"{len(other)} of {len(read)} files ({named}) {'is' if one else 'are'} of another size than the first "
            f"({first[1]}x{first[0]} pixels): " + ", ".join(f"{w}x{h}" for h, w in kinds)
            + " pixels; frames cropped, or of another movie? Their change from the frame before is not measured "
            "(no duplicate test), and their levels are compared with frames of another field (the dark and bright "
            "tests)")


def vfr_note(name: str) -> str:
    """``curate frames``' note on a video whose frames come at varying intervals (:func:`devolens.io.video.
    video_steady` False): its ``time`` column is each frame's own, and a frame missing from it cannot be told from
    a longer interval (the reader stops marking lost frames at its first uneven step)."""
    return (f"{name}: its frames come at varying intervals (a variable frame rate, or a pause): the report's time "
            "column gives each frame's own seconds, and frames missing from such a video cannot be told from a longer "
            "interval, so none is flagged dropped past its first uneven step")


def _summary_line(report, counts: dict) -> str:
    """The run's line: the frames read and how many of them are flagged, by kind, and apart from them the frames
    missing from the sequence (``dropped`` rows, which hold no frame read): "8 frames, 3 flagged (red_line 2,
    red_patch 1); 3 missing (dropped)". Counted among the flagged, the missing read as 6 of 8 frames bad where 5 of
    the 8 are usable (``segment --skip-flagged`` says 3 skipped). The record's ``counts`` keep every flagged row."""
    import pandas as pd

    from devolens.cli._common import count_of
    from devolens.curate.frames import KINDS, read_rows

    read = pd.Series(read_rows(report), index=report.index)  # (a video's dropped frames: missing, not read)
    kinds = report.loc[read & report["flagged"].astype(bool), "flag"].value_counts()
    gone = report.loc[~read & report["flagged"].astype(bool), "flag"].value_counts()
    said = ", ".join(f"{k} {int(kinds[k])}" for k in KINDS if k in kinds)
    line = f"{count_of(counts['frames'], 'frame')}, {int(kinds.sum())} flagged" + (f" ({said})" if said else "")
    if len(gone):
        line += f"; {int(gone.sum())} missing ({', '.join(f'{k} {int(gone[k])}' for k in KINDS if k in gone)})"
    return line

def _curate_record(path: Path, out: Path, counts: dict, options: dict) -> str:
    """The JSON written beside the report (``R.json`` for ``--out R.csv``), as the other commands' records: the
    command line, ``input`` and ``output`` (absolute), the devolens version, the input's sha256 and size (``inputs``:
    :func:`devolens.provenance.frames_inputs`; a folder: of its frames), the reading options and ``--threads``
    (``options``), and how many frames it read, flagged and flagged of each kind (``counts``:
    :func:`devolens.curate.frames.summarize`)."""
    from devolens.provenance import absolute_path, command_line, frames_inputs, record_text, version

    return record_text({
        "command": command_line("devolens curate frames"), "input": absolute_path(path),
        "output": absolute_path(out), "devolens": version(), "inputs": frames_inputs(path), "options": options,
        "counts": counts,
    })


def register(app: typer.Typer) -> None:
    """Add the ``curate`` group (``devolens curate frames``) to the root app."""
    group = typer.Typer(
        help="Curate datasets: find corrupt frames (black, dark, bright, red lines/patches, duplicates, dropped, unreadable, "
        "decoded from damaged video data).",
        no_args_is_help=True,
    )
    group.command("frames", help=_FRAMES_HELP)(frames)
    app.add_typer(group, name="curate")
