"""The identity model: labels, normalisation, LOEO splits, zoo predictor, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from devolens.errors import DevolensError
from devolens.predict.identity import (
    combine_probabilities,
    lineage_posterior,
    transition_matrix,
    tracklets,
    embryo_frame,
    estimate_zscale,
    identity_label,
    identity_labels,
    prepare_clouds,
)
from devolens.predict.identity_train import class_lists, knn_baseline, loeo_splits, train_identity

ZOO_OK = True
try:
    from devolens.models.zoo import ZOO_DIR

    ZOO_OK = (ZOO_DIR / "identity" / "weights.safetensors").is_file()
except Exception:  # pragma: no cover
    ZOO_OK = False
needs_zoo = pytest.mark.skipif(not ZOO_OK, reason="identity weights not shipped yet")


def toy_embryo(seed: int = 0, times: int = 6, name: str = "toy") -> pd.DataFrame:
    """A small elongated embryo: AB anterior (ABa before ABp), P lineage posterior."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(1, times + 1):
        n_ab = 4 + 2 * t
        for i in range(n_ab):
            half = "a" if i < n_ab // 2 else "p"
            ap = (-1.4 if half == "a" else -0.5) + rng.normal(0, 0.25)
            rows.append((name, t, "AB" + half + "l" * (i % 2), ap))
        for j in range(2 + t):
            cell = ["MSa", "Ea", "Cp", "Dp", "P4", "Z2", "MSp", "Ep"][j % 8]
            rows.append((name, t, cell, 0.6 + 0.12 * (j % 8) + rng.normal(0, 0.15)))
    df = pd.DataFrame(rows, columns=["embryo", "time", "cell", "ap"])
    n = len(df)
    r = rng.normal(0, 1, size=(n, 2)) * [0.55, 0.45]
    df["x"] = 300 + 100 * df.pop("ap") + 0 * r[:, 0]
    df["y"] = 250 + 100 * r[:, 0]
    df["z"] = 20 + 100 * r[:, 1] / 5.0
    df["size"] = rng.uniform(20, 30, n)
    df.attrs["zscale"] = 5.0
    return df


# ----------------------------------------------------------------------------- labels
def test_identity_labels_fold_p_and_z():
    assert identity_label("ABalp", 0) == "AB"
    assert identity_label("ABalp", 1) == "ABa"
    assert identity_label("P3", 1) == "P" and identity_label("P0", 0) == "P"
    assert identity_label("Z3", 0) == "Z" and identity_label("Z2", 1) == "Z"
    assert identity_label("EMS", 1) == "EMS" and identity_label("MS", 1) == "MS"
    assert identity_label("Nuc12", 0) is None and identity_label("", 1) is None
    s = identity_labels(pd.Series(["Eprp", "polar", "Cap"]), 1)
    assert s.iloc[0] == "Ep" and s.iloc[2] == "Ca" and pd.isna(s.iloc[1])


def test_combine_probabilities_consistent():
    founders = ["AB", "E", "EMS"]
    depth1 = ["ABa", "ABp", "EMS", "Ea", "Ep"]
    parent = np.array([0, 0, 2, 1, 1])
    pf = np.array([[0.2, 0.7, 0.1], [0.9, 0.05, 0.05]])
    pd1 = np.array([[0.4, 0.0, 0.0, 0.1, 0.5], [0.1, 0.8, 0.0, 0.05, 0.05]])
    f, d, conf = combine_probabilities(pf, pd1, parent)
    assert [founders[i] for i in f] == ["E", "AB"]
    assert [depth1[i] for i in d] == ["Ep", "ABp"]
    assert all(parent[d] == f)
    assert np.all((conf > 0) & (conf <= 1))


