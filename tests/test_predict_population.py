"""PopulationPredictor: composition tables, calibration, regressor path, smoothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from devolens.errors import DevolensError

from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.predict.population import (
    COLUMNS,
    LETTERS,
    PopulationPredictor,
    calibrate_total,
    calibrate_total_linear,
    composition_counts,
    fit_composition,
    stage_features,
)
from devolens.predict.segment import SegmentationResult


def _pops():
    # a toy embryo: A is half the cells, E a quarter, M the rest; P = 1 until total 8, then Z = 2
    rows = []
    for t, total in enumerate([2, 4, 6, 8, 12, 16, 24, 32]):
        z = 2 if total > 8 else 0
        p = 1 if total <= 8 else 0
        a = (total - z - p) // 2
        e = (total - z - p - a) // 2
        m = total - z - p - a - e
        rows.append({"time": t, "A": a, "E": e, "M": m, "P": p, "C": 0, "D": 0, "Z": z, "total": total})
    return pd.DataFrame(rows)


def test_fit_composition_rows_sum_to_total_and_match_data():
    comp = fit_composition(_pops(), max_total=40, window=0)
    assert comp.shape == (41, 7)
    assert np.allclose(comp[1:].sum(axis=1), np.arange(1, 41), atol=1e-3)
    pops = _pops().set_index("total")
    for total in (8, 16, 32):  # (no lineage falls as the total grows: a letter may pool with a neighbour's, 8's M)
        assert np.allclose(comp[total], pops.loc[total, list(LETTERS)].to_numpy(float), atol=0.05)


def test_composition_counts_interpolates_and_extrapolates():
    comp = fit_composition(_pops(), max_total=40, window=0)
    mid = composition_counts(20.0, comp)
    assert np.allclose(mid, (comp[20]), atol=1e-6)
    assert np.all(composition_counts(np.array([0.0, 3.5, 100.0]), comp) >= 0)
    assert composition_counts(80.0, comp).sum() == pytest.approx(80.0, rel=1e-3)


def test_calibration_curves_are_monotone_and_non_negative():
    x = np.linspace(-5, 500, 200)
    y = calibrate_total(x, np.array([0, 50, 100.0]), np.array([0, 60, 140.0]))
    assert np.all(np.diff(y) >= 0) and y.min() >= 0 and y[-1] == pytest.approx(500 * 1.4)
    f = stage_features(30, np.full(30, 50.0), np.random.default_rng(0).uniform(0, 100, 30),
                       np.random.default_rng(1).uniform(0, 60, 30))
    assert f.shape == (8,) and f[0] == 1.0
    assert f[4] == pytest.approx(np.log(50.0)) and f[3] == pytest.approx(f[4] - f[5])  # relative = absolute sizes
    # a calibration uses the first len(coef) features: 4 (scale-free, older cards) or all 8
    assert calibrate_total_linear(f, np.array([0.0, 1.0, 0.0, 0.0]))[0] == pytest.approx(30.0)
    assert calibrate_total_linear(f, np.r_[0.0, 1.0, np.zeros(6)])[0] == pytest.approx(30.0)
    assert np.all(stage_features(0, np.array([]), np.array([]), np.array([])) == [1, 0, 0, 0, 0, 0, 0, 0])


def test_stage_features_scale_free_part_ignores_zoom():
    rng = np.random.default_rng(2)
    xs, ys, areas = rng.uniform(0, 300, 40), rng.uniform(0, 200, 40), rng.uniform(200, 400, 40)
    a = stage_features(40, areas, xs, ys)
    b = stage_features(40, areas * 4, xs * 2, ys * 2)  # the same embryo shown twice as large
    np.testing.assert_allclose(a[:4], b[:4], atol=1e-9)
    assert b[4] == pytest.approx(a[4] + np.log(4)) and b[5] == pytest.approx(a[5] + np.log(4), abs=1e-3)


class _FakeNuclei:
    """Stands in for NucleiPredictor: the 'image' is the number of nuclei to report."""

    def predict_iter(self, images, total=None, progress=None):
        for n in images:
            n = int(np.asarray(n).ravel()[0])
            lab = np.zeros((8, 8), np.uint16)
            cents = pd.DataFrame({"label": np.arange(1, n + 1), "x": np.linspace(0, 7, n), "y": np.linspace(0, 7, n) ** 2 % 7,
                                  "area": np.full(n, 4)})
            yield SegmentationResult(np.zeros((8, 8), np.float32), lab, cents, lab > 0)


def test_composition_predictor_counts_are_non_negative_and_add_up():
    comp = fit_composition(_pops(), max_total=40, window=0)
    pred = PopulationPredictor("composition", nuclei=_FakeNuclei(), composition=comp,
                               knots_x=np.array([0.0, 10.0]), knots_y=np.array([0.0, 20.0]))
    df = pred.predict_batch([np.array([n]) for n in (1, 4, 8, 16)])
    assert list(df.columns) == list(COLUMNS)
    assert (df >= 0).all().all()
    assert np.allclose(df["total"], [2, 8, 16, 32], atol=1e-3)
    assert np.allclose(df[list(LETTERS)].sum(axis=1), df["total"])
    one = pred.predict(np.array([4]))
    assert set(one) == set(COLUMNS) and one["total"] == pytest.approx(8.0)


class _ConstantTotal(torch.nn.Module):
    """A 'regressor' that answers a fixed total for every frame."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full((x.shape[0], 1), self.value)


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0])
def test_composition_with_a_total_regressor_combines_in_log_space(w):
    comp = fit_composition(_pops(), max_total=40, window=0)
    pred = PopulationPredictor("composition", nuclei=_FakeNuclei(), composition=comp,
                               knots_x=np.array([0.0, 10.0]), knots_y=np.array([0.0, 20.0]),
                               network=_ConstantTotal(30.0), total_weight=w, input_size=(8, 8), fast=False)
    frame = np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8)
    frame[0, 0] = 4  # (the fake nuclei model reads its first pixel)
    row = pred.predict(frame)  # calibration says 8 cells, the regressor 30
    assert row["total"] == pytest.approx(np.expm1(w * np.log1p(8.0) + (1 - w) * np.log1p(30.0)), rel=1e-4)
    with pytest.raises(DevolensError):
        PopulationPredictor("composition", nuclei=_FakeNuclei(), composition=comp, total_weight=1.5)


