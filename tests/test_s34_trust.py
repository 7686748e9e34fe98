"""Trust in identify's names (session 34): a table whose curation stopped part-way (an annotation cliff) no longer
renames the cells before the cliff, and identify says where the cliff is; the confidence figures say which models
they were measured on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.predict.identity import annotation_cliffs, cliff_rows, identity_labels, prepare_clouds, tracklets

from _identity_helpers import needs_zoo, random_predictor

#: the synthetic embryo's last good time point: 60 cells up to it, 15 after it
CLIFF = 12


def cliff_table(n: int = 60, kept: int = 15, times: int = 20, seed: int = 0) -> pd.DataFrame:
    """``n`` named cells drifting a few pixels per time point in an embryo-sized ellipsoid (each cell its own
    tracklet), whose curation stopped after time :data:`CLIFF`: only ``kept`` of them are annotated later (an
    annotation cliff, ``n`` -> ``kept`` cells, that never recovers)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-1, 1, size=(40 * n, 3))
    p = p[(p ** 2).sum(1) <= 1]
    kept_points: list[np.ndarray] = []
    for q in p * [250.0, 150.0, 20.0] + [300.0, 250.0, 20.0]:  # nuclei at least 40 px apart
        if all(np.linalg.norm((q - k) * [1, 1, 5]) >= 40 for k in kept_points):
            kept_points.append(q)
            if len(kept_points) == n:
                break
    pos = np.array(kept_points)
    parts = []
    for t in range(1, times + 1):
        m = n if t <= CLIFF else kept
        parts.append(pd.DataFrame({"embryo": "toy", "time": t, "cell": [f"ABa{'lr'[i % 2]}{i}" for i in range(m)],
                                   "x": pos[:m, 0], "y": pos[:m, 1], "z": pos[:m, 2], "size": 25.0}))
        pos = pos + rng.normal(0, 3.0, size=pos.shape) * [1, 1, 0.2]
    df = pd.concat(parts, ignore_index=True)
    df.attrs["zscale"] = 5.0
    return df


# ----------------------------------------------------------------------------- annotation cliffs
def test_annotation_cliffs_are_found_as_the_lineage_commands_find_them():
    from devolens.lineage.cliffs import find_cliffs

    df = cliff_table()
    found = annotation_cliffs(df)
    assert list(found) == ["toy"] and found["toy"] == find_cliffs(df).cliffs[0]
    assert (found["toy"].time, found["toy"].before, found["toy"].after) == (CLIFF, 60, 15)
    assert cliff_rows(df, found).tolist() == (df["time"] > CLIFF).tolist()
    # a positions table without names counts every row: the same cliff
    assert annotation_cliffs(df.drop(columns="cell"))["toy"].time == CLIFF
    # none on the table cut at the cliff, and none where the times are no whole numbers (no counts to make)
    assert annotation_cliffs(df[df["time"] <= CLIFF]) == {}
    assert annotation_cliffs(df.assign(time=df["time"] + 0.5)) == {}
    # a row at a mistyped time after a short table is a lone time point, not a cliff (lineage and identify agree)
    short = df[df["time"] <= 4]
    typo = pd.concat([short, short.iloc[[0]].assign(time=10**9)], ignore_index=True)
    assert not find_cliffs(typo).cliffs and annotation_cliffs(typo) == {}


def test_tracklets_never_link_across_an_annotation_cliff():
    """The lineage smoothing linked the few cells still annotated after the cliff to the cells before it, and
    carried what it read there back up their lineage: the time points after the cliff are now linked apart."""
    df = cliff_table()
    late = cliff_rows(df, annotation_cliffs(df))
    clouds = prepare_clouds(df, after=late)
    assert [c["after_cliff"] for c in clouds] == [t > CLIFF for t in range(1, 21)]
    tracks, parents = tracklets(clouds, return_parents=True)
    before, after = set(tracks[~late]), set(tracks[late])
    assert not before & after  # no tracklet crosses the cliff ...
    assert all(parents[t] == -1 or parents[t] in after for t in after)  # ... nor does any parent link
    # without the cliff marked, the cells kept after it continue their tracklets (what the smoothing read across)
    tracks, _ = tracklets(prepare_clouds(df), return_parents=True)
    assert set(tracks[~late]) & set(tracks[late])