# ----------------------------------------------------------------------------- normalisation
def _rotate_table(df: pd.DataFrame, angle: float, scale: float, shift=(37.0, -12.0)) -> pd.DataFrame:
    c, s = np.cos(angle), np.sin(angle)
    out = df.copy()
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    out["x"] = scale * (c * x - s * y) + shift[0]
    out["y"] = scale * (s * x + c * y) + shift[1]
    out["z"] = df["z"] + 3.0  # shifted planes
    out["size"] = df["size"] * scale
    out.attrs = dict(df.attrs)
    if out.attrs.get("zscale") is not None:
        out.attrs["zscale"] = df.attrs["zscale"] * scale
    return out


@pytest.mark.parametrize("zscale", [5.0, None])
def test_frame_is_invariant_to_rotation_translation_scale(zscale):
    df = toy_embryo()
    df.attrs["zscale"] = zscale
    moved = _rotate_table(df, 1.1, 1.7)
    a = prepare_clouds(df)
    b = prepare_clouds(moved)
    for ca, cb in zip(a, b):
        np.testing.assert_allclose(ca["coords"], cb["coords"], atol=1e-6)
        np.testing.assert_allclose(ca["size"], cb["size"], atol=1e-9)


def test_frame_ap_axis_points_posterior_and_scales_to_length():
    df = toy_embryo()
    fr = embryo_frame(df.x, df.y, df.z, 5.0)
    u = fr.transform(df.x, df.y, df.z)
    assert np.isclose(u[:, 0].std(ddof=1), 1.0, atol=1e-6)
    # the toy's posterior P lineage is the short dense tail, AB the long spread: the sign
    # is deterministic and mirrored input gives the mirrored axis
    flipped = df.assign(x=-df.x)
    fr2 = embryo_frame(flipped.x, flipped.y, flipped.z, 5.0)
    assert np.isclose(abs(fr.axes[0, 0]), abs(fr2.axes[0, 0]), atol=1e-9)
    assert np.sign(fr.axes[0, 0]) == -np.sign(fr2.axes[0, 0])


def test_estimate_zscale_recovers_known_spacing():
    rng = np.random.default_rng(1)
    n = 5000
    x = rng.normal(0, 100, n)
    y = rng.normal(0, 60, n)
    z_px = rng.normal(0, 60 * 0.757, n)
    for spacing in (1.0, 5.75):
        est = estimate_zscale(x, y, 30 + z_px / spacing)
        assert est == pytest.approx(spacing, rel=0.05)


def test_prepare_clouds_rejects_missing_columns():
    with pytest.raises(DevolensError):
        prepare_clouds(pd.DataFrame({"time": [1], "x": [0.0], "y": [0.0]}))


# ----------------------------------------------------------------------------- time course
def test_tracklets_cut_at_divisions_and_link_mothers():
    # t1: two cells; t2: the first divides (two daughters near it), the second moves a bit
    rows = [
        ("e", 1, 0.0, 0.0), ("e", 1, 1.0, 0.0),
        ("e", 2, -0.05, 0.02), ("e", 2, 0.05, -0.02), ("e", 2, 1.02, 0.0),
        ("e", 3, -0.06, 0.02), ("e", 3, 0.06, -0.02), ("e", 3, 1.03, 0.0),
    ]
    clouds = [
        {"embryo": "e", "time": t, "index": np.array([i for i, r in enumerate(rows) if r[1] == t]),
         "coords": np.array([[r[2], r[3], 0.0] for r in rows if r[1] == t])}
        for t in (1, 2, 3)
    ]
    tr, par = tracklets(clouds, return_parents=True)
    assert tr[1] == tr[4] == tr[7]  # the non-dividing cell is one tracklet
    assert len({tr[0], tr[2], tr[3]}) == 3  # mother and two daughters: three tracklets
    assert tr[2] == tr[5] and tr[3] == tr[6]
    assert par[tr[2]] == tr[0] and par[tr[3]] == tr[0]
    assert par[tr[0]] == -1 and par[tr[1]] == -1


