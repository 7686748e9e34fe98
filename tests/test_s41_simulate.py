"""`simulate embryo --params` found by a user walkthrough: eggshell and physics parameters out of their range are
refused in one line naming the key and its range (they gave tracebacks deep in numpy, or an eggshell of 100 px and
every nucleus squeezed into 30-50 px, silently), and a second run with the same --params and --out is not refused
as overwriting the .meta.json the first one wrote."""

from __future__ import annotations

import json
import re

import pytest

from devolens.errors import DevolensError


def _main(args: list[str], capsys) -> tuple[int, str]:
    from devolens.cli import main

    code = main(args)
    return code, capsys.readouterr().err


# ------------------------------------------------------------------ 1: eggshell and physics parameters by key


@pytest.mark.parametrize("over, key, want", [
    ({"embryo": {"inner": [0, 0, 0]}}, "embryo.inner", "each > 0 and at most 1"),  # was: data must be finite
    ({"embryo": {"maj": [600, -5]}}, "embryo.maj", "the sd >= 0"),  # was: scale < 0
    ({"embryo": {"ang_range": [10, -10]}}, "embryo.ang_range", "low <= high"),  # was: high - low < 0
    ({"embryo": {"maj": [-600, 0]}}, "embryo.maj", "the mean >= 100"),  # was: drawn as a 100 px eggshell
    ({"embryo": {"maj": [0, 0]}}, "embryo.maj", "the mean >= 100"),
    ({"embryo": {"min": [600, 5]}}, "embryo.min", "from 60 to 0.95 x embryo.maj's mean"),
    ({"embryo": {"zc": [-1000, 0]}}, "embryo.zc", "the mean >= 0"),
    ({"embryo": {"shell_z_semi_frac": 0}}, "embryo.shell_z_semi_frac", "a number > 0 and at most 1"),
    ({"physics": {"packing": 1e9}}, "physics.packing", "a number > 0 and at most 2"),
    ({"physics": {"margin": 5}}, "physics.margin", "a number from 0 to 0.6 with this eggshell"),
    ({"physics": {"iterations": -1}}, "physics.iterations", "a whole number from 0 to 100"),
    ({"physics": {"iterations": 2.5}}, "physics.iterations", "a whole number from 0 to 100"),
    ({"physics": {"stiffness": -2}}, "physics.stiffness", "a number from 0 to 1"),
    ({"physics": {"daughter_offset": -3}}, "physics.daughter_offset", "a number from 0 to 1"),
    ({"physics": {"jitter": [-1, -1]}}, "physics.jitter", "each from 0 to 1"),
    ({"physics": {"axis_noise_deg": -30}}, "physics.axis_noise_deg", "a number from 0 to 180"),
    ({"physics": {"flow": -0.1}}, "physics.flow", "a number from 0 to 1"),
    ({"physics": {"radial_pull": 2}}, "physics.radial_pull", "a number from 0 to 1"),
])
def test_eggshell_and_physics_out_of_range_are_refused_by_key(over, key, want):
    from devolens.lineage.simulate import load_params

    with pytest.raises(DevolensError, match=f"simulator parameter {re.escape(key)} = .*: must be .*{re.escape(want)}"):
        load_params(over)


def test_a_margin_that_leaves_the_early_nuclei_no_room_is_refused_whatever_squeezes_them():
    """The margin's most depends on the eggshell: a flat one (shell_z_semi_frac 0.1) with the fitted margin squeezed
    the 4-cell stage into the centre too; without a margin it is taken."""
    from devolens.lineage.simulate import load_params

    with pytest.raises(DevolensError, match="physics.margin = 0.25: must be a number from 0 to 0.1"):
        load_params({"embryo": {"shell_z_semi_frac": 0.1}})
    assert load_params({"embryo": {"shell_z_semi_frac": 0.1}, "physics": {"margin": 0}})["physics"]["margin"] == 0


def test_the_shipped_and_built_in_params_and_values_in_range_are_taken():
    import copy

    from devolens.lineage.simulate import DEFAULT_PARAMS, _check_params, load_params, simulate_embryo

    load_params()
    _check_params(copy.deepcopy(DEFAULT_PARAMS))
    edge = {"embryo": {"maj": [100, 0], "min": [60, 0], "xc": [0, 0], "zc": [0, 0], "ang_range": [5, 5],
                       "inner": [1, 1, 1], "shell_z_semi_frac": 1},
            "physics": {"iterations": 0, "packing": 2, "stiffness": 1, "jitter": [0, 1], "axis_noise_deg": 180,
                        "daughter_offset": 1, "radial_pull": 1, "margin": 0, "flow": 1, "envelope_cells": 1}}
    p = load_params(edge)
    assert p["physics"]["packing"] == 2 and p["embryo"]["maj"] == [100, 0]
    assert simulate_embryo(0, n_cells=8, params=edge)["cell"].nunique() >= 8


def test_the_cli_refuses_them_in_one_line(tmp_path, capsys):
    for name, over in (("p1", {"embryo": {"inner": [0, 0, 0]}}), ("p2", {"physics": {"margin": 5}})):
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(over))
        out = tmp_path / f"{name}.csv"
        code, err = _main(["simulate", "embryo", "--params", str(f), "--cells", "30", "--out", str(out)], capsys)
        key = next(iter(over)) + "." + next(iter(next(iter(over.values()))))
        assert code == 2 and f"simulator parameter {key} =" in err and "Traceback" not in err
        assert not out.exists()


# ------------------------------------------------------------------ 2: a second run with the same --params and --out


def test_a_second_run_with_the_same_params_and_out_is_not_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emb.json").write_text('{"p0_life": 5}')
    args = ["simulate", "embryo", "--params", "emb.json", "--cells", "8", "--out", "emb.csv"]
    assert _main(args, capsys)[0] == 0 and (tmp_path / "emb.meta.json").exists()
    code, err = _main(args, capsys)  # was: "output would overwrite emb.meta.json, read with emb.json"
    assert code == 0, err
    assert (tmp_path / "emb.json").read_text() == '{"p0_life": 5}'
    # the --params file itself is still never replaced, as the table or as the .meta.json beside it
    code, err = _main(args[:-1] + ["emb.json"], capsys)
    assert code == 2 and "output would overwrite the input" in err
    (tmp_path / "x.meta.json").write_text('{"p0_life": 5}')
    code, err = _main(["simulate", "embryo", "--params", "x.meta.json", "--cells", "8", "--out", "x.csv"], capsys)
    assert code == 2 and "output would overwrite the input" in err and not (tmp_path / "x.csv").exists()
    assert (tmp_path / "emb.json").read_text() == (tmp_path / "x.meta.json").read_text() == '{"p0_life": 5}'
