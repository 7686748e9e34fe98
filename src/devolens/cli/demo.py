"""``devolens demo``: the whole pipeline on built-in data, with a report.

Simulate an embryo, render a short timelapse (with artifacts) and its video, flag the corrupt
frames, segment the nuclei, predict the per-lineage populations and every cell's identity,
and write ``report.md`` with plots and tables, scoring each step against the ground truth the
digital embryo knows exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Iterator

import typer

from devolens.cli._common import CLOCK_GAIN, console, progress_bar
from devolens.errors import DevolensError, ordinal

LETTERS = ["A", "E", "M", "P", "C", "D", "Z"]

#: every entry the demo writes into its folder; keep in step with :func:`run_demo`: a demo run again into its folder
#: replaces exactly these (those this run does not write are removed), other files there are kept
DEMO_OUTPUTS = ("cells.csv", "curation.csv", "demo.json", "embryo.csv", "embryo.meta.json", "overlay.png",
                "populations.csv", "populations.json", "populations.png", "render", "report.md", "segment")
#: the demo's record (its command line, version, options): the mark that a folder holds a demo's outputs
DEMO_RECORD = "demo.json"
#: the first line of ``report.md``: the mark of a demo written before :data:`DEMO_RECORD` existed
REPORT_TITLE = "# devolens demo report"
#: the fewest frames ``--frames`` takes: the developmental clock's :data:`devolens.predict.clock.MIN_FRAMES` (not
#: imported: it imports pandas, which the command's start-up does not); with fewer frames left after the flagged
#: ones, the populations are predicted frame by frame (:func:`run_demo`)
MIN_FRAMES = 6


def _md_table(df, floatfmt: str = "{:.3g}") -> str:
    """A DataFrame as a Markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [("-" if v != v else floatfmt.format(v)) if isinstance(v, float) else str(v) for v in row]  # nan: -
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers (pure, tested alone)
def _listed(header: str, items, prefix: str) -> list[str]:
    """Report lines: ``header``, a blank line, one ``prefix``ed line per item, a blank line; none without items."""
    return [header, "", *(prefix + text for text in items), ""] if items else []


def _every(n: int) -> str:
    """``every 4th time point``, ``every time point``, ``every 2nd time point``."""
    return "every time point" if n == 1 else f"every {ordinal(n)} time point"


def frame_name(t) -> str:
    """A time point as the renderer names its files (``t001``): :func:`devolens.render.dataset.frame_name`, imported
    when used (every command imports this module at start-up)."""
    from devolens.render.dataset import frame_name as name

    return name(t)


def _formula(offset: int, step: int) -> str:
    """``offset + step*k`` as written in the report (``1 + 4k``, ``k``, ``2k - 1``)."""
    term = "k" if step == 1 else f"{step}k"
    if offset == 0:
        return term
    return f"{offset} + {term}" if offset > 0 else f"{term} - {-offset}"


def _frame_map(frames_csv):
    """One row per rendered time point (render/frames.csv): ``time``, ``artifact`` ("" for clean) and ``video frame``
    (0-based position in the video, as in curation.csv, segment/counts.csv and populations.csv; <NA> for a dropped
    time point, which is not in the video): the renderer's own ``video_frame`` column."""
    import pandas as pd

    from devolens.render.dataset import VIDEO_FRAME_COLUMN

    out = pd.DataFrame({"time": frames_csv["time"].astype(int).to_numpy(),
                        "artifact": frames_csv["artifact"].fillna("").astype(str).to_numpy()})
    out["video frame"] = pd.to_numeric(frames_csv[VIDEO_FRAME_COLUMN], errors="coerce").astype("Int64").to_numpy()
    if "total" in frames_csv.columns:
        out["total"] = frames_csv["total"].astype(int).to_numpy()
    return out


def _frame_time_sentence(fmap) -> str:
    """Which time point each video frame shows, from :func:`_frame_map` (and how dropped time points shift it)."""
    import numpy as np
    import pandas as pd

    times = fmap["time"].to_numpy(int)
    steps = np.diff(times)
    step = int(steps[0]) if len(steps) else 1
    arithmetic = len(steps) == 0 or bool(np.all(steps == step))
    runs: list[dict] = []  # stretches of consecutive video frames with no dropped time point between them
    pending: list[int] = []
    for t, k in zip(times, fmap["video frame"]):
        if pd.isna(k):
            pending.append(int(t))
            continue
        k = int(k)
        if runs and not pending:
            runs[-1].update(k1=k, t1=int(t))
        else:
            runs.append({"k0": k, "k1": k, "t0": int(t), "t1": int(t), "dropped_before": pending})
            pending = []

    def rule(r: dict) -> str:
        span = f"frame {r['k0']}" if r["k0"] == r["k1"] else f"frames {r['k0']}-{r['k1']}"
        shown = frame_name(r["t0"]) if r["t0"] == r["t1"] else f"{frame_name(r['t0'])}-{frame_name(r['t1'])}"
        if arithmetic:
            return f"time point {_formula(r['t0'] - step * r['k0'], step)} for {span} ({shown})"
        return f"{span} show{'s' if r['k0'] == r['k1'] else ''} {shown}"

    def listed(ts: list[int]) -> str:
        return ("time point " if len(ts) == 1 else "time points ") + ", ".join(str(t) for t in ts)

    head = ("Video frame k (numbered from 0, as in `curation.csv`, `segment/counts.csv` and `populations.csv`) shows "
            if arithmetic else "Video frames (numbered from 0, as in `curation.csv`, `segment/counts.csv` and "
            "`populations.csv`) and the time points they show: ")
    if not runs:
        return "No frame reached the video (every rendered time point was dropped)."
    parts = []
    if runs[0]["dropped_before"]:
        parts.append(f"{listed(runs[0]['dropped_before'])}, before the first frame, dropped (not in the video)")
    parts.append(rule(runs[0]))
    for r in runs[1:]:
        n = len(r["dropped_before"])
        verb = "was" if n == 1 else "were"
        shift = (f"the frames are shifted by {n} rendered step{'s' if n > 1 else ''} ({n * step} time point"
                 f"{'s' if n * step != 1 else ''})" if arithmetic else f"the frames are shifted by {n}")
        parts.append(f"{listed(r['dropped_before'])} {verb} dropped by the renderer (not in the video), so from frame "
                     f"{r['k0']} on {shift}: {rule(r)}")
    if pending:
        verb = "was" if len(pending) == 1 else "were"
        parts.append(f"{listed(pending)}, after the last frame, {verb} dropped (not in the video)")
    text = head + "; ".join(parts) + "."
    if len(runs) == 1 and not pending and not runs[0]["dropped_before"]:
        text += " No time point was dropped, so the rule holds for every frame."
    return text


