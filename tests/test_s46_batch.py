"""A cluster user's scripted walk (s46): ``--out -`` is refused (read as stdout, it wrote a file or folder named
``-``); ``evaluate`` keeps stdout for its metrics (the files it wrote are summary lines on stderr) and checks where
its JSON goes before the scoring; a failed ``segment`` leaves no empty folders above --out; ``render``'s errors name
--out as typed; records name an input given with ``..`` without it."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

import pytest

from _render_helpers import make_table
from devolens.io.tables import write_tidy

STDOUT = "writing to stdout is not supported: give a file name (./- for a file named -)"


def _cli(args, capsys):
    from devolens.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, got.out, " ".join(got.err.split())


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "t.csv"
    write_tidy(make_table(n_times=3, n_cells=8, seed=1), path)
    return path


# ---------------------------------------------------------------- 1. --out -
@pytest.mark.parametrize("command", [
    lambda t: ["lineage", "convert", t], lambda t: ["lineage", "populations", t],
    lambda t: ["simulate", "embryo", "--cells", "8"], lambda t: ["segment", "nuclei", t.parent],
    lambda t: ["render", t, "--size", "32", "32"], lambda t: ["identify", t], lambda t: ["population", t.parent],
    lambda t: ["train", "recipe.yaml", "--data", t.parent]])
@pytest.mark.parametrize("spelling", [["--out", "-"], ["--out=-"], ["-o", "-"]])
def test_out_dash_is_refused_not_written(command, spelling, table, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if command(table)[0] == "train":
        Path("recipe.yaml").write_text((Path(__file__).parents[1] / "recipes" / "tiny_nuclei.yaml").read_text())
    code, _, err = _cli([*command(table), *spelling], capsys)
    assert code == 2 and err == f"error: -: {STDOUT}"
    assert not os.path.lexists("-")


def test_a_file_named_dash_is_still_written_as_dot_slash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(["simulate", "embryo", "--cells", "8", "--out", "./-"], capsys)
    assert code == 0, err
    assert Path("-").is_file()


# ---------------------------------------------------------------- 2. evaluate's streams and its --json checks
@pytest.fixture
def fake_eval(tmp_path, monkeypatch):
    """A run folder and a data folder, with the scoring replaced by a stub that counts its calls."""
    import devolens.train.evaluate as evaluate

    run, data = tmp_path / "run", tmp_path / "A"
    run.mkdir()
    data.mkdir()
    calls = []

    def scored(*args, **kwargs):
        calls.append(args)
        return {"metrics": {"val_f1": 0.5, "val_count_mae": 1.0}, "validate": {"instances": "classes"},
                "images": [{"file": "a.tif", "true_count": 2, "pred_count": 2, "tp": 2, "fp": 0, "fn": 0,
                            "precision": 1.0, "recall": 1.0, "f1": 1.0, "run_side": "none"}]}

    monkeypatch.setattr(evaluate, "evaluate_run", scored)
    return run, data, calls


def test_evaluate_prints_metrics_on_stdout_and_the_files_on_stderr(fake_eval, tmp_path, capsys):
    run, data, _ = fake_eval
    target = tmp_path / "m.json"
    code, out, err = _cli(["evaluate", run, "--data", data, "--json", target], capsys)
    assert code == 0, err
    assert out.splitlines() == ["f1: 0.5000", "count_mae: 1.0000", "instances: classes"]  # (no val_: s47)
    assert f"metrics -> {target}" in err and f"per image -> {tmp_path / 'm_images.csv'}" in err
    assert json.loads(target.read_text())["metrics"]["val_f1"] == 0.5
    code, out, err = _cli(["-q", "evaluate", run, "--data", data, "--json", target], capsys)
    assert code == 0 and "->" not in out + err and out.startswith("f1: 0.5000")


def test_evaluate_help_says_what_it_prints(capsys):
    code, out, _ = _cli(["evaluate", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "print and write the metrics as JSON" not in text and "'key: value' lines" in text


def test_evaluate_json_where_nothing_can_be_written_is_refused_before_scoring(fake_eval, tmp_path, capsys):
    run, data, calls = fake_eval
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "m.json"
    code, _, err = _cli(["evaluate", run, "--data", data, "--json", target], capsys)
    assert code == 2 and err.startswith(f"error: {target}: cannot write output")  # the JSON, not the CSV
    assert calls == []


def test_evaluate_read_only_run_folder_suggests_json(fake_eval, monkeypatch, capsys):
    run, data, calls = fake_eval
    real = tempfile.mkstemp

    def refused(*args, dir=None, **kwargs):  # (root writes anywhere: the run folder refuses as a read-only one)
        if dir is not None and Path(dir) == run.absolute():
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    code, _, err = _cli(["evaluate", run, "--data", data], capsys)
    assert code == 2 and err.startswith(f"error: {run / 'eval_A.json'}: cannot write output: Permission denied")
    assert "give --json FILE.json" in err and calls == []


# ---------------------------------------------------------------- 3. a failed segment's folders
def test_failed_segment_leaves_no_empty_folders_above_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("in").mkdir()
    Path("in/bad.png").write_bytes(b"abc")
    code, _, err = _cli(["segment", "nuclei", "in", "--out", "sb/deep/out"], capsys)
    assert code == 2 and "cannot read image" in err
    assert not os.path.lexists("sb")


# ---------------------------------------------------------------- 4. render names --out as typed
def test_render_names_out_as_typed(table, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("x")
    code, _, err = _cli(["render", "--simulate", "1", "--sim-cells", "8", "--size", "32", "32", "--out",
                         "afile/sub"], capsys)
    assert code == 2 and err == "error: afile/sub: cannot write output: afile is a file, not a folder"


def test_staged_folder_names_the_files_it_writes_by_out_as_typed(tmp_path, monkeypatch):
    from devolens.errors import DevolensError
    from devolens.io.atomic import Exhausted, cannot_write, staged_folder

    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exhausted) as caught:  # (the class is kept: a full disk exits 75)
        with staged_folder("r") as stage:
            (stage.tmp / "labels").mkdir()
            raise cannot_write(OSError(errno.ENOSPC, "No space left on device"), stage.tmp / "labels" / "a.tif")
    assert str(caught.value) == "r/labels/a.tif: cannot write output: No space left on device"
    assert caught.value.path == Path("r/labels/a.tif") and not Path("r").exists()
    with pytest.raises(DevolensError, match=f"^{tmp_path}/elsewhere: unrelated$"):  # a path not under out: kept
        with staged_folder("r"):
            raise DevolensError("unrelated", path=tmp_path / "elsewhere")


# ---------------------------------------------------------------- 5. records' input paths
def test_records_name_an_input_given_with_dotdot_without_it(tmp_path, monkeypatch):
    from devolens.provenance import input_entry, record_header

    (tmp_path / "rend" / "frames").mkdir(parents=True)
    (tmp_path / "rend" / "frames" / "a.png").write_bytes(b"x")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    header = record_header("segment nuclei", "../rend/frames", "nuclei", output="../out")
    assert header["input"] == str(tmp_path / "rend" / "frames") and header["output"] == str(tmp_path / "out")
    assert input_entry("../rend/frames")["path"] == str(tmp_path / "rend" / "frames")
    os.symlink(tmp_path / "rend", tmp_path / "cwd" / "link")  # a link is kept as named, not resolved
    assert input_entry("link/frames")["path"] == str(tmp_path / "cwd" / "link" / "frames")
