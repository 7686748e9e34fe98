"""Checks of the command line found by a user walkthrough (s45): a ``--model`` of another kind refused in one line
before its card is read as a segmentation card (identity's and livedead's ``input`` are other shapes), evaluate's
``--postprocess`` probabilities and ``--instances`` checked in the options' own words, segment's threshold help
saying the open range it takes, and simulate well's outputs named as the TIFFs it writes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from devolens.cli import main


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())  # (the console wraps long lines)


def _frame(path):
    """A small grey PNG with a few bright blobs (never segmented here: every check comes before the model)."""
    img = np.full((64, 80), 20, np.uint8)
    for y, x in ((10, 10), (30, 40), (45, 60)):
        img[y:y + 8, x:x + 8] = 200
    Image.fromarray(img).save(path)
    return path


# ------------------------------------------------------------------------------ 1: --model of another kind
@pytest.mark.parametrize("kind, model, extra", [
    ("nuclei", "identity", []), ("nuclei", "livedead", []), ("membrane", "identity", []),
    ("nuclei", "identity", ["--diameter", "none"]), ("nuclei", "identity", ["--diameter", "none", "--flatten"]),
    ("nuclei", "livedead", ["--diameter", "20"]), ("nuclei", "population", []),
])
def test_segment_refuses_a_model_of_another_kind_in_one_line(tmp_path, capsys, kind, model, extra):
    """Was an AttributeError traceback (the identity card's ``input`` is a sentence) for all but population."""
    src = _frame(tmp_path / "t.png")
    out = tmp_path / "seg"
    assert main(["segment", kind, str(src), "--out", str(out), "--model", model, *extra]) == 2
    err = _err(capsys)
    article = "an" if model == "identity" else "a"
    assert f"model '{model}' is {article} '{model}' model, not '{kind}'" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("model", ["identity", "livedead", "nuclei"])
def test_population_refuses_a_model_of_another_kind_in_one_line(tmp_path, capsys, model):
    src = _frame(tmp_path / "t.png")
    out = tmp_path / "pop.csv"
    assert main(["population", str(src), "--out", str(out), "--model", model]) == 2
    err = _err(capsys)
    assert f"is a{'n' if model == 'identity' else ''} '{model}' model, not 'population'" in err
    assert "Traceback" not in err and not out.exists()


def test_identify_refuses_a_segmentation_model(tmp_path, capsys):
    table = tmp_path / "pos.csv"
    table.write_text("time,x,y,z\n1,10,10,5\n1,30,12,6\n1,20,30,7\n1,40,35,8\n", encoding="utf-8")
    assert main(["identify", str(table), "--out", str(tmp_path / "id.csv"), "--model", "nuclei"]) == 2
    assert "model 'nuclei' is a 'nuclei' model, not 'identity'" in _err(capsys)


# ------------------------------------------------------------------------------- 2: evaluate's options
@pytest.mark.parametrize("given, words", [
    ('{"threshold": 5}', "--postprocess: threshold must be a probability between 0 and 1, exclusive"),
    ('{"threshold": 1}', "--postprocess: threshold must be a probability between 0 and 1, exclusive"),
    ('{"seed_threshold": 0}', "--postprocess: seed_threshold must be a probability between 0 and 1, exclusive"),
    ('{"threshold": -1}', "--postprocess: threshold: expected a number >= 0"),
    ('{"treshold": 0.5}', "--postprocess: unknown option(s) treshold"),
    ('{"split_seeds": 1}', "--postprocess: split_seeds: expected true or false"),
])
def test_evaluate_checks_postprocess_before_any_work(tmp_path, capsys, given, words):
    """Checked before the run is read: an empty folder stands for it (evaluate_run would say it holds no
    best.safetensors)."""
    run = tmp_path / "run"
    run.mkdir()
    assert main(["evaluate", str(run), "--data", str(tmp_path / "data"), "--postprocess", given]) == 2
    err = _err(capsys)
    assert words in err and "validate.postprocess" not in err and "best.safetensors" not in err


def test_evaluate_takes_probabilities_inside_the_range(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(["evaluate", str(run), "--data", str(tmp_path / "data"), "--postprocess",
                 '{"threshold": 0.4, "seed_threshold": 0.99, "min_size": 4}']) == 2
    assert "no best.safetensors" in _err(capsys)  # past the options' checks, to the run's


def test_evaluate_instances_named_by_its_option_and_help_agrees(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(["evaluate", str(run), "--data", str(tmp_path / "data"), "--instances", "foo"]) == 2
    err = _err(capsys)
    assert err.startswith("error: --instances must be one of auto, classes, watershed") and "got 'foo'" in err
    assert main(["evaluate", str(run), "--data", str(tmp_path / "data"), "--instances", "auto"]) == 2
    assert "no best.safetensors" in _err(capsys)  # auto taken, as the recipe takes it
    assert main(["evaluate", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert all(f"'{word}'" in help_text for word in ("auto", "classes", "watershed"))
    assert "between 0 and 1, exclusive" in help_text


# ------------------------------------------------------------------------------ 3: segment's threshold help
@pytest.mark.parametrize("kind", ["nuclei", "membrane"])
def test_threshold_help_says_the_open_range_it_takes(kind):
    from devolens.cli.predict import _postprocess_options, _seed_threshold_help, _threshold_help

    assert "between 0 and 1, exclusive" in _threshold_help(kind) and "0 to 1" not in _threshold_help(kind)
    assert "between 0 and 1, exclusive" in _seed_threshold_help(kind) and "0 to 1" not in _seed_threshold_help(kind)
    from devolens.errors import DevolensError

    for value in (0.0, 1.0):  # what the help says: the ends refused, anything between taken
        with pytest.raises(DevolensError, match="between 0 and 1, exclusive"):
            _postprocess_options(kind, value, None, None, False)
    assert _postprocess_options(kind, 0.001, 0.999, None, False) == {"threshold": 0.001, "seed_threshold": 0.999}


# ------------------------------------------------------------------------------ 4: simulate well's names
@pytest.mark.parametrize("out, labels, option, got", [
    ("w3.png", "l3.tif", "--out", "got '.png'"), ("w3.tif", "l3.png", "--labels", "got '.png'"),
    ("w3", "l3.tif", "--out", "got no extension"),
])
def test_simulate_well_refuses_outputs_not_named_tiff(tmp_path, capsys, out, labels, option, got):
    assert main(["simulate", "well", "--out", str(tmp_path / out), "--labels", str(tmp_path / labels),
                 "--size", "64x64"]) == 2
    err = _err(capsys)
    assert f"{option} must end in .tif or .tiff" in err and got in err
    assert list(tmp_path.iterdir()) == []


def test_simulate_well_takes_tiff_in_any_case_and_says_its_size_minimum(tmp_path, capsys):
    assert main(["simulate", "well", "--out", str(tmp_path / "w.TIFF"), "--labels", str(tmp_path / "l.tiff"),
                 "--size", "16x16"]) == 0
    assert (tmp_path / "w.TIFF").is_file() and (tmp_path / "l.tiff").is_file()
    capsys.readouterr()
    assert main(["simulate", "well", "--help"]) == 0
    assert "at least 8x8" in " ".join(capsys.readouterr().out.replace("│", " ").split())


def test_a_recipe_postprocess_threshold_outside_0_1_is_refused():
    """A recipe's validate.postprocess (train, tune, evaluate) takes the thresholds as probabilities too."""
    from devolens.train.recipe import _postprocess_check

    assert _postprocess_check({"threshold": 0.5, "seed_threshold": 0.7}) is None
    for bad in ({"threshold": 5}, {"seed_threshold": 1}, {"threshold": 0}):
        problem = _postprocess_check(bad)
        assert problem is not None and "between 0 and 1, exclusive" in problem


def test_rows_of_placeholder_names_are_not_said_to_have_no_name(tmp_path):
    """'Foo' and 'Nuc12' are names, just no Sulston names: the note says so instead of 'no cell name'."""
    import pandas as pd

    from devolens.lineage.populations import populations

    df = pd.DataFrame({"embryo": "e", "time": 1, "cell": ["ABa", "ABp", "Foo", "Nuc12"], "x": [1.0, 2, 3, 4],
                       "y": 1.0, "z": 1.0, "size": 5.0})
    note = populations(df).attrs["notes"][0]
    assert note.startswith("2 rows (50 %) have no Sulston cell name (an empty cell or another label")
    assert "no cell name" not in note


def test_compact_name_of_a_negative_depth_is_a_devolens_error():
    import pytest

    from devolens.errors import DevolensValueError
    from devolens.lineage.names import compact_name

    with pytest.raises(DevolensValueError, match="depth must be >= 0"):
        compact_name("ABa", -1)


def test_load_takes_the_kind_a_card_describes_in_a_sentence():
    """livedead's card gives its task as a sentence: kind="livedead" is its kind, as the commands name it."""
    from devolens.models import zoo

    assert zoo.model_task(zoo.card("livedead")) == "livedead"
    assert type(zoo.load("livedead", kind="livedead")).__name__ == "LiveDeadPredictor"
