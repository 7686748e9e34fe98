"""Plots written to image files (matplotlib, Agg canvas; no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from devolens.io.atomic import atomic_path

#: How each population letter and the total are drawn, in every plot of them (``population``, ``lineage
#: populations``, the demo): the Okabe-Ito colours (told apart under deuteranopia and protanopia, where matplotlib's
#: default blue and purple, green and orange run together) with P in neutral grey, each letter also with its own
#: marker and a line style, so that curves crowded together at a few cells, printed in grey or seen by anyone, stay
#: apart.
#: No letter is dashed (``--``): a dashed line marks an annotation cliff (``lineage populations``' ``marks``).
LETTER_STYLES: dict[str, dict] = {
    "A": {"color": "#0072B2", "ls": "-", "marker": "o", "lw": 1.3},
    "E": {"color": "#009E73", "ls": "-.", "marker": "s", "lw": 1.3},
    "M": {"color": "#E69F00", "ls": ":", "marker": "^", "lw": 1.3},
    "P": {"color": "#999999", "ls": ":", "marker": "x", "lw": 1.3},
    "C": {"color": "#CC79A7", "ls": "-.", "marker": "D", "lw": 1.3},
    "D": {"color": "#D55E00", "ls": "-", "marker": "v", "lw": 1.3},
    "Z": {"color": "#56B4E9", "ls": "-", "marker": "P", "lw": 1.3},
    "total": {"color": "#000000", "ls": "-", "marker": None, "lw": 2.0},
}

#: Colour of each population letter in plots (:data:`LETTER_STYLES`' colours).
LETTER_COLOURS: dict[str, str] = {col: style["color"] for col, style in LETTER_STYLES.items()}

#: About how many markers each letter's curve carries (every n-th point), so a long timelapse stays readable.
MARKERS_PER_CURVE = 12


def letter_style(col: str, points: int) -> dict:
    """The keyword arguments of ``ax.plot`` drawing column ``col`` (a letter or ``total``) of ``points`` points in
    its :data:`LETTER_STYLES` style: a marker every n-th point, each letter's starting a little later than the one
    before so that curves lying on each other still show both markers."""
    style = dict(LETTER_STYLES[col])
    if style["marker"] is not None:
        every = max(1, points // MARKERS_PER_CURVE)
        style.update(markevery=(list(LETTER_STYLES).index(col) * every // len(LETTER_STYLES), every), ms=4,
                     mfc="white")
    return style


def _alone(values: np.ndarray) -> np.ndarray:
    """Which of ``values`` are finite with no finite value before or after them (a line through them draws nothing)."""
    ok = np.isfinite(values)
    before = np.concatenate([[False], ok[:-1]])
    after = np.concatenate([ok[1:], [False]])
    return ok & ~before & ~after


def add_letter_key(fig) -> None:
    """Lay out ``fig`` with a footer saying what the population letters count."""
    from devolens.lineage.letters import LETTER_KEY_LINE

    fig.text(0.01, 0.01, LETTER_KEY_LINE, fontsize="x-small", color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))


def save_figure(fig, path: str | Path, dpi: int) -> Path:
    """Write ``fig`` to ``path`` atomically, the format following the extension (``.png`` without one), so that
    the same figure gives the same bytes: an SVG or PDF without its creation date (``<dc:date>``,
    ``/CreationDate``) and an SVG's clip-path ids from a fixed salt rather than random ones, so reruns of a
    paper's figures (or files kept under version control) differ only where the plot does. PNG is written as
    matplotlib writes it (it holds no date)."""
    import matplotlib

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    # (each backend's own key for the date: PDF's Info dictionary's, SVG's Dublin Core's)
    undated = {"pdf": {"metadata": {"CreationDate": None}}, "svg": {"metadata": {"Date": None}}}.get(fmt, {})
    with atomic_path(path) as tmp, matplotlib.rc_context({"svg.hashsalt": "devolens"}):
        fig.savefig(tmp, dpi=dpi, format=fmt, **undated)
    return path


def plot_populations(pops: pd.DataFrame, path: str | Path, title: str | None = None, dpi: int = 120,
                     xlabel: str | None = None, marks: list[tuple[float, str]] | None = None) -> Path:
    """Plot population curves (cells per letter and total against time) to an image file.

    Parameters
    ----------
    pops : pandas.DataFrame
        Output of :func:`devolens.lineage.populations.populations` (``time`` and any of
        ``A,E,M,P,C,D,Z,total``).
    path : str or Path
        Destination image; the format follows the extension (``.png``, ``.svg``, ``.pdf``).
        Written atomically.
    title : str, optional
        Figure title.
    dpi : int
        Resolution of raster output, dots per inch.
    xlabel : str, optional
        The x axis's label (what ``time`` holds). Default: the unit of a lineage table's time points as the readers
        tell it (:func:`devolens.io.tables.time_axis_label`: ``time point``, or ``time (seconds?; time points 90
        apart)`` for a table in seconds).
    marks : list of (float, str), optional
        Times to mark, each as a dashed vertical line with its label beside it (``lineage populations``: an
        annotation cliff at its last good time point).

    Returns
    -------
    Path
        The written image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for col in LETTER_STYLES:
        # a column without a value (a count model that regresses the total alone leaves the letters empty) draws
        # nothing: not in the legend either
        if col in pops.columns and pd.to_numeric(pops[col], errors="coerce").notna().any():
            style = letter_style(col, len(pops))
            ax.plot(pops["time"], pops[col], label=col, **style)
            # a point with no point beside it (one frame, a frame between two without counts): a line draws nothing
            # there, so it gets a marker (the total's: a dot)
            alone = _alone(pd.to_numeric(pops[col], errors="coerce").to_numpy(np.float64))
            if alone.any():
                ax.plot(pops["time"].to_numpy()[alone], pops[col].to_numpy()[alone], ls="none",
                        color=style["color"], marker=style["marker"] or "o", ms=4 if style["marker"] else 5,
                        **({"mfc": "white"} if style["marker"] else {}))
    for x, text in marks or ():
        ax.axvline(x, color="#d62728", ls="--", lw=1.2)
        # a few points right of the line, clear of a fall drawn there (after a cliff the curves are low), near the
        # top (x in data, y in axes units), read upwards
        ax.annotate(text, xy=(x, 0.97), xycoords=ax.get_xaxis_transform(), xytext=(4, 0), textcoords="offset points",
                    rotation=90, va="top", ha="left", fontsize="small", color="#d62728")
    if xlabel is None:
        from devolens.io.tables import time_axis_label

        xlabel = time_axis_label(pops["time"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cells")
    ax.grid(True, alpha=0.3)
    labels = ax.get_legend_handles_labels()[1]
    if labels:  # (no curve at all: no legend, and no matplotlib warning of it)
        ax.legend(ncol=4, fontsize="small", loc="upper left")
    if title:
        ax.set_title(title)
    if any(label != "total" for label in labels):
        add_letter_key(fig)  # (what the letters mean: not on a plot of the total alone)
    return save_figure(fig, path, dpi)


def plot_training(history: pd.DataFrame | str | Path, path: str | Path, metrics: list[str] | None = None,
                  dpi: int = 110) -> Path:
    """Plot a training history: losses, validation metrics and the learning rate.

    Parameters
    ----------
    history : DataFrame or path
        ``history.csv`` of a training run (columns ``epoch, lr, train_loss, val_loss`` and
        validation metrics ``val_*``).
    path : str or Path
        Destination image (format from the extension), written atomically.
    metrics : list of str, optional
        Metric columns for the middle panel (default: the summary metrics present, e.g.
        ``val_dice, val_iou, val_f1, val_ap`` or ``val_mae``).
    dpi : int
        Resolution, dots per inch.

    Returns
    -------
    Path
        The written image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    h = pd.read_csv(history) if isinstance(history, (str, Path)) else history
    # epochs counted from 1, as devolens' messages and run.json's epoch_numbering say; history.csv's epoch column
    # counts from 0, which the x axis's label says
    if metrics is None:
        metrics = [m for m in ("val_dice", "val_iou", "val_f1", "val_ap", "val_mae", "val_count_mae") if m in h.columns]
    epoch = h["epoch"] + 1
    fig = Figure(figsize=(12, 3.6))
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.add_subplot(1, 3, 1), fig.add_subplot(1, 3, 2), fig.add_subplot(1, 3, 3)
    for col, style in (("train_loss", "-"), ("val_loss", "--")):
        if col in h.columns:
            ax1.plot(epoch, h[col], style, marker="o", ms=3, label=col.replace("_", " "))
    ax1.set_title("loss")
    ax1.set_ylabel("loss")
    ax1.legend(fontsize="small")
    scores = [m for m in metrics if "mae" not in m and "error" not in m]
    errors = [m for m in metrics if m not in scores]
    if scores:
        ax2.set_ylabel("score (0-1, higher is better)")
    lines = []
    for col in scores:
        if col in h.columns and h[col].notna().any():
            lines += ax2.plot(epoch, h[col], marker="o", ms=3, label=col.removeprefix("val_"))
    if errors:  # counts errors (cells) on their own axis
        axe = ax2.twinx() if scores else ax2
        for col in errors:
            if col in h.columns and h[col].notna().any():
                lines += axe.plot(epoch, h[col], ":", marker="s", ms=3, label=col.removeprefix("val_") + " (cells)")
        axe.set_ylabel("cells")
    ax2.set_title("validation metrics")
    if lines:
        ax2.legend(lines, [ln.get_label() for ln in lines], fontsize="small")
    if "lr" in h.columns:
        ax3.plot(epoch, h["lr"], marker="o", ms=3, color="#444444")
        if (h["lr"] > 0).all():
            ax3.set_yscale("log")
    ax3.set_title("learning rate")
    ax3.set_ylabel("learning rate")
    for ax in (ax1, ax2, ax3):
        ax.set_xlabel("epoch (from 1: history.csv's epoch + 1)")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi)
