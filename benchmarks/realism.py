"""How real is the digital embryo? Simulated embryos against every shared real embryo.

Compares (1) total cells against time, aligned at the 4-cell stage, (2) the fractions of
each population letter at 50/100/200/350 cells, (3) nearest-neighbour distances normalised
by the embryo length. Prints the figures, writes benchmarks/results_realism.md and
docs/simulator_vs_real.png.

Usage:
    .venv/bin/python benchmarks/realism.py [--seeds 30] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from devolens.io.atomic import atomic_path, write_text  # noqa: E402
from devolens.io.tables import read_table  # noqa: E402
from devolens.lineage.cliffs import clean_table  # noqa: E402
from devolens.lineage.fit import nn_distances  # noqa: E402
from devolens.lineage.populations import populations  # noqa: E402
from devolens.lineage.simulate import simulate_embryo  # noqa: E402

LETTERS = ["A", "E", "M", "P", "C", "D", "Z"]
STAGES = [50, 100, 200, 350]
LO, HI = 4, 350


def data_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("DEVOLENS_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def count_curve(df: pd.DataFrame) -> pd.Series:
    """Total cells per time point (index: time)."""
    pops = populations(df)
    return pd.Series(pops["total"].to_numpy(), index=pops["time"].to_numpy())


def first_time_at(curve: pd.Series, n: int) -> float | None:
    hit = curve.index[curve.to_numpy() >= n]
    return float(hit[0]) if len(hit) else None


def align(curves: dict[str, pd.Series], by_division: bool = True) -> tuple[dict[str, pd.Series], dict[str, str]]:
    """Shift each curve so that t = 0 is its first time point with >= 4 cells.

    Embryos recorded from the 4-cell stage on (its onset not seen) are aligned by their first
    division after it (ABa/ABp), minus the mean delay of that division in the embryos whose
    onset was recorded; embryos recorded from a later stage by the time at which they reach
    12, 24 and 50 cells, matched to the mean of the embryos whose onset was recorded.
    """
    t4 = {}
    how = {}
    for e, c in curves.items():
        if c.iloc[0] < 4 and first_time_at(c, 4) is not None:
            t4[e] = first_time_at(c, 4)
            how[e] = "4-cell"
    ref = [e for e in curves if e in t4]
    for e, c in curves.items():
        if e in t4:
            continue
        if by_division and c.iloc[0] == 4 and first_time_at(c, 5) is not None and c.index[0] < first_time_at(c, 5):
            # seen at 4 cells: the first division after it (ABa/ABp) minus its mean delay
            delay = [first_time_at(curves[r], 5) - t4[r] for r in ref if first_time_at(curves[r], 5) is not None]
            if delay:
                t4[e] = float(np.round(first_time_at(c, 5) - np.mean(delay)))
                how[e] = "first division after the 4-cell stage"
                continue
        offs = []
        for n in (12, 24, 50):
            ref_t = [first_time_at(curves[r], n) - t4[r] for r in ref if first_time_at(curves[r], n) is not None]
            te = first_time_at(c, n)
            if ref_t and te is not None:
                offs.append(te - float(np.mean(ref_t)))
        t4[e] = float(np.round(np.mean(offs)))
        how[e] = "matched at 12/24/50 cells"
    return {e: pd.Series(c.to_numpy(), index=c.index - t4[e]) for e, c in curves.items()}, how


def mean_curve(curves: dict[str, pd.Series], min_n: int) -> pd.Series:
    df = pd.DataFrame(curves)
    df = df.sort_index()
    ok = df.notna().sum(axis=1) >= min_n
    return df[ok].mean(axis=1)


def deviation(sim: pd.Series, real: pd.Series, lo: int = LO) -> tuple[float, float, float]:
    """Max and mean |sim - real| / real over aligned times where lo <= real <= 350; and the
    mean absolute difference in time (time points) to reach 8, 16, ..., 350 cells."""
    idx = sim.index.intersection(real.index)
    r = real[idx]
    keep = (r >= lo) & (r <= HI)
    rel = (sim[idx][keep] - r[keep]).abs() / r[keep]
    dt = []
    for n in (8, 16, 32, 64, 128, 256, 350):
        a, b = first_time_at(sim, n), first_time_at(real, n)
        if a is not None and b is not None:
            dt.append(abs(a - b))
    return float(rel.max()), float(rel.mean()), float(np.mean(dt)) if dt else float("nan")


def fractions_at(df: pd.DataFrame, n: int) -> dict[str, float] | None:
    pops = populations(df)
    hit = pops[pops["total"] >= n]
    if hit.empty:
        return None
    row = hit.iloc[0]
    return {k: float(row[k]) / float(row["total"]) for k in LETTERS}


def nn_at(df: pd.DataFrame, n: int, length: float, zscale: float) -> np.ndarray | None:
    pops = populations(df)
    hit = pops[pops["total"] >= n]
    if hit.empty:
        return None
    t = int(hit["time"].iloc[0])
    d = nn_distances(df[df["time"] == t], zscale)
    return d["nn"].to_numpy() / length


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30, help="simulated embryos (the mean curve of 10 still wobbles by ~3%% with the embryo tempo draws)")
    ap.add_argument("--data")
    ap.add_argument("--md", default=str(ROOT / "benchmarks" / "results_realism.md"))
    ap.add_argument("--fig", default=str(ROOT / "docs" / "simulator_vs_real.png"))
    args = ap.parse_args(argv)

    data = data_dir(args.data)
    real = {}
    for f in sorted((data / "epic").glob("CD*.csv")):
        df, _ = clean_table(read_table(f))
        real[str(df["embryo"].iloc[0])] = df
    t0 = time.perf_counter()
    sims = {}
    for s in range(args.seeds):
        df = simulate_embryo(s, n_cells=420)
        sims[str(df["embryo"].iloc[0])] = df
    sim_s = (time.perf_counter() - t0) / args.seeds

    rc = {e: count_curve(d) for e, d in real.items()}
    sc = {e: count_curve(d) for e, d in sims.items()}
    rca, how = align(rc)
    sca, _ = align(sc)
    # a simulated embryo stops at 420 cells: hold its last count so the mean stays defined
    horizon = max(c.index.max() for c in rca.values())
    for e, c in list(sca.items()):
        idx = np.arange(c.index.min(), horizon + 1)
        sca[e] = c.reindex(idx).ffill()
    real_mean = mean_curve(rca, min_n=len(rca))
    sim_mean = mean_curve(sca, min_n=len(sca))

    lines = []
    out = lines.append
    out("## Digital embryo realism (simulator vs real embryos)\n")
    out(f"Command: `.venv/bin/python benchmarks/realism.py --seeds {args.seeds}` "
        f"(parameters fitted by `.venv/bin/python benchmarks/fit_simulator.py`).\n")
    out(f"{args.seeds} simulated embryos (seeds 0..{args.seeds - 1}, grown from P0 to 420 cells, "
        f"{sim_s:.2f} s each) against {len(real)} real EPIC embryos (cut at their annotation cliffs). "
        "Time is aligned at the first time point with >= 4 cells. Where the 4-cell onset was not "
        "recorded, embryos seen at 4 cells are aligned by their first division after it (minus "
        "its mean delay in the embryos whose onset was recorded) and later-starting ones by when "
        "they reach 12/24/50 cells ("
        + ", ".join(f"{e}: {h}" for e, h in how.items() if h != "4-cell") + ").\n")
    out("### Total cells against time (4-350 cells of the real mean curve)\n")
    out("| compared with | max rel. dev. | mean rel. dev. | mean |dt| to reach 8..350 cells (time points) |")
    out("|---|---|---|---|")
    mx, mn, dt = deviation(sim_mean, real_mean)
    out(f"| real mean curve | {mx:.1%} | {mn:.1%} | {dt:.1f} |")
    per = []
    for e, c in rca.items():
        m1, m2, d = deviation(sim_mean, c)
        per.append((m1, m2, d))
        out(f"| {e} | {m1:.1%} | {m2:.1%} | {d:.1f} |")
    # spread among the real embryos themselves, for scale: each real one against the mean of the others
    loo = []
    for e in rca:
        others = mean_curve({k: v for k, v in rca.items() if k != e}, min_n=len(rca) - 1)
        loo.append(deviation(rca[e], others))
    loo = np.array(loo)
    out(f"| (real vs mean of the other real ones, average) | {loo[:, 0].mean():.1%} | {loo[:, 1].mean():.1%} | {loo[:, 2].mean():.1f} |")
    # the same with the cruder alignment (every embryo whose onset is unseen matched at 12/24/50 cells)
    rca_alt, _ = align(rc, by_division=False)
    alt = deviation(sim_mean, mean_curve(rca_alt, min_n=len(rca_alt)))
    mx24, mn24, _ = deviation(sim_mean, real_mean, lo=24)
    loo24 = np.array([deviation(rca[e], mean_curve({k: v for k, v in rca.items() if k != e}, min_n=len(rca) - 1), lo=24)
                      for e in rca])
    worst = None
    idx = sim_mean.index.intersection(real_mean.index)
    rel = ((sim_mean[idx] - real_mean[idx]).abs() / real_mean[idx])[(real_mean[idx] >= LO) & (real_mean[idx] <= HI)]
    if len(rel):
        tw = rel.idxmax()
        worst = (tw, real_mean[tw], sim_mean[tw])
    target_ok = mn <= 0.15 and mx <= 0.15
    out("")
    out(f"Target (simulated mean within 15% of the real mean over 4-350 cells): "
        f"{'met' if target_ok else 'NOT met'} for the maximum ({mx:.1%}), "
        f"{'met' if mn <= 0.15 else 'not met'} on average ({mn:.1%}).")
    if worst is not None:
        out(f"The largest deviation is at aligned time {worst[0]:.0f} (real mean {worst[1]:.1f} cells, "
            f"simulated mean {worst[2]:.1f}). Over 24-350 cells: max {mx24:.1%}, mean {mn24:.1%} "
            f"(a real embryo against the mean of the others: max {loo24[:, 0].mean():.1%}, mean "
            f"{loo24[:, 1].mean():.1%}). Counts are step functions (division waves), so a wave one or two "
            "time points early or late moves the count by 15-50% for a moment; the time to reach a "
            "count (last column) is the steadier measure.")
    out(f"The alignment of the real embryos whose 4-cell onset was not recorded matters: aligning "
        f"all of them by when they reach 12/24/50 cells instead gives max {alt[0]:.1%}, mean {alt[1]:.1%}, "
        f"mean |dt| {alt[2]:.1f} time points (the early waves of those embryos then fall 2-3 time points "
        "later than in the two embryos recorded from the 2-cell stage).\n")

    out("### Fraction of each population at 50/100/200/350 cells (sim mean / real mean)\n")
    out("| cells | " + " | ".join(LETTERS) + " |")
    out("|---|" + "---|" * len(LETTERS))
    frac_tab = {}
    for n in STAGES:
        fr = [f for f in (fractions_at(d, n) for d in real.values()) if f]
        fs = [f for f in (fractions_at(d, n) for d in sims.values()) if f]
        rm = {k: np.mean([f[k] for f in fr]) for k in LETTERS}
        sm = {k: np.mean([f[k] for f in fs]) for k in LETTERS}
        frac_tab[n] = (sm, rm, len(fs), len(fr))
        out(f"| {n} (n={len(fs)}/{len(fr)}) | " + " | ".join(f"{sm[k]:.3f} / {rm[k]:.3f}" for k in LETTERS) + " |")
    out("")

    out("### Nearest-neighbour distance / embryo length (3D, z scaled to pixels)\n")
    out("| cells | sim median [IQR] | real median [IQR] | KS statistic (p) |")
    out("|---|---|---|---|")
    nn_tab = {}
    for n in STAGES:
        r = [nn_at(d, n, d.attrs["ellipse"]["maj"], d.attrs["zscale"]) for d in real.values() if d.attrs.get("ellipse")]
        s = [nn_at(d, n, d.attrs["ellipse"]["maj"], d.attrs["zscale"]) for d in sims.values()]
        r = np.concatenate([x for x in r if x is not None])
        s = np.concatenate([x for x in s if x is not None])
        ks = ks_2samp(s, r)
        nn_tab[n] = (s, r)
        q = lambda a: f"{np.median(a):.4f} [{np.percentile(a, 25):.4f}-{np.percentile(a, 75):.4f}]"  # noqa: E731
        out(f"| {n} | {q(s)} | {q(r)} | {ks.statistic:.3f} ({ks.pvalue:.2g}) |")
    out("")
    out("Real NN distances use the 5 embryos with an AuxInfo ellipse (length = major axis).\n")

    out("### Nuclear size (diameter, pixels): median [10th-90th percentile] per cell-count range\n")
    out("| cells | sim | real |")
    out("|---|---|---|")

    def sizes(group: dict, lo: int, hi: int) -> np.ndarray:
        vals = []
        for d in group.values():
            n = d.groupby("time")["time"].transform("size")
            vals.append(d.loc[(n >= lo) & (n <= hi), "size"].to_numpy(float))
        return np.concatenate(vals)

    for lo, hi in ((4, 8), (12, 30), (50, 100), (150, 250), (300, 400)):
        a, b = sizes(sims, lo, hi), sizes(real, lo, hi)
        q2 = lambda v: f"{np.median(v):.1f} [{np.percentile(v, 10):.1f}-{np.percentile(v, 90):.1f}]"  # noqa: E731
        out(f"| {lo}-{hi} | {q2(a)} | {q2(b)} |")
    out("")

    out("### Where each population lies: mean normalised radius in the eggshell (0 centre, 1 shell)\n")
    from devolens.lineage.fit import radial_positions

    from devolens.lineage.simulate import load_params

    zfrac = load_params()["embryo"]["shell_z_semi_frac"]
    out("| cells | " + " | ".join(LETTERS) + " |")
    out("|---|" + "---|" * len(LETTERS))
    for n in STAGES:
        cells = {}
        for kind, group in (("sim", sims), ("real", real)):
            vals = []
            for d in group.values():
                if not d.attrs.get("ellipse"):
                    continue
                cnt = d.groupby("time").size()
                hit = cnt.index[cnt >= n]
                if not len(hit):
                    continue
                rp = radial_positions(d[d["time"] == hit[0]], zfrac)
                vals.append(rp.groupby("letter")["r"].mean())
            cells[kind] = pd.concat(vals, axis=1).mean(axis=1) if vals else pd.Series(dtype=float)
        def fmt(k: str) -> str:
            a, b = cells["sim"].get(k, np.nan), cells["real"].get(k, np.nan)
            if not (np.isfinite(a) or np.isfinite(b)):
                return "-"
            return " / ".join(f"{v:.2f}" if np.isfinite(v) else "-" for v in (a, b))

        out(f"| {n} | " + " | ".join(fmt(k) for k in LETTERS) + " |")
    out("")
    out("(sim / real; the z semi-axis of the shell is the fitted "
        f"{zfrac:.2f} x the minor semi-axis; the real z centre is the median nuclear z.)\n")

    text = "\n".join(lines) + "\n"
    write_text(args.md, text)
    print(text)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axs[0]
    for c in rca.values():
        ax.plot(c.index, c.to_numpy(), color="0.6", lw=0.8)
    for c in sca.values():
        ax.plot(c.index, c.to_numpy(), color="tab:red", lw=0.5, alpha=0.4)
    ax.plot(real_mean.index, real_mean.to_numpy(), color="k", lw=2, label="real mean")
    ax.plot(sim_mean.index, sim_mean.to_numpy(), color="tab:red", lw=2, label="simulated mean")
    ax.set_xlim(-5, horizon)
    ax.set_ylim(0, 420)
    ax.set_xlabel("time points since the 4-cell stage (~90 s)")
    ax.set_ylabel("cells")
    ax.set_title("total cells (grey/red thin: single embryos)")
    ax.legend()
    ax = axs[1]
    width = 0.1
    for i, n in enumerate(STAGES):
        sm, rm, _, _ = frac_tab[n]
        x = np.arange(len(LETTERS)) + (i - 1.5) * 2 * width
        ax.bar(x - width / 2, [rm[k] for k in LETTERS], width, color=plt.cm.Greys(0.3 + 0.15 * i),
               label=f"real {n}")
        ax.bar(x + width / 2, [sm[k] for k in LETTERS], width, color=plt.cm.Reds(0.3 + 0.15 * i),
               label=f"sim {n}")
    ax.set_xticks(np.arange(len(LETTERS)), LETTERS)
    ax.set_ylabel("fraction of cells")
    ax.set_title("population letters at 50/100/200/350 cells")
    ax.legend(ncol=2, fontsize=7)
    ax = axs[2]
    pos = np.arange(len(STAGES))
    ax.boxplot([nn_tab[n][1] for n in STAGES], positions=pos - 0.18, widths=0.3, showfliers=False,
               patch_artist=True, boxprops={"facecolor": "0.8"})
    ax.boxplot([nn_tab[n][0] for n in STAGES], positions=pos + 0.18, widths=0.3, showfliers=False,
               patch_artist=True, boxprops={"facecolor": "tab:red", "alpha": 0.5})
    ax.set_xticks(pos, [str(n) for n in STAGES])
    ax.set_xlabel("cells")
    ax.set_ylabel("NN distance / embryo length")
    ax.set_title("nearest-neighbour distance (grey real, red sim)")
    fig.tight_layout()
    Path(args.fig).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.fig) as tmp:
        fig.savefig(tmp, dpi=110)
    print(f"wrote {args.md} and {args.fig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