def test_total_regressor_loads_from_the_tables_file(tmp_path):
    from safetensors.numpy import load_file, save_file

    from devolens.models.architectures import build_regressor
    from devolens.predict.population import _total_regressor

    torch.manual_seed(0)
    net = build_regressor(1, 1, width=8).eval()
    arrays = {"composition": np.zeros((3, 7), np.float32),
              **{f"total_regressor.{k}": v.numpy().astype(np.float16) for k, v in net.state_dict().items()}}
    save_file(arrays, str(tmp_path / "w.safetensors"))
    spec = {"config": net.devolens_config}
    back = _total_regressor(load_file(str(tmp_path / "w.safetensors")), spec, tmp_path / "w.safetensors")
    x = torch.rand(2, 1, 32, 48)
    with torch.no_grad():
        np.testing.assert_allclose(back(x).numpy(), net(x).numpy(), rtol=0.02, atol=0.05)
    with pytest.raises(DevolensError):
        _total_regressor({"composition": arrays["composition"]}, spec, tmp_path / "w.safetensors")


def test_regressor_predictor_on_any_input():
    from devolens.models.architectures import build_regressor

    torch.manual_seed(0)
    net = build_regressor(1, 8, width=8).eval()
    pred = PopulationPredictor("regressor", network=net, input_size=(64, 96))
    frames = [np.random.default_rng(i).integers(0, 255, s).astype(np.uint8)
              for i, s in enumerate([(50, 70), (120, 90, 3), (64, 96)])]
    df = pred.predict_batch(frames)
    assert len(df) == 3 and (df >= 0).all().all()
    # its own total output (the eighth) since the fifty-sixth session; the letters' sum where it regresses no total
    assert np.allclose(df["total"], pred._regress(np.stack([pred._regressor_input(f) for f in frames]))[:, 7])
    letters = PopulationPredictor("regressor", network=build_regressor(1, 7, width=8).eval(), input_size=(64, 96),
                                  outputs=list(LETTERS)).predict_batch(frames)
    assert np.allclose(letters[list(LETTERS)].sum(axis=1), letters["total"])