def test_lineage_posterior_passes_evidence_down_the_tree():
    founders = ["AB", "MS", "P"]
    depth1 = ["AB", "ABa", "ABp", "MS", "MSa", "MSp", "P"]
    trans = transition_matrix(depth1, founders, eps=0.02)
    np.testing.assert_allclose(trans.sum(1), 1.0)
    assert trans[0, 1] > 0.3 and trans[0, 4] < 0.01  # AB -> ABa allowed, AB -> MSa not
    # a mother tracklet (5 rows) sure to be AB, a daughter (3 rows) undecided between ABa and MSa
    prob = np.full((8, 7), 0.01)
    prob[:5, 0] = 0.94
    prob[5:, 1] = 0.45
    prob[5:, 4] = 0.49
    prob /= prob.sum(1, keepdims=True)
    tracks = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    post = lineage_posterior(prob, tracks, np.array([-1, 0]), trans)
    np.testing.assert_allclose(post.sum(1), 1.0)
    assert post[5].argmax() == 1  # the daughter of an AB cell is ABa, not MSa
    assert post[0].argmax() == 0


# ----------------------------------------------------------------------------- splits
def test_loeo_splits_never_share_an_embryo():
    names = ["e1", "e2", "e3", "e2", "wormguides"]
    splits = list(loeo_splits(names))
    assert len(splits) == 4
    seen = set()
    for train, test in splits:
        assert test not in train
        assert set(train) | {test} == {"e1", "e2", "e3", "wormguides"}
        seen.add(test)
    assert seen == {"e1", "e2", "e3", "wormguides"}
    with pytest.raises(DevolensError):
        list(loeo_splits(["only"]))


def test_train_and_knn_on_toy_embryos_beat_chance():
    tables = [toy_embryo(s, times=5, name=f"toy{s}") for s in range(3)]
    classes = class_lists(tables)
    pred = train_identity(tables[:2], {"epochs": 10, "clouds_per_epoch": 40, "max_tokens": 160, "width": 32, "layers": 1, "tta": 1},
                          classes=classes)
    out = pred.predict(tables[2])
    assert {"pred_founder", "pred_depth1", "confidence"} <= set(out.columns)
    truth = identity_labels(tables[2].cell, 0)
    assert (out.pred_founder == truth).mean() > 0.6  # AB vs the rest is a half-embryo split
    k0, k1 = knn_baseline(tables[:2], tables[2], k=3)
    assert (k0 == truth.to_numpy()).mean() > 0.6
    assert len(k1) == len(tables[2])


def test_ensemble_averages_member_probabilities(tmp_path):
    import torch
    from safetensors.torch import save_file

    from devolens.predict.identity import IdentityPredictor

    tables = [toy_embryo(s, times=3, name=f"toy{s}") for s in range(3)]
    classes = class_lists(tables)
    cfg = {"epochs": 2, "clouds_per_epoch": 10, "max_tokens": 160, "width": 16, "layers": 1, "tta": 1}
    a = train_identity(tables[:2], {**cfg, "seed": 0}, classes=classes)
    b = train_identity(tables[:2], {**cfg, "seed": 1}, classes=classes)
    for p in (a, b):
        p.smooth = "none"
    pa, pb = a.predict_proba(tables[2]), b.predict_proba(tables[2])
    ens = IdentityPredictor(torch.nn.ModuleList([a.model, b.model]), a.founders, a.depth1, smooth="none")
    pe = ens.predict_proba(tables[2])
    for k in range(2):
        np.testing.assert_allclose(pe[k], (pa[k] + pb[k]) / 2, atol=1e-5)
    # the zoo format: one safetensors file with "<member>.<parameter>" keys, "members" in the card
    save_file({k: v.contiguous() for k, v in ens.model.state_dict().items()}, str(tmp_path / "weights.safetensors"))
    card = {"architecture": {**a.architecture, "members": 2}}
    loaded = IdentityPredictor.from_zoo(tmp_path, card, smooth="none")
    assert len(loaded.members) == 2
    np.testing.assert_allclose(loaded.predict_proba(tables[2])[1], pe[1], atol=1e-5)


