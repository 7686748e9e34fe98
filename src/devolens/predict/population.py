"""Population counts per frame: cells of each lineage letter A, E, M, P, C, D, Z.

Example (with images of your own; not run by doctest)::

    from devolens.models import load
    from devolens.predict.postprocess import smooth_populations
    pops = load("population")                   # a PopulationPredictor
    pops.predict(frame)                          # {"A": 64.0, "E": 8.0, ..., "total": 118.0}
    pops.predict(other, diameter=20)             # one frame of another magnification (nuclei ~20 px)
    df = pops.predict_batch(frames)              # DataFrame A..Z,total, one row per frame
    smooth_populations(df)                       # monotone per letter (populations do not fall)

Two methods, chosen by the model card (``method``):

``"composition"``
    The ``nuclei`` zoo model counts the nuclei of the frame; a calibration curve (fitted on
    training renders) turns the visible count into the embryo's total (nuclei hidden behind
    others in the projection are missing from the image); a composition table fitted on
    real lineage tables gives the expected cells of each letter at that total (C. elegans
    development is invariant, so the letters follow from the stage).
``"regressor"``
    A CNN regressor maps the frame directly to the counts.

Counts are non-negative floats (cells).
"""

from __future__ import annotations

import bisect
import copy
import functools
import itertools
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from devolens.errors import DevolensError, DevolensWarning, DiameterWarning, command_running
from devolens.predict._engine import batched, load_zoo_network
from devolens.predict.postprocess import (STREAM_LOOK, colour_frame, movie_channel, smooth_populations,
                                         stream_channel)  # noqa: F401  (stream_channel: imported from here too)
from devolens.predict.segment import OWN_DIAMETER, Told, _checked, _issued, none_word

LETTERS: tuple[str, ...] = ("A", "E", "M", "P", "C", "D", "Z")
COLUMNS: tuple[str, ...] = LETTERS + ("total",)
#: Most cells a C. elegans embryo has (about 560 at the end of embryonic proliferation; the
#: AceTree embryo of the shared data reaches 580): predicted totals above it mean the frame is
#: not what the model knows (another magnification, several embryos, not an embryo).
MAX_EMBRYO_CELLS = 600
#: The most cells in the held-out renders the shipped model's figures were measured on (benchmarks/RESULTS.md, section
#: population: the held-out embryo 20241010_JIM767_25_L3's renders and EPIC-framed movies end at 384 cells, "Tenth
#: session"; the held-out simulated embryo's at 358). Predicted totals above it lie beyond what was measured, where late
#: embryos read low (:data:`AMBIGUOUS_CELLS`); ``population``'s note on late readings says so for them.
HELD_OUT_CELLS = 384
#: The predicted total from which a reading does not tell the stage: late embryos read low, so a total of this or more
#: can come from an embryo of about that many cells or of a much later one (``population`` notes such frames, up to the
#: calibration's top). Measured (benchmarks/RESULTS.md, population, thirty-sixth session; per-frame totals, nuclei in
#: bf16, defaults): the held-out renders (val_L3, its three EPIC-framed movies, val_sim: 217 frames, 1-384 cells) and
#: new renders of the AceTree embryo (48 at random pose and optics, 24 EPIC-framed, two EPIC-framed movies of every 6th
#: time point: 192 frames, 3-582 cells). The lowest reading of an embryo of 450 cells or more was 297 (88 frames; those
#: at 500-582 cells read 297-510, 3-46 % low), rounded down to tens; readings from 290 on came from embryos of 263-582
#: cells, readings below it from embryos of at most 401. README's reproducer (its time points 280, 320, 360 at 566-580
#: cells, seeds 1 and 2; forty-eighth session) read 293-395, down to 49 % low, within that cut: the AceTree renders at
#: 500-582 cells read 293-510 (3-49 % low), as ``population``'s note says.
AMBIGUOUS_CELLS = 290


def late_ambiguity() -> str:
    """What a reading of :data:`AMBIGUOUS_CELLS` or more may mean: ``population``'s note on late readings and the
    library's warning (:func:`late_message`) say it alike."""
    return (f"late embryos read low (renders read at {AMBIGUOUS_CELLS} or more were of embryos of 263-582 cells; "
            "the AceTree embryo's at 500-582 cells read 293-510, up to 49 % low)")


def calibration_top(predictor) -> float | None:
    """The largest total (cells) the population model's calibration reaches: the top of its calibration curve
    (``knots_y``, the mean true total of the calibration renders with the most nuclei seen: 572 cells for the shipped
    model, whose calibration renders include the AceTree embryo's, scripts/zoo_renders.sh ``cal_acetree``). Its
    held-out renders stop at 384 cells (:data:`HELD_OUT_CELLS`), and readings from :data:`AMBIGUOUS_CELLS` up come
    from embryos of that many cells to late ones read low (renders of the AceTree embryo at 550-582 cells read
    308-468). None for a model without one (a regressor; knots left at their default)."""
    knots = getattr(predictor, "knots_y", None)
    if getattr(predictor, "method", None) != "composition" or knots is None or len(knots) < 3:
        return None
    return float(np.max(knots))


def late_readings(totals, top: float | None) -> np.ndarray:
    """Which ``totals`` (cells) are late readings, where a total alone does not tell the stage: from
    :data:`AMBIGUOUS_CELLS` up to the calibration's ``top`` (:func:`calibration_top`; None: an embryo's most,
    :data:`MAX_EMBRYO_CELLS`), above which other words apply. ``population``'s note and the predictor's warning
    (:func:`late_message`) both read them so. NaN (a frame without signal) is not one."""
    t = np.asarray(totals, dtype=np.float64)
    return (t >= AMBIGUOUS_CELLS) & (t <= (MAX_EMBRYO_CELLS if top is None else top))


#: the start of every :func:`late_message` (for ``warnings.filterwarnings(message=...)``: the maintainer's benchmarks
#: read hundreds of late frames one call each, where the note says nothing new)
LATE_MESSAGE = r"(the frame|frame \d+ \(from 0\)) reads \d+ cells, \d+ or more, where a total alone"


def late_message(position: int, total: float, one: bool) -> str:
    """The :class:`~devolens.errors.DevolensWarning` of a population call whose frame at ``position`` (from 0; ``one``:
    :meth:`PopulationPredictor.predict`'s only frame) is the first to read a late ``total`` (:func:`late_readings`):
    ``population``'s note on such frames in the library's words, once per call."""
    which = "the frame reads" if one else f"frame {position} (from 0) reads"
    later = "" if one else " (said once per call: later frames may read so too)"
    return (f"{which} {total:.0f} cells, {AMBIGUOUS_CELLS} or more, where a total alone does not tell the stage: "
            f"{late_ambiguity()}, so the embryo may hold more cells than said, up to ~580{later}. On a timelapse from "
            "the first cells, clock_fit tells them apart (the time since the first cleavage does too)")


#: the invariant embryo's first cells: its composition at totals 1-4, exactly (no lineage table starts before 2-4)
EARLY_CELLS: tuple[tuple[str, ...], ...] = (("P0",), ("AB", "P1"), ("ABa", "ABp", "P1"), ("ABa", "ABp", "EMS", "P2"))


def _early_rows() -> np.ndarray:
    """The counts per letter of :data:`EARLY_CELLS` (rows for totals 1, 2, 3, 4)."""
    from devolens.lineage.names import population_letter

    rows = np.zeros((len(EARLY_CELLS), len(LETTERS)))
    for i, cells in enumerate(EARLY_CELLS):
        for name in cells:
            rows[i, LETTERS.index(population_letter(name))] += 1
    return rows