@pytest.mark.parametrize("smooth", ["lineage", "tracklets", "none"])
def test_rows_before_a_cliff_are_named_as_in_the_table_cut_there(smooth):
    """The rows before the cliff get the names (and probabilities) of the table cut at it, `devolens lineage clean`'s:
    the embryo frame is read from them alone and the smoothing does not cross the cliff. On CD20240930_JIM762_L4 the
    founder accuracy of those rows was 0.890 with the whole table, 0.981 cut (the test below)."""
    df = cliff_table()
    pred = random_predictor(smooth)
    whole = pred.predict(df)
    cut = pred.predict(df[df["time"] <= CLIFF])
    pre = whole[whole["time"] <= CLIFF]
    assert pre["pred_depth1"].tolist() == cut["pred_depth1"].tolist()
    assert pre["pred_founder"].tolist() == cut["pred_founder"].tolist()
    np.testing.assert_allclose(pre["confidence"].to_numpy(float), cut["confidence"].to_numpy(float), atol=1e-6)
    assert whole.attrs["annotation_cliffs"] == {"toy": {"time": CLIFF, "before": 60, "after": 15,
                                                        "first_bad_time": CLIFF + 1, "after_time": CLIFF + 1}}
    assert cut.attrs["annotation_cliffs"] == {}
    assert whole["pred_depth1"].notna().all()  # the rows after the cliff are named too
    # predict_proba reads the cliff alike
    pf, pd1 = pred.predict_proba(df)
    cf, cd1 = pred.predict_proba(df[df["time"] <= CLIFF])
    n = len(cut)
    np.testing.assert_allclose(pf[:n], cf, atol=1e-6)
    np.testing.assert_allclose(pd1[:n], cd1, atol=1e-6)


def test_the_cliff_note_names_its_time_and_lineage_clean():
    from devolens.cli.identify import _input_notes

    df = cliff_table()
    notes = _input_notes(random_predictor().predict(df).attrs, "my table.csv")
    said = [n for n in notes if "annotation cliff" in n]
    assert len(said) == 1
    assert f"annotation cliff after time {CLIFF}: 60 -> 15 cells at time {CLIFF + 1}" in said[0]
    assert f"`devolens lineage clean 'my table.csv' --out CLEAN.csv` cuts the table after time {CLIFF}" in said[0]
    # several embryos: each named, and the command picks its embryo
    two = pd.concat([df, df.assign(embryo="other", x=df["x"] + 2000)], ignore_index=True)
    notes = [n for n in _input_notes(random_predictor().predict(two).attrs, "t.csv") if "annotation cliff" in n]
    assert len(notes) == 2 and notes[1].startswith("embryo other: annotation cliff after time 12")
    assert "`devolens lineage clean t.csv --embryo other --out CLEAN.csv`" in notes[1]
    # no cliff: no note
    assert not any("annotation cliff" in n for n in _input_notes(random_predictor().predict(df[df.time <= 12]).attrs))


@needs_zoo
def test_identify_notes_the_cliff_and_records_it(tmp_path, capsys):
    src = tmp_path / "cliff.csv"
    cliff_table().to_csv(src, index=False)
    out = tmp_path / "names.csv"
    assert main(["identify", str(src), "--out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"note: the table: annotation cliff after time {CLIFF}" in err and "devolens lineage clean" in err
    record = json.loads(out.with_suffix(".json").read_text())
    assert any(f"annotation cliff after time {CLIFF}" in n and "devolens lineage clean" in n
               for n in record["notes"])


@needs_zoo
def test_a_real_table_with_a_cliff_names_its_good_part_as_cleaned(epic_tables):
    """CD20240930_JIM762_L4 (345 -> 92 cells after time 164): the shipped model named its rows up to time 164 with
    founder accuracy 0.890 from the whole table, 0.981 from the table `lineage clean` cuts; now alike."""
    from devolens.io.tables import read_table
    from devolens.lineage.cliffs import clean_table
    from devolens.models import load

    path = next((p for p in epic_tables if p.stem == "CD20240930_JIM762_L4"), None)
    if path is None:
        pytest.skip("CD20240930_JIM762_L4 not in the shared data")
    df = read_table(path)
    clean, report = clean_table(df)
    assert report.cliffs.last_good_time == 164
    pred = load("identity")
    whole, cut = pred.predict(df), pred.predict(clean)
    pre = whole[whole["time"] <= 164].reset_index(drop=True)
    assert len(pre) == len(cut)
    assert (pre["pred_depth1"] == cut["pred_depth1"]).all() and (pre["pred_founder"] == cut["pred_founder"]).all()
    truth = identity_labels(cut["cell"], 0)
    ok = truth.notna()
    assert (pre["pred_founder"][ok] == truth[ok]).mean() > 0.97


# ----------------------------------------------------------------------------- what the confidence figures are
def test_confidence_figures_say_they_come_from_fold_models(capsys):
    """identify's --help and the card quoted held-out reliability ("at 0.7-0.9 the depth-1 name was right 68 %")
    measured on leave-one-embryo-out fold models, as if of the shipped model: they now say so, and that the
    confidence stays high at late stages while the depth-1 names get worse."""
    from devolens.models.zoo import ZOO_DIR, card

    assert main(["identify", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("\u2502", " ").split())  # (without the help's box)
    assert "held-out fold models of the same recipe" in text
    assert "the shipped model's own held-out reliability cannot be measured" in text
    assert "in-sample, on the AceTree embryo" in text and "81 % above 520 cells" in text
    info = card("identity")
    assert "not the shipped ensemble" in info["metrics"]["confidence_reliability"]["how"]
    said = [x for x in info["limits"] if "fold models" in x and "cannot be measured" in x]
    assert len(said) == 1 and "81 % of them above 520 cells" in said[0]
    md = (ZOO_DIR / "identity" / "card.md").read_text()
    assert f"- {said[0]}\n" in md and info["metrics"]["confidence_reliability"]["how"] in md