# ----------------------------------------------------------------------------- zoo predictor
@needs_zoo
def test_zoo_predictor_loads_from_safetensors_and_returns_columns(tmp_path):
    from devolens.models import card, load
    from devolens.models.zoo import ZOO_DIR

    info = card("identity")
    assert info["predictor"] == "devolens.predict.identity:IdentityPredictor"
    files = sorted(p.name for p in (ZOO_DIR / "identity").iterdir() if not p.name.startswith("."))
    assert "weights.safetensors" in files and not any(f.endswith((".pt", ".pth", ".pkl", ".ckpt")) for f in files)
    assert (ZOO_DIR / "identity" / "weights.safetensors").stat().st_size < 30e6
    pred = load("identity", tta=1)
    df = toy_embryo(times=2)
    df["cell"] = ""  # names are ignored
    out = pred.predict(df)
    assert list(out.columns[: len(df.columns)]) == list(df.columns)
    assert len(out) == len(df) and out.index.equals(df.index)
    assert set(out.pred_founder) <= set(info["architecture"]["founders"])
    assert set(out.pred_depth1) <= set(info["architecture"]["depth1"])
    assert out.confidence.between(0, 1).all()
    with pytest.raises(DevolensError, match=r"^no data rows \(an empty table\)"):  # as a file of the header only
        pred.predict(df.iloc[:0])
    df[["embryo", "time", "x", "y", "z", "size"]].to_csv(tmp_path / "positions.csv", index=False)  # a path
    from_file = pred.predict(tmp_path / "positions.csv", zscale=df.attrs["zscale"])
    assert list(from_file.pred_founder) == list(out.pred_founder)
    with pytest.raises(DevolensError, match="expected a table"):
        pred.predict(df[["x", "y", "z"]].to_numpy())


@needs_zoo
def test_zoo_predictions_invariant_to_rigid_motion_and_scale():
    from devolens.models import load

    pred = load("identity", tta=2)
    df = toy_embryo(times=4)
    a = pred.predict(df)
    b = pred.predict(_rotate_table(df, -0.7, 0.6))
    assert (a.pred_founder == b.pred_founder).mean() == 1.0
    assert (a.pred_depth1 == b.pred_depth1).mean() == 1.0
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-3)


@needs_zoo
@pytest.mark.slow
def test_zoo_model_on_a_real_embryo(epic_tables):
    from devolens.io.tables import read_table
    from devolens.models import load

    path = next((p for p in epic_tables if "20241010_JIM767_25_L2" in p.name), epic_tables[0])
    df = read_table(path)
    df = df[df.time <= 100]
    out = load("identity", tta=1).predict(df)
    truth = identity_labels(df.cell, 0)
    ok = truth.notna()
    acc = (out.pred_founder[ok] == truth[ok]).mean()
    # the shipped model saw this embryo in training; its held-out accuracy is in the card
    assert acc > 0.9


# ----------------------------------------------------------------------------- CLI
def _cli(args):
    from devolens.cli import main

    return main(args)


def test_cli_bad_file_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01\x02 not a table")
    out = tmp_path / "cells.csv"
    assert _cli(["identify", str(bad), "--out", str(out)]) == 2
    assert not out.exists()
    assert "error" in capsys.readouterr().err
    missing = tmp_path / "missing.csv"
    assert _cli(["identify", str(missing), "--out", str(out)]) == 2
    assert not out.exists()


def test_cli_never_overwrites_the_input_table(tmp_path, capsys):
    """`identify t.csv --out t.csv` would replace the user's table with the predictions: refused, the
    table untouched."""
    src = tmp_path / "toy.csv"
    toy_embryo(times=2).to_csv(src, index=False)
    before = src.read_bytes()
    assert _cli(["identify", str(src), "--out", str(src)]) == 2
    assert src.read_bytes() == before and "overwrite the input" in capsys.readouterr().err


def test_cli_unknown_model_exits_2(tmp_path):
    src = tmp_path / "toy.csv"
    toy_embryo(times=2).to_csv(src, index=False)
    out = tmp_path / "cells.csv"
    assert _cli(["identify", str(src), "--out", str(out), "--model", "no_such_model"]) == 2
    assert not out.exists()