def _embryo_votes(frames: list[tuple[np.ndarray, np.ndarray]], n: int, window: int, min_embryos: int) -> np.ndarray:
    """Each embryo's mean counts per letter over its rows within ``window`` cells of total ``n`` (rescaled to ``n``),
    the window doubled until ``min_embryos`` embryos have rows there: one row per embryo."""
    w = min(window, max(1, n // 2))  # +-3 cells at 4 cells would mix the 1- and 7-cell stages
    while True:
        votes = []
        for tot, vals in frames:
            sel = np.abs(tot - n) <= w
            if sel.any():
                votes.append((vals[sel] * (n / np.maximum(tot[sel], 1.0))[:, None]).mean(axis=0))
        if len(votes) >= min_embryos:
            return np.array(votes)
        w = max(1, 2 * w)  # (a window of 0 that found too few: 1, 2, 4...)


def fit_composition(pops: pd.DataFrame | Sequence[pd.DataFrame], max_total: int = 700, window: int = 3,
                    min_embryos: int = 3) -> np.ndarray:
    """Expected cells per letter at each total cell count, from lineage populations of several embryos.

    At each total ``n``: each embryo's mean counts over its time points within ``window`` cells of ``n`` (rescaled to
    ``n``; the window doubled until ``min_embryos`` embryos, or all of them, have time points there), and the median
    over embryos (one vote per embryo, however many time points it spends at that stage: an embryo whose germline
    was never followed past P4, or a slow one, cannot decide a stage alone). Then what the invariant lineage
    requires: the germline is one cell, P4, until it divides into Z2 and Z3 (``P = 1 - Z / 2``, Z in 0..2); the
    other letters never fall as the total grows (isotonic in the total, rescaled to add up to ``n`` with the
    germline); totals 1-4 are the invariant embryo's exactly (:data:`EARLY_CELLS`: P0; AB, P1; ABa, ABp, P1; ABa,
    ABp, EMS, P2).

    Parameters
    ----------
    pops : DataFrame or list of DataFrames
        Population tables, one per embryo (columns ``A, E, M, P, C, D, Z, total``; one row per time point),
        e.g. from :func:`devolens.lineage.populations.populations`.
    max_total : int
        Largest total covered by the table (cells).
    window : int
        Time points with ``|total - n| <= window`` (at most ``n // 2``) contribute to the entry for ``n``.
    min_embryos : int
        Embryos that must have time points in the window (all of them when fewer are given).

    Returns
    -------
    ndarray
        ``(max_total + 1, 7)`` float32; each row adds up to its total.
    """
    from sklearn.isotonic import IsotonicRegression

    frames = []
    for f in ([pops] if isinstance(pops, pd.DataFrame) else list(pops)):
        df = f[list(COLUMNS)].dropna()
        df = df[df["total"] > 0]
        if len(df):
            frames.append((df["total"].to_numpy(dtype=float), df[list(LETTERS)].to_numpy(dtype=float)))
    if not frames:
        raise DevolensError("no population rows to fit the composition table")
    need = min(int(min_embryos), len(frames))
    n_all = np.arange(max_total + 1, dtype=float)
    med = np.zeros((max_total + 1, len(LETTERS)))
    for n in range(1, max_total + 1):
        med[n] = np.median(_embryo_votes(frames, n, window, need), axis=0)
    out = np.zeros_like(med)
    ip, iz = LETTERS.index("P"), LETTERS.index("Z")
    out[1:, iz] = np.clip(med[1:, iz], 0.0, 2.0)
    out[1:, ip] = 1.0 - out[1:, iz] / 2.0
    soma = [i for i in range(len(LETTERS)) if i not in (ip, iz)]
    rest = np.clip(n_all - out[:, ip] - out[:, iz], 0.0, None)
    s = med[:, soma]
    for _ in range(10):  # isotonic per letter, then back to the row's total: a few rounds settle both
        s = np.column_stack([np.r_[0.0, IsotonicRegression(y_min=0.0).fit_transform(n_all[1:], s[1:, j])]
                             for j in range(len(soma))])
        tot = s.sum(axis=1)
        s = np.where(tot[:, None] > 0, s * (rest / np.where(tot > 0, tot, 1.0))[:, None], 0.0)
    out[:, soma] = s
    early = _early_rows()[: max_total]
    out[1: len(early) + 1] = early
    return out.astype(np.float32)


def composition_counts(total: float | np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per-letter counts for (fractional) totals by linear interpolation in the table.

    Parameters
    ----------
    total : float or ndarray
        Total cell count(s).
    table : ndarray
        ``(M + 1, 7)`` composition table from :func:`fit_composition`. Totals beyond ``M``
        scale the last row.

    Returns
    -------
    ndarray
        ``(..., 7)`` non-negative counts.
    """
    t = np.clip(np.asarray(total, dtype=np.float64), 0.0, None)
    m = table.shape[0] - 1
    inside = np.clip(t, 0, m)
    lo = np.floor(inside).astype(int)
    hi = np.minimum(lo + 1, m)
    frac = (inside - lo)[..., None]
    out = table[lo] * (1 - frac) + table[hi] * frac
    over = t > m
    if np.any(over):
        out = np.where(over[..., None], table[m] * (t / m)[..., None], out)
    return np.clip(out, 0.0, None)


def calibrate_total(visible: float | np.ndarray, knots_x: np.ndarray, knots_y: np.ndarray) -> np.ndarray:
    """Map a visible nucleus count to the embryo's total by a monotone piecewise-linear curve.

    Beyond the last knot the curve continues with the ratio ``y/x`` of the last knot.
    """
    v = np.clip(np.asarray(visible, dtype=np.float64), 0.0, None)
    kx = np.asarray(knots_x, dtype=np.float64)
    ky = np.asarray(knots_y, dtype=np.float64)
    out = np.interp(v, kx, ky)
    ratio = ky[-1] / max(kx[-1], 1e-9)
    return np.where(v > kx[-1], v * ratio, out)


STAGE_FEATURES: tuple[str, ...] = (
    "1", "log1p(n)", "log1p(n)^2", "log(median area / embryo area)",
    "log(median area)", "log(embryo area)", "log1p(n) * log(median area)", "log(nuclei area / embryo area)",
)


def stage_features(labels_count: int, areas: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Features of the developmental stage from one frame's nuclei (see ``STAGE_FEATURES``).

    Parameters
    ----------
    labels_count : int
        Nuclei found in the frame.
    areas : ndarray
        Their areas (pixels).
    xs, ys : ndarray
        Their centroids (pixels).

    Returns
    -------
    ndarray
        8 values: ``1``, ``log1p(n)``, ``log1p(n)**2`` and ``log(median area / embryo
        area)``, where the embryo area is the convex hull of the centroids plus one median
        nucleus (nuclei shrink as cells divide, so the relative size tells the stage even
        when many nuclei hide behind others in the projection; pixel scale cancels out);
        then ``log(median area)`` and ``log(embryo area)`` in pixels (how large the embryo
        is shown decides how many nuclei the segmentation can resolve), their product with
        the count term, and the share of the embryo covered by nuclei. A calibration uses
        the first ``len(coef)`` of them (the first 4 alone: scale-free).
    """
    n = float(labels_count)
    if n < 1 or len(areas) == 0:
        return np.array([1.0] + [0.0] * (len(STAGE_FEATURES) - 1))
    med = max(float(np.median(areas)), 1.0)
    hull = 0.0
    if len(xs) >= 3:
        import cv2  # the convex hull's area (scipy.spatial's ConvexHull gives the same: ~0.2 s to import)

        pts = np.column_stack([xs, ys]).astype(np.float32)
        hull = float(cv2.contourArea(cv2.convexHull(pts)))  # 0 for collinear points
    embryo = max(hull + med + float(np.sum(areas)) * (hull == 0.0), 1.0)
    ln = np.log1p(n)
    return np.array([1.0, ln, ln * ln, np.log(med / embryo), np.log(med), np.log(embryo), ln * np.log(med),
                     np.log(max(float(np.sum(areas)), 1.0) / embryo)])


def calibrate_total_linear(features: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Total cells from :func:`stage_features` rows by ``exp(features[:, :k] @ coef) - 1``
    (``k = len(coef)``; >= 0)."""
    f = np.atleast_2d(np.asarray(features, dtype=np.float64))
    c = np.asarray(coef, dtype=np.float64)
    return np.clip(np.expm1(f[:, : len(c)] @ c), 0.0, None)


def _regressor_fast(precision, fast) -> bool:
    """Whether :meth:`PopulationPredictor.from_zoo` runs the count regressor in bf16 (``fast``) for the options
    given: ``precision`` ``"fp32"`` (``--precision fp32``, for figures reproduced on other machines): fp32, whatever
    ``fast`` says; ``"bf16"``: bf16; ``"auto"`` and ``"int8"`` (which the regressor, no U-Net, cannot run): as
    ``fast`` says (bf16 by default, fp32 with ``fast=False``: ``--no-fast``), fp32 on a CPU without native bf16."""
    name = str(precision).strip().lower() if isinstance(precision, str) else precision
    if name == "fp32":
        return False
    if name == "bf16":
        return True
    if not fast:
        return False
    from devolens.models.quantize import bf16_fast_here

    return bf16_fast_here()  # a CPU without native bf16 (AVX2 only) emulates it, slower than fp32


def _in_pixels(diameter) -> bool:
    """Whether a population ``diameter`` (as :meth:`PopulationPredictor.from_zoo` takes it) is meant as a number of
    pixels: neither None nor a word (``"auto"``, or ``"each"``, which :func:`_checked_diameter` refuses)."""
    return diameter is not None and not (isinstance(diameter, str) and diameter.strip().lower() in ("auto", "each"))


def _checked_diameter(diameter, reference: float | None):
    """A population ``diameter`` as :meth:`PopulationPredictor.from_zoo` and a call's ``diameter`` take it: a number
    of pixels (checked on the nuclei model's ``reference`` diameter, :func:`~devolens.predict.segment.check_diameter`:
    a float), ``"auto"`` or None (as given; ``"none"``, the command's word, is None). ``"each"`` is refused: a movie
    has one magnification."""
    diameter = none_word(diameter)
    if isinstance(diameter, str) and diameter.strip().lower() == "each":
        raise DevolensError("diameter 'each' is for segmenting unrelated images; population reads one movie "
                            "at one magnification: use 'auto' or a number of pixels")
    if not _in_pixels(diameter):
        return diameter
    from devolens.predict.segment import check_diameter

    return check_diameter(diameter, reference, "a number of pixels, 'auto' or None")


def _diameter_settings(diameter, nuclei) -> dict:
    """The :class:`PopulationPredictor` settings (``resize``, ``auto``, ``scale_known``, ``diameter``) that read its
    frames through ``nuclei`` (its nuclei model; a stand-in for one) at ``diameter`` (:func:`_checked_diameter`'s):
    a number resizes every frame by the nuclei model's reference diameter / ``diameter``; ``"auto"`` by each
    stream's estimate (:meth:`~PopulationPredictor.predict_iter`); None leaves the frames as they are."""
    from devolens.predict.sizing import wants_auto

    ref = getattr(nuclei, "diameter_ref", None)
    auto = wants_auto(diameter, getattr(nuclei, "size_model", None), ref, "the nuclei model")
    resize = 1.0
    if not auto and diameter is not None:
        from devolens.predict.postprocess import diameter_scale

        # a number here, checked on the same reference (a model without one refused there)
        resize = diameter_scale(1.0, ref, diameter)
        # ... and with a scale of the user's, the scale times this resizing held to the range a scale is (the
        # nuclei model reads the resized frames at its scale: scale=2 with diameter 10 enlarged them 14x)
        held = getattr(nuclei, "_held_scale", None)  # (a stand-in for the nuclei model: unchecked)
        if held is not None:
            held(diameter, f"diameter {diameter:g} px")
    # scale_known: a number (auto: decided per stream); None: the frames' framing kept (fit_frame)
    return {"resize": resize, "auto": auto, "scale_known": diameter is not None,
            "diameter": None if auto else diameter}


def _total_regressor(arrays: dict, spec: dict, path: Path):
    """The whole-frame total regressor stored beside the tables (keys ``total_regressor.*``)."""
    import torch

    from devolens.models.unet_lite import build_lite

    prefix = "total_regressor."
    state = {k[len(prefix):]: torch.from_numpy(v.astype(np.float32)) for k, v in arrays.items() if k.startswith(prefix)}
    if not state:
        raise DevolensError("the card names a total regressor but the weights file holds none", path=path)
    model = build_lite(dict(spec["config"]))  # plain torch: no torchvision import (~1.4 s)
    if model is None:
        from devolens.models.architectures import build_from_config

        model = build_from_config(dict(spec["config"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DevolensError(f"total regressor weights do not match the card: {str(exc).splitlines()[0]}", path=path) from None
    return model.eval()


class PopulationPredictor:
    """Frame -> non-negative counts of the population letters A, E, M, P, C, D, Z and total.

    Build it with :meth:`from_zoo` (``devolens.models.load("population")``; ``load(RUN)`` of a count run of your own,
    ``devolens train`` of ``task: population``, builds one of method ``regressor`` whose frames are prepared as the
    run's training frames were: ``as_trained``, and whose rows leave the columns it does not regress empty).

    Parameters
    ----------
    method : {"composition", "regressor"}
        See the module docstring.
    nuclei : NucleiPredictor, optional
        The nucleus segmenter (method ``composition``).
    composition : ndarray, optional
        ``(M + 1, 7)`` table from :func:`fit_composition` (method ``composition``).
    knots_x, knots_y : ndarray, optional
        Calibration curve visible count -> total (method ``composition``); identity when
        omitted.
    coef : ndarray, optional
        Coefficients of :func:`calibrate_total_linear` on :func:`stage_features` (method
        ``composition``); when given they replace the knots.
    network : torch.nn.Module, optional
        The count regressor (method ``regressor``): ``(N, 1, H, W)`` -> ``(N, K)`` counts,
        ordered as ``outputs``.
    outputs : sequence of str
        Names of the regressor outputs (letters, optionally ``total``).
    batch_size : int
        Frames per batch.
    input_size : (int, int)
        Regressor input (H, W): frames are resized to it (pixels).
    channel, percentiles
        Regressor preprocessing (see :func:`devolens.predict.postprocess.to_single_channel`
        and :func:`~devolens.predict.postprocess.normalize_percentile`).
    fast : bool
        bf16 autocast + channels_last for the regressor on CPU.
    total_weight : float
        Method ``composition`` with a ``network`` (a total-cells regressor, one output):
        the total is ``exp(w log1p(calibrated) + (1 - w) log1p(regressed)) - 1`` with this
        ``w`` (1 = the nuclei-count calibration alone).
    resize : float
        Every frame is first resized by this factor (another magnification than the
        training data; :meth:`from_zoo` sets it from ``diameter``).
    scale_known : bool
        The frames' pixel scale (after ``resize``) is the training frames' (a predictor built by hand; a given
        ``diameter``): the regressor reads a window of the training frames' size around the embryo of a frame with
        a wide margin (:func:`fit_frame`). False for frames used as they are (``diameter`` None), whose framing
        the regressor then keeps; with ``auto``, each stream's estimate decides (trusted: known).
    outliers : float, optional
        Hot pixels: each frame, as given, has the bright single-pixel outliers replaced that the nuclei model's
        preparation replaces (:func:`~devolens.predict.postprocess.remove_outliers`, this fraction of the frame's
        range; 0: none), those that would still stand out in the regressor's input (:meth:`_without_hot_pixels`),
        before the frames reach the nuclei model and the regressor. None: the nuclei model's (its card's
        ``preprocessing.outliers``), 0 without one.
    diameter : float, optional
        The typical nucleus diameter in the input (pixels) that ``resize`` was set from (:meth:`from_zoo`'s
        ``diameter`` given as a number), for :meth:`diameter_check`; None (no number given, or ``"auto"``): no check.
        A call's own ``diameter`` (:meth:`predict_iter`) leaves these settings as they are.
    """

    def __init__(
        self,
        method: str = "composition",
        *,
        nuclei=None,
        composition: np.ndarray | None = None,
        knots_x: np.ndarray | None = None,
        knots_y: np.ndarray | None = None,
        coef: np.ndarray | None = None,
        network=None,
        outputs: Sequence[str] = COLUMNS,
        batch_size: int = 8,
        card: dict | None = None,
        input_size: Sequence[int] = (256, 384),
        channel: str = "auto",
        percentiles: Sequence[float] = (1.0, 99.8),
        fast: bool = True,
        total_weight: float = 1.0,
        resize: float = 1.0,
        auto: bool = False,
        clock: tuple[np.ndarray, np.ndarray] | None = None,
        scale_known: bool = True,
        outliers: float | None = None,
        diameter: float | None = None,
        as_trained: dict | None = None,
    ):
        if method not in ("composition", "regressor"):
            raise DevolensError(f"unknown population method {method!r} (composition, regressor)")
        if method == "composition" and (nuclei is None or composition is None):
            raise DevolensError("method 'composition' needs a nuclei predictor and a composition table")
        if method == "regressor" and network is None:
            raise DevolensError("method 'regressor' needs a network")
        self.method = method
        self.nuclei = nuclei
        self.composition = None if composition is None else np.asarray(composition, dtype=np.float32)
        self.knots_x = np.array([0.0, 1.0]) if knots_x is None else np.asarray(knots_x, dtype=np.float64)
        self.knots_y = np.array([0.0, 1.0]) if knots_y is None else np.asarray(knots_y, dtype=np.float64)
        self.coef = None if coef is None else np.asarray(coef, dtype=np.float64)
        self.network = network
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.channel = channel
        self.percentiles = tuple(float(p) for p in percentiles)
        self.fast = bool(fast)
        self.outputs = list(outputs)
        # method regressor: each frame prepared as a training run's frames were (a count run's card's input.as_trained:
        # channels, channel, scale, normalize; input_size its data.size), not by _regressor_input's framing
        self.as_trained = None if as_trained is None else _TrainedFrames(as_trained)
        if self.as_trained is not None:
            self.channel = "as_trained"  # (said so in the record; frames are read by the run's own rule)
        if method == "regressor" and "total" in self.outputs:
            # its own total, which its letters need not add up to: smoothed on its own (this instance's smooth, over
            # the class's)
            self.smooth = functools.partial(smooth_populations, own_total=True)
        self.batch_size = max(1, int(batch_size))
        self.card = copy.deepcopy(dict(card or {}))  # its own: the caller's dict may change later
        if not 0.0 <= float(total_weight) <= 1.0:
            raise DevolensError(f"total_weight must be within 0..1, got {total_weight}")
        self.total_weight = float(total_weight)
        if not float(resize) > 0:
            raise DevolensError(f"resize must be > 0, got {resize}")
        self.resize = float(resize)
        self.auto = bool(auto) and nuclei is not None
        self.scale_known = bool(scale_known)
        self.diameter = None if diameter is None else float(diameter)  # a number of pixels given (diameter_check)
        # the developmental clock's reference curve (time points, log total), for clock_fit
        self.clock = None if clock is None else (np.asarray(clock[0], np.float64), np.asarray(clock[1], np.float64))
        self.last_estimate = None  # the nuclei model's DiameterEstimate of the last auto run
        self.flat_frames: list[int] = []  # the last stream's frames without signal (predict_iter)
        self._view_of: PopulationPredictor | None = None  # the predictor a call's view is of (_for_call)
        self._clean = [0]  # calls at diameter None whose magnification look found nothing (its views share it)
        if outliers is None:
            outliers = getattr(getattr(nuclei, "network", None), "outliers", 0.0) if nuclei is not None else 0.0
        try:
            self.outliers = float(outliers)
        except (TypeError, ValueError):
            self.outliers = math.nan
        if not (math.isfinite(self.outliers) and self.outliers >= 0):
            raise DevolensError(f"outliers must be >= 0 (a fraction of the image's range; 0: off), got {outliers!r}")

    @classmethod
    def from_zoo(cls, folder: str | Path, card: dict, **options: Any) -> "PopulationPredictor":
        """Build the predictor from a zoo folder and its card.

        ``options`` go to the nuclei predictor (``batch_size``, ``fast``, ``precision``,
        ``backend``, ``device``...) for method ``composition``, or to the regressor network.
        The nuclei network runs by default in the card's ``nuclei_precision`` (the
        arithmetic its calibration was fitted with). ``diameter`` (typical nucleus diameter in
        the input, pixels; method ``composition``): frames at another magnification are
        resized by the nuclei model's reference diameter / ``diameter`` before everything
        else, so that nuclei and embryo have the sizes the calibration was fitted on; with a ``scale`` for the nuclei
        model, the scale times that resizing (a ``"auto"`` estimate's too, before any frame is counted) is held to
        the range a scale is held to (:func:`~devolens.predict.segment.check_scale`). One call at another
        diameter: ``predict(frame, diameter=20)`` (also ``predict_batch`` and ``predict_iter``), checked alike.

        The count regressor (the whole-frame regressor of the total, or method ``regressor``'s network) runs on the
        CPU in bf16 (autocast) by default, in fp32 with ``fast=False`` or ``precision="fp32"``, in bf16 with
        ``precision="bf16"`` (:attr:`regressor_precision`; ``"int8"`` applies to the nuclei network alone).
        """
        from devolens.io.tensors import load_tensors

        folder = Path(folder)
        method = card.get("method", "composition")
        batch_size = int(options.get("batch_size", 8))
        # the whole-frame regressor's arithmetic: as asked (fp32 or bf16), else as fast says (before the nuclei
        # model's precision is set from the card below)
        regressor_fast = _regressor_fast(options.get("precision", "auto"), options.get("fast", True))
        if method == "composition":
            from devolens.models.zoo import _load as zoo_load

            weights = folder / "weights.safetensors"
            if not weights.is_file():
                raise DevolensError("population tables not found (model not shipped yet)", path=weights)
            arrays = load_tensors(weights, framework="np")
            # the calibration was fitted on the counts of the nuclei network in this arithmetic
            if options.get("precision", "auto") == "auto":
                precision = card.get("nuclei_precision", "auto")
                if precision == "bf16" and not options.get("fast", True):
                    precision = "fp32"  # fast=False (--no-fast) is fp32, as for the other models
                elif precision == "bf16":
                    from devolens.predict.devices import native_bf16, resolve_device

                    # (resolved once: the nuclei network takes the name as resolved)
                    options["device"] = device = resolve_device(options.get("device", "cpu"))
                    if device != "cpu" and not native_bf16(device):
                        precision = "fp32"  # a GPU before Ampere has no bf16 convolutions: refused there
                    elif device == "cpu":
                        from devolens.models.quantize import bf16_fast_here

                        # a CPU without native bf16 (AVX2 only) emulates it, about 2x slower per frame than fp32
                        # (2.1-2.3 s against 0.9-1.2 s for a 752x512 frame): fp32 there, as auto is elsewhere; the
                        # counts differ slightly from bf16's (a walkthrough: totals within ~1 cell at 100 cells,
                        # one frame 2.5 %)
                        if not bf16_fast_here():
                            precision = "fp32"
                from devolens.models.quantize import CardPrecision

                options["precision"] = CardPrecision(precision)  # the card's: gives way where it cannot run (onnx)
            # ... and with these post-processing options (over the nuclei card's own)
            if card.get("nuclei_postprocess"):
                from devolens.predict.segment import _postprocess_dict

                # the user's value checked first (a string is refused in words, not a TypeError of the merge)
                options["postprocess"] = {**card["nuclei_postprocess"], **_postprocess_dict(options.get("postprocess"))}
            # ... and on frames prepared without background flattening (whatever the nuclei card says; a population
            # card fitted with it would say so in "nuclei_flatten")
            options.setdefault("flatten", float(card.get("nuclei_flatten", 0.0)))
            diameter = options.pop("diameter", None)  # applied to the frames here, not in the nuclei model
            nuclei_model = card.get("nuclei_model", "nuclei")
            reference = None
            if _in_pixels(diameter):  # checked (once) on the nuclei model's card before its network loads (a second)
                from devolens.models.zoo import card as zoo_card

                reference = ((zoo_card(nuclei_model).get("input") or {}).get("diameter") or {}).get("reference")
            diameter = _checked_diameter(diameter, reference)
            # (an option neither this predictor nor its nuclei model takes stays a TypeError: the user's
            # load('population') words it, with this class's help, not the nuclei model's load and class)
            nuclei = zoo_load(nuclei_model, **options)
            extra: dict[str, Any] = {}
            reg = card.get("total_regressor")
            if reg:  # a whole-frame regressor of the total, stored in the same file ("total_regressor.*")
                extra = dict(network=_total_regressor(arrays, reg, weights), total_weight=float(reg["weight_calibration"]),
                             input_size=tuple(reg.get("input_size", (128, 192))),
                             percentiles=tuple(reg.get("percentiles", (1.0, 99.8))), fast=regressor_fast)
            return cls(
                "composition", nuclei=nuclei, composition=arrays["composition"].astype(np.float32),
                knots_x=arrays["knots_x"].astype(np.float64), knots_y=arrays["knots_y"].astype(np.float64),
                coef=arrays["coef"].astype(np.float64) if "coef" in arrays else None,
                batch_size=batch_size, card=card, channel=options.get("channel", "auto"),
                **_diameter_settings(diameter, nuclei),  # resize, auto, scale_known, diameter
                clock=(arrays["clock_tau"], arrays["clock_log_total"]) if "clock_tau" in arrays else None, **extra,
            )
        inp = card.get("input") if isinstance(card.get("input"), dict) else {}
        as_trained = inp.get("as_trained")  # a count run of the user's (export.count_card)
        unknown = sorted(set(options) - set(REGRESSOR_OPTIONS))
        if unknown:  # (load() words it: "unknown option ...; see help(...)")
            raise TypeError(f"from_zoo() got an unexpected keyword argument '{unknown[0]}'")
        from devolens.predict.devices import check_backend, check_precision, resolve_device

        check_precision(options.get("precision", "auto"))
        check_backend(options.get("backend", "torch"))
        resolve_device(options.get("device", "cpu"))  # (refused where it cannot run; the regressor runs on the CPU)
        if isinstance(options.get("batch_size"), bool) or int(options.get("batch_size", 8)) < 1:
            raise DevolensError(f"batch_size must be at least 1, got {options.get('batch_size')!r}")
        if as_trained is not None or "as_trained" in inp or pre_channel(card) == "as_trained":
            from devolens.models.export import trained_frames

            as_trained = trained_frames(as_trained, folder / "card.json", "card.json: input.as_trained")
        if options.get("diameter") is not None:
            raise _no_diameter(options["diameter"], folder)
        if options.get("precision") == "int8" and not command_running():  # (the command says it in its note)
            import warnings

            warnings.warn("precision='int8' applies to U-Nets: a count regressor runs in bf16 where the CPU has it "
                          "natively, else fp32", DevolensWarning, stacklevel=3)
        if as_trained is not None and options.get("channel") is not None:
            said = "--color" if command_running() else "channel"
            picked = as_trained.get("channel")
            how = (f"data.channel {picked!r}" if picked is not None else "data.channel null: a colour frame's "
                   "per-pixel maximum" if int(as_trained.get("channels") or 1) == 1 else "its three channels")
            raise DevolensError(f"{said} does not apply to a count run: it reads each frame's channels as its training "
                                f"frames were read ({how})", path=folder)
        model = load_zoo_network(folder, card)
        pre = card.get("preprocessing", {})
        outputs = card.get("outputs", list(COLUMNS))
        given = (card.get("architecture") or {}).get("outputs")
        if not (isinstance(outputs, list) and outputs and all(isinstance(o, str) for o in outputs)) \
                or (given is not None and given != len(outputs)):
            raise DevolensError(f"card.json: outputs {outputs!r} do not name the network's {given} outputs (a list of "
                                "count names, one per output)", path=folder / "card.json")
        return cls(
            "regressor", network=model, outputs=outputs, batch_size=batch_size,
            card=card, input_size=tuple(card.get("input", {}).get("size") or (256, 384)),
            channel=pre.get("channel", "auto"), percentiles=tuple(pre.get("percentiles", (1.0, 99.8))),
            fast=regressor_fast, outliers=float(pre.get("outliers", 0.0)), as_trained=as_trained,
        )

    # ------------------------------------------------------------------ inference
    def counts_from_visible(self, visible: float | np.ndarray) -> np.ndarray:
        """Per-letter counts ``(..., 7)`` and total from visible nucleus counts (composition)."""
        total = calibrate_total(visible, self.knots_x, self.knots_y)
        return composition_counts(total, self.composition)

    @property
    def device(self) -> str:
        """Where the nuclei network runs (``"cpu"``, ``"cuda"`` or ``"cuda:N"``); the small whole-frame regressor
        of the total always runs on the CPU."""
        return "cpu" if self.nuclei is None else self.nuclei.device

    @property
    def precision(self) -> str | None:
        """The nuclei network's arithmetic (``"int8"``, ``"bf16"`` or ``"fp32"``; None without a nuclei model)."""
        return None if self.nuclei is None else self.nuclei.precision

    @property
    def regressor_precision(self) -> str | None:
        """The count regressor's arithmetic (the whole-frame regressor of the total, method ``composition``; the
        network itself, method ``regressor``): ``"bf16"`` (autocast, ``fast``) or ``"fp32"``; None without one.
        It runs on the CPU whatever :attr:`device` is."""
        return None if self.network is None else ("bf16" if self.fast else "fp32")

    @property
    def known_sizes(self) -> tuple[float, float] | None:
        """The nuclei model's :attr:`~devolens.predict.segment.NucleiPredictor.known_sizes` (None
        without a nuclei model)."""
        return None if self.nuclei is None else self.nuclei.known_sizes

    def size_advice(self, median_areas: Sequence[float]) -> float | None:
        """The ``diameter`` (input pixels) to suggest when the nuclei found are far from the sizes
        the model knows (another magnification), else None; ``median_areas`` are the rows'
        ``median_area``. See :meth:`devolens.predict.segment.NucleiPredictor.size_advice`."""
        if self.nuclei is None:
            return None
        found = self.nuclei.size_advice(median_areas)
        return None if found is None else round(found / self.resize, 1)

    def diameter_check(self, images: Sequence[np.ndarray]):
        """With a ``diameter`` given in pixels: the nuclei model's
        :meth:`~devolens.predict.segment._SegmentationPredictor.diameter_check` of ``images`` at that diameter (one
        pass of its size model, as ``diameter="auto"`` makes its estimate; not applied: the counts stay as they
        are), as ``devolens segment nuclei --diameter PX`` checks it: a
        :class:`~devolens.predict.notes.DiameterCheck` where the diameter the estimate would resize the frames by
        lies more than :data:`~devolens.predict.notes.DIAMETER_APART` times from the given one; else None (also
        with ``"auto"`` or no diameter, without a nuclei model or its size model, or when too few nuclei show to
        judge).

        A wrong diameter changes the counts without a word from :meth:`size_advice`: the frames are resized by it,
        and the nuclei network splits large nuclei or merges small ones into objects of the size it knows (the real
        reference frame of 300 shrunk to 0.5x, given 48 px where 24 suits it: 154 cells, 271 with ``"auto"``).

        Parameters
        ----------
        images : sequence of ndarray
            A few of the frames counted, as given (before any resizing): those with the most nuclei.

        Returns
        -------
        :class:`~devolens.predict.notes.DiameterCheck` or None
        """
        if self.diameter is None or self.auto or not hasattr(self.nuclei, "diameter_check"):
            return None
        # the nuclei model reads the frames resized here, at its own diameter None: a view of it at the diameter
        # given (the model itself is left as it is), whose check reads the frames as given at its card's scale
        nuclei = copy.copy(self.nuclei)
        nuclei.diameter = self.diameter
        return nuclei.diameter_check(images)

    def predict(self, image: np.ndarray | str | Path, diameter: float | str | None = OWN_DIAMETER
                ) -> dict[str, float]:
        """Counts for one frame (an array as the nuclei model takes it, or an image file's
        path): ``{"A": ..., ..., "Z": ..., "total": ...}`` (cells, >= 0). ``diameter``: this call's, as
        :meth:`from_zoo`'s (:meth:`predict_iter`).

        A frame without signal (:func:`lacks_signal`: one grey level throughout, all NaN, or black with nothing a
        grey level or two above its background) holds nothing to count: its counts are NaN, as ``devolens
        population`` leaves its row empty, with a :class:`~devolens.errors.NoSignalWarning` (``flat_frames`` is
        then ``[0]``).
        """
        from devolens.predict.segment import _several

        if _several(image):  # (read as one array of them: "expected an HxW or HxWx3 image, got (2, 512, 752)")
            raise DevolensError(f"predict takes one image, got a {type(image).__name__} of {len(image)}: for several "
                                "use predict_batch(images) (a table, one row per frame) or predict_iter(images) (a "
                                "stream of rows)")
        run = self._for_call(diameter)
        row = list(_issued(run._run([image], one=True)))[0]  # (its warnings name the caller's line: _issued)
        if row.get("flat"):
            _warn_no_signal([row], 1)
            return dict.fromkeys(COLUMNS, math.nan)
        return {k: float(row[k]) for k in COLUMNS}

    def predict_batch(self, images: Sequence[np.ndarray], progress: Callable[[int, int], None] | None = None,
                      diameter: float | str | None = OWN_DIAMETER) -> pd.DataFrame:
        """Counts for several frames: DataFrame with columns ``A..Z, total``, one row per frame. ``diameter``: this
        call's, as :meth:`from_zoo`'s (:meth:`predict_iter`).

        The rows of frames without signal (:func:`lacks_signal`, as :meth:`predict`) are empty (NaN), as
        ``devolens population`` leaves them, with one :class:`~devolens.errors.NoSignalWarning` naming their
        positions (also in ``flat_frames``); :meth:`smooth` and :meth:`clock_fit` leave such rows out of their fits.
        """
        from devolens.predict.postprocess import check_stream

        check_stream(images, "predict_batch", progress)
        run = self._for_call(diameter)  # (checked before the images are read)
        images = list(images)
        rows = list(_issued(run._run(images, total=len(images), progress=progress)))
        df = pd.DataFrame(rows, columns=list(COLUMNS))
        empty = [i for i, row in enumerate(rows) if row.get("flat")]
        if empty:
            df.loc[empty, list(COLUMNS)] = np.nan
            _warn_no_signal([rows[i] for i in empty], len(rows), empty)
        return df

    def predict_iter(self, images: Iterable[np.ndarray], total: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     diameter: float | str | None = OWN_DIAMETER) -> Iterator[dict[str, float]]:
        """Counts for a stream of frames (e.g. a video), lazily, one dict per frame.

        Each dict also carries ``visible`` (nuclei found in the image), ``median_area``
        (their median area, pixels of the frame as the nuclei model saw it; for
        :meth:`size_advice`) and ``specks`` (True when the nuclei network left saturated specks of the frame out of its
        brightness scale: its result's ``extra["specks"]``), method ``composition``; and ``flat``: True for a frame
        without signal (:func:`lacks_signal`: one grey level throughout, or black with nothing a grey level or two
        above its background, as a video's black frame leaves a few compressed pixels), which the count regressor
        reads as an all-black frame (normalising it would stretch its resizing's rounding into a phantom embryo);
        ``black``: True for such a frame that is not one grey level throughout; ``signal``: the frame's black/dark
        measures (:func:`~devolens.curate.frames.frame_signal`, as the frame reached the models; None where they
        cannot be taken), which that test read. Their positions in the stream are in ``flat_frames`` as the stream
        goes. The counts of such a frame are the models' reading of a black frame (a cell or two), for a caller that
        leaves it out of a fit and reads its row off the fitted curve (``population --monotone`` and ``--clock``):
        check ``flat`` before using them. :meth:`predict` and :meth:`predict_batch` leave them empty (NaN), as
        ``population`` does otherwise, with a :class:`~devolens.errors.NoSignalWarning`. With ``diameter="auto"``
        each dict also carries ``estimate``: the :class:`~devolens.predict.sizing.DiameterEstimate` its frame was
        resized by (this stream's own, as a segmentation result's ``extra["estimate"]``; ``last_estimate`` is the
        last stream's). ``channel``: the colour channel read in a colour frame (``red``, ``green``, ``blue``,
        ``mean``; None for a frame of one channel): under the auto rule one for the whole stream, chosen on its first
        :data:`STREAM_LOOK` colour frames (the channel most of them read), so that a movie's counts do not jump where
        the rule would choose another channel frame by frame (pass ``channel=`` to :meth:`from_zoo` to choose it).

        Frames that look inverted (dark nuclei on a bright background) or like membranes get one
        :class:`~devolens.errors.InputWarning` per call (method ``composition``), judged as ``devolens population``
        judges them for its note: on the frames as given, after the first 20 rows or at the stream's end, by
        :func:`~devolens.predict.notes.judge_input` (:class:`~devolens.predict.notes.PopulationWatch`; none where
        ``diameter`` was given in pixels), as the nuclei predictor's stream does; nuclei found far from the sizes the
        model knows (:meth:`size_advice` of the first :data:`~devolens.predict.notes.SHAPE_LOOK` rows' ``median_area``,
        as ``population``'s note) get one :class:`~devolens.errors.DiameterWarning`. Warnings name the line that reads
        the stream (:meth:`predict` and :meth:`predict_batch`: the line that calls them).

        A frame the nuclei model cannot take (as its ``predict_iter`` refuses it: not an image of numbers, under 2 x 2
        pixels, other than 1, 3 or 4 channels) is refused before any resizing and ends the stream: the rows of the
        frames before it are yielded, then a :class:`~devolens.errors.DevolensError` names it (``image 12 of the
        stream: ...``, counted from 0, and the file where it was a path).

        ``diameter``: this call's, in place of the predictor's own (left out: :meth:`from_zoo`'s): the same values
        (a number of pixels, ``"auto"`` or None: the frames as they are), checked alike, with the same counts as a
        predictor loaded with it; the loaded models serve it, and the predictor is left as it is for later calls
        (its ``resize``, ``diameter`` and ``last_estimate``; with ``"auto"``, this call's estimate is in each row's
        ``estimate``). Calls from several threads at different diameters each keep their own.
        """
        run = self._for_call(diameter)
        yield from _issued(run._run(images, total, progress))

    def _for_call(self, diameter) -> "PopulationPredictor":
        """The predictor one call counts with: this one for :data:`~devolens.predict.segment.OWN_DIAMETER` (or its
        own setting given again), else a view of it at ``diameter`` (:func:`_diameter_settings`, checked as
        :meth:`from_zoo` checks it), sharing its models, which leaves this one as it is."""
        if diameter is OWN_DIAMETER:
            return self
        if self.method == "regressor":  # (no size model: frames are read as they are, or refused in words)
            if diameter is not None:
                raise _no_diameter(diameter)
            return self
        settings = _diameter_settings(_checked_diameter(diameter, getattr(self.nuclei, "diameter_ref", None)),
                                      self.nuclei)
        if settings["auto"] == self.auto and (self.auto or all(getattr(self, k) == settings[k]
                                                               for k in ("resize", "scale_known", "diameter"))):
            return self  # (its own setting: an "auto" call records its estimate in last_estimate as before)
        view = copy.copy(self)
        view.__dict__.update(settings, last_estimate=None, _view_of=self)
        return view

    def _run(self, images: Iterable, total: int | None = None,
             progress: Callable[[int, int], None] | None = None, *, one: bool = False) -> Iterator[dict | Told]:
        """:meth:`predict_iter`'s stream: the rows, and what is to be said of them as
        :class:`~devolens.predict.segment.Told` items, which :meth:`predict`, :meth:`predict_batch` and
        :meth:`predict_iter` issue as warnings naming their caller's line
        (:func:`~devolens.predict.segment._issued`). Frames are checked as the nuclei model checks its images, before
        any resizing (:func:`~devolens.predict.segment._checked`; ``one``: :meth:`predict`'s frame): one refused ends
        the stream, the rows of the frames before it first, then its error, naming its position."""
        from devolens.predict.postprocess import check_stream

        check_stream(images, progress=progress)
        from devolens.predict.postprocess import image_array
        from devolens.predict.segment import _SegmentationPredictor, _frame_in

        failed: list = []
        # paths read, 1xHxW and channels-first arrays laid out, refused as predict refuses them (a stand-in for the
        # nuclei model, which takes its own kind of frames: laid out only)
        stand_in = self.nuclei is not None and not isinstance(self.nuclei, _SegmentationPredictor)
        check = image_array if stand_in else _frame_in
        yield from self._rows(_checked(images, failed, one, check), total, progress, one)
        if failed:
            raise failed[0]

    def _rows(self, images: Iterator, total: int | None,
              progress: Callable[[int, int], None] | None, one: bool = False) -> Iterator[dict | Told]:
        """:meth:`_run` of checked frames (``one``: :meth:`predict`'s frame)."""
        from devolens.predict.notes import SHAPE_LOOK, PopulationWatch

        # an input that looks inverted or like membranes: judged on the frames as given, as the command's note
        # (its nuclei model's own look is off: it sees them resized and reduced to one channel, where an inverted
        # colour frame's channel chosen shows no nuclei)
        watch = PopulationWatch.of(self, self.resize)
        # the auto colour rule: one channel for the whole stream (_one_channel_stream), chosen on the frames as given;
        # each frame's channel read (by its position in the stream), until its row (its "channel")
        read: dict[int, str | None] = {}
        nuclei_rule = getattr(getattr(self.nuclei, "network", None), "channel", None)
        pinned = (nuclei_rule == "auto" and (self.network is None or self.channel == "auto")
                  if self.method == "composition" else self.channel == "auto")
        images = _read_channels(images, read, watch, pinned)
        # (at the input's resolution, before any resizing); each frame as given kept beside it, for the no-signal words
        images = ((img, self._without_hot_pixels(img)) for img in images)
        # frames without signal (lacks_signal): the regressor reads a black frame instead. Normalising one stretches
        # the rounding of its resizing to full contrast, which it read as an embryo of ~25 cells (the nuclei network
        # finds no nucleus in either)
        seen: list[int] = []  # their positions in the stream (0 = the first frame), ascending; this stream's own
        self.flat_frames = seen  # (another stream started meanwhile gets its own)
        if self._view_of is not None:  # a call's own diameter (_for_call): the predictor's, as its warning says
            self._view_of.flat_frames = seen
        import collections

        # used as they are (diameter None): the size model's look at the first frames with the most nuclei, as given,
        # as segment's (the nuclei model's own look is off, below): a DiameterWarning where it reads them where
        # nuclei are lost or far from the training magnifications (notes.magnification_messages)
        far = self._magnification_look()
        given: collections.deque = collections.deque()  # the first SHAPE_LOOK (frame, without hot pixels) pairs
        if far is not None:
            images = _kept(images, given, SHAPE_LOOK)
        top = calibration_top(self)
        # the late-reading warning (late_message) still to be said: once per call; not for a count run of the user's,
        # whose late frames were never measured (the warning's figures are the shipped model's)
        late = not _ignored_warning() and self.as_trained is None
        measured: collections.deque = collections.deque()  # per frame read: (measures, black), until its row comes

        def marked(stream):
            for i, (given, img) in enumerate(stream):
                measures, flat, black = None, False, False
                if isinstance(img, np.ndarray):
                    measures = signal_measures(img)
                    flat = is_flat(img)
                    black = not flat and measures is not None and _black(measures)
                    if flat and given is not img:
                        # one grey level only once its hot pixels are replaced (a black frame but for a pixel at 255):
                        # as given it is not (what segment, judging the frame as given, calls black), and its words
                        # must not say it is
                        black = not is_flat(given)
                if flat or black:
                    seen.append(i)
                measured.append((measures, black))
                yield img

        def signal_fields(k: int) -> dict:
            """Frame ``k``'s (the next row's) no-signal fields of its row."""
            measures, black = measured.popleft()
            return {"flat": is_marked(k), "black": black, "signal": measures}

        def is_marked(k: int) -> bool:
            """Frame ``k`` (already read) is flat: a search of ``seen``, which the stream fills in ascending order."""
            j = bisect.bisect_left(seen, k)
            return j < len(seen) and seen[j] == k

        def regressor_input(k: int, img) -> np.ndarray:
            return self._regressor_input(np.zeros_like(np.asarray(img)) if is_marked(k) else img, framed=scale_known)

        images = marked(images)
        done = 0
        est = None  # diameter="auto": this stream's estimate, carried by each of its rows
        if self.auto:  # one magnification for the movie, estimated from its first frames with the most nuclei
            from devolens.predict.postprocess import diameter_scale
            from devolens.predict.sizing import gather

            images = iter(images)
            # judged in the channel the stream is read through (read: a two-colour movie's nuclei, where the nuclei
            # model's own rule would size the other channel's membranes, and the frames were used as they are)
            given_head: list = []

            def as_sized(stream):
                for k, img in enumerate(stream):
                    given_head.append(img)
                    yield as_read(img, read.get(k)) if isinstance(img, np.ndarray) else img

            _, chosen = gather(self.nuclei, as_sized(images))
            head = given_head
            est = self.nuclei.estimate_diameter(chosen)
            held = getattr(self.nuclei, "_estimated_scale", None)  # (a stand-in for the nuclei model: unchecked)
            if est is not None and held is not None:  # the user's scale times the estimate's resizing in range
                held(est)  # (raised before anything is recorded or counted)
            self.last_estimate = est
            yield Told(estimates=[est], what="nuclei")  # frames used as they are (the CLI's note)
            # this stream's own factor (read lazily below: another stream estimated meanwhile must not change it);
            # self.resize records the last stream's, for size_advice
            resize = self.resize = 1.0 if est is None or est.diameter is None else diameter_scale(
                1.0, self.nuclei.diameter_ref, est.diameter)
            # too few nuclei to judge by: used as they are (pixel scale not known), the regressor keeps their framing
            scale_known = est is not None and bool(est.trusted)
            images = itertools.chain(head, images)
            if watch is not None:  # judged at this stream's magnification, as the command's note
                watch.resize, watch.estimated = resize, est is not None
        else:
            resize = self.resize
            scale_known = self.scale_known
        if resize != 1.0:  # another magnification: frames resized to the training one
            images = (_resized(np.asarray(img), resize) for img in images)
        if self.method == "composition":
            small: collections.deque = collections.deque()  # regressor inputs, in frame order
            # one channel reduction per frame when the regressor and the nuclei network read colour alike
            share = self.network is not None and getattr(getattr(self.nuclei, "network", None), "channel", None) == self.channel

            def frames():
                from devolens.predict.postprocess import to_single_channel

                for k, img in enumerate(images):
                    channel = read[k]
                    if share or channel is not None:
                        img = to_single_channel(np.asarray(img), channel or self.channel)
                    if self.network is not None:
                        small.append(regressor_input(k, img))
                    yield img

            # the nuclei model's own look at its input is off (in a view of it: the model itself is left as it is):
            # it reads the frames resized and reduced to one channel; the watch above judges them as given
            nuclei = copy.copy(self.nuclei)
            nuclei.judges_input = False
            sizes = self._size_look()  # (the nuclei model's own size look is off too: judged here, as the command's)
            for res in nuclei.predict_iter(frames(), total=total):
                text = None if watch is None else watch.add(res.count)
                if text is not None:
                    yield Told(text)
                if far is not None and given:
                    far.add(int(res.count), np.asarray(given.popleft()[0]))  # (the frame as given)
                    if far.added >= SHAPE_LOOK:
                        yield from self._magnification_told(far)
                        far = None
                obj = res.objects  # the object columns as arrays (no DataFrame per frame)
                if self.coef is not None:
                    feats = stage_features(res.count, obj["area"], obj["x"], obj["y"])
                    estimate = float(calibrate_total_linear(feats, self.coef)[0])
                else:
                    estimate = float(calibrate_total(res.count, self.knots_x, self.knots_y))
                if self.network is not None:
                    regressed = float(self._regress(small.popleft()[None])[0, 0])
                    w = self.total_weight
                    estimate = float(np.expm1(w * np.log1p(max(estimate, 0.0)) + (1 - w) * np.log1p(max(regressed, 0.0))))
                letters = composition_counts(estimate, self.composition)
                row = {k: float(v) for k, v in zip(LETTERS, letters)}
                row["total"] = float(sum(row[k] for k in LETTERS))
                row["visible"] = float(res.count)
                row["median_area"] = float(np.median(obj["area"])) if len(obj["area"]) else float("nan")
                row.update(signal_fields(done))  # (each frame is read before its result)
                row["channel"] = read.pop(done)
                row["specks"] = bool(res.extra.get("specks"))  # as the nuclei network's preparation found
                if self.auto:
                    row["estimate"] = est
                done += 1
                if progress is not None:
                    progress(done, -1 if total is None else total)
                if sizes is not None and len(sizes) < SHAPE_LOOK:  # (judged once, on the first rows)
                    sizes.append(row["median_area"])
                    if len(sizes) == SHAPE_LOOK:
                        yield from self._size_told(sizes)
                if late and not row["flat"] and late_readings(row["total"], top):
                    late = False
                    yield Told(late_message(done - 1, row["total"], one), warning=DevolensWarning)
                yield row
            text = None if watch is None else watch.finish()
            if text is not None:
                yield Told(text)
            if far is not None:
                yield from self._magnification_told(far)
            if sizes is not None and len(sizes) < SHAPE_LOOK:
                yield from self._size_told(sizes)
            return
        from devolens.predict.postprocess import to_single_channel

        grey = None if self.as_trained is None or _ignored_warning() else self.as_trained.grey  # (this call's, below)
        for chunk in batched(enumerate(images), self.batch_size):
            inputs = [regressor_input(k, img if read[k] is None else to_single_channel(np.asarray(img), read[k]))
                      for k, img in chunk]
            if len({x.shape for x in inputs}) == 1:
                out = self._regress(np.stack(inputs))
            else:  # frames kept at their own sizes (a count run without data.size): one at a time
                out = np.concatenate([self._regress(x[None]) for x in inputs])
            for vals in out:
                row = self._regressed_row(dict(zip(self.outputs, vals)))
                row.update(signal_fields(done))
                row["channel"] = read.pop(done)
                done += 1
                if progress is not None:
                    progress(done, -1 if total is None else total)
                if late and not row["flat"] and late_readings(row["total"], top):
                    late = False
                    yield Told(late_message(done - 1, row["total"], one), warning=DevolensWarning)
                yield row
        if grey is not None and self.as_trained.grey > grey:  # (the command says it in its note)
            yield Told(self.as_trained.grey_words(self.as_trained.grey - grey), warning=DevolensWarning)

    @property
    def unread(self) -> list[str]:
        """The columns (:data:`COLUMNS`) this predictor leaves empty in every row: those a count regressor (method
        ``regressor``) does not regress (:meth:`_regressed_row`); none for method ``composition``."""
        if self.method != "regressor":
            return []
        return [k for k, v in self._regressed_row(dict.fromkeys(self.outputs, 0.0)).items() if math.isnan(v)]

    def _regressed_row(self, named: dict) -> dict:
        """A row's counts from the regressor's ``named`` outputs: a letter it does not regress is empty (NaN); the
        total is its own regressed total where it has one (what ``devolens evaluate`` scores as ``mae_total``: the
        letters need not add up to it), else the sum of the seven letters where it regresses them all, else empty."""
        row = {k: float(named[k]) if k in named else math.nan for k in LETTERS}
        row["total"] = (float(named["total"]) if "total" in named else
                        float(sum(row[k] for k in LETTERS)) if all(k in named for k in LETTERS) else math.nan)
        return row

    def _size_look(self) -> list | None:
        """A list for a stream's first :data:`~devolens.predict.notes.SHAPE_LOOK` rows' ``median_area``, judged by
        :meth:`_size_told`; None where nothing is judged (as :class:`~devolens.predict.notes.SizeWatch` judges the
        nuclei model's calls): while the ``devolens`` command runs (``population`` prints the same as its note),
        without a nuclei model (or with a stand-in for one), or where the warnings filters ignore every
        DiameterWarning."""
        from devolens.errors import command_running
        from devolens.predict.notes import _ignored
        from devolens.predict.segment import _SegmentationPredictor

        if command_running() or not isinstance(self.nuclei, _SegmentationPredictor) or _ignored(DiameterWarning):
            return None
        return []

    def _magnification_look(self):
        """A :class:`~devolens.predict.notes.JudgedFrames` for a stream's first frames as given, judged by
        :meth:`_magnification_told` (as ``population --diameter none`` judges its frames with the most nuclei for its
        note); None where nothing is judged: frames not used as they are (``diameter`` ``"auto"`` or in pixels),
        a regressor or a stand-in for the nuclei model, while the ``devolens`` command runs (it prints the same as
        its note), where the warnings filters ignore every DiameterWarning, or after
        :data:`~devolens.predict.notes.SIZE_CLEAN_CALLS` calls judged clean (the look costs about a frame's
        segmentation: a program counting one frame per call paid it on every frame)."""
        from devolens.errors import command_running
        from devolens.predict.notes import SIZE_CLEAN_CALLS, JudgedFrames, _ignored
        from devolens.predict.segment import _SegmentationPredictor

        if (self.auto or self.diameter is not None or self.method != "composition" or command_running()
                or not isinstance(self.nuclei, _SegmentationPredictor) or _ignored(DiameterWarning)
                or self.__dict__.setdefault("_clean", [0])[0] >= SIZE_CLEAN_CALLS):
            return None
        return JudgedFrames()

    def _magnification_told(self, judged) -> Iterator[Told]:
        """The :class:`~devolens.errors.DiameterWarning` (as a :class:`~devolens.predict.segment.Told`) where the
        nuclei model's size model reads the ``judged`` frames (:meth:`_magnification_look`) where nuclei are lost or
        far from the training magnifications (:func:`~devolens.predict.notes.magnification_messages`, the words of
        ``segment``'s; what they say of the nuclei found holds for the counts)."""
        from devolens.predict.notes import magnification_messages

        texts = magnification_messages(self.nuclei, judged.frames(), images="frames", found="the counts")
        if not texts:
            self._clean[0] += 1
        for text in texts:
            yield Told(text, warning=DiameterWarning)

    def _size_told(self, median_areas: list) -> Iterator[Told]:
        """The :class:`~devolens.errors.DiameterWarning` (as a :class:`~devolens.predict.segment.Told`) where the
        nuclei found in rows of these ``median_areas`` are far from the sizes the model knows (:meth:`size_advice`):
        ``devolens population``'s note in the library's words (:func:`~devolens.predict.notes.size_note`)."""
        from devolens.predict.notes import size_note

        suggested = self.size_advice(median_areas)
        if suggested:
            yield Told(size_note("nuclei", suggested, self.known_sizes, self.resize != 1.0, library=True,
                                 verb="count"), warning=DiameterWarning)

    def _regressor_input(self, image: np.ndarray, framed: bool = True) -> np.ndarray:
        """A frame as the regressor saw its training frames: one channel, in the orientation, aspect ratio and
        framing of its input (:func:`fit_frame`; ``framed`` False: the frame's pixel scale is unknown, no window of
        the training frame's size), resized, normalised."""
        from devolens.predict.postprocess import (fill_specks, normalize_percentile, resize_image, saturated_specks,
                                                  to_single_channel)

        if self.as_trained is not None:  # a count run: as its training frames were prepared
            return self.as_trained(image)
        grey = fit_frame(to_single_channel(np.asarray(image), self.channel), self.input_size,
                         TRAINING_FRAME if framed else None)
        specks = saturated_specks(grey, self.percentiles[1])  # dust, hot-pixel clusters: background, out of the scale
        if specks is not None:
            grey = fill_specks(grey, specks, self.percentiles[0])
        return normalize_percentile(resize_image(grey, self.input_size), *self.percentiles)

    def _without_hot_pixels(self, image: np.ndarray) -> np.ndarray:
        """``image`` (a frame as given, before any magnification resizing) with the hot pixels replaced that would
        still stand out in the whole-frame regressor's input: the bright single-pixel outliers the nuclei model's
        preparation replaces (:func:`~devolens.predict.postprocess.remove_outliers`, ``outliers`` of the frame's
        range), of those only the ones that stand out by ``outliers`` times the number of frame pixels the
        resizing to ``input_size`` averages into one (16 for a 752x512 frame, at most that: a training frame's;
        each plane of a colour frame alike). ``image`` itself when none does: a clean frame reaches both the
        nuclei model and the regressor unchanged (the noise spikes of clean renders stand 1.2 ranges above
        their neighbours at most, hot pixels at 65535 in 12-bit data 17-44).

        Done here, at the input's resolution: resizing (``--diameter auto`` shrinks EPIC-framed frames by about
        0.74) spreads a hot pixel over its neighbours, after which no single-pixel test finds it, the nuclei
        model's own included (300 hot pixels at 65535 in the 12-bit real reference frames: 14 -> 11 nuclei
        found in the first, 130 -> 117 in the last)."""
        from devolens.predict.postprocess import remove_outliers

        if self.outliers <= 0 or not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
            return image
        h, w = image.shape[:2]
        inputs = float(self.input_size[0] * self.input_size[1])
        pooled = min(float(h * w), float(TRAINING_FRAME[0] * TRAINING_FRAME[1])) / inputs
        threshold = self.outliers * max(1.0, pooled)
        if image.ndim == 2:
            return remove_outliers(image, threshold)
        planes = [np.ascontiguousarray(image[..., c]) for c in range(image.shape[2])]
        cleaned = [remove_outliers(p, threshold) for p in planes]
        if all(c is p for c, p in zip(cleaned, planes)):
            return image
        return np.stack([c.astype(image.dtype, copy=False) for c in cleaned], axis=2)

    def _regress(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W) or (N, C, H, W) prepared frames -> (N, K) non-negative regressor outputs."""
        import torch

        from devolens.models.zoo import fork_guard

        fork_guard()
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        if x.ndim == 3:
            x = x[:, None]
        model = self.network.eval()
        with torch.inference_mode():
            if self.fast:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    out = model(x.contiguous(memory_format=torch.channels_last))
            else:
                out = model(x)
        return np.clip(out.float().numpy(), 0.0, None)

    def clock_fit(self, df: pd.DataFrame, positions: Sequence[float],
                  use: Sequence[bool] | None = None) -> tuple[pd.DataFrame, Any]:
        """A timelapse's per-frame counts refitted to the developmental clock.

        The frames' totals are fitted to the real embryos' total-cells curve (offset and rate,
        :func:`devolens.predict.clock.fit_clock`); each frame's total is read off the fitted
        curve and its letters from the composition table. Assumes frames in time order at a
        steady interval and a wild-type lineage.

        Parameters
        ----------
        df : DataFrame
            One row per frame with a ``total`` column (from :meth:`predict_iter`).
        positions : sequence of float
            Each row's frame position in the movie (gaps where frames were skipped).
        use : sequence of bool, optional
            Which rows the fit is made on (e.g. not the frames of no signal, a black frame read at a cell or two);
            every row is read off the fitted curve all the same (:func:`~devolens.predict.clock.fit_clock`). Rows
            whose ``total`` is NaN (frames without signal, as :meth:`predict_batch` leaves them) are left out too.

        Returns
        -------
        (DataFrame, ClockFit)
            A copy with the letters and ``total`` replaced, and the fit. Rows the fit places before the
            reference curve starts (~3 cells, its embryos' first time point), where the curve reads them at its
            first value (2.83 cells: a 1-cell frame read 1.82 on its own), keep their own counts where their
            ``total`` is lower (the clock cannot tell fewer cells than its curve starts at); rows left out of the
            fit (``use``, NaN) stay on the curve. ``attrs["clock_early"]`` says which: None where no row lies
            before the start, else ``{"frames": those before it, "kept": those that keep their counts, "start":
            the curve's first value}``, the rows named by their ``frame`` (the index where there is none). The
            fit's ``totals`` stay the curve's. ``devolens population --clock`` reads its frames the same way.
        """
        from devolens.predict.clock import fit_clock

        if self.clock is None or self.composition is None:
            raise DevolensError("this population model has no developmental clock (card section 'clock')")
        if not isinstance(df, pd.DataFrame) or "total" not in df.columns:
            what = type(df).__name__ if not isinstance(df, pd.DataFrame) else "a DataFrame without a 'total' column"
            raise DevolensError(f"clock_fit needs the per-frame counts (a DataFrame with a 'total' column, from "
                                f"predict_batch), got {what}")
        if positions is None:
            raise DevolensError("clock_fit needs each row's frame position in the movie (e.g. range(len(df)))")
        totals = pd.to_numeric(df["total"], errors="coerce").to_numpy(dtype=np.float64)
        empty = np.isnan(totals)  # frames without signal (predict_batch): out of the fit, read off its curve
        if empty.any():
            used = np.ones(len(totals), bool) if use is None else np.asarray(list(use), dtype=bool)
            if used.shape == totals.shape:  # (else fit_clock says what use must be)
                use, totals = used & ~empty, np.where(empty, 0.0, totals)
        try:  # (read twice: by the fit and by _before_clock)
            positions = list(positions)
        except TypeError:
            pass  # (fit_clock says what positions must be)
        fit = fit_clock(positions, totals, *self.clock, use=use)
        letters = composition_counts(fit.totals, self.composition)
        out = df.copy()
        out[list(LETTERS)] = letters
        out["total"] = letters.sum(axis=1)
        out.attrs["clock_early"] = self._before_clock(df, out, fit, positions, use)
        return out, fit

    def _before_clock(self, read: pd.DataFrame, out: pd.DataFrame, fit: Any, positions: Sequence[float],
                      use: Sequence[bool] | None) -> dict | None:
        """:meth:`clock_fit`'s rows placed before its reference curve starts: those of a lower reading of their own
        (``read``; used in the fit) get it back in ``out`` (in place). Returns ``attrs["clock_early"]``."""
        at = fit.offset + fit.rate * (np.asarray(positions, np.float64) - float(positions[0]))
        before = at < float(self.clock[0][0])
        if not before.any():
            return None
        start = float(out["total"].to_numpy(np.float64)[before].max())  # (the curve's first value, in letters)
        own = pd.to_numeric(read["total"], errors="coerce").to_numpy(np.float64)
        used = np.ones(len(own), bool) if use is None else np.asarray(list(use), dtype=bool)
        keep = before & used & np.isfinite(own) & (own < start)
        if keep.any() and all(c in read.columns for c in LETTERS):
            out.loc[keep, list(COLUMNS)] = read.loc[keep, list(COLUMNS)].to_numpy()
        elif keep.any():  # (a table of totals only: its letters from the composition table, as the curve's)
            letters = composition_counts(own[keep], self.composition)
            out.loc[keep, list(LETTERS)] = letters
            out.loc[keep, "total"] = letters.sum(axis=1)
        names = list(read["frame"]) if "frame" in read.columns else list(read.index)
        return {"frames": [n for n, b in zip(names, before) if b], "kept": [n for n, k in zip(names, keep) if k],
                "start": start}

    @staticmethod
    def smooth(df: pd.DataFrame) -> pd.DataFrame:
        """Monotone smoothing of a per-frame count table (:func:`smooth_populations`). Rows without counts
        (NaN: frames without signal, as :meth:`predict_batch` gives them) are left out of the fit and stay empty.
        A count regressor with a total output of its own smooths that total on its own (``own_total``)."""
        return smooth_populations(df)


#: a count run's frame whose aspect ratio (width / height) is this many times its data.size's, or less than its
#: inverse, is squashed out of shape by the resizing to data.size (its training frames were all resized alike): noted
SQUASH_RATIO = 1.25


def _no_diameter(diameter, folder: Path | None = None) -> DevolensError:
    """The refusal of a ``diameter`` (``--diameter``) given to a count regressor, which has no size model."""
    shown = format(diameter, "g") if isinstance(diameter, (int, float)) else diameter
    said = f"--diameter {shown}" if command_running() else f"diameter={diameter!r}"
    return DevolensError(f"{said} does not apply to a count regressor: it reads each frame as its training frames "
                         "were read, with no size model (give frames framed and magnified as those; leave the diameter "
                         "out)", path=folder)


#: the options a count regressor's :meth:`PopulationPredictor.from_zoo` takes (``diameter`` and a count run's
#: ``channel`` only to refuse them in words)
REGRESSOR_OPTIONS = ("batch_size", "fast", "precision", "backend", "device", "diameter", "channel")


def pre_channel(card: dict) -> object:
    """A card's ``preprocessing.channel`` (None where it has none)."""
    pre = card.get("preprocessing")
    return pre.get("channel") if isinstance(pre, dict) else None


class _TrainedFrames:
    """A count run's frame preparation (its card's ``input.as_trained``: :func:`devolens.models.export.count_card`):
    :class:`~devolens.data.datasets.PopulationDataset`'s own, without augmentation (the channel the run read, its
    ``data.scale``, ``data.size`` and normalisation), so that a frame reaches the network as the run's validation
    frames did. Returns ``(C, H, W)`` float32."""

    def __init__(self, spec: dict):
        from devolens.data.datasets import _Base

        self.channel = spec.get("channel")
        self.channels = int(spec.get("channels") or 1)
        # pad_multiple 2: the training engine's for the population task (trainer.make_dataset: 2 ** 1)
        self._base = _Base(self.channels, spec.get("size"), spec.get("normalize", "dtype"), pad_multiple=2,
                           scale=float(spec.get("scale") or 1.0), channel=self.channel)
        self.size = self._base.size  # (height, width) every frame is resized to; None: frames keep their size
        self.grey = 0  # frames of one channel given to a run of three (each repeated in its three channels)
        self.squashed = 0  # frames resized to data.size far from its aspect ratio ...
        self.squashed_first: tuple | None = None  # ... and the first one's (height, width)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from devolens.data.datasets import select_channel

        arr = np.asarray(image)
        if self.channels > 1 and self.channel is None and (arr.ndim == 2 or arr.shape[-1] == 1):
            self.grey += 1
        if self.size is not None and arr.ndim >= 2 and min(arr.shape[:2]) > 0:
            ratio = (arr.shape[1] / arr.shape[0]) / (self.size[1] / self.size[0])
            if not 1 / SQUASH_RATIO <= ratio <= SQUASH_RATIO:  # (a portrait frame given to a landscape run...)
                self.squashed += 1
                self.squashed_first = self.squashed_first or tuple(arr.shape[:2])
        img = select_channel(arr, self.channel, None, self.channels)
        return self._base._prepare(img, None, 0)[0]

    def grey_words(self, n: int) -> str:
        """The note on ``n`` frames of one channel given to a run of several (``population``'s and the library's)."""
        return (f"{n} frame{'s' if n != 1 else ''} of one channel (grey) given to a count run of {self.channels} "
                f"channels (data.channels {self.channels}): each was repeated in its {self.channels} channels; if the "
                "run trained on colour frames, its counts of these may be far off (give it colour frames, or train a "
                "run of data.channels: 1)")

    @property
    def reads(self) -> str:
        """What of a colour frame the run reads (a record's ``color_read``): ``"rgb"`` (a run of three channels),
        its ``data.channel`` (``"red"``...), or ``"max"`` (the per-pixel maximum: data.channel null)."""
        if self.channels > 1 and self.channel is None:
            return "rgb"
        return "max" if self.channel is None else str(self.channel)

    def colour_line(self) -> str:
        """How a colour frame was read, in the words of ``population``'s colour line (there is no --color here)."""
        read = {"rgb": f"its {self.channels} channels (data.channels {self.channels})",
                "max": "the per-pixel maximum of R, G and B (data.channel null)"}.get(
                    self.reads, f"its channel {self.channel!r} (data.channel)")
        return f"colour input: {read} was read in every frame, as the count run read its training frames"


def is_flat(image: np.ndarray) -> bool:
    """Whether ``image`` (HxW, or HxWxC: each channel) holds one grey level throughout (to a millionth of its
    magnitude, whatever that is: a float frame in units of 1e-10 or 1e-300 with nuclei in it is not flat, as its
    segmentation, free of the scale, finds them): no signal at all. A float frame without a single finite pixel (all
    NaN or infinite, which the
    predictors read as an empty frame) is flat too; one with some finite pixels and a NaN or infinite one is not."""
    a = np.asarray(image)
    if a.size == 0 or a.ndim < 2 or a.dtype.kind not in "biuf":
        return False
    a = a.reshape(a.shape[0], a.shape[1], -1)
    # a coarse sample that varies by twice the tolerance already decides (an ordinary frame: no full pass). Exact:
    # were the whole flat, every value lies within 1e-6 of its largest magnitude M, so the sample's range is at most
    # 1e-6 M <= 1e-6 M_sample / (1 - 1e-6)
    lo, hi = _channel_range(a[::32, ::32])
    with np.errstate(invalid="ignore", over="ignore"):
        if np.any(hi - lo > 2e-6 * np.maximum(np.abs(hi), np.abs(lo))):
            return False
    lo, hi = _channel_range(a)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return a.dtype.kind == "f" and not np.isfinite(a).any()
    return bool(np.all(hi - lo <= 1e-6 * np.maximum(np.abs(hi), np.abs(lo))))


#: a black frame (the curator's black test, :func:`_black`) holds no signal when the bright part of it stands less than
#: this many of its input's grey levels above its background (``foreground`` of
#: :func:`~devolens.curate.frames.frame_signal`). A video's black frames keep a few pixels at 1-3 from compression: 0.0
#: to 1.34 at x264 qualities 3-7 (qualities 2-3 leave specks up to 13: foreground 2-5.5, and the black test does not
#: flag those); renders dimmed to 2 % of their contrast and compressed alike 1.3-2.0 (black at quality 3 only: 2.0).
#: A frame of one nucleus in a dark field (not black to the curator since its ``spot`` measure, the thirty-sixth
#: session; its nucleus covers under 1 % of the blocks its contrast is read from) stands out by tens of levels: 85-190 for a 12-35 px nucleus at 200 grey levels, 38
#: counts for one 40 counts above a 16-bit camera's background. Held-out renders, their EPIC-framed movies and the
#: real reference frames: none black, foreground 30 and more
NO_SIGNAL_FOREGROUND = 2.0


def signal_measures(image: np.ndarray) -> dict | None:
    """The curator's black/dark measures of one frame (:func:`devolens.curate.frames.frame_signal`); None for a
    frame it cannot measure (not H x W or H x W x 3/4)."""
    from devolens.curate.frames import frame_signal

    try:
        return frame_signal(image)
    except DevolensError:
        return None


# (the channel a colour stream is read through: STREAM_LOOK, colour_frame, movie_channel, in postprocess: the
# command chooses a movie's before it loads a network)


def _read_channels(images: Iterator, read: dict, watch, pinned: bool) -> Iterator:
    """``images`` as they are, each one's colour channel read put in ``read`` by its position in the stream (the
    stream's one channel where ``pinned``, :func:`_one_channel_stream`; else None), and the frames the input
    ``watch`` judges (None: none) shown to it as read (:func:`as_read`)."""
    from devolens.predict.notes import SHAPE_LOOK

    pairs = _one_channel_stream(images) if pinned else ((img, None) for img in images)
    for k, (img, channel) in enumerate(pairs):
        read[k] = channel
        if watch is not None and watch.tapped < SHAPE_LOOK and not watch.done:  # (as InputWatch.tap keeps them)
            for _ in watch.tap((as_read(img, channel),)):
                pass
        yield img


def as_read(image, channel: str | None):
    """A colour frame that the auto rule alone would read in another channel than ``channel``, the one its stream
    is read through, reduced to that channel (its dtype kept) for what judges it (the frame as given would be
    judged as the other channel shows it: a movie's membranes, where its nuclei are read); any other frame as it is
    (an inverted export's channel is chosen on it inverted)."""
    arr = np.asarray(image)
    if channel is None or arr.ndim != 3 or arr.shape[2] not in (3, 4) or not colour_frame(arr):
        return image
    from devolens.predict.postprocess import _one_channel, auto_channel

    return image if auto_channel(arr) == channel else _one_channel(arr, channel)


def _one_channel_stream(images: Iterator, look: int = STREAM_LOOK) -> Iterator[tuple[Any, str | None]]:
    """Each frame of a stream with the colour channel read in it (None: a frame of one channel), one channel for the
    whole stream: a timelapse's counts must not jump where the auto rule
    (:func:`~devolens.predict.postprocess.auto_channel`) would choose another channel frame by frame (a
    histone-mCherry + membrane-GFP movie, whose membranes outgrow its few nuclei). The rule is
    :func:`~devolens.predict.postprocess.movie_channel`'s, ``segment nuclei``'s of a movie too: judged on the first
    ``look`` frames of the stream, the channel most of their colour frames read (a tie: the first frame's); where
    those hold no colour frame (grey, or grey stored as colour), each frame is judged on its own (a later colour frame
    pins nothing: ``segment nuclei`` chooses before reading past its first frames)."""
    from devolens.predict.postprocess import auto_channel

    images = iter(images)
    head = list(itertools.islice(images, look))
    pick = movie_channel(head, look)
    for img in itertools.chain(head, images):
        arr = np.asarray(img)
        if arr.ndim == 3 and arr.shape[2] in (3, 4):
            yield img, pick or auto_channel(arr)  # (grey stored as colour: green, the rule's word for it)
        else:
            yield img, None


def _black(measures: dict) -> bool:
    """Whether a frame of these measures (:func:`signal_measures`) is black with nothing in it: the curator's black
    test flags it on its own (:func:`devolens.curate.frames.black_or_dark`, the test ``--monotone`` leaves black
    frames out by: no contrast in its block means, or nothing above its noise), and its bright part stands less than
    :data:`NO_SIGNAL_FOREGROUND` of the input's own grey levels (8-bit levels for 8-bit and float input, counts for
    16-bit input) above its background."""
    from devolens.curate.frames import black_or_dark

    step = measures.get("grey_step") or 0.0
    unit = step if 0 < step < 1 else 1.0
    foreground = float(measures.get("foreground", np.nan))
    return bool(foreground < NO_SIGNAL_FOREGROUND * unit and black_or_dark([measures])[0])


def lacks_signal(image: np.ndarray, measures: dict | None = None) -> bool:
    """Whether ``image`` (HxW, or HxWxC) holds no signal: one grey level throughout (:func:`is_flat`), or black with
    nothing in it (:func:`_black`: a video's black frame, whose compression leaves a few pixels at 1-3). Such a
    frame holds nothing to count: :meth:`PopulationPredictor.predict_iter` marks it (``flat``), ``population``
    leaves its counts empty. ``measures``: the frame's :func:`signal_measures`, when taken already."""
    if is_flat(image):
        return True
    measures = signal_measures(image) if measures is None else measures
    return measures is not None and _black(measures)


def _warn_no_signal(rows: list[dict], frames: int, positions: Sequence[int] | None = None) -> None:
    """Issue a :class:`~devolens.errors.NoSignalWarning` for the frames without signal whose :meth:`predict_iter`
    ``rows`` these are, of ``frames`` frames read (``positions``: theirs in the stream; None: the one frame of
    :meth:`PopulationPredictor.predict`): the library's counterpart of ``population``'s note on them."""
    import warnings

    from devolens.errors import NoSignalWarning

    n, black = len(rows), sum(bool(row.get("black")) for row in rows)
    them = "it" if n == 1 else "them"
    black_words = (f"black, nothing in {them} a grey level or two above the background: a video's black frame keeps "
                   "a few such pixels from compression")
    what = ("one grey level throughout, or no finite pixel" if not black else black_words if black == n
            else f"one grey level throughout, or {black_words}")
    if positions is None:
        who, counts = "the frame holds", "its counts are"
    else:
        shown = ", ".join(str(p) for p in positions[:10]) + (f", ... ({n} in all)" if n > 10 else "")
        who = (f"{n} of {frames} frames (position{'s' if n > 1 else ''} {shown}, from 0; in the predictor's "
               f"flat_frames) {'holds' if n == 1 else 'hold'}")
        counts = "its counts are" if n == 1 else "their counts are"
    warnings.warn(f"{who} no signal ({what}): nothing to count, so {counts} NaN, as `devolens population` leaves "
                  "such a frame's row empty; `devolens curate frames` flags such frames", NoSignalWarning, stacklevel=3)


def _channel_range(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's (min, max) of an HxWxC array, as float64 (channel by channel: a reduction over the first two
    axes of interleaved channels is ~20x slower)."""
    lo = np.array([a[..., c].min() for c in range(a.shape[2])], np.float64)
    hi = np.array([a[..., c].max() for c in range(a.shape[2])], np.float64)
    return lo, hi


#: (H, W) of the frames the whole-frame regressor learned from (renders framed like EPIC movies' 752x512 camera
#: field, the embryo at 0.55-1.15 of an EPIC framing), in the working pixels of the frames it reads (after any
#: magnification resizing)
TRAINING_FRAME: tuple[int, int] = (512, 752)
#: :func:`fit_frame` cuts a window of the training frame's size where the largest window of the regressor's aspect
#: ratio is this much wider than the training frame or more (a margin around the embryo); below, the largest window
WIDER_FIELD = 1.15


def fit_frame(grey: np.ndarray, shape: Sequence[int], frame: Sequence[int] | None = TRAINING_FRAME) -> np.ndarray:
    """``grey`` (HxW) in the orientation and aspect ratio of ``shape`` (H, W), framed as the regressor's training
    frames were, so that resizing it to ``shape`` neither squeezes nor shrinks the embryo.

    A frame whose orientation (portrait or landscape) is not that of ``shape`` is turned a quarter (a count does
    not depend on the orientation; the training frames show embryos at every angle). A frame of another aspect
    ratio (a square or 4:3 camera field) is cropped to the largest window of ``shape``'s aspect ratio, centred on
    its brightest tenth of pixels (the embryo), instead of being stretched (which squeezes the embryo) or padded
    (which shrinks it below the regressor's training zooms); benchmarks/RESULTS.md has the three measured. A frame
    within 5 % of the aspect ratio (752x512 for 128x192: the training frames) is left as it is.

    A frame whose largest window is :data:`WIDER_FIELD` times as wide as ``frame`` (the training frames' size,
    turned to ``shape``'s orientation) or more holds a margin the training frames never had: a 752x512 movie
    centred in a 1920x1080 video or on a 1504x1024 canvas, a screen recording of a viewer's window. Shrunk whole to
    ``shape``, its embryo would show at half its training framing or less, which the regressor reads as a later
    stage (smaller nuclei: a frame of 158 cells read 136 as filmed, 232 boxed in 1920x1080 black). It gets a window
    of ``frame``'s size instead (:func:`_training_window`: around the embryo, grown where the embryo is larger),
    cut only from frames at least as tall as it (never padded). That trusts the frame's pixel scale (after any
    magnification resizing): ``frame=None`` where it is not known (frames used as they are: ``diameter`` None, or
    an estimate from too few nuclei to judge by) keeps the largest window, as do frames near the training size (the
    renders themselves, square and 4:3 fields of them: benchmarks/RESULTS.md's comparison stands)."""
    grey = np.asarray(grey)
    h, w = grey.shape[:2]
    if h != w and shape[0] != shape[1] and (h > w) != (shape[0] > shape[1]):
        grey = np.ascontiguousarray(np.rot90(grey))
        h, w = w, h
    aspect = shape[1] / shape[0]
    near = abs(w / h - aspect) <= 0.05 * aspect
    if frame is not None:
        fh, fw = sorted(int(v) for v in frame)[:: 1 if shape[1] >= shape[0] else -1]  # turned like shape
        lh, lw = (h, w) if near else ((max(1, min(h, round(w / aspect))), w) if w / h < aspect
                                      else (h, max(1, min(w, round(h * aspect)))))
        if lw >= WIDER_FIELD * fw and lh >= fh:
            return _training_window(grey, (fh, fw), (lh, lw))
    if near:
        return grey
    sample = np.asarray(grey[::4, ::4], dtype=np.float32)
    finite = np.isfinite(sample)
    cy, cx = h / 2, w / 2
    if finite.any():
        ys, xs = np.nonzero(finite & (sample > np.percentile(sample[finite], 90)))
        if len(ys):
            cy, cx = 4 * ys.mean() + 1.5, 4 * xs.mean() + 1.5
    if w / h < aspect:  # too tall: keep the full width, crop rows
        ch = max(1, min(h, round(w / aspect)))
        y0 = int(np.clip(round(cy - ch / 2), 0, h - ch))
        return grey[y0:y0 + ch]
    cw = max(1, min(w, round(h * aspect)))
    x0 = int(np.clip(round(cx - cw / 2), 0, w - cw))
    return grey[:, x0:x0 + cw]


def _training_window(grey: np.ndarray, frame: tuple[int, int], largest: tuple[int, int]) -> np.ndarray:
    """A window of ``frame``'s size (H, W) of ``grey`` (HxW) centred on its embryo, grown (at ``frame``'s aspect
    ratio, up to the ``largest`` window's width) where the embryo and a tenth more do not fit; the frame's flat
    fill inside it (:func:`_flat_fill`) set to its camera image's background level.

    Found on a copy shrunk 4x (area). The camera image: the largest connected area that is not flat fill (a
    viewer's window, the movie inside letterboxing; the whole of an ordinary frame). The embryo: inside it, the
    pixels brighter than its background (10th percentile) by a quarter of its range (to the 99.5th percentile),
    specks and strokes under 3 samples (12 px) wide left out (a time stamp, a scale bar, hot pixels); its extent is
    theirs, all of an early embryo's separate nuclei included."""
    import cv2

    h, w = grey.shape[:2]
    fh, fw = frame
    step = 4
    # (NaN and infinite pixels, a registration's padding, count as fill; min and max are NaN where any pixel is:
    # no copy of a finite frame)
    a = np.asarray(grey, dtype=np.float32)
    if not (np.isfinite(a.min()) and np.isfinite(a.max())):
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    flat = _flat_fill(a)
    size = (max(1, w // step), max(1, h // step))
    small = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    kept = cv2.resize(flat.astype(np.float32), size, interpolation=cv2.INTER_AREA) < 0.5  # not fill (mostly)
    count, comp, stats, _ = cv2.connectedComponentsWithStats(kept.astype(np.uint8), connectivity=8)
    cy, cx, eh, ew = h / 2, w / 2, 0.0, 0.0  # the embryo's centre and extent (frame pixels)
    if count > 1:
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        camera = comp == k
        values = small[camera]
        level, top = (float(v) for v in np.percentile(values, [10, 99.5]))
        bright = (small > level + 0.25 * (top - level)) & camera
        bright = cv2.morphologyEx(bright.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
        ys, xs = np.nonzero(bright if bright.any() else camera)
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        cy, cx = step * (y0 + y1 + 1) / 2, step * (x0 + x1 + 1) / 2
        eh, ew = step * (y1 + 1 - y0), step * (x1 + 1 - x0)
    else:  # all fill (or nothing shrinks to a sample that is not): its median
        level = float(np.median(a))
    grow = min(max(1.0, 1.1 * eh / fh, 1.1 * ew / fw), largest[1] / fw, h / fh, w / fw)
    wh, ww = min(h, round(fh * grow)), min(w, round(fw * grow))
    y0 = int(np.clip(round(cy - wh / 2), 0, h - wh))
    x0 = int(np.clip(round(cx - ww / 2), 0, w - ww))
    out = np.array(grey[y0:y0 + wh, x0:x0 + ww])  # a copy: its fill is replaced
    out[flat[y0:y0 + wh, x0:x0 + ww]] = np.asarray(level).astype(out.dtype)
    return out


def _flat_fill(image: np.ndarray, side: int = 7) -> np.ndarray:
    """Pixels of ``image`` (HxW) that are no part of a camera image: those in a ``side`` x ``side`` square holding
    one value throughout (letterboxing, a canvas, a viewer's panels; a camera's pixels vary, its noise at least),
    but for squares at the image's highest value (a saturated nucleus). NaN pixels are never flat."""
    import cv2

    a = np.asarray(image, dtype=np.float32)
    kernel = np.ones((side, side), np.uint8)
    top = a.max(initial=-np.inf)  # (NaN where any pixel is)
    if np.isfinite(top) and np.isfinite(a.min(initial=np.inf)) and side >= 3:
        core = _constant_squares(a, side)
        core &= a < top
    else:
        finite = np.isfinite(a)
        low = cv2.erode(a, kernel, borderType=cv2.BORDER_REPLICATE)
        core = (low == cv2.dilate(a, kernel, borderType=cv2.BORDER_REPLICATE)) & finite
        if finite.any():
            core &= a < a[finite].max()
    return cv2.dilate(core.astype(np.uint8), kernel) > 0  # the whole of each flat square


def _constant_squares(a: np.ndarray, side: int) -> np.ndarray:
    """Pixels of ``a`` (HxW, finite) whose ``side`` x ``side`` square (``side`` >= 3; cut at the image's edges)
    holds one value: those with no step between neighbouring pixels inside it, across or down. The same as its
    erosion equalling its dilation (edges replicated), from two comparisons and two dilations of 8-bit step maps
    (a third of the time of a float erosion and dilation)."""
    import cv2

    h, w = a.shape
    half = side // 2  # (OpenCV's anchor: the square of pixel x spans x - half .. x - half + side - 1)
    across = np.zeros((h, w), np.uint8)  # [y, x]: a step from x to x + 1
    np.not_equal(a[:, 1:], a[:, :-1], out=across[:, :-1])
    down = np.zeros((h, w), np.uint8)  # [y, x]: a step from y to y + 1
    np.not_equal(a[1:], a[:-1], out=down[:-1])
    across = cv2.dilate(across, np.ones((side, side - 1), np.uint8), anchor=(half, half))
    down = cv2.dilate(down, np.ones((side - 1, side), np.uint8), anchor=(half, half))
    return (across | down) == 0


def _kept(images: Iterable, kept, first: int) -> Iterator:
    """``images`` as they are, the ``first`` of them also appended to ``kept`` (until their rows take them)."""
    for i, img in enumerate(images):
        if i < first:
            kept.append(img)
        yield img


def _ignored_warning() -> bool:
    """Whether the warnings filters ignore every plain :class:`~devolens.errors.DevolensWarning` (the late-reading
    one), or the ``devolens`` command runs (its note says it)."""
    from devolens.errors import command_running
    from devolens.predict.notes import _ignored

    return command_running() or _ignored(DevolensWarning)


def _resized(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` (HxW or HxWxC) resized by ``factor`` (area when shrinking, bilinear when enlarging)."""
    import cv2

    if image.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        image = image.astype(np.float32)  # OpenCV resizes none of int32, int64, bool...
    h, w = image.shape[:2]
    size = (max(2, round(w * factor)), max(2, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
