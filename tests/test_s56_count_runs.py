"""A lab's own count model, used (fifty-sixth session): a count run of `devolens train` (task population) is read by
`devolens population --model RUN` and `devolens.models.load(RUN)`, its frames prepared as its training frames were;
counts it does not regress are left empty, and said so."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from devolens.errors import DevolensError, DevolensWarning

ROOT = Path(__file__).resolve().parents[1]
LETTERS = list("AEMPCDZ")


def _data(root: Path, sizes=((40, 60),) * 8) -> Path:
    """Grey PNG frames of two embryos (one per size in ``sizes``) and a frames.csv of file, embryo, the seven
    letters and total."""
    rng = np.random.default_rng(0)
    (root / "imgs").mkdir(parents=True)
    rows = []
    for i, (h, w) in enumerate(sizes):
        img = rng.integers(0, 60, (h, w), dtype=np.uint8)
        img[h // 4: h // 4 + 4 + i, w // 4: w // 4 + 4 + i] = 250  # something that grows, for the network to see
        Image.fromarray(img).save(root / "imgs" / f"emb{i}.png")
        rows.append({"file": f"imgs/emb{i}.png", "embryo": f"e{i % 2}", "total": 10 + i,
                     **{k: 1 + i for k in LETTERS}})
    pd.DataFrame(rows).to_csv(root / "frames.csv", index=False)
    return root


def _train(tmp_path: Path, data: Path, counts: list[str], name: str = "run", **recipe_data) -> Path:
    from devolens.cli import main

    rec = yaml.safe_load((ROOT / "recipes" / "population_total.yaml").read_text())
    rec["data"].update({"size": [32, 48], "val_fraction": 0.5, "counts": counts, **recipe_data})
    rec["model"]["width"] = 8
    rec["train"].update(epochs=1, batch_size=4, amp="none")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(rec))
    assert main(["train", str(path), "--data", str(data), "--out", str(tmp_path / name)]) == 0
    return tmp_path / name


@pytest.fixture(scope="module")
def total_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("count_run")
    data = _data(tmp / "d")
    return _train(tmp, data, ["total"]), data


def _as_trained(run: Path, frame: Path) -> float:
    """The run's network on ``frame`` prepared by the training engine's own dataset (what evaluate scores)."""
    import torch

    from devolens.data.datasets import PopulationDataset
    from devolens.models import load

    d = json.loads((run / "best.json").read_text())["recipe"]["data"]
    ds = PopulationDataset([frame], np.zeros((1, 1)), channels=d["channels"], size=d["size"],
                           normalize=d["normalize"], scale=d["scale"], channel=d.get("channel"), pad_multiple=2)
    net = load(run, fast=False).network
    with torch.inference_mode():
        return float(net(ds[0]["image"][None])[0, 0].clamp(min=0))


def test_load_reads_frames_as_the_run_was_trained(total_run):
    from devolens.io.images import read_image
    from devolens.models import load
    from devolens.predict.population import PopulationPredictor

    run, data = total_run
    predictor = load(run, fast=False)
    assert isinstance(predictor, PopulationPredictor) and predictor.outputs == ["total"]
    assert predictor.unread == LETTERS
    frame = read_image(data / "imgs" / "emb3.png")
    row = predictor.predict(frame)
    assert all(math.isnan(row[k]) for k in LETTERS)  # not regressed: empty, not 0
    assert row["total"] == pytest.approx(_as_trained(run, data / "imgs" / "emb3.png"), rel=1e-5, abs=1e-5)
    # a colour frame is read as the run read colour frames (data.channel null: the per-pixel maximum)
    rgb = np.stack([frame, frame // 2, frame // 3], axis=-1)
    assert predictor.predict(rgb)["total"] == pytest.approx(row["total"], rel=1e-5, abs=1e-5)


def test_population_command_with_a_count_run(total_run, tmp_path, capsys):
    from devolens.cli import main

    run, data = total_run
    out = tmp_path / "pops.csv"
    assert main(["population", str(data / "imgs"), "--model", str(run), "--out", str(out), "--no-fast"]) == 0
    said = capsys.readouterr()
    assert "the model regresses total only: the columns A, E, M, P, C, D, Z are left empty" in said.err
    df = pd.read_csv(out)
    assert list(df.columns) == ["frame", *LETTERS, "total"] and len(df) == 8
    assert df[LETTERS].isna().all().all() and df["total"].notna().all()
    assert df.loc[df["frame"] == "emb3", "total"].item() == pytest.approx(
        _as_trained(run, data / "imgs" / "emb3.png"), abs=0.006)  # (the CSV rounds to 2 decimals)
    record = json.loads((tmp_path / "pops.json").read_text())
    assert record["model"] == str(run) and record["nuclei_model"] is None
    # --monotone fits the total on its own (it was emptied with the letters)
    assert main(["population", str(data / "imgs"), "--model", str(run), "--out", str(tmp_path / "m.csv"),
                 "--monotone"]) == 0
    smooth = pd.read_csv(tmp_path / "m.csv")["total"].to_numpy()
    assert np.isfinite(smooth).all() and (np.diff(smooth) >= -1e-9).all()


@pytest.mark.parametrize("option, said", [
    (["--diameter", "20"], "--diameter 20 does not apply to a count regressor"),
    (["--diameter", "auto"], "--diameter auto does not apply to a count regressor"),
    (["--color", "green"], "--color does not apply to a count run: it reads each frame's channels as its training "
                           "frames were read (data.channel null: a colour frame's per-pixel maximum)"),
    (["--clock"], "--clock does not apply to a count run: it has no developmental clock"),
    (["--color", "auto"], "--color does not apply to a count run"),
])
def test_population_options_that_do_not_apply_are_refused(total_run, tmp_path, capsys, option, said):
    from devolens.cli import main

    run, data = total_run
    code = main(["population", str(data / "imgs"), "--model", str(run), "--out", str(tmp_path / "p.csv"), *option])
    err = capsys.readouterr().err
    assert code != 0 and said in err and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists()


def test_a_count_run_is_shown_exported_and_no_segmenter(total_run, tmp_path, capsys):
    from devolens.cli import main
    from devolens.io.images import read_image
    from devolens.models import load

    run, data = total_run
    assert main(["models", "show", str(run)]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"devolens population INPUT --model {run} --out pops.csv [--monotone] [--plot]" in shown
    assert "diameter='auto'" not in shown  # (no size model)
    assert main(["models", "export", str(run), "--to", str(tmp_path / "ex"), "--kind", "nuclei"]) != 0
    assert "--kind does not apply to a count run" in capsys.readouterr().err and not (tmp_path / "ex").exists()
    assert main(["models", "export", str(run), "--to", str(tmp_path / "ex")]) == 0
    assert "population model ->" in " ".join(capsys.readouterr().err.split())
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == ["card.json", "card.md", "weights.safetensors"]
    frame = read_image(data / "imgs" / "emb5.png")
    exported, own = load(tmp_path / "ex", fast=False), load(run, fast=False)
    assert exported.outputs == ["total"] and exported.unread == LETTERS
    assert exported.predict(frame)["total"] == pytest.approx(own.predict(frame)["total"], rel=0.01, abs=0.01)  # fp16
    assert main(["segment", "nuclei", str(data / "imgs"), "--model", str(run), "--out", str(tmp_path / "s")]) != 0
    assert "'population' model, not 'nuclei'" in capsys.readouterr().err


def test_training_a_count_run_ends_with_how_to_use_it(tmp_path, capsys):
    data = _data(tmp_path / "d")
    capsys.readouterr()
    _train(tmp_path, data, ["total"])
    said = capsys.readouterr()
    assert "devolens population INPUT --model" in said.out + said.err and "devolens segment" not in said.out + said.err


def test_a_letters_run_sums_its_total_and_mixed_sizes_without_data_size(tmp_path, capsys):
    """A run of the seven letters: the total is their sum (no column left empty). A run without data.size (frames
    at their working scale) reads a folder of frames of several sizes, one at a time."""
    from devolens.cli import main
    from devolens.models import load

    sizes = [(40, 60), (48, 64)] * 4
    data = _data(tmp_path / "d", sizes)
    run = _train(tmp_path, data, LETTERS, size=None, scale=0.5, cache=False)
    assert load(run).unread == []
    capsys.readouterr()
    assert main(["population", str(data / "imgs"), "--model", str(run), "--out", str(tmp_path / "p.csv")]) == 0
    assert "left empty" not in capsys.readouterr().err
    df = pd.read_csv(tmp_path / "p.csv")
    assert df[LETTERS + ["total"]].notna().all().all()
    assert np.allclose(df[LETTERS].sum(axis=1), df["total"], atol=0.05)


def test_smooth_populations_fits_a_total_without_letters():
    from devolens.predict.postprocess import smooth_populations

    df = pd.DataFrame({"frame": range(4), **{k: [np.nan] * 4 for k in LETTERS}, "total": [3.0, 5.0, 4.0, 8.0]})
    assert smooth_populations(df)["total"].tolist() == [3.0, 4.5, 4.5, 8.0]
    alone = pd.DataFrame({"total": [3.0, 5.0, 4.0, 8.0]})
    assert smooth_populations(alone)["total"].tolist() == [3.0, 4.5, 4.5, 8.0]
    # every letter counted: the total is the fit of their sum, as before
    full = pd.DataFrame({**{k: [1.0, 2.0, 2.0, 3.0] for k in LETTERS}, "P": [1.0] * 4, "total": [0.0] * 4})
    assert smooth_populations(full)["total"].tolist() == [7.0, 13.0, 13.0, 19.0]


def test_the_plot_leaves_out_columns_without_a_count(tmp_path, monkeypatch):
    import matplotlib.axes

    from devolens.viz.plots import plot_populations

    seen = {}
    original = matplotlib.axes.Axes.legend

    def legend(self, *args, **kwargs):
        seen["labels"] = self.get_legend_handles_labels()[1]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "legend", legend)
    pops = pd.DataFrame({"time": range(3), **{k: [np.nan] * 3 for k in LETTERS}, "total": [1.0, 2.0, 4.0]})
    plot_populations(pops, tmp_path / "p.png")
    assert seen["labels"] == ["total"] and (tmp_path / "p.png").is_file()
    seen.clear()  # nothing to draw at all: no legend (matplotlib warned of one without labels)
    plot_populations(pops.assign(total=np.nan), tmp_path / "q.png")
    assert "labels" not in seen and (tmp_path / "q.png").is_file()


def test_a_damaged_count_run_is_said_so(total_run, tmp_path):
    import shutil

    from devolens.models import load

    run, _ = total_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg = json.loads((copy / "best.json").read_text())
    cfg["input"]["counts"] = "total"
    (copy / "best.json").write_text(json.dumps(cfg))
    with pytest.raises(DevolensError, match="input.counts is 'total', not the list of counts"):
        load(copy)


def test_evaluate_prints_each_figure_of_a_count_run_once(total_run, tmp_path, capsys):
    """A count run of one count printed mae_total, mae and count_mae: the same figure three times. The JSON keeps
    all three."""
    from devolens.cli import main

    run, data = total_run
    assert main(["evaluate", str(run), "--data", str(data), "--json", str(tmp_path / "ev.json")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ":" in ln]
    assert [ln.split(":")[0] for ln in lines] == ["mae_total"]
    result = json.loads((tmp_path / "ev.json").read_text())
    metrics = result["metrics"]
    assert metrics["val_mae"] == metrics["val_mae_total"] == metrics["val_count_mae"]
    # one row per frame (there was no CSV for a count run): its counts, as the MAE reads them
    rows = pd.read_csv(result["images_csv"])
    assert list(rows.columns) == ["file", "true_total", "pred_total", "run_side"] and len(rows) == 8
    assert abs((rows["true_total"] - rows["pred_total"]).abs().mean() - metrics["val_mae_total"]) < 1e-3
    assert set(rows["run_side"]) == {"train", "val"}
    frame3 = rows.loc[rows["file"] == "imgs/emb3.png", "pred_total"].item()
    assert frame3 == pytest.approx(_as_trained(run, data / "imgs" / "emb3.png"), abs=1e-3)


def test_frames_csv_written_on_windows_with_backslashes(tmp_path):
    """A frames.csv made on Windows names imgs\\emb0.png: found (it was 'frames listed in frames.csv are missing')."""
    from devolens.data.datasets import index_dataset

    data = _data(tmp_path / "d")
    df = pd.read_csv(data / "frames.csv")
    df["file"] = df["file"].str.replace("/", "\\")
    df.to_csv(data / "frames.csv", index=False)
    table = index_dataset(data)
    assert list(table["sample"]) == [f"imgs/emb{i}.png" for i in range(8)]
    assert all(Path(f).is_file() for f in table["image"])


def test_artifact_words_of_a_lab_and_evaluate_says_what_training_left_out(tmp_path, capsys):
    """'clean' marked a frame as an artifact unsaid (10 frames dropped, the note naming no value); evaluate scored the
    frames training left out without a word."""
    from devolens.cli import main

    data = _data(tmp_path / "d")
    df = pd.read_csv(data / "frames.csv")
    df["artifact"] = ["clean", "OK", "good", "-", "clean", "blur", "dark", "clean"]
    df.to_csv(data / "frames.csv", index=False)
    capsys.readouterr()
    run = _train(tmp_path, data, ["total"])
    said = " ".join(capsys.readouterr().err.split())
    assert "dropped 2 frames with artifacts (artifact: 'blur' 1, 'dark' 1)" in said
    assert main(["evaluate", str(run), "--data", str(data), "--json", str(tmp_path / "ev.json")]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert ("2 of the 8 frames name an artifact (frames.csv's artifact column), which the run's training left "
            "out") in said


def test_a_folder_without_frames_csv_is_refused_in_a_count_runs_words(total_run, tmp_path, capsys):
    from devolens.cli import main

    run, data = total_run
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "a.png").write_bytes((data / "imgs" / "emb0.png").read_bytes())
    recipe = tmp_path / "r.yaml"
    rec = json.loads((run / "best.json").read_text())["recipe"]
    recipe.write_text(yaml.safe_dump(rec))
    assert main(["train", str(recipe), "--data", str(bare), "--out", str(tmp_path / "r2")]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "no frames.csv: a count run trains on a folder of frames and a frames.csv" in err and "masks/" not in err
    assert main(["evaluate", str(run), "--data", str(bare)]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "no frames.csv: a count run is scored on a folder" in err and "(columns total: the recipe's" in err


def test_colour_frames_grey_frames_and_int8_with_a_count_run(tmp_path, capsys):
    """The colour line named 'the as_trained channel' and offered --color; a run of three channels given grey frames
    read them without a word; --precision int8 ran fp32 unsaid."""
    from devolens.cli import main

    data = _data(tmp_path / "d")
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    for i in range(3):
        grey = np.asarray(Image.open(data / "imgs" / f"emb{i}.png"))
        Image.fromarray(np.stack([grey // 3, grey, grey // 2], axis=-1)).save(rgb / f"c{i}.png")
    run = _train(tmp_path, data, ["total"])
    capsys.readouterr()
    assert main(["population", str(rgb), "--model", str(run), "--out", str(tmp_path / "p.csv"),
                 "--precision", "int8"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert ("colour input: the per-pixel maximum of R, G and B (data.channel null) was read in every frame, as the "
            "count run read its training frames") in err
    assert "--color" not in err and "as_trained" not in err
    assert "--precision int8 applies to U-Nets: a count run's regressor runs" in err
    assert json.loads((tmp_path / "p.json").read_text())["color_read"] == "max"
    three = _train(tmp_path, data, ["total"], name="three", channels=3)
    capsys.readouterr()
    assert main(["population", str(data / "imgs"), "--model", str(three), "--out", str(tmp_path / "q.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "8 frames of one channel (grey) given to a count run of 3 channels (data.channels 3)" in err
    assert err.count("given to a count run of 3 channels") == 1  # (the note only: no library warning beside it)
    # the library says both, as warnings
    import warnings

    from devolens.models import load

    with pytest.warns(DevolensWarning, match="precision='int8' applies to U-Nets"):
        load(run, precision="int8")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        load(three).predict_batch([np.asarray(Image.open(data / "imgs" / f"emb{i}.png")) for i in range(2)])
    assert [str(w.message)[:60] for w in said if "grey" in str(w.message)] == [
        "2 frames of one channel (grey) given to a count run of 3 cha"]


def test_an_unfinished_run_is_said_so_where_it_is_used(tmp_path, capsys):
    """A run stopped after 1 of its recipe's 3 epochs (interrupted, or still training) was used without a word; a
    run that train.early_stop ended is finished. (A segmentation run's card says it alike: the same card entry.)"""
    import shutil
    import warnings

    from devolens.cli import main
    from devolens.errors import StartWarning
    from devolens.models import load

    data = _data(tmp_path / "d")
    run = _train(tmp_path, data, ["total"])
    cfg = json.loads((run / "best.json").read_text())
    cfg["recipe"]["train"]["epochs"] = 3
    (run / "best.json").write_text(json.dumps(cfg))
    with pytest.warns(StartWarning, match="the run trained 1 of the 3 epochs its recipe sets and did not finish"):
        load(run)
    capsys.readouterr()
    assert main(["population", str(data / "imgs"), "--model", str(run), "--out", str(tmp_path / "p.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: the run trained 1 of the 3 epochs its recipe sets and did not finish" in err
    assert "did not finish" in " ".join(json.loads((tmp_path / "p.json").read_text())["notes"])
    assert main(["evaluate", str(run), "--data", str(data), "--json", str(tmp_path / "e.json")]) == 0
    assert "did not finish" in " ".join(capsys.readouterr().err.split())  # evaluate says it too
    stopped = tmp_path / "stopped"
    shutil.copytree(run, stopped)
    record = json.loads((stopped / "run.json").read_text())
    record["stopped_early"] = {"epoch": 0}
    (stopped / "run.json").write_text(json.dumps(record))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StartWarning)
        load(stopped)


def test_frames_far_from_the_runs_shape_are_noted(total_run, tmp_path, capsys):
    """A portrait frame given to a run trained on landscape frames was squashed without a word."""
    from devolens.cli import main

    run, data = total_run
    turned = tmp_path / "turned"
    turned.mkdir()
    for i in range(3):
        Image.fromarray(np.rot90(np.asarray(Image.open(data / "imgs" / f"emb{i}.png")))).save(turned / f"t{i}.png")
    capsys.readouterr()
    assert main(["population", str(turned), "--model", str(run), "--out", str(tmp_path / "p.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "3 frames (the first 60x40 px, height x width) were squashed to the count run's input of 32x48 px" in err
    assert main(["population", str(data / "imgs"), "--model", str(run), "--out", str(tmp_path / "q.csv")]) == 0
    assert "squashed" not in capsys.readouterr().err  # 40x60 frames to 32x48: the same shape


def test_the_library_refuses_what_a_count_run_cannot_take(total_run, tmp_path):
    """load(RUN, ...) ignored unknown or wrong options without a word; a card edited by hand gave tracebacks; a call's
    own diameter was refused in a nuclei model's words."""
    import shutil

    from devolens.io.images import read_image
    from devolens.models import load

    run, data = total_run
    with pytest.raises(DevolensError, match="unknown option 'bogus'"):
        load(run, bogus=1)
    with pytest.raises(DevolensError, match="precision must be"):
        load(run, precision="fp64")
    with pytest.raises(DevolensError, match="batch_size must be at least 1"):
        load(run, batch_size=0)
    with pytest.raises(DevolensError, match="device"):
        load(run, device="tpu")
    frame = read_image(data / "imgs" / "emb0.png")
    with pytest.raises(DevolensError, match="diameter=20 does not apply to a count regressor"):
        load(run).predict(frame, diameter=20)
    assert load(run).predict(frame, diameter=None)["total"] >= 0  # (frames as they are: what it reads anyway)
    from devolens.cli import main

    assert main(["models", "export", str(run), "--to", str(tmp_path / "ex")]) == 0
    for edit, said in [(lambda c: c["input"].update(as_trained="max"), "input.as_trained is str 'max', not a mapping"),
                       (lambda c: c["input"]["as_trained"].update(size=[0, -5]), "input.as_trained.size is [0, -5]"),
                       (lambda c: c["input"]["as_trained"].update(size=[64]), "input.as_trained.size is [64]"),
                       (lambda c: c["input"]["as_trained"].update(channel="purple"), "channel is 'purple'"),
                       (lambda c: c["input"]["as_trained"].update(channels=2), "channels is 2 (1 or 3)"),
                       (lambda c: c["input"]["as_trained"].update(scale=-1), "scale must be a number"),
                       (lambda c: c["input"].pop("as_trained"), "input.as_trained is NoneType"),
                       (lambda c: c.update(outputs=["total", "A"]), "outputs ['total', 'A'] do not name")]:
        folder = tmp_path / "edited"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(tmp_path / "ex", folder)
        card = json.loads((folder / "card.json").read_text())
        edit(card)
        (folder / "card.json").write_text(json.dumps(card))
        with pytest.raises(DevolensError, match=said.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            load(folder)


def test_evaluate_says_a_frame_listed_twice_and_an_exported_folder(total_run, tmp_path, capsys):
    import shutil

    from devolens.cli import main

    run, data = total_run
    twice = tmp_path / "twice"
    shutil.copytree(data, twice)
    df = pd.read_csv(twice / "frames.csv")
    pd.concat([df, df.iloc[[2]]]).to_csv(twice / "frames.csv", index=False)
    assert main(["evaluate", str(run), "--data", str(twice), "--json", str(tmp_path / "e.json")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "1 row of frames.csv lists a frame listed before (e.g. imgs/emb2.png): each row is scored" in err
    assert main(["models", "export", str(run), "--to", str(tmp_path / "ex")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "ex"), "--data", str(data)]) != 0
    assert "a model folder (card.json), not a training run" in " ".join(capsys.readouterr().err.split())


def test_a_run_of_letters_and_total_keeps_its_own_total_with_monotone(tmp_path, capsys):
    """--monotone replaced a run's own total by the fit of its letters' sum (the note said the total was its own)."""
    from devolens.cli import main
    from devolens.predict.postprocess import smooth_populations

    data = _data(tmp_path / "d")
    run = _train(tmp_path, data, LETTERS + ["total"])
    capsys.readouterr()
    assert main(["population", str(data / "imgs"), "--model", str(run), "--out", str(tmp_path / "p.csv")]) == 0
    assert "the total is the model's own total output" in " ".join(capsys.readouterr().err.split())
    assert main(["population", str(data / "imgs"), "--model", str(run), "--out", str(tmp_path / "m.csv"),
                 "--monotone"]) == 0
    raw, fitted = pd.read_csv(tmp_path / "p.csv"), pd.read_csv(tmp_path / "m.csv")
    own = smooth_populations(raw[["total"]])["total"].to_numpy()
    assert np.allclose(fitted["total"], own, atol=0.02)
    from devolens.models.zoo import card

    assert "the total is its own total output" in card(run)["limits"]


def test_a_count_run_of_one_colour_channel_is_told_how_population_reads_it(tmp_path, capsys):
    """train's note on data.channel told a count run to `devolens segment ... --color green`, which population
    refuses for it."""
    data = _data(tmp_path / "d")
    for f in (data / "imgs").iterdir():
        grey = np.asarray(Image.open(f))
        Image.fromarray(np.stack([grey // 4, grey, grey // 2], axis=-1)).save(f)
    capsys.readouterr()
    run = _train(tmp_path, data, ["total"], channel="green")
    said = capsys.readouterr()
    text = " ".join((said.out + said.err).split())
    assert ("data.channel green: the network learns from that channel of each image; `devolens population --model "
            "RUN` reads frames so by itself") in text and "--color" not in text
    from devolens.models import load

    assert load(run).as_trained.reads == "green"


def test_a_count_run_gets_no_note_of_the_shipped_models_late_readings(total_run, tmp_path, capsys, monkeypatch):
    """Totals of 290 or more got the shipped model's late-reading note (its renders' figures), which says nothing of
    a lab's own model."""
    import warnings

    from devolens.cli import main
    from devolens.io.images import read_image
    from devolens.models import load
    from devolens.predict.population import PopulationPredictor

    run, data = total_run
    monkeypatch.setattr(PopulationPredictor, "_regress", lambda self, batch: np.full((len(batch), 1), 320.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load(run).predict(read_image(data / "imgs" / "emb0.png"))["total"] == 320.0
    capsys.readouterr()
    assert main(["population", str(data / "imgs"), "--model", str(run), "--out", str(tmp_path / "p.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "reads 320" not in err and "late embryos read low" not in err and "290 or more" not in err
    assert (pd.read_csv(tmp_path / "p.csv")["total"] == 320.0).all()


def test_the_own_count_run_benchmark_refuses_missing_renders(tmp_path):
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("_own_count_run", ROOT / "benchmarks" / "own_count_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = sys.argv
    sys.argv = ["own_count_run.py", "--train", str(tmp_path / "none"), "--out", str(tmp_path / "out")]
    try:
        with pytest.raises(SystemExit, match="render folders not found: .*none"):
            module.main()
    finally:
        sys.argv = argv
    assert not (tmp_path / "out").exists()  # (refused before anything is written)