@needs_zoo
def test_cli_identify_writes_predictions(tmp_path, capsys):
    src = tmp_path / "toy.csv"
    df = toy_embryo(times=3)
    df.to_csv(src, index=False)
    out = tmp_path / "cells.csv"
    assert _cli(["identify", str(src), "--out", str(out), "--tta", "1"]) == 0
    largest = int(df.groupby("time").size().max())
    assert largest < 200  # a table that stops early: its orientation can be wrong, said
    assert f"the table stops at {largest} nuclei" in " ".join(capsys.readouterr().err.split())
    res = pd.read_csv(out)
    assert len(res) == len(df)
    assert {"embryo", "time", "cell", "x", "y", "z", "pred_founder", "pred_depth1", "confidence"} <= set(res.columns)
    assert json.loads(json.dumps(res.iloc[0].to_dict(), default=str))
    # tracked nuclei without names (frame, POSITION_X..., no cell column): the same predictions
    positions = tmp_path / "positions.csv"
    df.rename(columns={"time": "frame", "x": "POSITION_X", "y": "POSITION_Y", "z": "POSITION_Z"}).drop(
        columns=["cell", "embryo"]).to_csv(positions, index=False)
    assert _cli(["identify", str(positions), "--out", str(tmp_path / "unnamed.csv"), "--tta", "1"]) == 0
    unnamed = pd.read_csv(tmp_path / "unnamed.csv", keep_default_na=False)
    assert len(unnamed) == len(df) and (unnamed["cell"] == "").all()
    assert (unnamed["pred_depth1"].to_numpy() == res["pred_depth1"].to_numpy()).all()


def test_polar_bodies_are_left_out_of_the_clouds(tmp_path):
    from devolens.models import load

    pred = load("identity", tta=1)
    df = toy_embryo(times=3)
    polar = df.groupby("time", as_index=False).first().assign(cell="polar1", x=0.0, y=0.0, z=0.0)
    both = pd.concat([df, polar], ignore_index=True)
    a, b = pred.predict(df), pred.predict(both)
    is_polar = (both["cell"] == "polar1").to_numpy()
    assert b.attrs["polar_bodies"] == len(polar) and b.loc[is_polar, "pred_founder"].isna().all()
    assert b.loc[is_polar, "confidence"].isna().all()
    # the embryo's nuclei are predicted as if the polar bodies were not there
    assert (b.loc[~is_polar, "pred_depth1"].to_numpy() == a["pred_depth1"].to_numpy()).all()
    np.testing.assert_allclose(b.loc[~is_polar, "confidence"].to_numpy(float), a["confidence"].to_numpy(float))
    src = tmp_path / "with_polar.csv"
    both.to_csv(src, index=False)
    assert _cli(["identify", str(src), "--out", str(tmp_path / "o.csv"), "--tta", "1"]) == 0


def test_placeholder_rows_without_a_position_are_left_out():
    from devolens.models import load

    pred = load("identity", tta=1)
    df = toy_embryo(times=3)
    early = pd.DataFrame({"embryo": df["embryo"].iloc[0], "time": 0, "cell": ["AB", "P1"], "x": 0.0, "y": 0.0,
                          "z": 0.0, "size": 0.0})  # LIVE_tools' SCD tables: cells listed before tracking starts
    both = pd.concat([early, df], ignore_index=True)
    both.attrs = dict(df.attrs)
    a, b = pred.predict(df), pred.predict(both)
    assert b.attrs["unplaced"] == 2 and b["pred_founder"].iloc[:2].isna().all()
    assert (b["pred_depth1"].iloc[2:].to_numpy() == a["pred_depth1"].to_numpy()).all()