def _curation_counts(fmap, report) -> dict[str, int]:
    """The artifacts the renderer recorded, split into those in video frames and dropped ones, and how the curator's
    flags (``report``, one row per video frame) compare with the former."""
    from devolens.curate.frames import _flag_mask, _numbered

    in_video = fmap[fmap["video frame"].notna()]
    bad_frames = set(in_video.loc[in_video["artifact"] != "", "video frame"].astype(int))
    flagged = _numbered(report, _flag_mask(report))  # video frames only (rows with a frame number)
    return {
        "rendered time points": len(fmap),
        "frames in the video": len(in_video),
        "artifacts recorded by the renderer": int((fmap["artifact"] != "").sum()),
        "in video frames (corrupt, truth)": len(bad_frames),
        "dropped (missing from the video)": int((fmap["video frame"].isna()).sum()),
        "flagged by curate": len(flagged),
        "correctly flagged": len(flagged & bad_frames),
        "missed (corrupt, not flagged)": len(bad_frames - flagged),
        "flagged but clean": len(flagged - bad_frames),
    }


def _curation_sentence(fmap, counts: dict[str, int]) -> str:
    """The renderer's artifacts in words: how many are in the video (scored) and which were dropped (not)."""
    in_video = fmap[fmap["video frame"].notna() & (fmap["artifact"] != "")]
    dropped = fmap[fmap["video frame"].isna()]
    n_art, n_in, n_drop = (counts["artifacts recorded by the renderer"], counts["in video frames (corrupt, truth)"],
                           counts["dropped (missing from the video)"])
    kinds = ", ".join(f"{a} {frame_name(t)}" for a, t in zip(in_video["artifact"], in_video["time"]))
    text = (f"{n_art} artifact{'s' if n_art != 1 else ''} recorded by the renderer (`render/frames.csv`): {n_in} in "
            f"frames that are in the video" + (f" ({kinds})" if kinds else "") + ", scored here")
    if n_drop:
        drops = ", ".join(frame_name(t) for t in dropped["time"])
        text += (f", and {n_drop} dropped frame{'s' if n_drop != 1 else ''} ({drops}), missing from the video: a "
                 "video keeps no trace of a frame that was never written, so `devolens curate frames` cannot flag it "
                 "there (on the folder of numbered frames, `render/frames/`, it reports it as a gap in the "
                 "t-numbering)")
    return text + ". Flagged frames are skipped by the segmentation and the population model."


def _majority_baseline(true) -> tuple[str, float, dict[str, float]]:
    """The commonest class of ``true``, its share, and the scores of calling every item that class."""
    import numpy as np

    from devolens.train.metrics import identity_scores

    values, counts = np.unique(np.asarray(true, dtype=object).astype(str), return_counts=True)
    majority = str(values[int(np.argmax(counts))])
    scores = identity_scores(np.full(len(true), majority, dtype=object), np.asarray(true, dtype=object))
    return majority, float(counts.max() / counts.sum()), scores


def _versus_baseline(level: str, model: dict[str, float], baseline: dict[str, float], majority: str) -> str:
    """One honest sentence: do the model's accuracy and macro-F1 beat calling every nucleus the commonest class?"""
    d_acc = round(model["accuracy"], 3) - round(baseline["accuracy"], 3)
    d_f1 = round(model["macro_f1"], 3) - round(baseline["macro_f1"], 3)
    if d_acc <= 0 and d_f1 <= 0:
        verdict = "the model does not beat the majority-class baseline"
    elif d_acc <= 0:
        verdict = ("the model does not beat the majority-class baseline in accuracy (it does in macro-F1: it finds "
                   "some of the rarer classes)")
    elif d_f1 <= 0:
        verdict = "the model beats the majority-class baseline in accuracy but not in macro-F1"
    elif d_acc < 0.05:
        verdict = f"the model is only slightly above the majority-class baseline ({d_acc:.3f} in accuracy)"
    else:
        verdict = f"the model beats the majority-class baseline ({d_acc:.3f} in accuracy)"
    return (f"{level}: {verdict}: accuracy {model['accuracy']:.3f} against {baseline['accuracy']:.3f}, macro-F1 "
            f"{model['macro_f1']:.3f} against {baseline['macro_f1']:.3f} for calling every nucleus {majority}, the "
            "commonest class here.")


