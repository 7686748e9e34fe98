"""A lab training its own count (population) model on its own frames (fifty-fifth session's walkthrough): a
hand-made frames.csv with the lab's counts, its artifact column, empty or mistyped counts, other column cases and
absolute paths, said clearly; no false note on the frames having no mask."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from devolens.errors import DevolensError

ROOT = Path(__file__).resolve().parents[1]


def _recipe(tmp_path: Path, **data) -> Path:
    rec = yaml.safe_load((ROOT / "recipes" / "population_total.yaml").read_text())
    rec["data"].update(size=[32, 48], **data)
    rec["model"]["width"] = 8
    rec["train"].update(epochs=1, batch_size=4, amp="none")
    path = tmp_path / "pop.yaml"
    path.write_text(yaml.safe_dump(rec))
    return path


def _folder(root: Path, n: int = 8, **columns) -> Path:
    """``n`` grey PNG frames of two embryos and a frames.csv of file, embryo, total (+ ``columns``, as given)."""
    rng = np.random.default_rng(0)
    (root / "imgs").mkdir(parents=True)
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 60), dtype=np.uint8)).save(root / "imgs" / f"emb{i}.png")
        rows.append({"file": f"imgs/emb{i}.png", "embryo": f"e{i % 2}", "total": 10 + i})
    df = pd.DataFrame(rows)
    for name, values in columns.items():
        df[name] = values
    df.to_csv(root / "frames.csv", index=False)
    return root


def _bundle(tmp_path: Path, data: Path, **recipe_data):
    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import build_data

    rec = resolved(load_recipe(_recipe(tmp_path, val_fraction=0.5, **recipe_data)))
    return build_data(rec, data)


def test_artifact_cells_of_0_no_false_are_clean_frames(tmp_path):
    data = _folder(tmp_path / "d", artifact=["0", "no", "False", "", "1", "0", " NO ", "blur"])
    bundle = _bundle(tmp_path, data)
    assert len(bundle.train) + len(bundle.val) == 6  # "1" and "blur" name artifacts
    assert "dropped 2 frames with artifacts (artifact: '1' 1, 'blur' 1)" in bundle.notes  # (values named: s56)


def test_every_frame_dropped_as_an_artifact_is_said_so(tmp_path):
    data = _folder(tmp_path / "d", artifact=["1"] * 8)
    with pytest.raises(DevolensError, match="found 0 .8 dropped as artifacts.*data.drop_artifacts: false"):
        _bundle(tmp_path, data)


@pytest.mark.parametrize("value, said", [("", "total empty"), ("four", "total 'four'"), ("-3", "total '-3'"),
                                         ("inf", "total 'inf'")])
def test_a_missing_mistyped_or_negative_count_is_named(tmp_path, value, said):
    totals = [str(10 + i) for i in range(8)]
    totals[5] = value
    data = _folder(tmp_path / "d", total=totals)
    with pytest.raises(DevolensError, match="1 frame of frames.csv has a count") as err:
        _bundle(tmp_path, data)
    assert f"imgs/emb5.png: {said}" in str(err.value)


def test_a_count_column_in_another_case_is_named(tmp_path):
    data = _folder(tmp_path / "d")
    df = pd.read_csv(data / "frames.csv").rename(columns={"total": "Total"})
    df.to_csv(data / "frames.csv", index=False)
    with pytest.raises(DevolensError, match="frames.csv has 'Total' for 'total': names are case-sensitive"):
        _bundle(tmp_path, data)


def test_absolute_frame_paths_with_a_relative_data_folder(tmp_path, monkeypatch):
    data = _folder(tmp_path / "d")
    df = pd.read_csv(data / "frames.csv")
    df["file"] = [str((data / f).resolve()) for f in df["file"]]
    df.to_csv(data / "frames.csv", index=False)
    monkeypatch.chdir(tmp_path)
    bundle = _bundle(tmp_path, Path("d"))
    assert len(bundle.train) + len(bundle.val) == 8 and bundle.unmatched == []


def test_train_and_evaluate_own_counts_without_a_false_partner_note(tmp_path, capsys):
    """Frames without masks are what a count model trains on: neither train nor evaluate says they lack a partner."""
    from devolens.cli import main

    data = _folder(tmp_path / "d")
    assert main(["train", str(_recipe(tmp_path)), "--data", str(data), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr()
    assert "without a partner" not in out.out + out.err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["unmatched"] == []
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(data), "--json", str(tmp_path / "ev.json")]) == 0
    out = capsys.readouterr()
    assert "without a partner" not in out.out + out.err
    result = json.loads((tmp_path / "ev.json").read_text())
    assert result["unmatched"] == [] and result["task"] == "population"
    assert "instances:" not in out.out  # a count run finds no instances
    # its frames trained it: said, its per-frame CSV (s56) says which
    assert "the per-frame CSV's run_side column says which" in " ".join(out.err.split())


def test_train_refuses_an_empty_count_in_one_line(tmp_path, capsys):
    from devolens.cli import main

    data = _folder(tmp_path / "d", total=[""] + [str(i) for i in range(7)])
    assert main(["train", str(_recipe(tmp_path)), "--data", str(data), "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "imgs/emb0.png: total empty" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "best.safetensors").exists()


def test_a_frame_listed_twice_and_frames_without_an_embryo_are_noted(tmp_path):
    data = _folder(tmp_path / "d", embryo=["e0", "e1", "e0", "", "e0", "e1", "e0", ""])
    df = pd.read_csv(data / "frames.csv")
    pd.concat([df, df.iloc[[2]]]).to_csv(data / "frames.csv", index=False)
    notes = " ".join(_bundle(tmp_path, data).notes)
    assert "1 row of frames.csv lists a frame listed before (e.g. imgs/emb2.png)" in notes
    assert "2 frames of frames.csv have no embryo (e.g. imgs/emb3.png): they share one group" in notes
    clean = _bundle(tmp_path, _folder(tmp_path / "c")).notes
    assert not any("listed before" in n or "no embryo" in n for n in clean)