def test_regressor_reads_portrait_frames_turned_to_its_landscape_input():
    """A portrait frame (a camera or stage turned a quarter) reaches the whole-frame regressor turned to
    landscape, as its training frames were, not squeezed: the same input as the landscape frame turned
    half a turn. A landscape frame of the input's aspect ratio is left as it is."""
    from devolens.models.architectures import build_regressor
    from devolens.predict.population import fit_frame

    rng = np.random.default_rng(0)
    land = rng.integers(0, 255, (64, 96)).astype(np.uint8)
    assert fit_frame(land, (32, 48)) is land
    assert np.array_equal(fit_frame(np.rot90(land), (32, 48)), np.rot90(land, 2))
    # another aspect ratio (a square camera field): the widest 3:2 window around the bright embryo, not stretched
    square = np.zeros((90, 90), np.float32)
    square[60:80, 20:50] = 200.0  # the embryo, low in the field
    crop = fit_frame(square, (32, 48))
    assert crop.shape == (60, 90) and crop.sum() == square.sum()
    assert fit_frame(square.T, (32, 48)).shape == (60, 90)
    torch.manual_seed(0)
    pred = PopulationPredictor("regressor", network=build_regressor(1, 8, width=8).eval(), input_size=(32, 48))
    portrait = pred._regressor_input(np.rot90(land))
    assert portrait.shape == (32, 48)
    np.testing.assert_allclose(portrait, np.rot90(pred._regressor_input(land), 2), atol=1e-5)


def test_smooth_never_decreases_on_noisy_curve():
    rng = np.random.default_rng(0)
    base = np.linspace(4, 200, 40)
    df = pd.DataFrame({k: np.clip(base * f + rng.normal(0, 3, 40), 0, None)
                       for k, f in zip(LETTERS, (0.5, 0.06, 0.15, 0.0, 0.1, 0.05, 0.01))})
    df["total"] = df[list(LETTERS)].sum(axis=1)
    out = PopulationPredictor.smooth(df)
    for k in ("A", "E", "M", "C", "D", "Z", "total"):
        assert np.all(np.diff(out[k]) >= -1e-9), k
    assert (out >= 0).all().all()


def test_population_from_tiny_zoo(tiny_zoo):
    from devolens.models import load

    pops = load("population")
    assert isinstance(pops, PopulationPredictor) and pops.method == "composition"
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[10:20, 10:20, 1] = 200
    res = pops.predict(rgb)
    assert all(res[k] >= 0 for k in COLUMNS)
    from devolens.io.images import write_png

    write_png(rgb, tiny_zoo / "frame.png")  # a path, and the channels-first layout, give the same counts
    assert pops.predict(tiny_zoo / "frame.png") == res == pops.predict(np.moveaxis(rgb, -1, 0))