def identity_limits_summary(card: dict) -> list[str]:
    """The identity model's limits in a few plain bullets for the report (what it is good at, where it fails, what
    to check), true to its ``card`` (its numbers read from the card's metrics); the card itself, with the
    measurements behind each, is ``devolens models show identity``."""
    metrics = card.get("metrics") or {}

    def share(key: str) -> str:
        value = (metrics.get(key) or {}).get("value")
        return "?" if not isinstance(value, (int, float)) else f"{100 * value:.0f}%"

    return [
        "Good at: whole real embryos imaged like its 7 training embryos (up to about 580 nuclei): on embryos kept "
        f"out of training it named the founder of {share('founder_accuracy')} of the nuclei and the depth-1 name of "
        f"{share('depth1_accuracy')}.",
        "Fails, often with a high confidence: tables that stop early (turned as the model reads them best under 200 "
        "nuclei; under about 30, often the wrong way round), embryos cut off by the edge of the image, mirrored "
        "embryos (an inverted microscope or a reversed z-step: try `devolens identify --mirror`) and simulated "
        "embryos like this one; stages beyond about 580 nuclei are untested.",
        "The germline names (P3, P4, Z2, Z3) are the weakest; names deeper than depth-1 are not predicted.",
        "`confidence` ranks the nuclei but is not the chance that a name is right: it stays high where the names go "
        "wrong.",
        "What to check: read the notes `devolens identify` prints (a short table, an embryo whose orientation is "
        "unclear, a z scale that looks wrong, nuclei crowding an image edge, tracks that break): each names one of "
        "these cases; give `--zscale` when you know it, and look at a few named nuclei before trusting the rest.",
    ]


#: the report's "Run it on your own data": (what it does, the command as written); the file names are examples
#: (movie.mp4: a timelapse of a nuclear marker; lineage.csv: a lineage table, e.g. an EPIC CD csv)
OWN_DATA_COMMANDS = (
    ("flag the corrupt frames of a movie (black, dark, red lines, damaged video data...)",
     "devolens curate frames movie.mp4 --out curation.csv"),
    ("segment the nuclei in every frame, skipping the flagged ones",
     "devolens segment nuclei movie.mp4 --out nuclei --skip-flagged curation.csv"),
    ("predict the per-lineage populations of every frame, fitted to the developmental clock",
     "devolens population movie.mp4 --out populations.csv --clock --skip-flagged curation.csv"),
    ("name every nucleus of a lineage table (founder and depth-1)",
     "devolens identify lineage.csv --out cells.csv"),
)


def own_data_lines() -> list[str]:
    """The report's "Run it on your own data" section (:data:`OWN_DATA_COMMANDS`)."""
    lines = ["## Run it on your own data", "",
             "The same steps on a timelapse of your own (`movie.mp4`: a video, a TIFF stack or a folder of frames of "
             "a nuclear marker) and on a lineage table (`lineage.csv`: an EPIC CD csv, AceTree nuclei or a tidy "
             "table); each command's `--help` says more:", "", "```"]
    for what, command in OWN_DATA_COMMANDS:
        lines += [f"# {what}", command]
    return lines + ["```", ""]


def _population_figure(truth_pops, comp, clock: bool = True):
    """The demo's figure: total cells (truth, predicted, segmented) and the per-letter populations, in the letters'
    colours of the ``population``/``lineage`` plots (:data:`devolens.viz.plots.LETTER_COLOURS`); ``clock``: whether
    the predictions were made with ``--clock`` (the legend says so)."""
    from matplotlib.figure import Figure

    from devolens.viz.plots import LETTER_COLOURS, add_letter_key

    fig = Figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2)
    ax = axes[0]
    ax.plot(truth_pops["time"], truth_pops["total"], "-", color=LETTER_COLOURS["total"], label="true cells (table)")
    ax.plot(comp["time"], comp["total_pred"], "o-", color="#17becf",
            label="predicted total (population model" + (", --clock)" if clock else ", per frame)"))
    ax.plot(comp["time"], comp["count"], "s--", color="#bcbd22", label="nuclei segmented (visible)")
    ax.set_xlabel("time point")
    ax.set_ylabel("cells")
    ax.legend()
    ax.set_title("cell count over the timelapse")
    ax = axes[1]
    for L in LETTERS:
        colour = LETTER_COLOURS[L]
        ax.plot(comp["time"], comp[f"{L}_true"], "-", lw=1, color=colour)
        ax.plot(comp["time"], comp[f"{L}_pred"], "o", ms=3, color=colour, label=L)
    ax.set_xlabel("time point")
    ax.set_ylabel("cells (line: truth, dots: predicted)")
    ax.legend(ncol=4, fontsize=8)
    ax.set_title("per-lineage populations")
    add_letter_key(fig)
    return fig