# ----------------------------------------------------------------------------- confidence, unfamiliar inputs
def _cloud_table(x, y, z, times: int = 4) -> pd.DataFrame:
    n = len(x)
    df = pd.DataFrame({"embryo": "e", "time": np.repeat(np.arange(1, times + 1), n // times + 1)[:n],
                       "x": x, "y": y, "z": z})
    df.attrs["zscale"] = 1.0
    return df


def test_frame_skewness_of_a_skewed_and_a_symmetric_cloud():
    from devolens.predict.identity import frame_skewness

    rng = np.random.default_rng(0)
    n = 20000
    skewed = _cloud_table(300 + 60 * rng.gamma(2.0, 1.0, n), 200 + 40 * rng.normal(size=n),
                          50 - 10 * rng.gamma(2.0, 1.0, n))
    ap, third = frame_skewness(prepare_clouds(skewed))["e"]
    assert ap > 0.8 and third < -0.8  # the frame turns both to its convention: AP positive, third axis negative
    flat = _cloud_table(300 + 60 * rng.normal(size=n), 200 + 40 * rng.normal(size=n), 50 + 10 * rng.normal(size=n))
    ap, third = frame_skewness(prepare_clouds(flat))["e"]
    assert 0 <= ap < 0.05 and -0.05 < third <= 0


def test_identify_notes_a_nearly_symmetric_cloud():
    """A simulated embryo was named 87 % AB at median confidence 0.9995 without a word: its pooled cloud's skewness,
    which orients the frame, is near zero; the note says so (once; not beside the short table's note)."""
    from devolens.cli.identify import _input_notes
    from devolens.predict.identity import WEAK_SKEW

    notes = _input_notes({"frame_skewness": {"e": (0.07, -0.01)}, "largest_clouds": {"e": 400}})
    assert len(notes) == 1 and notes[0].startswith("the table's nucleus cloud is nearly symmetric (skewness 0.07")
    assert "-0.01 along its shortest" in notes[0] and "wrong with high confidence" in notes[0]
    assert _input_notes({"frame_skewness": {"e": (0.15, -0.10)}, "largest_clouds": {"e": 400}}) == []
    assert _input_notes({"frame_skewness": {"e": (0.01, -0.20)}, "largest_clouds": {"e": 400}})  # AP alone
    short = _input_notes({"frame_skewness": {"e": (0.01, -0.01)}, "largest_clouds": {"e": 100}})
    assert len(short) == 1 and short[0].startswith("the table stops at 100 nuclei")
    two = _input_notes({"frame_skewness": {"a": (0.2, -0.2), "b": (0.03, -0.04), "c": (0.2, -0.01)},
                        "largest_clouds": {"a": 400, "b": 400, "c": 400}})
    assert len(two) == 1 and two[0].startswith("embryo c's (and 1 more) nucleus cloud")
    assert WEAK_SKEW == 0.05


def test_simulated_embryos_are_flagged_as_nearly_symmetric():
    """`devolens simulate embryo` clouds: the third axis's skewness is near zero (16 seeds x 200/400 cells: at most
    0.039 in size), so identify's note fires; the model was trained on real embryos only."""
    from devolens.lineage.simulate import simulate_embryo
    from devolens.predict.identity import WEAK_SKEW, frame_skewness

    for seed in (0, 7):
        ap, third = next(iter(frame_skewness(prepare_clouds(simulate_embryo(seed, n_cells=200))).values()))
        assert min(ap, -third) < WEAK_SKEW, seed


def test_real_whole_embryos_are_not_flagged(epic_tables, acetree_zip):
    """The 7 real embryos, whole: skewness 0.11-0.39 (AP) and 0.10-0.17 (third axis, in size): no note."""
    from devolens.io.tables import read_table
    from devolens.lineage.populations import is_polar_body
    from devolens.predict.identity import WEAK_SKEW, frame_skewness

    for path in [*epic_tables, acetree_zip]:
        df = read_table(path)
        keep = ~((df[["x", "y", "z"]] == 0).all(axis=1) | df["cell"].map(is_polar_body))
        ap, third = next(iter(frame_skewness(prepare_clouds(df[keep].reset_index(drop=True))).values()))
        assert min(ap, -third) > 1.5 * WEAK_SKEW, path.name


@needs_zoo
def test_predict_reports_the_frame_skewness():
    from devolens.models import load

    out = load("identity", tta=1, smooth="none").predict(toy_embryo(times=3))
    ap, third = out.attrs["frame_skewness"]["toy"]
    assert ap >= 0 >= third


def test_reliability_table_bins_confidence():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from train_identity import reliability, reliability_markdown

    conf = [0.3, 0.6, 0.65, 0.8, 0.95, 0.99, 1.0, 1.0]
    rows = pd.DataFrame({"embryo": "e", "founder": ["AB"] * 8, "depth1": ["ABa"] * 8, "confidence": conf,
                         "pred_founder": ["AB", "MS", "AB", "AB", "AB", "AB", "E", "AB"],
                         "pred_depth1": ["ABp", "MSa", "ABa", "ABa", "ABa", "ABa", "Ea", "ABa"]})
    rows.loc[8] = ["e", None, None, 0.5, "AB", "ABa"]  # an unnamed cell: left out
    rel = reliability(rows)
    assert rel["bin"].tolist() == ["< 0.5", "0.5-0.7", "0.7-0.9", "0.9-0.99", ">= 0.99"]
    assert rel["rows"].tolist() == [1, 2, 1, 1, 3]  # 0.99 and 1.0 in the last bin
    assert rel["founder_acc"].tolist() == [1.0, 0.5, 1.0, 1.0, 2 / 3]
    assert rel["depth1_acc"].tolist() == [0.0, 0.5, 1.0, 1.0, 2 / 3]
    assert rel["founder_errors"].sum() == 2 and rel["founder_errors"].iloc[-1] == 1
    text = "\n".join(reliability_markdown(rows))
    assert "| >= 0.99 | 37.5% | 0.997 | 0.667 | 0.667 |" in text
    assert "errors at confidence >= 0.99: founder 1/2 (50%), depth-1 1/3 (33%)" in text


def test_identify_help_says_what_confidence_is(capsys):
    from devolens.cli import main
    from devolens.models.zoo import card

    assert main(["identify", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.replace("│", " ").split())  # (rich's box, wherever it wraps)
    assert "probability for the named depth-1 class" in help_text and "not the chance" in help_text
    assert any("confidence" in x and "not the chance" in x for x in card("identity")["limits"])


def test_shipped_card_says_what_its_generator_writes():
    """The card's confidence section and limits come from benchmarks/train_identity.py: a regeneration keeps them."""
    import sys
    from pathlib import Path

    from devolens.models.zoo import ZOO_DIR

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from train_identity import UNFAMILIAR_LIMIT, confidence_limit, confidence_markdown

    info = json.loads((ZOO_DIR / "identity" / "card.json").read_text())
    md = (ZOO_DIR / "identity" / "card.md").read_text()
    assert info["limits"][0] == confidence_limit(info["metrics"]) and UNFAMILIAR_LIMIT in info["limits"]
    assert "\n".join(confidence_markdown(info["metrics"])) in md
    for limit in info["limits"]:
        assert f"- {limit}\n" in md


@needs_zoo
def test_cli_identify_notes_a_simulated_embryo(tmp_path, capsys):
    """`devolens identify` on a simulated embryo (every 4th time point, each alone: fast) says that the names may be
    wrong with high confidence; the predictions are written as before."""
    from devolens.lineage.simulate import simulate_embryo

    sim = simulate_embryo(0, n_cells=200)
    sim = sim[(sim["time"] % 4 == 0) | (sim["time"] == sim["time"].max())]  # its 200 nuclei kept: no short table
    src = tmp_path / "sim.csv"
    sim.to_csv(src, index=False)
    out = tmp_path / "cells.csv"
    assert _cli(["identify", str(src), "--out", str(out), "--smooth", "none"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: the table's nucleus cloud is nearly symmetric" in err and "stops at" not in err
    assert len(pd.read_csv(out)) == len(sim)
