"""The population composition table follows the invariant lineage: the germline is one cell until P4 divides, no
lineage falls as the total grows, the first totals are the invariant embryo's, and one embryo cannot decide a
stage alone (fit_composition: one vote per embryo)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from devolens.predict.population import LETTERS, fit_composition

P, Z = LETTERS.index("P"), LETTERS.index("Z")


def _embryo(totals, z_from: int | None, rows_per_total: int = 1) -> pd.DataFrame:
    """A population table: A holds most cells, E/M/C/D a share, the germline P until ``z_from`` cells, then Z=2."""
    rows = []
    for n in totals:
        for _ in range(rows_per_total):
            germ = (0, 2) if z_from is not None and n >= z_from else (1, 0)
            soma = n - sum(germ)
            e, m, c, d = (int(round(soma * f)) for f in (0.05, 0.12, 0.08, 0.03))
            a = soma - e - m - c - d
            rows.append({"A": a, "E": e, "M": m, "P": germ[0], "C": c, "D": d, "Z": germ[1], "total": n})
    return pd.DataFrame(rows)


def test_germline_is_one_cell_and_one_slow_embryo_cannot_outvote_the_others():
    totals = list(range(4, 300, 3))
    good = [_embryo(totals, z_from=88 + s) for s in range(3)]
    # an embryo whose P4 is never followed, with ten time points at every total (a slow or densely filmed one)
    stuck = _embryo(totals, z_from=None, rows_per_total=10)
    table = fit_composition([*good, stuck], max_total=300)
    assert np.all(table[1:, P] <= 1.0 + 1e-6) and np.all(table[:, Z] <= 2.0 + 1e-6)
    np.testing.assert_allclose(table[1:, P] + table[1:, Z] / 2, 1.0, atol=1e-5)  # one germline cell or its daughters
    assert table[150, P] < 0.05 and table[150, Z] > 1.95  # the three embryos that follow P4 decide
    np.testing.assert_allclose(table.sum(axis=1), np.arange(301), atol=1e-3)


def test_first_totals_are_the_invariant_embryos_and_no_lineage_falls():
    totals = list(range(4, 200))
    table = fit_composition([_embryo(totals, z_from=88 + s) for s in range(3)], max_total=200)
    expect = {1: {"P": 1}, 2: {"A": 1, "P": 1}, 3: {"A": 2, "P": 1}, 4: {"A": 2, "E": 1, "P": 1}}
    for n, letters in expect.items():
        np.testing.assert_allclose(table[n], [letters.get(k, 0) for k in LETTERS], atol=1e-6)
    soma = [i for i in range(len(LETTERS)) if i not in (P, Z)]
    assert np.diff(table[5:, soma].astype(float), axis=0).min() > -0.6  # isotonic, up to the rescale to the total