def _per_frame_table(fmap, report, counts, pred_pops):
    """The report's frame table: each rendered time point, the video frame that shows it, its artifact and flag, and
    the true, segmented and predicted cell counts."""
    import pandas as pd

    flag_of = {int(f): flag for f, flag in zip(pd.to_numeric(report["frame"], errors="coerce"),
                                               report["flag"].fillna("").astype(str)) if pd.notna(f)}
    seen = dict(zip(counts["frame"].astype(int), counts["count"].astype(int)))
    pred = dict(zip(pred_pops["frame"].astype(int), pred_pops["total"].astype(float)))
    rows = []
    for _, r in fmap.iterrows():
        k = r["video frame"]
        if pd.isna(k):
            rows.append({"video frame": "- (dropped)", "time point": frame_name(r["time"]), "artifact (renderer)":
                         r["artifact"], "flag (curate)": "-", "true cells": int(r["total"]),
                         "nuclei segmented": "-", "predicted cells": "-"})
            continue
        k = int(k)
        flag = flag_of.get(k, "")
        rows.append({"video frame": str(k), "time point": frame_name(r["time"]), "artifact (renderer)": r["artifact"] or "",
                     "flag (curate)": flag, "true cells": int(r["total"]),
                     "nuclei segmented": str(seen[k]) if k in seen else "skipped",
                     "predicted cells": f"{pred[k]:.1f}" if k in pred else "skipped"})
    return pd.DataFrame(rows)


