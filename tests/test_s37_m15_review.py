"""Session 37, review mends: a population table without one frame of signal stays empty when smoothed (its total
read 0.0), load('population', postprocess=...) refuses a value that is no dict in words (a raw TypeError), a Python
user's identity predictor no longer imports the command line (typer, rich) to word an annotation cliff, and the
identity notes' thresholds are read (and patched) in the predictor's module only."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from devolens.errors import DevolensError
from devolens.predict.population import COLUMNS, PopulationPredictor

from _identity_helpers import needs_zoo


# ----------------------------------------------------------------------------- 1. smooth: all rows empty
def test_smooth_keeps_a_table_without_any_counts_empty():
    """predict_batch on an all-black movie gives NaN in every row: smoothed, ``total`` read 0.0 (the sum of NaN
    letters) while A..Z stayed NaN; every row now stays empty, as the docstring says."""
    df = pd.DataFrame(np.nan, index=range(5, 15), columns=list(COLUMNS))
    df.insert(0, "frame", range(5, 15))
    out = PopulationPredictor.smooth(df)
    assert out[list(COLUMNS)].isna().all().all()
    assert out["frame"].tolist() == list(range(5, 15)) and out.index.tolist() == list(range(5, 15))
    assert list(out.columns) == list(df.columns)
    assert df[list(COLUMNS)].isna().all().all()  # the input is left as it was
    # one row with counts: the empty rows stay empty, the row with counts is fitted (as before)
    some = df.copy()
    some.loc[7, list(COLUMNS)] = 1.0
    out = PopulationPredictor.smooth(some)
    assert out.loc[7, "total"] == 7.0 and out.drop(index=7)[list(COLUMNS)].isna().all().all()


# ----------------------------------------------------------------------------- 2. from_zoo: postprocess not a dict
@pytest.mark.parametrize("value", ["abc", [("threshold", 0.5)], 0.5])
def test_population_refuses_a_postprocess_that_is_no_dict_in_words(value):
    """The merge with the card's nuclei_postprocess raised ``TypeError: 'str' object is not a mapping`` before the
    nuclei model's check saw the value: the check now runs first."""
    from devolens.models import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DevolensError, match=r"postprocess must be a dict of post-processing options"):
            load("population", postprocess=value)


def test_population_still_merges_the_users_postprocess_over_the_cards():
    from devolens.models import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = load("population", postprocess={"threshold": 0.61})
    assert pred.nuclei.postprocess_options["threshold"] == 0.61
    assert pred.nuclei.postprocess_options["isolated_fraction"] == 0.0  # the card's own


# ----------------------------------------------------------------------------- 3. identity without the command line
def test_describe_fall_words_a_sudden_and_a_spread_fall():
    from devolens.lineage.cliffs import Cliff, LetterCliff, describe_fall

    assert describe_fall(Cliff(12, 60, 15, 13)) == "60 -> 15 cells at time 13"
    assert describe_fall(Cliff(12, 60, 15, 13, 16)) == "60 -> 15 cells at time 16, falling from time 13"
    assert describe_fall(LetterCliff("E", 30, 8, 0, 31, 33)) == "8 -> 0 cells at time 33, falling from time 31"


@needs_zoo
def test_identity_predict_with_a_cliff_does_not_import_the_command_line(tmp_path):
    """Wording an annotation cliff imported ``devolens.cli.lineage`` (typer, rich: 0.32 s) in a library user's
    process; the wording now lives in :mod:`devolens.lineage.cliffs`."""
    from test_s34_trust import CLIFF, cliff_table

    table = tmp_path / "cliff.csv"
    cliff_table().to_csv(table, index=False)
    code = (
        "import sys, warnings\n"
        "import pandas as pd\n"
        "from devolens.models import load\n"
        f"df = pd.read_csv({str(table)!r})\n"
        "df.attrs['zscale'] = 5.0\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    load('identity', tta=1, smooth='none').predict(df)\n"
        "print([str(w.message) for w in caught if 'annotation cliff' in str(w.message)])\n"
        "print(sorted(m for m in ('typer', 'rich', 'click', 'devolens.cli') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    said, imported = res.stdout.strip().splitlines()[-2:]
    assert f"annotation cliff after time {CLIFF}: 60 -> 15 cells at time {CLIFF + 1}" in said
    assert imported == "[]"


# ----------------------------------------------------------------------------- 4. thresholds in one module
def test_the_identify_command_no_longer_re_exports_the_note_thresholds():
    """``devolens.cli.identify`` handed out the predictor's thresholds (SHORT_CLOUD, WEAK_SKEW ...) for the tests: a
    monkeypatch there changed nothing. The notes read them from :mod:`devolens.predict.identity`."""
    import devolens.cli.identify as cli_identify

    for name in ("SHORT_CLOUD", "WEAK_SKEW", "LOPSIDED_SKEW", "BROKEN_TRACKS", "CROWDED_EDGE", "CROWDED_EDGE_CELLS"):
        assert not hasattr(cli_identify, name), name


def test_patching_the_library_threshold_changes_the_commands_note(monkeypatch):
    from devolens.cli.identify import _input_notes

    attrs = {"frame_skewness": {"e": (0.07, -0.01)}, "largest_clouds": {"e": 400}}
    assert any("nearly symmetric" in n for n in _input_notes(attrs))
    monkeypatch.setattr("devolens.predict.identity.WEAK_SKEW", 0.005)
    assert not any("nearly symmetric" in n for n in _input_notes(attrs))
