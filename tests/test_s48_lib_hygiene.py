"""Session 48, the library's hygiene: live/dead takes the tensors the other predictors take (one that requires grad,
bfloat16), train() names its arguments as a Python caller spells them, the package's docstring examples run (so
none goes stale), reading a video leaves no ffmpeg pipe open, and identity refuses an empty DataFrame as it refuses
a file of the header only."""

from __future__ import annotations

import doctest
import gc
import importlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from devolens.errors import DevolensError

SRC = Path(__file__).resolve().parents[1] / "src"


# ---- 1. live/dead: a tensor as the other predictors take it
def test_livedead_takes_a_tensor_that_requires_grad_and_bfloat16():
    from test_s31_livedead_inputs import _noisy_well, _pred, _u16

    well = torch.from_numpy(_u16(_noisy_well()).astype(np.float32))
    pred = _pred()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        as_array = pred.predict(well.numpy())
        graded = pred.predict(well.clone().requires_grad_())
        brain = pred.predict(well.to(torch.bfloat16))  # (bfloat16 holds these counts to 3 digits: other calls)
    assert np.array_equal(graded.labels, as_array.labels) and graded.counts == as_array.counts
    assert brain.labels.shape == as_array.labels.shape and brain.counts["live"] + brain.counts["dead"] > 0


# ---- 2. train(): its arguments named as Python spells them, the command's flags while the command runs
@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    from _train_data import make_pairs

    return make_pairs(tmp_path_factory.mktemp("s48train") / "data", groups=2, per_group=2, size=32)


@pytest.mark.parametrize("kw, python, flag", [
    ({"epochs": 0}, "epochs must be >= 1, got 0", "--epochs must be >= 1"),
    ({"prune_top": 200}, "prune_top must be in [0, 100) percent, got 200", "--prune-top must be in [0, 100)"),
    ({"threads": 0}, "threads must be >= 1, got 0", "--threads must be >= 1"),
    ({"device": "gpu"}, "device must be auto, cpu, cuda or cuda:N", "--device must be auto, cpu"),
])
def test_train_names_its_arguments_not_the_commands_flags(pairs, tmp_path, kw, python, flag):
    from _train_data import tiny_recipe
    from devolens.errors import set_command
    from devolens.train.trainer import train

    rec = tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0})
    with pytest.raises(DevolensError) as caught:
        train(rec, pairs, tmp_path / "run", info=lambda _: None, **kw)
    assert caught.value.message.startswith(python)
    set_command(True)  # (as the devolens command sets it)
    try:
        with pytest.raises(DevolensError) as caught:
            train(rec, pairs, tmp_path / "run2", info=lambda _: None, **kw)
    finally:
        set_command(False)
    assert caught.value.message.startswith(flag)


# ---- 3. the docstring examples of every module but the command line's
def _modules() -> list[str]:
    root = SRC / "devolens"
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[1:2] == ("cli",) or parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_is_searched_for_examples():
    names = _modules()
    assert "devolens.lineage.cliffs" in names and "devolens.errors" in names and "devolens" in names
    assert not any(n.startswith("devolens.cli") for n in names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    """As ``pytest --doctest-modules src/devolens --ignore=src/devolens/cli`` runs them (ELLIPSIS, pytest's default),
    in the normal suite."""
    module = importlib.import_module(name)
    failed = []
    for test in doctest.DocTestFinder().find(module, name):
        if not test.examples:
            continue
        report: list[str] = []
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        result = runner.run(test, out=report.append, clear_globs=True)
        if result.failed:
            failed.append("".join(report))
    assert not failed, "\n".join(failed)


def test_lone_times_example_shows_missing():
    from devolens.lineage.cliffs import LoneTime, lone_times

    assert lone_times([1, 2, 3, 4, 5, 6, 8, 9, 10, 70], [10, 12, 14, 16, 18, 20, 24, 26, 28, 22]) == [
        LoneTime(time=70, cells=22, nearest=10, step=1, missing=7)]


# ---- 4. a video read leaves no pipe to ffmpeg open
def _unclosed(read) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        read()
        gc.collect()
    return [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]


def test_reading_a_video_leaves_no_pipe_open(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from devolens.io.frames import iter_path_frames
    from devolens.io.video import iter_video_frames, video_info, write_video

    rng = np.random.default_rng(0)
    paths = []
    for k in range(2):
        frames = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
        paths.append(write_video(frames, tmp_path / f"v{k}.mp4", fps=8))
    assert _unclosed(lambda: [len(list(iter_path_frames(p)[0])) for p in paths]) == []  # probe and stream
    assert _unclosed(lambda: video_info(paths[0])) == []

    def partly():
        frames = iter_video_frames(paths[1])
        next(frames)
        frames.close()

    assert _unclosed(partly) == []
    assert _unclosed(lambda: list(iter_video_frames(paths[1]))) == []


# ---- 5. identity: an empty DataFrame refused as a file of the header only is
def test_identity_refuses_an_empty_dataframe(tmp_path):
    from devolens.predict.identity import read_input

    (tmp_path / "empty.csv").write_text("embryo,time,x,y,z,size\n")
    with pytest.raises(DevolensError, match=r"no data rows \(header only\)"):
        read_input(tmp_path / "empty.csv")
    for table in (pd.read_csv(tmp_path / "empty.csv"), pd.DataFrame()):
        with pytest.raises(DevolensError, match=r"^no data rows \(an empty table\): nothing to name; give a table"):
            read_input(table)
    assert len(read_input(pd.DataFrame({"embryo": ["A"], "time": [1], "x": [1.0], "y": [2.0], "z": [3.0]}))) == 1


def test_identity_predict_refuses_an_empty_dataframe_as_its_file(tmp_path):
    from devolens.models.zoo import ZOO_DIR

    if not (ZOO_DIR / "identity" / "weights.safetensors").is_file():
        pytest.skip("identity weights not shipped")
    from devolens.models import load

    (tmp_path / "empty.csv").write_text("embryo,time,x,y,z,size\n")
    pred = load("identity", tta=1)
    for given in (tmp_path / "empty.csv", pd.read_csv(tmp_path / "empty.csv")):
        with pytest.raises(DevolensError, match=r"no data rows \((header only|an empty table)\)"):
            pred.predict(given)
    with pytest.raises(DevolensError, match=r"^no data rows \(an empty table\)"):
        pred.predict_proba(pd.read_csv(tmp_path / "empty.csv"))