def is_demo(folder: str | Path) -> bool:
    """Whether ``folder`` holds a demo's outputs: its record (:data:`DEMO_RECORD`, a ``devolens demo`` command, the
    program's options before ``demo`` too: ``devolens -q demo``), or a ``report.md`` of the demo's (an earlier
    devolens's demo, which wrote no record)."""
    from devolens.provenance import command_words

    folder = Path(folder)
    try:
        record = json.loads((folder / DEMO_RECORD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        record = None
    if isinstance(record, dict) and command_words(record.get("command"))[:1] == ["demo"]:
        return True
    try:
        with open(folder / "report.md", encoding="utf-8") as fh:
            return fh.readline().rstrip("\r\n") == REPORT_TITLE
    except (OSError, UnicodeDecodeError):
        return False


def _own_entries() -> dict[str, frozenset]:
    """What the demo's ``render/`` and ``segment/`` hold when it wrote them: the render's and segment's own entries
    (imported when used: they import more than the command's start-up needs)."""
    from devolens.cli.predict import SEGMENT_OUTPUTS, SEGMENT_RECORD
    from devolens.render.dataset import OUTPUT_ENTRIES

    return {"render": frozenset(OUTPUT_ENTRIES), "segment": frozenset((*SEGMENT_OUTPUTS, SEGMENT_RECORD))}


def _written_files(out: Path, subs: tuple = ("render", "segment")) -> list[str]:
    """The files (and links) under ``out``'s ``subs``, as sorted paths relative to ``out`` with ``/``."""
    found = []
    for sub in subs:
        for root, dirs, files in os.walk(out / sub):
            rel = Path(root).relative_to(out).as_posix()
            found += [f"{rel}/{name}" for name in files]
            found += [f"{rel}/{name}" for name in dirs if os.path.islink(os.path.join(root, name))]
    return sorted(found)


def _recorded_files(out: Path) -> frozenset | None:
    """The files an earlier demo in ``out`` recorded writing under render/ and segment/ (its record's ``files``),
    or None when its record lists none (a demo of an earlier devolens)."""
    try:
        files = json.loads((out / DEMO_RECORD).read_text(encoding="utf-8")).get("files")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return frozenset(map(str, files)) if isinstance(files, list) else None


def check_demo_folder(out: str | Path) -> Path:
    """``out`` as a Path, when the demo may write into it; else a one-line error, before any work.

    The demo replaces its own entries in ``out`` (:data:`DEMO_OUTPUTS`; ``render/`` and ``segment/`` whole): that
    is safe in a new or empty folder, beside unrelated files, or in an earlier demo's folder (:func:`is_demo`) whose
    ``render/`` and ``segment/`` hold only what the demo wrote there.

    In a command (``devolens demo``), ``out``'s lock is taken first and held until the command ends
    (:func:`~devolens.cli._common.hold_output_folder`): a second demo writing it is refused now, before any step.

    Raises
    ------
    DevolensError
        ``out`` is a file; a folder that holds no demo but entries of the demo's names (named); an earlier demo's
        folder whose ``render/`` or ``segment/`` holds files the demo did not write (named); another run is writing
        it.
    """
    from devolens import checks
    from devolens.cli._common import hold_output_folder

    out = checks.path(out, "out must be the path of the output folder (str or Path)")
    hold_output_folder(out)
    if out.exists() and not out.is_dir():
        raise DevolensError("output exists and is not a folder", path=out)
    if not out.is_dir():
        return out
    if not is_demo(out):
        clash = [name for name in DEMO_OUTPUTS if os.path.lexists(out / name)]
        if clash:
            raise DevolensError(f"folder holds no earlier demo (no {DEMO_RECORD}) but {', '.join(clash)}, which the "
                                "demo would replace: choose a new or empty folder for --out", path=out)
        return out
    written = _recorded_files(out)
    foreign = []
    for sub, own in _own_entries().items():
        if not (out / sub).is_dir() or (out / sub).is_symlink():
            continue
        try:
            if written is None:  # a demo of an earlier devolens (no list of its files): its top-level entries
                foreign += [f"{sub}/{name}" for name in sorted(os.listdir(out / sub)) if name not in own]
            else:  # every file, nested ones too (a label image edited in segment/labels/ is the user's)
                foreign += [name for name in _written_files(out, (sub,)) if name not in written]
        except OSError:  # unreadable: replacing it reports the real problem
            continue
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DevolensError(f"folder holds an earlier demo, whose render/ and segment/ a new demo replaces whole, but "
                            f"also {shown}, which the demo did not write: move them out of it, or choose another "
                            "--out", path=out)
    return out


def _as_moved(record: Path, staged: Path, dest: Path, entries: dict) -> None:
    """Rewrite the JSON ``record`` written in the staging folder ``staged``: each path in it under ``staged`` named
    where the commit puts it (under ``dest``), and ``entries`` set (the demo's command line)."""
    from devolens.io.atomic import write_text
    from devolens.provenance import record_text

    old, new = str(staged), str(dest)

    def moved(value):
        if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
            return new + value[len(old):]
        if isinstance(value, dict):
            return {k: moved(v) for k, v in value.items()}
        if isinstance(value, list):
            return [moved(v) for v in value]
        return value

    write_text(record, record_text({**moved(json.loads(record.read_text(encoding="utf-8"))), **entries}))


@contextlib.contextmanager
def _staged_demo(out: Path) -> Iterator:
    """:func:`devolens.io.atomic.staged_folder` of the demo's folder ``out`` (its entries :data:`DEMO_OUTPUTS`), an
    error's path in the staging folder named as the user named ``out``."""
    from devolens.io.atomic import staged_folder

    with staged_folder(out, owned=DEMO_OUTPUTS) as stage:
        try:
            yield stage
        except DevolensError as exc:
            if exc.path is not None and (exc.path == stage.tmp or stage.tmp in exc.path.parents):
                exc.path = out / exc.path.relative_to(stage.tmp)
                exc.args = (f"{exc.path}: {exc.message}",)
            raise


def run_demo(out: Path, *, seed: int = 7, cells: int = 180, frames: int = 24, size=(512, 752)) -> Path:
    """Run the demo pipeline into the folder ``out`` and return the path of its ``report.md``.

    As the other commands do, the outputs are written into a hidden staging folder beside ``out`` and moved into
    place when all are written, under the output lock of ``out`` (a second run writing it at the same time is
    refused): a demo that fails or is stopped leaves ``out`` as it was (and makes no folder). An earlier demo in
    ``out`` is replaced (its entries this run does not write removed), other files kept; a folder the demo may not
    write into is refused before any work (:func:`check_demo_folder`).

    Parameters
    ----------
    out : str or Path
        Output folder.
    seed : int
        Seed of the simulated embryo and of the rendering (>= 0).
    cells : int
        Grow the embryo until a time point has at least this many cells (>= 8).
    frames : int
        About this many frames in the timelapse (>= :data:`MIN_FRAMES`).
    size : (int, int)
        Frame height and width, pixels.

    Returns
    -------
    Path
        ``out / "report.md"``. Beside it ``demo.json`` records the demo's command line
        (:func:`devolens.provenance.command_line`), the devolens and PyTorch versions, the options, whether the
        populations were predicted with the developmental clock (``clock``) and the video frames left for it after
        the flagged ones (``frames_left``); the steps' records (``embryo.meta.json``, ``render/render.json``,
        ``segment/segment.json``, ``populations.json``) give the same ``command`` and their step (``demo_step``).

    Raises
    ------
    DevolensError
        A bad argument or an ``out`` the demo may not write (before any work), or a step's error (``out`` then left
        as it was).
    """
    from devolens import checks
    from devolens.provenance import command_line
    from devolens.render.nuclei import frame_size

    seed = checks.whole(seed, "seed", 0)
    cells = checks.whole(cells, "cells", 8)
    frames = checks.whole(frames, "frames", MIN_FRAMES)
    size = frame_size(size, low=16)  # as the render checks it, before any work
    given = check_demo_folder(out)
    command = command_line("devolens demo")

    import devolens.viz  # noqa: F401  (first: a writable matplotlib folder where HOME is missing or read-only)
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    from devolens.cli._common import note
    from devolens.cli.identify import _input_notes, cells_for_csv
    from devolens.cli.predict import run_population, run_segmentation
    from devolens.curate.frames import curate_path, report_for_csv, summarize
    from devolens.io.atomic import write_csv, write_text
    from devolens.io.images import read_image
    from devolens.io.tables import write_tidy
    from devolens.lineage.letters import LETTER_KEY, LETTER_KEY_LINE
    from devolens.lineage.populations import populations
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load
    from devolens.models.zoo import card as model_card
    from devolens.provenance import record_text, torch_version, version, version_keys
    from devolens.render.dataset import render_dataset
    from devolens.predict.identity import identity_labels
    from devolens.train.metrics import identity_scores, population_mae

    timings: list[tuple[str, float]] = []

    def step(name: str):
        console.print(f"[bold cyan]demo[/]: {name}")
        return time.perf_counter()

    with _staged_demo(given) as stage:
        out, dest = stage.tmp, stage.dest  # every output is written in the staging folder; the records name dest
        # 1. a new embryo from the simulator ------------------------------------------------
        t0 = step(f"simulating an embryo (seed {seed}) until a time point has at least {cells} cells")
        table = simulate_embryo(seed, n_cells=cells)
        write_tidy(table, out / "embryo.csv", record={
            "cells": cells, **version_keys(), "command": command,
            "demo_step": "devolens simulate embryo"})
        truth_pops = populations(table)
        n_times, max_cells = int(table["time"].nunique()), int(truth_pops["total"].max())
        # the simulation stops at the first time point that reaches --cells, so a round of divisions can overshoot it
        grown = f"{n_times} time points, {max_cells} cells at the last"
        console.print(f"      {grown} (the simulation stops at the first time point with at least {cells}, --cells)",
                      soft_wrap=True)
        timings.append(("simulate embryo", time.perf_counter() - t0))

        # 2. render a timelapse with artifacts ----------------------------------------------
        all_times = sorted(table["time"].unique())
        every = max(1, len(all_times) // frames)
        t0 = step(f"rendering {_every(every)} at {size[1]}x{size[0]} with artifacts, plus an mp4")
        render_dir = out / "render"
        render_options = {"every": every, "size": list(size), "artifacts": 0.15, "video": True, "seed": seed}
        with progress_bar("render") as cb:
            frames_csv = render_dataset(table, render_dir, **{**render_options, "size": tuple(size)}, progress=cb,
                                        record={"command": command, "demo_step": "devolens render",
                                                "options": render_options})
        video = render_dir / "video.mp4"
        timings.append(("render timelapse", time.perf_counter() - t0))
        # frames that made it into the video, in order (dropped frames have no file)
        written = frames_csv[frames_csv["file"].fillna("").astype(str) != ""].reset_index(drop=True)
        fmap = _frame_map(frames_csv)  # rendered time point -> video frame (none for a dropped one)

        # 3. curate: flag corrupt frames in the video ----------------------------------------
        t0 = step("flagging corrupt frames in the video")
        with progress_bar("curate") as cb:
            report = curate_path(video, progress=cb)
        write_csv(report_for_csv(report), out / "curation.csv")  # (as curate frames writes it)
        timings.append(("curate frames", time.perf_counter() - t0))
        curation = _curation_counts(fmap, report)

        # 4. segment nuclei (skipping flagged frames) ----------------------------------------
        t0 = step("segmenting nuclei in the video (flagged frames skipped)")
        seg_dir = out / "segment"
        with progress_bar("segment nuclei") as cb:
            run_segmentation("nuclei", video, seg_dir, model="nuclei", skip_flagged=out / "curation.csv", progress=cb)
        _as_moved(seg_dir / "segment.json", out, dest, {"command": command, "demo_step": "devolens segment nuclei"})
        counts = pd.read_csv(seg_dir / "counts.csv")
        timings.append(("segment nuclei", time.perf_counter() - t0))

        # 5. populations per frame -------------------------------------------------------------
        # the clock fits at least MIN_FRAMES frames: with fewer left after the flagged ones, each frame on its own
        usable = curation["frames in the video"] - curation["flagged by curate"]
        clock = usable >= MIN_FRAMES
        if not clock:
            note(f"only {usable} frame{'s' if usable != 1 else ''} of the video {'is' if usable == 1 else 'are'} left "
                 f"after the flagged ones, and the developmental clock needs at least {MIN_FRAMES}: the populations are "
                 "predicted frame by frame, without the clock (a larger --frames gives it enough)")
        t0 = step("predicting lineage populations per frame" + (" (developmental clock)" if clock else ""))
        with progress_bar("population") as cb:
            run_population(video, out / "populations.csv", clock=clock, plot=False,
                           skip_flagged=out / "curation.csv", progress=cb)
        _as_moved(out / "populations.json", out, dest, {"command": command, "demo_step": "devolens population"})
        pred_pops = pd.read_csv(out / "populations.csv")
        timings.append(("predict populations", time.perf_counter() - t0))

        # 6. identities from the 3D positions ------------------------------------------------
        t0 = step("predicting cell identities from positions")
        identity = load("identity")
        cells_df = identity.predict(table)
        write_csv(cells_for_csv(cells_df), out / "cells.csv")  # (as identify writes it: confidence to 6 decimals)
        id_notes = _input_notes(cells_df.attrs)  # what `devolens identify` would say about this table
        for text in id_notes:
            note(text)
        timings.append(("identify cells", time.perf_counter() - t0))

        # ---------------------------------------------------------------- scoring and report
        founder_true = identity_labels(table["cell"], 0)
        depth1_true = identity_labels(table["cell"], 1)
        named = founder_true.notna().to_numpy()
        f_true = founder_true.to_numpy()[named]
        founder_scores = identity_scores(cells_df["pred_founder"].to_numpy()[named], f_true)
        named1 = depth1_true.notna().to_numpy()
        d_true = depth1_true.to_numpy()[named1]
        depth1_scores = identity_scores(cells_df["pred_depth1"].to_numpy()[named1], d_true)
        f_major, f_share, f_base = _majority_baseline(f_true)
        d_major, _, d_base = _majority_baseline(d_true)
        called_major = float(np.mean(cells_df["pred_founder"].to_numpy()[named] == f_major))

        # align per-frame predictions with the frames they came from
        frame_truth = written[["time"] + LETTERS + ["total"]].copy()
        frame_truth["frame"] = np.arange(len(written))
        comp = frame_truth.merge(counts, on="frame", how="inner").merge(
            pred_pops, on="frame", how="inner", suffixes=("_true", "_pred"))
        cols = LETTERS + ["total"]
        mae = population_mae(comp[[f"{L}_pred" for L in cols]].to_numpy(), comp[[f"{L}_true" for L in cols]].to_numpy(), cols)
        mean_true = {L: float(np.mean(comp[f"{L}_true"])) for L in LETTERS + ["total"]}

        fig = _population_figure(truth_pops, comp, clock=clock)
        fig.savefig(out / "populations.png", dpi=100)

        # one overlay for the report: the last segmented frame with the nuclei outlined
        overlay_rel, overlay_frame = None, None
        if len(counts):
            from skimage.segmentation import find_boundaries

            import tifffile

            from devolens.io.images import write_png

            last = int(counts["frame"].max())
            labels = tifffile.imread(seg_dir / "labels" / f"{video.stem}_f{last:05d}_labels.tif")
            image = read_image(render_dir / written["file"].iloc[last])
            rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
            rgb = rgb[..., :3].copy()
            rgb[find_boundaries(labels, mode="inner")] = (255, 0, 255)
            write_png(rgb, out / "overlay.png")
            overlay_rel, overlay_frame = "overlay.png", (last, int(written["time"].iloc[last]))

        key = {**LETTER_KEY, "total": "all cells"}
        mae_df = pd.DataFrame(
            {"letter": list(mae), "counts": [key.get(L, "") for L in mae], "MAE (cells)": [mae[L] for L in mae],
             "mean true count": [mean_true[L] for L in mae]}
        )
        mae_df["MAE / mean"] = mae_df["MAE (cells)"] / mae_df["mean true count"].replace(0, np.nan)
        timing_df = pd.DataFrame({"step": [s for s, _ in timings], "seconds": [round(t, 1) for _, t in timings]})
        curation_df = pd.DataFrame({"": list(curation), "frames": list(curation.values())})
        frame_df = _per_frame_table(fmap, report, counts, pred_pops)
        kinds = summarize(report)
        n_scored = len(comp)
        id_df = pd.DataFrame({
            "": ["founder accuracy", "founder macro-F1", "depth-1 accuracy", "depth-1 macro-F1"],
            "model": [founder_scores["accuracy"], founder_scores["macro_f1"], depth1_scores["accuracy"],
                      depth1_scores["macro_f1"]],
            "majority-class baseline": [f"{f_base['accuracy']:.3f} (every nucleus {f_major})",
                                        f"{f_base['macro_f1']:.3f} (every nucleus {f_major})",
                                        f"{d_base['accuracy']:.3f} (every nucleus {d_major})",
                                        f"{d_base['macro_f1']:.3f} (every nucleus {d_major})"],
        })
        n_art = curation["artifacts recorded by the renderer"]
        lines = [
            REPORT_TITLE,
            "",
            f"Made by `{command}` (devolens {version()}); each step's record is beside its outputs (`{DEMO_RECORD}`, "
            "`embryo.meta.json`, `render/render.json`, `segment/segment.json`, `populations.json`).",
            "",
            f"A simulated C. elegans embryo (seed {seed}) was grown until a time point had at least {cells} cells "
            f"(`--cells {cells}`): {grown} (a round of divisions can overshoot {cells}). "
            f"{_every(every).capitalize()} ({len(fmap)} time points, "
            f"{frame_name(fmap['time'].iloc[0])} to {frame_name(fmap['time'].iloc[-1])}) was rendered ({size[1]}x{size[0]} px, "
            f"random optics) with artifacts (each time point has a 15% chance; {n_art} of {len(fmap)} got one), and the "
            f"{curation['frames in the video']} frames written were made into a video that was run through devolens. "
            "Every number below is scored against the ground truth the digital embryo knows exactly.",
            "",
            f"## Steps and timings ({os.cpu_count() or '?'} CPU cores)",
            "",
            _md_table(timing_df, "{:.1f}"),
            "",
            "## Corrupt frames (`devolens curate frames`)",
            "",
            _md_table(curation_df),
            "",
            _curation_sentence(fmap, curation),
            "",
            "Flags by kind: " + (", ".join(f"{k}: {v}" for k, v in kinds.items() if k not in ("frames", "flagged") and v)
                                 or "none"),
            "",
            "## Video frames and time points",
            "",
            _frame_time_sentence(fmap) + " The plot below is drawn against time points; the table lists every rendered "
            "time point with the video frame that shows it.",
            "",
            _md_table(frame_df),
            "",
            "## Nuclei and populations (`devolens segment nuclei`, `devolens population`)",
            "",
            f"Population letters (what each counts): {LETTER_KEY_LINE}.",
            "",
            "![populations](populations.png)",
            "",
            f"MAE = mean absolute error: |predicted - true| cells for that letter, averaged over the {n_scored} video "
            "frames scored (those not flagged). MAE / mean = that error as a fraction of the letter's mean true count "
            "over the same frames (0.05 = 5%; -: no cells of that letter in those frames).",
            "",
            _md_table(mae_df),
            "",
            "The population model estimates the total from what the nucleus segmentation sees (how many nuclei, "
            "how large, in how large an embryo) and from a whole-frame regressor, both fitted on renders of the "
            "training embryos at random zoom and optics, then reads the letters off the wild-type composition at "
            "that total. Nuclei hidden behind others in one projection are not seen, so the total is an estimate "
            "(about 10% mean error on held-out renders, more for some stages). " + (
                "This timelapse was run with `--clock`: "
                "its frames' totals are fitted to the real embryos' total-cells curve (where the movie starts on it and its "
                f"pace) and every frame is read off the fitted curve, which pools the frames ({CLOCK_GAIN}; it cannot undo "
                "a bias of the per-frame estimates)." if clock else
                f"This timelapse was run without `--clock`: only {usable} of its video frames were left after the "
                f"flagged ones, and the clock, which fits the frames' totals to the real embryos' total-cells curve, needs "
                f"at least {MIN_FRAMES}; every frame was read on its own (a larger `--frames` gives the clock enough: "
                f"{CLOCK_GAIN}).") + " Small "
            "lineages (E, D, P, Z: a few cells) keep the largest relative errors. Compare the segmented-nuclei curve with the truth (known limits: "
            "`devolens models show population`).",
            "",
        ]
        if overlay_rel:
            lines += [f"Nuclei found in the last segmented frame (video frame {overlay_frame[0]}, time point "
                      f"{overlay_frame[1]}; outlines):", "", f"![overlay]({overlay_rel})", ""]
        limits = identity_limits_summary(model_card("identity"))
        lines += [
            "## Cell identities (`devolens identify`)",
            "",
            "- founder: the founder cell a nucleus descends from: AB, MS, E, C or D, with EMS (before it divides into "
            "MS and E), P (the germline P0-P4) and Z (Z2/Z3, P4's daughters) as classes of their own.",
            "- depth-1: the founder's daughter it descends from, e.g. ABa or ABp, MSa or MSp (a founder cell that has "
            "not divided yet keeps the founder's name).",
            "- accuracy: the share of nuclei named right. macro-F1: for each class, the F1 score (the harmonic mean of "
            "precision, the share of the nuclei called that class that are it, and recall, the share of that class's "
            "nuclei found), averaged over the classes with equal weight, so that rare classes (D, P, Z: a few cells) "
            "count as much as AB; calling every nucleus the commonest class gives a high accuracy but a low macro-F1.",
            "- majority-class baseline: the score of calling every nucleus the commonest class of this embryo.",
            "",
            f"Scored over {int(named.sum())} named nuclei at {n_times} time points of this simulated embryo "
            f"({100 * f_share:.0f}% of them are {f_major}; the model calls {100 * called_major:.0f}% {f_major}):",
            "",
            _md_table(id_df, "{:.3f}"),
            "",
            "- " + _versus_baseline("Founder", founder_scores, f_base, f_major),
            "- " + _versus_baseline("Depth-1", depth1_scores, d_base, d_major),
            "",
        ]
        lines += _listed("`devolens identify` on this table (`embryo.csv`) prints:", id_notes, "> note: ")
        lines += [
            "The identity model was trained on real embryos only; the simulator places cells with a simple "
            "physical model, so these figures measure how real the simulated geometry looks as much as the model. "
            "On real embryos kept out of training, see `devolens models show identity`.",
            "",
        ]
        lines += _listed("Limits of the identity model, in short (the full list, with the measurements behind it: "
                         "`devolens models show identity`):", limits, "- ")
        lines += own_data_lines()
        lines += [
            "## Files",
            "",
            "- `embryo.csv`: the simulated lineage table (tidy)",
            "- `render/`: frames (`tNNN.png`, NNN = time point), label TIFFs, `frames.csv` (ground truth, one row per "
            "rendered time point, dropped ones included) and `video.mp4`",
            "- `curation.csv`: per-frame corruption scores and flags (`frame` = video frame, from 0)",
            "- `segment/`: label TIFFs, `objects.csv`, `counts.csv` (`frame` = video frame), overlays",
            "- `populations.csv`, `populations.png`: predicted per-lineage populations (`frame` = video frame)",
            "- `cells.csv`: identities predicted for every nucleus",
            f"- `{DEMO_RECORD}`: how this demo was made (command line, devolens version, options)",
            "",
        ]
        write_text(out / DEMO_RECORD, record_text({
            "command": command, "devolens": version(), "torch": torch_version(),
            "options": {"seed": seed, "cells": cells, "frames": frames, "size": list(size)},
            "clock": clock, "frames_left": int(usable),
            "files": _written_files(out)}))  # what render/ and segment/ hold: a later demo replaces only them
        write_text(out / "report.md", "\n".join(lines))
    return given / "report.md"


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_command(
        out: Path = typer.Option(Path("demo-output"), "--out", "-o",
                                 help="Folder for the demo's outputs and report.md (new or empty, or an earlier "
                                      "demo's, which is replaced; other files in it are kept)."),
        seed: int = typer.Option(7, "--seed", min=0, help="Seed of the simulated embryo and of the rendering."),
        cells: int = typer.Option(180, "--cells", min=8,
                                  help="Grow the simulated embryo until a time point has at least this many cells "
                                       "(a round of divisions can overshoot it)."),
        frames: int = typer.Option(24, "--frames", min=MIN_FRAMES,
                                   help=f"About this many frames in the timelapse (at least {MIN_FRAMES}: the "
                                        "developmental clock's fewest)."),
    ) -> None:
        """Run the whole pipeline on a simulated embryo and write a report (under a minute on 2 cores)."""
        start = time.perf_counter()
        report = run_demo(out, seed=seed, cells=cells, frames=frames)
        console.print(f"[green]done[/] in {time.perf_counter() - start:.0f} s: {report}")
