"""``devolens demo``: the whole pipeline on built-in data, with a report.

Simulate an embryo, render a short timelapse (with artifacts) and its video, flag the corrupt
frames, segment the nuclei, predict the per-lineage populations and every cell's identity,
and write ``report.md`` with plots and tables, scoring each step against the ground truth the
digital embryo knows exactly.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import typer

from devolens.cli._common import CLOCK_GAIN, console, progress_bar
from devolens.errors import DevolensError, ordinal

LETTERS = ["A", "E", "M", "P", "C", "D", "Z"]


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
    time point, which has no file and is not in the video)."""
    import numpy as np
    import pandas as pd

    has_file = (frames_csv["file"].fillna("").astype(str) != "").to_numpy()
    out = pd.DataFrame({"time": frames_csv["time"].astype(int).to_numpy(),
                        "artifact": frames_csv["artifact"].fillna("").astype(str).to_numpy()})
    out["video frame"] = pd.array(np.where(has_file, np.cumsum(has_file) - 1, 0), dtype="Int64")
    out.loc[~has_file, "video frame"] = pd.NA
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


def _population_figure(truth_pops, comp):
    """The demo's figure: total cells (truth, predicted, segmented) and the per-letter populations, in the letters'
    colours of the ``population``/``lineage`` plots (:data:`devolens.viz.plots.LETTER_COLOURS`)."""
    from matplotlib.figure import Figure

    from devolens.viz.plots import LETTER_COLOURS, add_letter_key

    fig = Figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2)
    ax = axes[0]
    ax.plot(truth_pops["time"], truth_pops["total"], "-", color=LETTER_COLOURS["total"], label="true cells (table)")
    ax.plot(comp["time"], comp["total_pred"], "o-", color="#17becf",
            label="predicted total (population model, --clock)")
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


def run_demo(out: Path, *, seed: int = 7, cells: int = 180, frames: int = 24, size=(512, 752)) -> Path:
    """Run the demo pipeline into ``out`` and return the path of ``report.md``."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    from devolens.cli._common import note
    from devolens.cli.identify import _input_notes
    from devolens.cli.predict import run_population, run_segmentation
    from devolens.curate.frames import curate_path, summarize
    from devolens.io.atomic import write_csv, write_text
    from devolens.io.images import read_image
    from devolens.io.tables import write_tidy
    from devolens.lineage.letters import LETTER_KEY, LETTER_KEY_LINE
    from devolens.lineage.populations import populations
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load
    from devolens.models.zoo import card as model_card
    from devolens.render.dataset import render_dataset
    from devolens.predict.identity import identity_labels
    from devolens.train.metrics import identity_scores, population_mae

    out.mkdir(parents=True, exist_ok=True)
    timings: list[tuple[str, float]] = []

    def step(name: str):
        console.print(f"[bold cyan]demo[/]: {name}")
        return time.perf_counter()

    # 1. a new embryo from the simulator ------------------------------------------------
    t0 = step(f"simulating an embryo (seed {seed}) until a time point has at least {cells} cells")
    table = simulate_embryo(seed, n_cells=cells)
    write_tidy(table, out / "embryo.csv")
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
    if render_dir.exists():
        shutil.rmtree(render_dir)
    with progress_bar("render") as cb:
        frames_csv = render_dataset(table, render_dir, every=every, size=tuple(size), artifacts=0.15,
                                    video=True, seed=seed, progress=cb)
    video = render_dir / "video.mp4"
    timings.append(("render timelapse", time.perf_counter() - t0))
    # frames that made it into the video, in order (dropped frames have no file)
    written = frames_csv[frames_csv["file"].fillna("").astype(str) != ""].reset_index(drop=True)
    fmap = _frame_map(frames_csv)  # rendered time point -> video frame (none for a dropped one)

    # 3. curate: flag corrupt frames in the video ----------------------------------------
    t0 = step("flagging corrupt frames in the video")
    with progress_bar("curate") as cb:
        report = curate_path(video, progress=cb)
    write_csv(report, out / "curation.csv")
    timings.append(("curate frames", time.perf_counter() - t0))
    curation = _curation_counts(fmap, report)

    # 4. segment nuclei (skipping flagged frames) ----------------------------------------
    t0 = step("segmenting nuclei in the video (flagged frames skipped)")
    seg_dir = out / "segment"
    if seg_dir.exists():
        shutil.rmtree(seg_dir)
    with progress_bar("segment nuclei") as cb:
        run_segmentation("nuclei", video, seg_dir, model="nuclei", skip_flagged=out / "curation.csv", progress=cb)
    counts = pd.read_csv(seg_dir / "counts.csv")
    timings.append(("segment nuclei", time.perf_counter() - t0))

    # 5. populations per frame -------------------------------------------------------------
    t0 = step("predicting lineage populations per frame (developmental clock)")
    with progress_bar("population") as cb:
        run_population(video, out / "populations.csv", clock=True, plot=False,
                       skip_flagged=out / "curation.csv", progress=cb)
    pred_pops = pd.read_csv(out / "populations.csv")
    timings.append(("predict populations", time.perf_counter() - t0))

    # 6. identities from the 3D positions ------------------------------------------------
    t0 = step("predicting cell identities from positions")
    identity = load("identity")
    cells_df = identity.predict(table)
    write_csv(cells_df, out / "cells.csv")
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

    fig = _population_figure(truth_pops, comp)
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
        "# devolens demo report",
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
        "(about 10% mean error on held-out renders, more for some stages). This timelapse was run with `--clock`: "
        "its frames' totals are fitted to the real embryos' total-cells curve (where the movie starts on it and its "
        f"pace) and every frame is read off the fitted curve, which pools the frames ({CLOCK_GAIN}; it cannot undo "
        "a bias of the per-frame estimates). Small "
        "lineages (E, D, P, Z: a few cells) keep the largest relative errors. Compare the segmented-nuclei curve with the truth (known limits: "
        "`devolens models show population`).",
        "",
    ]
    if overlay_rel:
        lines += [f"Nuclei found in the last segmented frame (video frame {overlay_frame[0]}, time point "
                  f"{overlay_frame[1]}; outlines):", "", f"![overlay]({overlay_rel})", ""]
    limits = model_card("identity").get("limits") or []
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
    lines += _listed("Limits of the identity model (its card, `devolens models show identity`):", limits, "- ")
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
        "",
    ]
    return write_text(out / "report.md", "\n".join(lines))


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_command(
        out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the demo's outputs and report.md."),
        seed: int = typer.Option(7, "--seed", help="Seed of the simulated embryo and of the rendering."),
        cells: int = typer.Option(180, "--cells", min=8,
                                  help="Grow the simulated embryo until a time point has at least this many cells "
                                       "(a round of divisions can overshoot it)."),
        frames: int = typer.Option(24, "--frames", min=4, help="About this many frames in the timelapse."),
    ) -> None:
        """Run the whole pipeline on a simulated embryo and write a report (under a minute on 2 cores)."""
        if out.exists() and not out.is_dir():
            raise DevolensError("--out exists and is not a folder", path=out)
        start = time.perf_counter()
        report = run_demo(out, seed=seed, cells=cells, frames=frames)
        console.print(f"[green]done[/] in {time.perf_counter() - start:.0f} s: {report}")
