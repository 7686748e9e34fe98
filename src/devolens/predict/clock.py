"""The developmental clock: a timelapse's per-frame cell totals fitted to the real embryos' curve.

A C. elegans embryo's total cell count follows the same curve in every wild-type embryo, only
shifted (when filming started) and stretched (temperature, frame interval). A single frame's
total is an estimate with 10-30 % error (nuclei hidden in the projection, optics), but a movie
has dozens of frames: fitting the two numbers ``offset`` and ``rate`` of

    log total(frame) = log C(offset + rate * (position - first position))

to all of them, with ``C`` the median curve of real embryos (total against time point),
pools the frames. Then each frame's total is read off the fitted curve. It assumes what the
composition table already assumes (a wild-type lineage) plus a steady frame interval.

>>> tau = np.arange(0.0, 100.0)
>>> log_c = np.log(2.0) * (1 + tau / 20)          # a toy curve: doubling every 20 time points
>>> pos = np.arange(30)
>>> fit = fit_clock(pos, np.exp(np.interp(10 + 2 * pos, tau, log_c)), tau, log_c)
>>> round(fit.offset), round(fit.rate, 1)
(10, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from devolens.errors import DevolensError

__all__ = ["ClockFit", "canonical_curve", "extend_curve", "fit_clock", "MIN_FRAMES"]

MIN_FRAMES = 6  # fewer frames cannot pin two parameters
HUBER = 0.15  # residuals (log total) beyond this count linearly: odd frames do not pull the fit


@dataclass(frozen=True)
class ClockFit:
    """A movie fitted to the reference curve.

    Attributes
    ----------
    totals : ndarray
        The fitted total of each frame (float64, in the order given).
    offset : float
        Reference time point of the first frame.
    rate : float
        Reference time points per frame position (e.g. 1.0: one frame per time point of the
        reference embryos; 6.0: a frame every 6th).
    residual : float
        Median ``|log(estimate / fitted)|`` over the frames (0.1: the per-frame estimates lie
        about 10 % off the curve).
    slope : float
        Least-squares slope of ``log(estimate / fitted)`` over the frame position (per position): the per-frame
        estimates drifting away from the curve as the movie goes (focus drift, bleaching, the embryo leaving
        the field) give a slope the fit cannot take up.
    late : float
        Median ``log(estimate / fitted)`` of the last third of the frames less that of the frames before them
        (-0.2: the last third read about 18 % fewer cells than the curve, relative to the earlier frames); 0 for
        movies of fewer than 3 frames. Recorded, not judged: as-rendered movies reach -0.23 as blurred ones do
        (thirtieth session's review), so no threshold tells a drift from a movie's own course.
    """

    totals: np.ndarray
    offset: float
    rate: float
    residual: float
    slope: float = 0.0
    late: float = 0.0


def canonical_curve(curves: Sequence[pd.Series], min_overlap: int = 20, min_embryos: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The median total-cells curve of several embryos, aligned in time.

    Parameters
    ----------
    curves : sequence of Series
        Total cells indexed by time point, one per embryo (e.g. ``populations(table)["total"]``
        of tables cut at their annotation cliffs).
    min_overlap : int
        Time points two curves must share for an alignment.
    min_embryos : int
        Time points seen in fewer aligned embryos are left out.

    Returns
    -------
    (tau, log_total)
        Reference time points (ascending) and the non-decreasing median log total there. The
        time axis is the longest curve's; the others are shifted onto it (the integer shift with
        the least squared log difference).
    """
    curves = [c[c > 0].astype(float).sort_index() for c in curves]
    if not curves:
        raise DevolensError("no curves to build the reference from")
    ref = max(curves, key=len)
    aligned = []
    for c in curves:
        shift = 0 if c is ref else _best_shift(c, ref, min_overlap)
        aligned.append(pd.Series(np.log(c.to_numpy()), index=c.index.to_numpy() + shift))
    table = pd.concat(aligned, axis=1)
    seen = table.notna().sum(axis=1) >= min(min_embryos, len(curves))
    med = table[seen].median(axis=1, skipna=True).sort_index()
    return med.index.to_numpy(dtype=np.float64), np.maximum.accumulate(med.to_numpy(dtype=np.float64))


def extend_curve(tau: np.ndarray, log_total: np.ndarray, curve: pd.Series) -> tuple[np.ndarray, np.ndarray, ClockFit]:
    """The reference curve continued by an embryo followed further (e.g. to the comma stage).

    The embryo's totals up to the reference's last count are fitted onto the reference
    (:func:`fit_clock`: its own pace and start, e.g. another frame interval or temperature);
    its later time points, mapped onto the reference's time axis by that fit, are appended.

    Parameters
    ----------
    tau, log_total : ndarray
        The reference (:func:`canonical_curve`).
    curve : Series
        The embryo's total cells indexed by its time points.

    Returns
    -------
    (tau, log_total, fit)
        The longer curve (non-decreasing) and the embryo's fit onto the reference.
    """
    curve = curve[curve > 0].astype(float).sort_index()
    within = curve[curve <= np.exp(log_total[-1])]
    fit = fit_clock(within.index.to_numpy(dtype=np.float64), within.to_numpy(), tau, log_total)
    x = fit.offset + fit.rate * (curve.index.to_numpy(dtype=np.float64) - float(within.index[0]))
    later = x > tau[-1]
    tau2 = np.concatenate([tau, x[later]])
    log2 = np.maximum.accumulate(np.concatenate([log_total, np.log(curve.to_numpy()[later])]))
    return tau2, log2, fit


def _best_shift(curve: pd.Series, ref: pd.Series, min_overlap: int) -> int:
    best, shift = np.inf, 0
    span = int(ref.index.max() - ref.index.min())
    for d in range(-span, span + 1):
        idx = curve.index.to_numpy() + d
        ok = np.isin(idx, ref.index.to_numpy())
        if ok.sum() < min_overlap:
            continue
        err = float(np.mean((np.log(curve.to_numpy()[ok]) - np.log(ref.loc[idx[ok]].to_numpy())) ** 2))
        if err < best:
            best, shift = err, d
    if not np.isfinite(best):
        raise DevolensError(f"a curve shares fewer than {min_overlap} time points with the reference in any alignment")
    return shift


#: the range of paces (reference time points per frame) :func:`fit_clock` searches by default
RATES = (0.2, 30.0)


def fit_clock(positions: Iterable[float], totals: Iterable[float], tau: np.ndarray, log_total: np.ndarray,
              rates: tuple[float, float] = RATES, max_fit_frames: int = 300,
              use: Iterable[bool] | None = None) -> ClockFit:
    """Fit a movie's per-frame totals to the reference curve (see the module's docstring).

    Parameters
    ----------
    positions : iterable of float
        Each frame's position in the movie (frame index; gaps where frames were skipped), in
        time order.
    totals : iterable of float
        Each frame's estimated total cells.
    tau, log_total : ndarray
        The reference curve (:func:`canonical_curve`).
    rates : (float, float)
        Range of reference time points per frame searched (log-spaced grid).
    max_fit_frames : int
        Longer movies are fitted on this many evenly spaced frames (the fitted curve is then
        read off for every frame).
    use : iterable of bool, optional
        Per frame, whether it takes part in the fit (None: every frame). A frame left out (a black
        frame of no signal, whose reading of a cell or two would pull the curve down: a movie
        starting with 3 such frames was read 4x too low) is still read off the fitted curve at its
        position, as the others; ``residual``, ``slope`` and ``late`` are those of the frames
        fitted. The fit is that of the frames used alone (``offset`` then moved to the first frame).

    Returns
    -------
    ClockFit

    Raises
    ------
    DevolensError
        Fewer than :data:`MIN_FRAMES` frames (used), or positions not increasing.
    """
    try:
        pos = np.asarray(list(positions), dtype=np.float64)
        est = np.asarray(list(totals), dtype=np.float64)
    except (TypeError, ValueError):
        raise DevolensError("positions and totals must be two sequences of numbers (one per frame)") from None
    if pos.shape != est.shape or pos.ndim != 1:
        raise DevolensError("positions and totals must be two sequences of the same length")
    for name, values, low in (("positions", pos, -np.inf), ("totals", est, 0.0)):  # NaN: a wrong fit, silently
        bad = ~np.isfinite(values) | (values < low)
        if bad.any():
            i = int(np.argmax(bad))
            raise DevolensError(f"{name} must be finite numbers{' >= 0' if low == 0 else ''}; frame {i} has {values[i]:g}")
    if use is None:
        used = np.ones(len(pos), bool)
    else:
        used = np.asarray(list(use), dtype=bool)
        if used.shape != pos.shape:
            raise DevolensError("use must give one yes/no per frame")
    if int(used.sum()) < MIN_FRAMES:
        left = "" if used.all() else f" ({len(pos) - int(used.sum())} of {len(pos)} left out of the fit)"
        raise DevolensError(f"the developmental clock needs a timelapse of at least {MIN_FRAMES} frames, "
                            f"got {int(used.sum())}{left}")
    if np.any(np.diff(pos) <= 0):
        raise DevolensError("frame positions must increase (frames in time order)")
    tau = np.asarray(tau, dtype=np.float64)
    log_total = np.asarray(log_total, dtype=np.float64)
    dt = pos - pos[used][0]  # from the first frame fitted: the fit is that of the frames used alone
    lp = np.log(np.maximum(est, 1.0))
    fitted_at = np.flatnonzero(used)
    pick = fitted_at[np.unique(np.linspace(0, len(fitted_at) - 1,
                                           min(len(fitted_at), max_fit_frames)).round().astype(int))]
    d_fit, l_fit = dt[pick], lp[pick]
    offsets = np.arange(tau[0] - 60.0, tau[-1] + 1.0, 1.0)
    best = (np.inf, offsets[0], 1.0)
    for rate in np.exp(np.linspace(np.log(rates[0]), np.log(rates[1]), 240)):
        ends = offsets + rate * d_fit[-1]
        ok = ends <= tau[-1] + 10.0  # the movie must not run far past the reference's end
        if not ok.any():
            continue
        x = offsets[ok, None] + rate * d_fit[None, :]
        r = l_fit[None, :] - np.interp(x, tau, log_total)
        a = np.abs(r)
        loss = np.where(a < HUBER, 0.5 * r * r, HUBER * (a - 0.5 * HUBER)).sum(axis=1)
        i = int(np.argmin(loss))
        if loss[i] < best[0]:
            best = (float(loss[i]), float(offsets[ok][i]), float(rate))
    _, offset, rate = best
    fitted = np.interp(offset + rate * dt, tau, log_total)
    res = (lp - fitted)[used]
    return ClockFit(totals=np.exp(fitted), offset=offset + rate * float(dt[0]), rate=rate,
                    residual=float(np.median(np.abs(res))), **_trend(dt[used], res))


def _trend(dt: np.ndarray, res: np.ndarray) -> dict:
    """How the log residuals ``res`` of frames at positions ``dt`` move over the movie: ``slope`` (least squares, per
    position) and ``late`` (median of the last third less the median of the frames before it); recorded only, the
    fit is not changed by them."""
    n = len(res)
    slope = float(np.polyfit(dt, res, 1)[0]) if n >= 2 and np.ptp(dt) > 0 else 0.0
    k = n // 3
    late = float(np.median(res[n - k:]) - np.median(res[:n - k])) if k >= 1 else 0.0
    return {"slope": slope, "late": late}
