"""Fit the digital-embryo simulator's parameters from real lineage tables.

:func:`fit_simulator_params` turns a list of tidy tables (see :mod:`devolens.io.tables`)
into the parameter dict that :func:`devolens.lineage.simulate.simulate_embryo` reads
(shipped as ``simulator_params.json``). What is fitted, and how:

* **Cell-cycle lengths** (time points: one per the table's own step, so that a table in
  seconds, 0, 90, 180..., counts as one numbered 1, 2, 3...,
  :func:`devolens.io.tables.time_point_numbers`). For every cell born during the recording, its
  life is the first time point of its daughters minus its own first time point; cells still
  alive at the end of the (cliff-free) recording are right-censored. Each embryo gets a
  tempo factor (its lives relative to the other embryos', iterated median ratio), and
  lives are divided by it. Per cell name: the Kaplan-Meier median over embryos; per
  lineage and generation (``AB:5``): the same over all cells of the group. The spread
  left after the name medians splits into a part shared by one lineage generation of an
  embryo (``group_sd_log``, which keeps division waves synchronous) and a per-cell part
  (``cell_sd_log``, net of the blur of whole time points). The generation
  growth factor (how much longer each generation lives) extrapolates beyond the data.
* **Apoptoses**: named cells that vanish without daughters well before the end.
* **Division letters**: the letters of the daughters seen in the data (``ABa`` -> ``lr``).
* **Nuclear size** against cell count: ``log size = log s0 - alpha log n`` and the
  measured median curve (used by the simulator; the power law overestimates the first
  nuclei); residual spread split into a per-cell and a per-time part.
* **Geometry** (EPIC tables with an AuxInfo ellipse): ellipse axes and centre, z centre,
  the nuclear envelope relative to the ellipse along the major, minor and z axes,
  z plane spacing and seconds per time point; the mean normalised radius of each
  population letter per cell-count bin (which lineages lie inside after gastrulation).
* **Physics** (relaxation iterations, random steps, coherent tissue flow): chosen by
  simulation so that
  nearest-neighbour distances and the steps of nuclei between time points match the real
  embryos (:func:`calibrate_physics`).
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from devolens.io.tables import time_point_numbers
from devolens.lineage.names import FOUNDER_DIVISIONS, is_valid_name, parse_name
from devolens.lineage.simulate import DEFAULT_PARAMS, lineage_group

_FOUNDER_CHILD = {d: p for p, pair in FOUNDER_DIVISIONS.items() for d in pair}


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """Cut at the first annotation cliff and keep valid names only."""
    try:
        from devolens.lineage.cliffs import clean_table
    except ImportError:  # pragma: no cover - cliffs module absent
        out = df
    else:
        out, _ = clean_table(df)
    out = out[out["cell"].map(lambda c: isinstance(c, str) and is_valid_name(c))]
    return out


def _mother(name: str) -> str | None:
    if name in _FOUNDER_CHILD:
        return _FOUNDER_CHILD[name]
    p = parse_name(name)
    if p is None or not p.divisions:
        return None
    return p.founder + p.divisions[:-1]


def cell_lives(df: pd.DataFrame, *, death_margin: int = 4, min_death_life: int = 8,
               points: np.ndarray | None = None) -> pd.DataFrame:
    """Life of every cell of one (cleaned) embryo.

    Lives and margins count the table's own time points, one per its step
    (:func:`devolens.io.tables.time_point_numbers`): a table in seconds at 90 s (0, 90, 180...) gives the lives
    the same table numbered 1, 2, 3... does.

    Parameters
    ----------
    df : DataFrame
        Tidy table of one embryo (valid Sulston names, cut at its cliff).
    death_margin : int
        A cell that vanishes without daughters at least this many time points before the
        end of the recording counts as dead (apoptosis).
    min_death_life : int
        Shorter lives that end without daughters are treated as tracking noise.
    points : array of int, optional
        :func:`devolens.io.tables.time_point_numbers` of ``df["time"]`` when the caller has them.

    Returns
    -------
    DataFrame
        Columns ``cell``, ``first``, ``last`` (times, as the table gives them), ``life`` (time points),
        ``status`` (``"divided"``, ``"censored"``, ``"died"``, ``"noise"``),
        ``left_censored`` (born before the first frame), ``letters`` (daughter letters).
    """
    if points is None:
        df = df[df["time"].notna()]  # a row without a time tells no life (as the minima and maxima skip it)
        points = time_point_numbers(df["time"])
    t1 = int(points.max())
    g = pd.DataFrame({"cell": df["cell"].to_numpy(), "time": df["time"].to_numpy(), "point": points}).groupby(
        "cell").agg(f=("time", "min"), last=("time", "max"), p0=("point", "min"), p1=("point", "max"))
    first = g["p0"].to_dict()
    kids: dict[str, list[str]] = {}
    for c in g.index:
        m = _mother(c)
        if m is not None:
            kids.setdefault(m, []).append(c)
    rows = []
    for c, f, last, p0, p1 in zip(g.index, g["f"], g["last"], g["p0"], g["p1"]):
        ks = kids.get(c, [])
        letters = "".join(sorted(k[-1] for k in ks if k not in _FOUNDER_CHILD)) if ks else ""
        if ks:
            div = min(first[k] for k in ks)
            life, status = div - p0, "divided"
        elif p1 <= t1 - death_margin:
            life = p1 - p0 + 1
            status = "died" if life >= min_death_life else "noise"
        else:
            life, status = p1 - p0 + 1, "censored"
        rows.append((c, int(f), int(last), float(life), status, bool(p0 == 0), letters))
    return pd.DataFrame(rows, columns=["cell", "first", "last", "life", "status", "left_censored", "letters"])


def km_median(life: np.ndarray, event: np.ndarray) -> float | None:
    """Kaplan-Meier median of right-censored durations (None when over half are censored).

    Parameters
    ----------
    life : array of float
        Durations (time points).
    event : array of bool
        True where the duration ended in the event (division), False where censored.
    """
    life = np.asarray(life, float)
    event = np.asarray(event, bool)
    if len(life) == 0 or not event.any():
        return None
    order = np.lexsort((~event, life))  # events before censorings at ties
    life, event = life[order], event[order]
    n = len(life)
    surv = 1.0
    for i in range(n):
        if event[i]:
            surv *= 1.0 - 1.0 / (n - i)
            if surv <= 0.5 + 1e-12:
                return float(life[i])
    return None


def _tempos(lives: dict[str, pd.DataFrame], ref: list[str], iterations: int = 5) -> dict[str, float]:
    """Per-embryo tempo: median ratio of its completed lives to the cross-embryo median."""
    done = {e: d[(d.status == "divided") & ~d.left_censored].set_index("cell")["life"] for e, d in lives.items()}
    tempo = {e: 1.0 for e in lives}
    for _ in range(iterations):
        norm = pd.DataFrame({e: s / tempo[e] for e, s in done.items()})
        med = norm.median(axis=1)
        for e, s in done.items():
            common = s.index.intersection(med.index[norm.notna().sum(axis=1) >= 2])
            if len(common) >= 5:
                tempo[e] = float(np.median(s[common] / med[common]))
        refs = [tempo[e] for e in ref if e in tempo] or list(tempo.values())
        gm = float(np.exp(np.mean(np.log(refs))))
        tempo = {e: v / gm for e, v in tempo.items()}
    return tempo


def _envelope(df: pd.DataFrame, min_cells: int = 100, q: float = 99.0) -> dict | None:
    """Nuclear envelope relative to the AuxInfo ellipse (fractions of the semi-axes)."""
    e = df.attrs.get("ellipse")
    zs = df.attrs.get("zscale")
    if not e or not zs:
        return None
    counts = df.groupby("time").size()
    times = counts.index[counts >= min_cells]
    if len(times) == 0:
        return None
    d = df[df["time"].isin(times)]
    th = math.radians(e["ang"])
    dx, dy = d["x"] - e["xc"], d["y"] - e["yc"]
    u = dx * math.cos(th) - dy * math.sin(th)
    v = dx * math.sin(th) + dy * math.cos(th)
    zc = float(np.median(d["z"]))
    w = (d["z"] - zc) * zs
    a, b = e["maj"] / 2, e["min"] / 2
    return {
        "ku": float(np.percentile(np.abs(u - np.median(u)), q) / a),
        "kv": float(np.percentile(np.abs(v - np.median(v)), q) / b),
        "kw": float(np.percentile(np.abs(w), q) / b),
        "du": float(np.median(u)),
        "dv": float(np.median(v)),
        "zc": zc,
    }


RADIAL_BINS = (4, 30, 60, 120, 250, 100000)


def radial_positions(df: pd.DataFrame, shell_z_semi_frac: float, ellipse: dict | None = None,
                     zscale: float | None = None) -> pd.DataFrame:
    """Normalised radius of every nucleus in the eggshell ellipsoid.

    Parameters
    ----------
    df : DataFrame
        Tidy table of one embryo.
    shell_z_semi_frac : float
        z semi-axis of the shell as a fraction of the minor semi-axis.
    ellipse, zscale : optional
        Default ``df.attrs["ellipse"]`` and ``df.attrs["zscale"]``; the z centre is the
        median z of the nuclei.

    Returns
    -------
    DataFrame
        Columns ``time``, ``n`` (cells at that time), ``letter`` (population letter),
        ``r`` (0 at the centre, 1 on the shell).
    """
    from devolens.lineage.names import population_letters

    e = ellipse or df.attrs["ellipse"]
    zs = float(zscale or df.attrs["zscale"])
    th = math.radians(e["ang"])
    dx, dy = df["x"].to_numpy(float) - e["xc"], df["y"].to_numpy(float) - e["yc"]
    u = dx * math.cos(th) - dy * math.sin(th)
    v = dx * math.sin(th) + dy * math.cos(th)
    w = (df["z"].to_numpy(float) - float(np.median(df["z"]))) * zs
    a, b = e["maj"] / 2, e["min"] / 2
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2 + (w / (b * shell_z_semi_frac)) ** 2)
    n = df.groupby("time")["time"].transform("size").to_numpy()
    return pd.DataFrame({"time": df["time"].to_numpy(), "n": n,
                         "letter": population_letters(df["cell"]).to_numpy(), "r": r})


def nn_distances(df: pd.DataFrame, zscale: float | None = None) -> pd.DataFrame:
    """Nearest-neighbour distance of every nucleus (3D, pixels) at each time point.

    Parameters
    ----------
    df : DataFrame
        Tidy table of one embryo.
    zscale : float, optional
        Plane spacing in xy pixels (default ``df.attrs["zscale"]``, else 1).

    Returns
    -------
    DataFrame
        Columns ``time``, ``n`` (cells at that time), ``nn`` (pixels).
    """
    zs = float(zscale or df.attrs.get("zscale") or 1.0)
    out = []
    for t, g in df.groupby("time", sort=True):
        if len(g) < 2:
            continue
        p = np.c_[g["x"].to_numpy(float), g["y"].to_numpy(float), g["z"].to_numpy(float) * zs]
        d, _ = cKDTree(p).query(p, k=2)
        out.append(pd.DataFrame({"time": t, "n": len(g), "nn": d[:, 1]}))
    if not out:
        return pd.DataFrame({"time": [], "n": [], "nn": []})
    return pd.concat(out, ignore_index=True)


def _step_motion(df: pd.DataFrame, zscale: float, lo: int = 50, hi: int = 300,
                 points: np.ndarray | None = None) -> float | None:
    """Median displacement of a nucleus between consecutive time points / median NN distance. Consecutive: one of
    the table's own steps apart (``points``: :func:`devolens.io.tables.time_point_numbers` of the whole table's
    times, default those of ``df``)."""
    d = df.copy()
    d["zp"] = d["z"] * zscale
    d["point"] = time_point_numbers(d["time"]) if points is None else points
    counts = d.groupby("time").size()
    d = d[d["time"].map(counts).between(lo, hi)]
    if d.empty:
        return None
    d = d.sort_values(["cell", "time"])
    same = (d["cell"].to_numpy()[1:] == d["cell"].to_numpy()[:-1]) & (np.diff(d["point"].to_numpy()) == 1)
    xyz = d[["x", "y", "zp"]].to_numpy(float)
    step = np.linalg.norm(np.diff(xyz, axis=0), axis=1)[same]
    nn = nn_distances(d.drop(columns=["zp", "point"]), zscale)["nn"]
    if len(step) == 0 or len(nn) == 0:
        return None
    return float(np.median(step) / np.median(nn))


MOTION_STAGES = (50, 100, 200, 350)
MOTION_BINS = ((4, 30), (30, 60), (60, 120), (120, 220), (220, 360))


def motion_stats(tables: Iterable[pd.DataFrame]) -> dict:
    """Packing and motion of nuclei: what the simulator's physics is calibrated against.

    Parameters
    ----------
    tables : iterable of DataFrame
        Tidy tables with ``attrs["ellipse"]`` and ``attrs["zscale"]`` (others are skipped).

    Returns
    -------
    dict
        ``nn_over_length``: median nearest-neighbour distance / embryo length (major axis)
        at the first time point with at least 50, 100, 200, 350 cells (keys as str);
        ``step_over_nn``: median displacement of a nucleus between consecutive time points (one of the
        table's own steps apart: 90 in a table in seconds at 90 s) / median NN distance, per cell-count bin
        (keys ``"lo-hi"``). Means over embryos.
    """
    nn: dict[str, list[float]] = {}
    step: dict[str, list[float]] = {}
    for t in tables:
        e, zs = t.attrs.get("ellipse"), t.attrs.get("zscale")
        if not e or not zs:
            continue
        counts = t.groupby("time").size()
        points = time_point_numbers(t["time"])
        for n in MOTION_STAGES:
            hit = counts.index[counts >= n]
            if len(hit):
                d = nn_distances(t[t["time"] == hit[0]], zs)["nn"]
                nn.setdefault(str(n), []).append(float(np.median(d) / e["maj"]))
        for lo, hi in MOTION_BINS:
            m = _step_motion(t, zs, lo, hi, points)
            if m is not None:
                step.setdefault(f"{lo}-{hi}", []).append(m)
    return {
        "nn_over_length": {k: round(float(np.mean(v)), 5) for k, v in nn.items()},
        "step_over_nn": {k: round(float(np.mean(v)), 5) for k, v in step.items()},
    }


def calibrate_physics(
    params: dict,
    observed: dict,
    *,
    seeds: Iterable[int] = (0, 1, 2, 3),
    iterations: Iterable[int] = (2, 3, 4),
    jitter_scales: Iterable[float] = (1.0,),
    flows: Iterable[float] = (0.0, 0.05, 0.1, 0.15),
    progress=None,
) -> tuple[dict, float]:
    """Choose the simulator's relaxation iterations, jitter and tissue flow by simulation.

    Simulates a few embryos for each candidate and keeps the one whose
    :func:`motion_stats` are closest to ``observed``: mean squared relative error of the
    nearest-neighbour distances plus a quarter of that of the steps (packing matters more than
    motion for rendered frames).

    Parameters
    ----------
    params : dict
        Simulator parameters (the candidate physics are merged over ``params["physics"]``).
    observed : dict
        :func:`motion_stats` of the real embryos.
    seeds, iterations, jitter_scales, flows
        The simulated embryos and the grid (jitter scales multiply the default
        ``[early, late]`` jitter; flows are amplitudes of the coherent tissue motion as a
        fraction of the cell diameter).
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    (dict, float)
        The chosen physics dict and its error.
    """
    from devolens.lineage.simulate import simulate_embryo

    base = params["physics"]
    j0 = base["jitter"] if isinstance(base["jitter"], (list, tuple)) else [base["jitter"]] * 2
    grid = [(it, sc, fl) for it in iterations for sc in jitter_scales for fl in flows]
    seeds = list(seeds)
    best, best_err = dict(base), math.inf
    for k, (it, sc, fl) in enumerate(grid):
        ph = dict(base, iterations=int(it), jitter=[round(j0[0] * sc, 4), round(j0[1] * sc, 4)], flow=float(fl))
        p = dict(params, physics=ph)
        sims = [simulate_embryo(s, n_cells=max(MOTION_STAGES) + 10, params=p) for s in seeds]
        st = motion_stats(sims)
        err = 0.0
        for key, weight in (("nn_over_length", 1.0), ("step_over_nn", 0.25)):
            errs = [(st[key][q] / observed[key][q] - 1.0) ** 2
                    for q in observed.get(key, {}) if q in st.get(key, {}) and observed[key][q]]
            err += weight * float(np.mean(errs)) if errs else math.inf
        if err < best_err:
            best, best_err = ph, err
        if progress is not None:
            progress(k + 1, len(grid))
    return best, best_err


def fit_simulator_params(
    tables: Iterable[pd.DataFrame],
    *,
    cycle_tables: Iterable[pd.DataFrame] = (),
    min_death_life: float = 8.0,
    calibrate: bool = True,
    progress=None,
) -> dict:
    """Fit the simulator's parameters from real embryos.

    Parameters
    ----------
    tables : iterable of DataFrame
        Tidy tables of real embryos in the EPIC pixel frame (one embryo each, attrs
        ``zscale``, ``ellipse``, ``time_seconds`` where known). They set the time unit
        (their time points, one per each table's own step: a table in seconds at 90 s, 0, 90, 180..., fits as
        one numbered 1, 2, 3... does), geometry, nuclear sizes and cell cycles. Rows after an
        annotation cliff are dropped (:func:`devolens.lineage.cliffs.clean_table`).
    cycle_tables : iterable of DataFrame, optional
        Further embryos (e.g. AceTree, another time step or pixel size) used only for
        cell-cycle lengths, division letters and apoptoses; their tempo factor absorbs
        the different time step.
    min_death_life : float
        Shortest life (time points, after tempo normalisation) of a cell that vanishes
        without daughters for it to count as an apoptosis rather than a tracking slip.
    calibrate : bool
        Also choose the physics (relaxation iterations, jitter) by simulating embryos and
        matching nearest-neighbour distances and steps between time points
        (:func:`calibrate_physics`; ~30 s). Otherwise the defaults are kept.
    progress : callable, optional
        ``progress(done, total)`` during the calibration.

    Returns
    -------
    dict
        The parameter dict (JSON-serialisable) read by
        :func:`devolens.lineage.simulate.simulate_embryo`. Times in time points of the
        ``tables``, lengths in their pixels, z in planes.
    """
    main = [_clean(t) for t in tables]
    extra = [_clean(t) for t in cycle_tables]
    if not main:
        raise ValueError("need at least one real embryo table")
    names = [str(t["embryo"].iloc[0]) for t in main]
    xnames = [f"{t['embryo'].iloc[0]}" for t in extra]
    all_tabs = dict(zip(names + xnames, main + extra))
    points = {e: time_point_numbers(t["time"]) for e, t in all_tabs.items()}  # (time points, one per step)
    lives = {e: cell_lives(t, points=points[e]) for e, t in all_tabs.items()}
    tempo = _tempos(lives, ref=names)

    # ---- cell cycles
    recs = []
    for e, d in lives.items():
        d = d[~d.left_censored & d.status.isin(["divided", "censored"])]
        for c, life, st in zip(d.cell, d.life, d.status):
            recs.append((e, c, life / tempo[e], st == "divided", lineage_group(c)))
    lv = pd.DataFrame(recs, columns=["embryo", "cell", "life", "event", "group"])
    by_name = {}
    resid = []
    for c, g in lv.groupby("cell"):
        if g.event.sum() >= 2:
            m = km_median(g.life.to_numpy(), g.event.to_numpy())
            if m is not None:
                by_name[c] = round(m, 3)
                ev = g[g.event]
                resid.extend(zip(np.log(ev.life / m).tolist(), ev.life.tolist(), ev.embryo, ev.group))
    by_group = {}
    for grp, g in lv.groupby("group"):
        m = km_median(g.life.to_numpy(), g.event.to_numpy())
        if m is not None and g.event.sum() >= 2:
            by_group[grp] = {
                "mean": round(m, 3),
                "n": int(len(g)),
                "n_divided": int(g.event.sum()),
                "sd_log": round(float(np.std(np.log(g.life[g.event]))), 4),
            }
    # growth factor between consecutive generations (AB and MS, where most are seen)
    ratios = []
    for f in ("AB", "MS", "C"):
        gens = sorted(int(k.split(":")[1]) for k in by_group if k.startswith(f + ":"))
        for g0, g1 in zip(gens[:-1], gens[1:]):
            if g1 == g0 + 1 and g0 >= 2:
                ratios.append(by_group[f"{f}:{g1}"]["mean"] / by_group[f"{f}:{g0}"]["mean"])
    growth = float(np.median(ratios)) if ratios else DEFAULT_PARAMS["cycle"]["growth"]
    # groups the data never completed: prior (early founders) scaled to the fitted tempo
    source = {k: "fit" for k in by_group}
    for k, v in DEFAULT_PARAMS["cycle"]["by_group"].items():
        if k not in by_group and ":" not in k:
            by_group[k] = {"mean": v["mean"], "n": 0, "n_divided": 0, "sd_log": None}
            source[k] = "prior"
    # AB and P1 are born before every recording starts. AB: the AB:1 life times the
    # literature ratio AB/ABa (~1.05); P1: AB plus the gap between the AB and P1 divisions
    # (first ABa to first EMS), measured where both were recorded.
    if "AB:1" in by_group:
        by_group["AB:0"] = {"mean": round(1.05 * by_group["AB:1"]["mean"], 3), "n": 0, "n_divided": 0, "sd_log": None}
        source["AB:0"] = "prior ratio 1.05 x AB:1"
        gaps = []
        for e, t in all_tabs.items():
            f = pd.Series(points[e]).groupby(t["cell"].to_numpy()).min()
            if {"ABa", "EMS"} <= set(f.index) and f["ABa"] > 0:
                gaps.append((f["EMS"] - f["ABa"]) / tempo[e])
        if gaps:
            by_group["P1"] = {"mean": round(by_group["AB:0"]["mean"] + float(np.mean(gaps)), 3), "n": len(gaps),
                              "n_divided": len(gaps), "sd_log": None}
            source["P1"] = "AB:0 + fitted gap between the AB and P1 divisions"
    # lower bounds from left-censored founders (e.g. AB seen from the first frame)
    for e, d in lives.items():
        for c, life, st in zip(d.cell, d.life, d.status):
            if st == "divided" and d.set_index("cell").loc[c, "left_censored"]:
                grp = lineage_group(c)
                if grp in by_group and source.get(grp, "").startswith("prior"):
                    by_group[grp]["mean"] = round(max(by_group[grp]["mean"], life / tempo[e]), 3)
    tempo_ref = [tempo[e] for e in names]
    group_sd = 0.0
    if len(resid) > 10:
        r = pd.DataFrame(resid, columns=["res", "life", "embryo", "group"])
        # whole time points blur each life by ~1/sqrt(6) tp (two rounded ends): remove that variance
        quant = float(np.mean((1.0 / np.sqrt(6.0) / r["life"]) ** 2))
        # split the rest into a part shared by the cells of one lineage generation within an
        # embryo (keeps division waves synchronous) and a part of each cell
        gm = r.groupby(["embryo", "group"])["res"].transform("mean")
        gn = r.groupby(["embryo", "group"])["res"].transform("size")
        multi = gn >= 4
        within = float(np.var((r["res"] - gm)[multi]) * np.mean(gn[multi] / (gn[multi] - 1)))
        cell_var = max(within - quant, 0.0)
        means = r[multi].groupby(["embryo", "group"]).agg(m=("res", "mean"), n=("res", "size"))
        group_var = max(float(np.var(means["m"])) - float(np.mean(within / means["n"])), 0.0)
        cell_sd, group_sd = float(np.sqrt(cell_var)), float(np.sqrt(group_var))
    else:
        cell_sd = DEFAULT_PARAMS["cycle"]["cell_sd_log"]

    # ---- apoptoses
    deaths: dict[str, list[float]] = {}
    fates: dict[str, list[tuple[str, float]]] = {}
    for e, d in lives.items():
        d = d[~d.left_censored]
        for c, life, st in zip(d.cell, d.life, d.status):
            fates.setdefault(c, []).append((st, life / tempo[e]))
            if st == "died" and c not in ("P4", "Z2", "Z3") and life / tempo[e] >= min_death_life:
                deaths.setdefault(c, []).append(life / tempo[e])
    apoptosis = {}
    for c, v in sorted(deaths.items()):
        life = float(np.median(v))
        # embryos that could have shown the death: it divided, or was followed past that age
        seen = sum(1 for st, lf in fates[c] if st in ("divided", "died") or (st == "censored" and lf >= life))
        apoptosis[c] = {"p": round(len(v) / max(seen, len(v)), 3), "life": round(life, 2), "n": len(v)}

    # ---- division letters
    letters: dict[str, str] = {}
    votes: dict[str, dict[str, int]] = {}
    for d in lives.values():
        for c, ls in zip(d.cell, d.letters):
            if len(ls) == 2 and ls in ("ap", "lr", "dv"):
                votes.setdefault(c, {}).setdefault(ls, 0)
                votes[c][ls] += 1
    for c, v in votes.items():
        best = max(v, key=v.get)
        if best != "ap":
            letters[c] = {"ap": "ap", "lr": "lr", "dv": "dv"}[best]

    # ---- nuclear size against cell count (EPIC-frame tables only)
    xs, ys, cells, embs = [], [], [], []
    for e, t in zip(names, main):
        n = t.groupby("time")["cell"].transform("size").to_numpy(float)
        ok = (t["size"] > 0).to_numpy() & (n >= 4)
        xs.append(np.log(n[ok]))
        ys.append(np.log(t["size"].to_numpy(float)[ok]))
        cells.append((e + ":" + t["cell"].astype(str)).to_numpy()[ok])
    lx, ly, lc = np.concatenate(xs), np.concatenate(ys), np.concatenate(cells)
    slope, intercept = np.polyfit(lx, ly, 1)
    res = ly - (intercept + slope * lx)
    rs = pd.Series(res).groupby(lc)
    cell_mean = rs.transform("mean").to_numpy()
    sizes = np.exp(ly)
    # the measured curve (median size per log-spaced cell-count bin): early nuclei are
    # smaller than the power law says
    edges = np.log(np.array([4, 6, 9, 13, 19, 28, 40, 58, 84, 122, 176, 256, 370, 540, 800]))
    kbin = np.digitize(lx, edges)
    curve_n, curve_s = [], []
    for k in np.unique(kbin):
        sel = kbin == k
        if 0 < k < len(edges) and sel.sum() >= 50:
            curve_n.append(round(float(np.exp(np.median(lx[sel]))), 2))
            curve_s.append(round(float(np.exp(np.median(ly[sel]))), 2))
    size = {
        "curve_n": curve_n,
        "curve_size": curve_s,
        "s0": round(float(np.exp(intercept)), 3),
        "alpha": round(float(-slope), 4),
        "sd_log_cell": round(float(np.std(cell_mean)), 4),
        "sd_log_time": round(float(np.std(res - cell_mean)), 4),
        "min": float(sizes.min()),
        "max": float(sizes.max()),
    }

    # ---- geometry
    ells = [t.attrs.get("ellipse") for t in main if t.attrs.get("ellipse")]
    envs = [v for v in (_envelope(t) for t in main) if v]
    zscales = [float(t.attrs["zscale"]) for t in main if t.attrs.get("zscale")]
    zscale = float(np.median(zscales)) if zscales else DEFAULT_PARAMS["zscale"]
    spts = []
    for t in main:
        ts = t.attrs.get("time_seconds")
        if ts:
            tt = np.array(sorted(int(k) for k in ts))
            tt = tt[tt <= int(t["time"].max())]
            sec = np.array([float(ts[k]) for k in tt])
            if len(tt) > 1:  # per time point, one per the step of the times given
                spts.append(float((sec[-1] - sec[0]) / time_point_numbers(tt)[-1]))
    embryo = dict(DEFAULT_PARAMS["embryo"])
    if ells:
        def ms(key):
            v = np.array([float(e[key]) for e in ells])
            return [round(float(v.mean()), 2), round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 2)]

        embryo.update(maj=ms("maj"), min=ms("min"), xc=ms("xc"), yc=ms("yc"))
    if envs:
        ku = float(np.mean([v["ku"] for v in envs]))
        kv = float(np.mean([v["kv"] for v in envs]))
        kw = float(np.mean([v["kw"] for v in envs]))
        zc = np.array([v["zc"] for v in envs])
        embryo.update(
            inner=[round(ku, 4), round(kv, 4), round(kw, 4)],
            zc=[round(float(zc.mean()), 2), round(float(zc.std(ddof=1)) if len(zc) > 1 else 0.0, 2)],
        )
    # shell along z: the nuclear envelope plus the margin seen along the minor axis
    ku, kv, kw = embryo["inner"]
    embryo["shell_z_semi_frac"] = round(float(min(1.0, kw + max(0.0, 1.0 - kv))), 4)
    # mean normalised radius of each population per cell-count bin (gastrulation: E, MS,
    # D and Z2/Z3 move inside; AB and C stay near the surface)
    rad = [radial_positions(t, embryo["shell_z_semi_frac"]) for t in main if t.attrs.get("ellipse") and t.attrs.get("zscale")]
    radial = None
    if rad:
        rr = pd.concat(rad, ignore_index=True).dropna(subset=["letter"])
        rr["bin"] = np.digitize(rr["n"], RADIAL_BINS[1:-1])
        tab = rr.groupby(["letter", "bin"])["r"].agg(["mean", "size"])
        radial = {"bins": list(RADIAL_BINS), "mean": {}}
        for letter in sorted(rr["letter"].unique()):
            vals = []
            for i in range(len(RADIAL_BINS) - 1):
                if (letter, i) in tab.index and tab.loc[(letter, i), "size"] >= 20:
                    vals.append(round(float(tab.loc[(letter, i), "mean"]), 4))
                else:
                    vals.append(None)
            radial["mean"][letter] = vals
    observed = motion_stats(main)

    params = {
        "version": 1,
        "source": "fitted by devolens.lineage.fit.fit_simulator_params",
        "embryos": names,
        "cycle_embryos": xnames,
        "seconds_per_time": round(float(np.median(spts)), 3) if spts else DEFAULT_PARAMS["seconds_per_time"],
        "zscale": zscale,
        "default_n_cells": DEFAULT_PARAMS["default_n_cells"],
        "start": DEFAULT_PARAMS["start"],
        "p0_life": DEFAULT_PARAMS["p0_life"],
        "embryo": embryo,
        "cycle": {
            "by_name": dict(sorted(by_name.items())),
            "by_group": dict(sorted(by_group.items())),
            "group_source": dict(sorted(source.items())),
            "growth": round(growth, 4),
            "tempo": {e: round(v, 4) for e, v in tempo.items()},
            "tempo_sd_log": round(float(np.std(np.log(tempo_ref), ddof=1)) if len(tempo_ref) > 1 else 0.0, 4),
            "cell_sd_log": round(cell_sd, 4),
            "group_sd_log": round(group_sd, 4),
            "min_life": 2.0,
        },
        "division_letters": dict(sorted(letters.items())),
        "size": size,
        "apoptosis": apoptosis,
        "physics": dict(DEFAULT_PARAMS["physics"]),
        "radial": radial,
        "observed": observed,
    }
    if calibrate and observed["nn_over_length"]:
        params["physics"], err = calibrate_physics(params, observed, progress=progress)
        params["physics_calibration_error"] = round(err, 5)
    return params