@pytest.mark.skipif(not shipped("population") or not shipped("nuclei"), reason="population model not shipped yet")
def test_shipped_population_rises_with_stage():
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load
    from devolens.render.nuclei import render_nuclei_frame

    table = simulate_embryo(11, n_cells=120)
    times = sorted(table["time"].unique())
    early, late = times[len(times) // 5], times[-1]
    pops = load("population")
    a = pops.predict(render_nuclei_frame(table, early, seed=1).image)
    b = pops.predict(render_nuclei_frame(table, late, seed=1).image)
    assert b["total"] > a["total"]


def test_population_runs_nuclei_in_the_cards_precision(tiny_zoo):
    import json

    from devolens.models import load, zoo

    path = zoo.ZOO_DIR / "population" / "card.json"
    card = json.loads(path.read_text())
    card["nuclei_precision"] = "fp32"
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    assert load("population").nuclei.network.precision == "fp32"
    assert load("population", precision="auto").nuclei.network.precision == "fp32"  # what the CLI passes
    assert load("population", precision="bf16").nuclei.network.precision == "bf16"  # the user's choice wins


def test_population_runs_nuclei_with_the_cards_postprocess(tiny_zoo):
    import json

    from devolens.models import load, zoo

    for name, post in (("nuclei", {"isolated_fraction": 0.25, "threshold": 0.4}),
                       ("population", None)):
        path = zoo.ZOO_DIR / name / "card.json"
        card = json.loads(path.read_text())
        if post:
            card["postprocess"] = {**card.get("postprocess", {}), **post}
        else:
            card["nuclei_postprocess"] = {"isolated_fraction": 0.0}
        path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    assert load("nuclei").postprocess_options["isolated_fraction"] == 0.25
    nuclei = load("population").nuclei  # the arithmetic its calibration was fitted with
    assert nuclei.postprocess_options["isolated_fraction"] == 0.0
    assert nuclei.postprocess_options["threshold"] == 0.4  # the rest from the nuclei card
    assert load("population", postprocess={"isolated_fraction": 0.5}).nuclei.postprocess_options[
        "isolated_fraction"] == 0.5  # the caller's choice wins


def test_population_diameter_resizes_frames(tiny_zoo, monkeypatch):
    import json

    from devolens.models import load, zoo

    with pytest.raises(DevolensError, match="reference object diameter"):
        load("population", diameter=20)  # the tiny nuclei card has none
    path = zoo.ZOO_DIR / "nuclei" / "card.json"
    card = json.loads(path.read_text())
    card["input"]["diameter"] = {"reference": 30.0}
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    pred = load("population", diameter=15)
    assert pred.resize == pytest.approx(2.0) and pred.nuclei.diameter is None  # resized once, in population
    seen = []
    original = pred.nuclei.predict_iter
    monkeypatch.setattr(pred.nuclei, "predict_iter", lambda imgs, **kw: original((seen.append(i.shape) or i for i in imgs), **kw))
    frame = np.zeros((40, 60), np.uint8)
    frame[10:30, 20:40] = 200  # (a frame without signal would have no counts)
    row = pred.predict(frame)
    assert seen == [(80, 120)] and row["total"] >= 0
    for dtype in (np.int32, np.int64, bool):  # types OpenCV cannot resize (a user's int32 TIFF)
        seen.clear()
        row = pred.predict(frame.astype(dtype))
        assert seen == [(80, 120)] and row["total"] >= 0
    for bad in (0, -1, "x"):
        with pytest.raises(DevolensError, match="diameter must be"):
            load("population", diameter=bad)


def test_population_size_advice_in_input_pixels(tiny_zoo):
    import json

    from devolens.models import load, zoo

    path = zoo.ZOO_DIR / "nuclei" / "card.json"
    card = json.loads(path.read_text())
    card["input"]["diameter"] = {"reference": 30.0, "p5_p95": [20.0, 60.0]}
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    area = lambda d: np.pi * d * d / 4  # noqa: E731
    assert load("population").size_advice([area(30)]) is None
    assert load("population").size_advice([area(10)]) == 10.0
    # frames resized 2x (diameter=15): 10 px nuclei in the resized frames are 5 px in the input
    assert load("population", diameter=15).size_advice([area(10)]) == 5.0
    rows = list(load("population").predict_iter([(np.random.default_rng(0).random((48, 64)) * 255).astype(np.uint8)]))
    assert "median_area" in rows[0] and "visible" in rows[0]


def test_population_runs_its_nuclei_model_without_flattening(tiny_zoo):
    """The population calibration was fitted on frames prepared without background flattening: its
    nuclei predictor keeps it off whatever the nuclei card says (the tiny card flattens)."""
    from devolens.models import card, load

    assert card("nuclei")["preprocessing"]["flatten"] > 0
    assert load("population").nuclei.network.flatten == 0.0


def test_auto_population_streams_read_in_turns_keep_their_own_resize(monkeypatch):
    """Two movies of other magnifications through one auto population predictor, read in turns: each stream's
    frames are resized by its own estimate (the second stream's factor used to reach the first's later frames)."""
    from devolens.predict import sizing

    class _Sized(_FakeNuclei):
        diameter_ref = 20.0

        def __init__(self):
            self.seen = []

        def estimate_diameter(self, images):  # a 64-px-high frame is at twice the training magnification
            big = np.asarray(images[0]).shape[0] == 64
            return sizing.DiameterEstimate(diameter=40.0 if big else None, magnification=2.0 if big else 1.0,
                                           per_image=[1.0], trusted=1)

        def predict_iter(self, images, total=None, progress=None):
            for img in images:
                self.seen.append(np.asarray(img).shape)
                yield from super().predict_iter([np.full((2, 2), 3)])

    monkeypatch.setattr(sizing, "gather", lambda pred, it: ([next(it)],) * 2)
    nuclei = _Sized()
    comp = fit_composition(_pops(), max_total=40, window=0)
    pred = PopulationPredictor("composition", nuclei=nuclei, composition=comp, auto=True,
                               knots_x=np.array([0.0, 10.0]), knots_y=np.array([0.0, 20.0]))
    one, two = np.zeros((32, 48), np.uint8), np.zeros((64, 96), np.uint8)
    rows = list(zip(pred.predict_iter([two] * 4), pred.predict_iter([one] * 4)))
    assert len(rows) == 4
    assert sorted(nuclei.seen) == [(32, 48)] * 8  # the enlarged movie brought down to the training magnification
    assert pred.resize == 1.0  # the last stream's, for size_advice


# ---------------------------------------------------------------------------- --monotone, robust to misread frames
class _ReadAs:
    """A population predictor that reads the frames as ``totals`` (all in A), for the CLI's fit."""

    known_sizes = None
    last_estimate = None
    resize = 1.0
    clock = None
    card: dict = {}

    def __init__(self, totals):
        self.totals = list(totals)

    def predict_iter(self, images, total=None, progress=None):
        for _, t in zip(images, self.totals):
            yield {**{k: 0.0 for k in LETTERS}, "A": float(t), "total": float(t), "median_area": None}

    @staticmethod
    def smooth(df):
        return PopulationPredictor.smooth(df)

    def size_advice(self, areas):
        return None


def _movie(tmp_path, n=12, black=()):
    from devolens.io.images import write_png

    from curate_synth import inject, synth_sequence

    frames = synth_sequence(n, seed=11)
    for i in black:
        inject(frames, "black", i)
    src = tmp_path / "movie"
    src.mkdir()
    for t, f in enumerate(frames, start=1):
        write_png(f, src / f"t{t:03d}.png")
    return src


def _population(monkeypatch, tmp_path, src, totals, *extra):
    from devolens.cli import main
    from devolens.cli import predict as cli_predict

    monkeypatch.setattr(cli_predict, "_load_predictor", lambda *a, **k: _ReadAs(totals))
    out = tmp_path / "pops.csv"
    assert main(["population", str(src), "--out", str(out), "--no-plot", *extra]) == 0
    return pd.read_csv(out)


def test_monotone_leaves_a_black_last_frame_out_of_the_fit(monkeypatch, tmp_path, capsys):
    """A black last frame read as 1 cell after ~300 pulled the fit of the frames before it down with it."""
    totals = [50, 52, 88, 90, 100, 150, 170, 200, 280, 320, 330, 1]
    src = _movie(tmp_path, black=(11,))
    df = _population(monkeypatch, tmp_path, src, totals, "--monotone")
    err = " ".join(capsys.readouterr().err.split())
    assert ("--monotone left 1 frame black or dark (t012) out of the fit; its row holds the last fitted value (it "
            "comes after every frame fitted)") in err
    np.testing.assert_allclose(df["total"][:11], totals[:11])  # rising already: the fit is the readings
    assert df["total"].iloc[11] == df["total"].iloc[10] == 330  # the fitted value beside it, not 1
    assert np.all(np.diff(df["total"]) >= 0)
    plain = _population(monkeypatch, tmp_path, src, totals)  # without --monotone: as read, and no note
    assert plain["total"].iloc[11] == 1 and "--monotone" not in capsys.readouterr().err


def test_monotone_fills_black_frames_mid_movie_between_their_neighbours(monkeypatch, tmp_path, capsys):
    totals = [50, 52, 88, 90, 1, 1, 100, 150, 170, 200, 280, 320]
    src = _movie(tmp_path, black=(4, 5))
    df = _population(monkeypatch, tmp_path, src, totals, "--monotone")
    assert "2 frames black or dark (t005, t006)" in " ".join(capsys.readouterr().err.split())
    np.testing.assert_allclose(df["total"], [50, 52, 88, 90, 93 + 1 / 3, 96 + 2 / 3, 100, 150, 170, 200, 280, 320],
                               atol=0.01)


def test_monotone_keeps_dark_frames_read_as_many_cells_as_those_before(monkeypatch, tmp_path, capsys):
    """A frame that passes for dark but is read right (an embryo of one or two nuclei, a dim 12-bit movie) is no
    misread: only a dark frame reading fewer cells than the frames before it is left out (a review found the
    one-cell frame of a render left out and its reading changed)."""
    totals = [1, 2, 2, 4, 4, 8, 8, 12, 15, 24, 26, 28]
    src = _movie(tmp_path, black=(0, 4))  # the first frame, and one reading as many as the frame before it
    df = _population(monkeypatch, tmp_path, src, totals, "--monotone")
    assert "--monotone left" not in " ".join(capsys.readouterr().err.split())
    np.testing.assert_allclose(df["total"], totals)


def test_monotone_leaves_implausible_readings_out(monkeypatch, tmp_path, capsys):
    """A frame the curator finds nothing wrong with, read at a fraction of the frames around it (out of focus,
    the embryo out of view): populations never halve."""
    totals = [50, 52, 88, 90, 100, 20, 150, 170, 200, 280, 320, 330]
    src = _movie(tmp_path)
    df = _population(monkeypatch, tmp_path, src, totals, "--monotone")
    err = " ".join(capsys.readouterr().err.split())
    assert "1 implausible reading, far from the frames around it (t006)" in err and "black or dark" not in err
    assert df["total"].iloc[5] == pytest.approx(125.0)
    np.testing.assert_allclose(df["total"].drop(index=5), [t for i, t in enumerate(totals) if i != 5])


def test_implausible_readings_rule():
    from devolens.cli.predict import implausible_readings

    every = np.ones(12, bool)
    growing = np.array([1, 2, 2, 4, 4, 8, 12, 15, 24, 26, 44, 50], float)  # the first divisions: nothing odd
    assert not implausible_readings(growing, every).any()
    ends_low = np.array([50, 52, 88, 90, 100, 150, 170, 200, 280, 320, 330, 100], float)
    assert np.flatnonzero(implausible_readings(ends_low, every)).tolist() == [11]
    run = np.array([100, 110, 120, 130, 5, 6, 4, 150, 160, 170, 180, 190], float)  # a run of misreads
    assert np.flatnonzero(implausible_readings(run, every)).tolist() == [4, 5, 6]
    spike = np.array([100, 110, 120, 130, 400, 150, 160, 170, 180, 190, 200, 210], float)
    assert np.flatnonzero(implausible_readings(spike, every)).tolist() == [4]
    doubling_at_end = np.array([100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200, 420], float)
    assert not implausible_readings(doubling_at_end, every).any()  # nothing after it to tell
    kept_fall = np.array([100, 110, 120, 130, 140, 150, 40, 42, 44, 46, 48, 50], float)
    assert not implausible_readings(kept_fall, every)[7:].any()  # a fall the movie keeps: left to the fit


def test_summaries_say_one_frame(monkeypatch, tmp_path, capsys):
    from devolens.io.images import write_png

    from curate_synth import synth_sequence

    image = tmp_path / "one.png"
    write_png(synth_sequence(1, seed=2)[0], image)
    _population(monkeypatch, tmp_path, image, [12])
    err = " ".join(capsys.readouterr().err.split())
    assert "1 frame ->" in err and "1 frames" not in err


def test_segment_summary_of_one_frame_is_singular(tiny_zoo, tmp_path, capsys):
    from devolens.cli import main
    from devolens.io.images import write_png

    from curate_synth import synth_sequence

    image = tmp_path / "one.png"
    write_png(synth_sequence(1, seed=2)[0], image)
    assert main(["segment", "nuclei", str(image), "--out", str(tmp_path / "seg"), "--no-overlay"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "1 frame, " in err and "1 frames" not in err
