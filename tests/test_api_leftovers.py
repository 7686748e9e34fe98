"""The Python library as a notebook user calls it: option values checked with a clear DevolensError, and
what the CLI prints as a note given to library users too."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from _zoo_helpers import tiny_network, tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError, DiameterWarning
from devolens.predict.segment import MembranePredictor, NucleiPredictor
from devolens.predict.sizing import SizeModel, style_features


def _tiny():
    return tiny_network(3)


# ------------------------------------------------------------------ 1. diameter


@pytest.mark.parametrize("cls", [NucleiPredictor, MembranePredictor])
def test_diameter_takes_numbers_auto_each_or_none_only(cls):
    model = _tiny()
    for bad in ("35", " 35 ", True, False, np.True_, "35px", [35], b"35"):
        with pytest.raises(DevolensError, match=r"diameter must be a number of pixels, 'auto', 'each' or None"):
            cls(model, scale=0.5, diameter_ref=20.0, diameter=bad)
    for good in (35, 35.0, np.float32(35), np.int64(35), np.float64(35.0)):  # numpy numbers are numbers
        pred = cls(model, scale=0.5, diameter_ref=20.0, diameter=good)
        assert pred.diameter == 35.0 and type(pred.diameter) is float
    assert cls(model, scale=0.5, diameter_ref=20.0, diameter=None).diameter is None


def test_population_diameter_takes_numbers_auto_or_none_only(tiny_zoo):
    import json

    from devolens.models import load, zoo

    path = zoo.ZOO_DIR / "nuclei" / "card.json"
    card = json.loads(path.read_text())
    card["input"]["diameter"] = {"reference": 30.0}
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    for bad in ("15", True, "15px"):
        with pytest.raises(DevolensError, match=r"diameter must be a number of pixels, 'auto' or None, got"):
            load("population", diameter=bad)
    for good in (np.float32(15), np.int64(15), 15):
        assert load("population", diameter=good).resize == pytest.approx(2.0)


# ------------------------------------------------------------------ 2. curate_path options


def _png_folder(root: Path, n: int = 4) -> Path:
    import imageio.v3 as iio

    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        iio.imwrite(root / f"t{i:03d}.png", (rng.random((24, 32, 3)) * 200).astype(np.uint8))
    return root


def test_curate_path_refuses_bad_options_whatever_the_input(tmp_path):
    from devolens.curate import Thresholds, curate_path

    folder = _png_folder(tmp_path / "pngs")
    for kwargs, msg in (
        (dict(stack_z="x"), "stack_z must be one of project, slices"),
        (dict(stack_z=None), "stack_z must be one of"),
        (dict(pages="x"), "pages"),
        (dict(channel="a"), "channel must be a channel number"),
        (dict(channel=-1), "channel must be a channel number"),
        (dict(channel=True), "channel must be a channel number"),
        (dict(channel=1.5), "channel must be a channel number"),
        (dict(channel=1), "this input has none"),  # a folder of PNGs has no C axis
        (dict(thresholds={"black_level": 2}), "thresholds must be a devolens.curate.Thresholds"),
        (dict(progress=5), "progress must be a function"),
    ):
        with pytest.raises(DevolensError, match=msg):
            curate_path(folder, **kwargs)
    with pytest.raises(DevolensError, match="expected a path"):
        curate_path(5)
    report = curate_path(str(folder), thresholds=Thresholds(black_level=2.0), stack_z="slices")
    assert len(report) == 4


def test_curate_cli_names_its_option(tmp_path, capsys):
    from devolens.cli import main

    folder = _png_folder(tmp_path / "pngs")
    assert main(["curate", "frames", str(folder), "--out", str(tmp_path / "r.csv"), "--stack-z", "x"]) == 2
    assert "--stack-z must be one of" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


# ------------------------------------------------------------------ 3. staged_folder


def test_staged_folder_failed_commit_leaves_no_empty_folders(tmp_path, monkeypatch):
    from devolens.io import atomic

    out = tmp_path / "a" / "b" / "out"

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    with pytest.raises(DevolensError, match="No space left"):
        with atomic.staged_folder(out) as stage:
            (stage.tmp / "x.txt").write_text("x")
            monkeypatch.setattr(atomic.os, "replace", full_disk)  # the commit's renames fail
    assert os.listdir(tmp_path) == []  # neither out nor the folders made for it
    monkeypatch.undo()
    # a folder that was there before stays (only what the call made goes)
    kept = tmp_path / "kept"
    kept.mkdir()
    monkeypatch.setattr(atomic.os, "replace", full_disk)
    with pytest.raises(DevolensError):
        with atomic.staged_folder(kept) as stage:
            (stage.tmp / "x.txt").write_text("x")
    assert os.listdir(tmp_path) == ["kept"] and os.listdir(kept) == []


# ------------------------------------------------------------------ 4. untrusted estimates warn


def _constant_model(pred, m: float) -> SizeModel:
    n = len(style_features(pred, np.zeros((32, 32), np.uint8)))
    return SizeModel(np.zeros(n), np.ones(n), np.zeros(n), float(np.log(m)), m0=0.8)


def _two_nuclei(shape=(96, 128)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape, np.uint8)
    for cx in (40, 90):
        img[(yy - shape[0] // 2) ** 2 + (xx - cx) ** 2 <= 100] = 200
    return img


def test_untrusted_auto_estimate_warns_library_users():
    pred = NucleiPredictor(_tiny(), scale=0.5, diameter_ref=20.0, auto_keep=(0.5, 1.5))
    pred.size_model = _constant_model(pred, 3.0)
    pred.auto = True
    with pytest.warns(DiameterWarning, match=r"diameter='auto': .*fewer than 8 separate bright regions.*used as they"):
        res = pred.predict(_two_nuclei())
    assert pred.last_estimate.trusted == 0 and res.labels.shape == (96, 128)
    pred.auto_each = True
    with pytest.warns(DiameterWarning, match=r"diameter='each': 2 of 2 images"):
        pred.predict_batch([_two_nuclei(), _two_nuclei()])
    # no warning where the estimate decided or nothing was estimated
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiameterWarning)
        NucleiPredictor(_tiny(), scale=0.5).predict(_two_nuclei())


def test_cli_silences_the_warning_it_says_as_a_note(monkeypatch):
    """The commands print their own note (``diameter auto: ...``, unchanged): the library's warning is not said
    twice there, and the warning filters are as they were afterwards."""
    from devolens.cli import app, main

    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))  # restored afterwards

    @app.command("zz-warn")
    def _zz() -> None:
        warnings.warn("diameter='auto': test", DiameterWarning)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["zz-warn"]) == 0
        assert not caught
        warnings.warn("diameter='auto': test", DiameterWarning)  # the library's own filters are back
        assert len(caught) == 1


# ------------------------------------------------------------------ 5. the rest of the public API


def test_tables_refuse_what_is_no_path_and_unknown_formats(tmp_path):
    from devolens.io.tables import read_positions, read_table

    for bad in (None, 5, "", b"t.csv"):
        for fn in (read_table, read_positions):
            with pytest.raises(DevolensError, match="expected the path of a lineage table"):
                fn(bad)
    table = tmp_path / "t.csv"
    table.write_text("embryo,time,cell,x,y,z,size\ne,1,ABa,1,2,3,4\n")
    with pytest.raises(DevolensError, match="format must be 'epic', 'acetree', 'tidy' or None"):
        read_table(table, format="csv")
    assert len(read_table(str(table), format="Tidy")) == 1


def test_populations_refuse_times_that_would_be_miscounted():
    import pandas as pd

    from devolens.lineage.populations import populations

    for times, shown in (([1, np.nan], "nan"), ([1.5, 2], "1.5"), (["a", "2"], "'a'")):
        with pytest.raises(DevolensError, match=f"column 'time' must hold whole time points; row . has {shown}"):
            populations(pd.DataFrame({"time": times, "cell": ["ABa", "E"]}))
    assert populations(pd.DataFrame({"time": [1.0, 2.0], "cell": ["ABa", "E"]}))["time"].tolist() == [1, 2]


def test_cliffs_and_simulator_options_are_checked():
    import pandas as pd

    from devolens.lineage.cliffs import cut_at_cliff, detect_cliffs, find_cliffs, find_duplicates
    from devolens.lineage.simulate import simulate_embryo

    df = pd.DataFrame({"time": [1, 1, 2], "cell": ["ABa", "ABp", "E"]})
    for kwargs, msg in ((dict(min_drop="5"), "min_drop must be a whole number >= 1"),
                        (dict(window=2.5), "window must be a whole number"),
                        (dict(min_fraction=float("nan")), "min_fraction must be a number from 0 to 1")):
        with pytest.raises(DevolensError, match=msg):
            find_cliffs(df, **kwargs)
    with pytest.raises(ValueError, match="totals must be whole numbers; item 1 is nan"):  # still a ValueError too
        detect_cliffs([1, 2, 3], [50, np.nan, 1])
    with pytest.raises(DevolensError, match="expected a table"):
        find_duplicates(df["cell"])
    with pytest.raises(DevolensError, match="last_good_time must be a whole number"):
        cut_at_cliff(df, "2")
    for kwargs in (dict(n_cells="8"), dict(n_cells=2.5), dict(n_cells=float("nan")), dict(n_times="3")):
        with pytest.raises(DevolensError, match="must be a whole number >= 1 or None"):
            simulate_embryo(0, **kwargs)
    assert simulate_embryo(0, n_times=np.int32(3))["time"].nunique() == 3


def test_renderers_check_table_and_options(tmp_path):
    import pandas as pd

    from devolens.lineage.simulate import simulate_embryo
    from devolens.render.dataset import render_dataset
    from devolens.render.membranes import render_membrane_frame
    from devolens.render.nuclei import render_nuclei_frame

    df = simulate_embryo(0, n_cells=6)
    t = int(df["time"].max())
    for render in (render_nuclei_frame, render_membrane_frame):
        for args, kwargs, msg in (((df["x"], t), {}, "expected a tidy lineage table"),
                                  ((df.drop(columns="z"), t), {}, "lacks column"),
                                  ((df, str(t)), {}, "time must be a whole number"),
                                  ((df, t + 0.5), {}, "time must be a whole number"),
                                  ((df, t), dict(size=64), r"size must be \(height, width\)"),
                                  ((df, t), dict(size=(10**6, 10**6)), "frame size must be within 8..8192"),
                                  ((df, t), dict(seed=-1), "seed must be a whole number >= 0")):
            with pytest.raises(DevolensError, match=msg):
                render(*args, **{"size": (32, 48), **kwargs})
    with pytest.raises(ValueError, match="pose must be"):  # a DevolensError and still a ValueError
        render_nuclei_frame(df, t, size=(32, 48), pose="x")
    with pytest.raises(DevolensError, match="optics must be an OpticsParams"):
        render_nuclei_frame(df, t, size=(32, 48), optics={})
    nan_time = pd.concat([df, df.iloc[:1].assign(time=np.nan)], ignore_index=True)
    for tables, kwargs, msg in ((df, dict(out=""), "out must be the path of the output folder"),  # not the cwd
                                ("t.csv", {}, "tables must be a tidy lineage table"),
                                (df, dict(times=t), "times must be a list of time points"),
                                (df, dict(times=[]), "times is empty"),
                                (df, dict(every=1.5), "every must be a whole number"),
                                (df, dict(video=True, fps=0), "fps must be a positive number"),
                                (df, dict(progress=3), "progress must be a function"),
                                (nan_time, dict(times=[t]), "column 'time' must hold whole time points")):
        with pytest.raises(DevolensError, match=msg):
            render_dataset(tables, **{"out": tmp_path / "r", "size": (32, 48), **kwargs})
    assert not (tmp_path / "r").exists()


def test_clock_fit_refuses_what_it_would_fit_wrongly(tiny_zoo):
    import pandas as pd

    from devolens.models import load

    pop = load("population")
    rows = pd.DataFrame({"total": [4.0, 8, 12, 20, 30, 50, 70, 90]})
    for df, positions, msg in ((rows["total"], range(8), "a DataFrame with a 'total' column"),
                               (rows, None, "frame position"),
                               (rows.assign(total=[4, -1.0, 12, 20, 30, 50, 70, 90]), range(8),
                                "totals must be finite numbers >= 0; frame 1 has -1"),
                               (rows, [0, 1, 2, np.nan, 4, 5, 6, 7], "positions must be finite numbers; frame 3")):
        with pytest.raises(DevolensError, match=msg):
            pop.clock_fit(df, positions)
    assert len(pop.clock_fit(rows, range(8))[0]) == 8
    # a frame without signal (NaN, as predict_batch leaves it) is left out of the fit, not refused (37th session)
    assert len(pop.clock_fit(rows.assign(total=[4, np.nan, 12, 20, 30, 50, 70, 90]), range(8))[0]) == 8


def test_tiling_and_tiled_inference_check_their_inputs(tmp_path):
    import tifffile

    from devolens.data.tiling import tile_arrays, tile_to_h5
    from devolens.predict.tiled import predict_tiled, predict_tiled_array

    img = np.random.default_rng(0).integers(0, 1000, (2, 64, 80)).astype(np.uint16)
    lab = np.zeros((64, 80), np.uint8)
    lab[10:40, 20:60] = 1
    for kwargs, msg in ((dict(tile=500), "larger than the image"), (dict(tile=32.5), "tile must be a whole number"),
                        (dict(labels=lab + 3), r"label values must be in 0..2, found 3..4"),
                        (dict(labels=lab.astype(np.int8) - 1), "label values must be in 0..2"),
                        (dict(labels=lab.astype(float)), "must hold integers")):
        with pytest.raises(DevolensError, match=msg):
            tile_arrays(img, **{"labels": lab, "tile": 32, "stride": 16, **kwargs})
    assert tile_arrays(img.tolist(), lab.tolist(), tile=32, stride=16)["images"].shape[1:] == (2, 32, 32)
    tifffile.imwrite(tmp_path / "w.tif", img)
    tifffile.imwrite(tmp_path / "l.tif", lab)
    one = tile_to_h5(str(tmp_path / "w.tif"), tmp_path / "t.h5", tmp_path / "l.tif", tile=32, stride=16)
    assert one.sources == ["w.tif"]  # one path is one image, not a list of its characters
    with pytest.raises(DevolensError, match="tile must be a whole number"):
        tile_to_h5([tmp_path / "w.tif"], tmp_path / "t2.h5", [tmp_path / "l.tif"], tile="32")

    def model(b):
        return np.repeat(b[:, :1].astype(np.float32), 3, axis=1)

    for source, kwargs, msg in ((img[0], {}, r"\(C, H, W\)"), (str(tmp_path / "w.tif"), {}, "not a path"),
                                (img, dict(batch_size=0), "batch_size must be"), (img, dict(multiple=0), "multiple"),
                                (img, dict(window="64"), "window must be")):
        with pytest.raises(DevolensError, match=msg):
            predict_tiled_array(source, model, n_out=3, **kwargs) if not isinstance(source, str) else \
                predict_tiled(source, model, lambda y, r: None, n_out=3)
    with pytest.raises(DevolensError, match="model_fn must be a function"):
        predict_tiled_array(img, None, n_out=3)


def test_the_checks_take_what_real_tables_and_numpy_give():
    """Float time columns (1.0), pandas' nullable dtypes and numpy numbers render and count as plain ints do;
    the options that raised a plain ValueError before still raise one."""
    import pandas as pd

    from devolens.io.tables import read_table
    from devolens.lineage.cliffs import detect_cliffs
    from devolens.lineage.populations import populations
    from devolens.lineage.simulate import simulate_embryo
    from devolens.render.nuclei import render_nuclei_frame

    df = simulate_embryo(0, n_cells=6)
    t = int(df["time"].max())
    ref = render_nuclei_frame(df, t, size=(32, 48), seed=1)
    for table, time, size, seed in ((df.astype({"time": float}), t, (32, 48), 1),
                                    (df.astype({"time": "Int64"}), np.int64(t), (np.int64(32), 48), np.uint32(1)),
                                    (df, float(t), np.array([32, 48]), 1.0)):
        frame = render_nuclei_frame(table, time, size=size, seed=seed)
        assert np.array_equal(frame.image, ref.image) and np.array_equal(frame.labels, ref.labels)
        pd.testing.assert_frame_equal(populations(table), populations(df))
    for call in (lambda: read_table("t.csv", format="csv"), lambda: detect_cliffs([1, 2], [3, 4], min_drop="5"),
                 lambda: render_nuclei_frame(df, t, size=(32.5, 48))):
        with pytest.raises(ValueError):
            call()


def test_bools_are_no_numbers_for_postprocess_or_batch_size(tmp_path):
    """``True`` was read as 1 (a threshold of 1 finds nothing; a batch of 1): refused like ``diameter=True``."""
    from devolens.errors import DevolensError
    from devolens.predict.segment import _check_postprocess
    from devolens.train.evaluate import evaluate_run

    with pytest.raises(DevolensError, match="threshold"):
        _check_postprocess({"threshold": True})
    with pytest.raises(DevolensError, match="min_size"):
        _check_postprocess({"min_size": False})
    _check_postprocess({"threshold": 0.6, "min_size": 8, "split_seeds": True})  # split_seeds is a switch
    with pytest.raises(DevolensError, match="split_seeds"):
        _check_postprocess({"split_seeds": "False"})  # a true value: every blob split
    with pytest.raises(DevolensError, match="--batch-size"):
        evaluate_run(tmp_path, tmp_path, batch_size=True)


# ------------------------------------------------------------------ state a caller can reach


def test_card_and_a_predictors_card_are_the_callers_own(tiny_zoo):
    """Editing the dict that models.card() returns, or a loaded predictor's .card, changes no later load (the
    cached card used to be handed out as it was: a later load segmented at the edited scale)."""
    from devolens.models import card, load

    c = card("nuclei")
    scale = c["input"]["scale"]
    c["input"]["scale"] = scale / 4
    c.setdefault("postprocess", {})["threshold"] = 0.99
    pred = load("nuclei")
    assert pred.working_scale() == scale and card("nuclei")["input"]["scale"] == scale
    assert pred.postprocess_options.get("threshold") != 0.99
    pred.card["input"]["scale"] = 7.0
    assert card("nuclei")["input"]["scale"] == scale and load("nuclei").working_scale() == scale


def test_streams_refuse_one_frame_and_a_progress_that_is_not_callable():
    """predict_iter / predict_batch given one frame (an HxW or HxWx3 array) used to run over its rows, one
    "image" per row; a progress that cannot be called failed only after the first image."""
    pred = NucleiPredictor(_tiny(), scale=0.5)
    grey, rgb = np.zeros((32, 48), np.uint8), np.zeros((32, 48, 3), np.uint8)
    for method in (pred.predict_iter, pred.predict_batch):
        for one in (grey, rgb, np.zeros((32, 48, 4), np.uint8), torch.zeros(32, 48)):
            with pytest.raises(DevolensError, match=r"takes an iterable of images, got one array of shape .*predict\("):
                list(method(one))
        with pytest.raises(DevolensError, match="progress must be a callable"):
            list(method([grey], progress=True))
    assert len(pred.predict_batch(np.zeros((3, 32, 48), np.uint8))) == 3  # a (T, H, W) stack is T frames
    assert len(pred.predict_batch(np.zeros((2, 32, 48, 3), np.uint8))) == 2


def test_devices_take_a_numbered_gpu():
    """'cuda:N' (torch's name for the GPU numbered N, for machines with several) is taken, checked against the
    GPUs PyTorch sees; other spellings stay refused."""
    from devolens.predict.devices import device_name, resolve_device

    assert device_name(" CUDA:1 ") == "cuda:1" and device_name("cuda:01") == "cuda:1"
    for bad in ("cuda:", "cuda:x", "cuda:-1", "gpu:0", "cuda:1.5"):
        with pytest.raises(DevolensError, match=r"must be auto, cpu, cuda or cuda:N"):
            device_name(bad)
    if not torch.cuda.is_available():
        with pytest.raises(DevolensError, match="sees no CUDA GPU"):
            resolve_device("cuda:0")
    else:
        assert resolve_device("cuda:0") == "cuda:0"
        with pytest.raises(DevolensError, match="numbered from 0"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_recipes_take_a_numbered_gpu_and_bool_wells_are_refused(tmp_path):
    """train.device takes cuda:N as --device does (a run trained on cuda:1 could not be resumed: its recipe.yaml
    was refused); a bool well read from a file is converted with the warning, not taken as 0/1 counts."""
    import warnings

    import tifffile

    from devolens.predict.tiled import RowReader
    from devolens.train.recipe import validate_recipe

    rec = validate_recipe({"name": "x", "task": "segmentation", "train": {"device": "cuda:1"}})
    assert rec["train"]["device"] == "cuda:1"
    with pytest.raises(DevolensError, match=r"train.device.*cuda:N"):
        validate_recipe({"name": "x", "task": "segmentation", "train": {"device": "gpu"}})
    tifffile.imwrite(tmp_path / "b.tif", np.ones((2, 8, 8), bool), metadata={"axes": "CYX"})
    with warnings.catch_warnings(record=True) as seen, RowReader(tmp_path / "b.tif") as r:
        warnings.simplefilter("always")
        r.rows(0, 8)
    assert any("not uint16; converted" in str(w.message) for w in seen)
