"""render.json and ``simulate embryo``'s .meta.json record what made them: version, command line, inputs and the
options that change the output (the frames themselves do not change)."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest

from _render_helpers import make_table
from devolens.cli import _version, main
from devolens.io.tables import write_tidy

BASE = ["--size", "32", "48", "--seed", "1"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("tables")
    a, b = d / "a.csv", d / "b.csv"
    write_tidy(make_table(n_times=4, n_cells=12, seed=1), a)
    write_tidy(make_table(n_times=4, n_cells=12, seed=2), b)
    return a, b


def _meta(folder):
    return json.loads((folder / "render.json").read_text())


def _frames(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted((folder / "frames").iterdir())}


def test_render_json_records_version_inputs_and_options(tmp_path, tables):
    a, _ = tables
    out = tmp_path / "r"
    assert main(["render", str(a), "--out", str(out), *BASE, "--times", "2-3", "--every", "2"]) == 0
    meta = _meta(out)
    # the keys it always had, with their values
    assert meta["kind"] == "nuclei" and meta["size"] == [32, 48] and meta["seed"] == 1
    assert meta["artifacts"] == 0.0 and meta["pose"] == "default" and meta["vary"] == "embryo"
    assert meta["rgb"] is True and len(meta["embryos"]) == 1
    assert meta["devolens_version"] == _version()
    assert meta["command"] == "devolens render"  # run from Python: the command's name only
    assert meta["times"] == [2, 3] and meta["every"] == 2 and meta["video"] is False
    paths = [i["path"] for i in meta["inputs"]]
    assert paths[0] == str(a.absolute())
    assert meta["inputs"][0]["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    side = a.with_name("a.meta.json")  # read with the table: an input too
    if side.exists():
        assert str(side.absolute()) in paths
    opts = meta["options"]
    assert opts["times"] == "2-3" and opts["every"] == 2 and opts["table"] == str(a.absolute())
    assert opts["simulate"] is None and opts["sim_cells"] is None and opts["grey"] is False
    assert opts["kind"] == "nuclei" and opts["video"] is False and "workers" not in opts and "out" not in opts


def test_render_json_tells_tables_and_time_ranges_apart(tmp_path, tables):
    a, b = tables
    runs = {"a": [str(a)], "b": [str(b)], "a_times": [str(a), "--times", "1-2"], "a_every": [str(a), "--every", "2"]}
    metas = {}
    for name, args in runs.items():
        assert main(["render", *args, "--out", str(tmp_path / name), *BASE]) == 0
        m = _meta(tmp_path / name)
        metas[name] = json.dumps({k: v for k, v in m.items() if k != "embryos"}, sort_keys=True)
    assert len(set(metas.values())) == len(metas)


def test_render_json_records_sim_cells_and_frames_are_unchanged(tmp_path):
    outs = []
    for cells in ("6", "8"):
        out = tmp_path / cells
        assert main(["render", "--simulate", "1", "--sim-cells", cells, "--out", str(out), *BASE]) == 0
        outs.append(out)
    m1, m2 = _meta(outs[0]), _meta(outs[1])
    assert m1["options"]["sim_cells"] == 6 and m2["options"]["sim_cells"] == 8
    assert m1["options"]["simulate"] == 1 and m1["inputs"] == [] and m1["prefix"] is True
    assert (outs[0] / "render.json").read_bytes() != (outs[1] / "render.json").read_bytes()
    # the same render again, with other workers: the same frames and the same render.json
    again = tmp_path / "again"
    assert main(["render", "--simulate", "1", "--sim-cells", "6", "--out", str(again), *BASE, "--workers", "2"]) == 0
    assert _frames(again) == _frames(outs[0])
    assert (again / "render.json").read_bytes() == (outs[0] / "render.json").read_bytes()


def test_command_line_as_the_devolens_command(tmp_path, tables, monkeypatch):
    a, _ = tables
    out = tmp_path / "r"
    argv = ["/usr/bin/devolens", "render", str(a), "--out", str(out), *BASE, "--times", "1 - 2"]
    monkeypatch.setattr(sys, "argv", argv)
    assert main(argv[1:]) == 0
    assert _meta(out)["command"] == f"devolens render {a} --out {out} --size 32 48 --seed 1 --times '1 - 2'"


def test_simulate_meta_records_cells_params_version_and_command(tmp_path):
    from devolens.lineage.simulate import PARAMS_PATH

    params = tmp_path / "p.json"
    params.write_bytes(PARAMS_PATH.read_bytes())
    outs = {}
    for name, extra in {"c20": ["--cells", "20"], "c30": ["--cells", "30"],
                        "p": ["--cells", "20", "--params", str(params)]}.items():
        out = tmp_path / f"{name}.csv"
        assert main(["simulate", "embryo", "--seed", "3", "--out", str(out), *extra]) == 0
        outs[name] = json.loads(out.with_name(f"{name}.meta.json").read_text())
    m = outs["c20"]
    assert m["seed"] == 3 and m["cells"] == 20 and m["times"] is None and m["start"] == "P0"
    assert m["params"] is None and m["params_sha256"] is None
    assert m["devolens_version"] == _version() and m["command"] == "devolens simulate embryo"
    assert "zscale" in m and "ellipse" in m  # the keys it always had
    assert outs["c30"]["cells"] == 30
    assert outs["p"]["params"] == str(params.absolute())
    assert outs["p"]["params_sha256"] == hashlib.sha256(params.read_bytes()).hexdigest()
    # the table reads back as before: the new keys are not table metadata
    from devolens.io.tables import read_tidy

    back = read_tidy(tmp_path / "c20.csv")
    assert not {"cells", "params", "command", "devolens_version"} & set(back.attrs)
