"""What a check against the real shared data found: an EPIC table's seconds per time point taken over its TIME file's
time points past the table's (94 s for 91 s; the population card's clock pace and the late-frame note quoted it),
identify's P and Z classes unexplained, Z2/Z3 given daughters, a one-row note in the plural, and a lineage table given
to an image command without a word on which command reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer

from devolens.io.tables import read_epic, read_epic_time, read_table
from _lineage_builders import run_cli, write_cd

ROOT = Path(__file__).resolve().parents[1]
POPULATION = ROOT / "src" / "devolens" / "models" / "zoo" / "population"


# ----------------------------------------------------------------------------- 1. seconds per time point
def _table_with_a_longer_time_file(folder: Path, times: int = 5) -> Path:
    """A CD table of time points 1..``times`` beside a TIME file of 1..12: 90 s apart up to 5, 100 s after."""
    rows = [(f"N{i}", t, 4.0 + i % 5, 100 + 7 * i, 200 + 3 * (i % 9), 30, 0) for t in range(1, times + 1)
            for i in range(20)]
    cd = write_cd(folder / "CDe.csv", rows)
    seconds, lines = 0.0, []
    for t in range(1, 13):
        step = 0.0 if t == 1 else 90.0 if t <= 5 else 100.0
        seconds += step
        lines.append(f"e\t{t}\t{seconds:g}\t{step:g}")
    (folder / "TIMEe.csv").write_text("\n".join(lines) + "\n")
    return cd


def test_an_epic_tables_spacing_is_over_its_own_time_points(tmp_path):
    """The TIME file goes on past the table (as the real ones do: 240 time points for tables of 140-159): the spacing
    the table's metadata reports is over the table's time points (90 s), not the whole file's (100 s)."""
    cd = _table_with_a_longer_time_file(tmp_path)
    df = read_epic(cd)
    assert df.attrs["seconds_per_time"] == 90.0
    assert len(df.attrs["time_seconds"]) == 12  # every time point of the file still listed
    assert read_table(cd).attrs["seconds_per_time"] == 90.0
    # a TIME file read alone: over all its time points, as before; given a table's range, over that range
    assert read_epic_time(tmp_path / "TIMEe.csv")["seconds_per_time"] == 100.0
    assert read_epic_time(tmp_path / "TIMEe.csv", (1, 5))["seconds_per_time"] == 90.0


def test_a_table_of_one_time_point_takes_the_whole_files_spacing(tmp_path):
    cd = _table_with_a_longer_time_file(tmp_path, times=1)
    assert read_epic(cd).attrs["seconds_per_time"] == 100.0


def test_convert_writes_the_tables_own_spacing(tmp_path, capsys):
    cd = _table_with_a_longer_time_file(tmp_path)
    code, _, err = run_cli(["lineage", "convert", str(cd), "-o", str(tmp_path / "tidy.csv")], capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "tidy.meta.json").read_text())
    assert meta["seconds_per_time"] == 90.0
    assert read_table(tmp_path / "tidy.csv").attrs["seconds_per_time"] == 90.0


def test_real_tables_spacing_and_the_population_cards_clock_pace(shared_data):
    """CD20241009_JIM767_25_L1 stops at time point 140, its TIME file at 240: 91 s over the table's (94 s over the
    file's). The population card's clock pace is the median over its reference tables (scripts/zoo_clock.py)."""
    import sys

    path = shared_data / "epic" / "CD20241009_JIM767_25_L1.csv"
    if not path.exists():
        pytest.skip("CD20241009_JIM767_25_L1.csv not in the shared data")
    assert read_table(path).attrs["seconds_per_time"] == 91.0
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from zoo_clock import TABLES
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    from devolens.lineage.cliffs import clean_table

    seconds = []
    for name in TABLES:
        if not (shared_data / "epic" / f"{name}.csv").exists():
            pytest.skip(f"{name}.csv not in the shared data")
        table, _ = clean_table(read_table(shared_data / "epic" / f"{name}.csv"))
        if table.attrs.get("seconds_per_time"):
            seconds.append(float(table.attrs["seconds_per_time"]))
    card = json.loads((POPULATION / "card.json").read_text())
    assert card["clock"]["seconds_per_time_point"] == round(float(np.median(seconds)), 1)


def test_the_population_card_and_the_late_frame_note_agree_on_the_pace():
    """card.md is card.json written out; the late-frame note quotes the card's pace and the hours it gives along the
    clock's curve (the shipped weights' clock_tau, clock_log_total)."""
    from devolens.cli.predict import _held_out_note
    from devolens.models.export import card_md

    card = json.loads((POPULATION / "card.json").read_text())
    assert card_md(card) == (POPULATION / "card.md").read_text()
    pace = card["clock"]["seconds_per_time_point"]
    note = _held_out_note({"frames": ["f1"], "beyond_held_out": [], "clock_start": None})
    m = re.search(r"(\d+) s a time point: about (\d+) h from the 4-cell stage to 290 cells, (\d+) h (\d+) min to 500",
                  note)
    assert m is not None, note
    assert int(m.group(1)) == round(pace)
    weights = POPULATION / "weights.safetensors"
    if not weights.is_file():
        pytest.skip("population weights not shipped")
    from safetensors.numpy import load_file

    arrays = load_file(str(weights))
    tau, log_total = arrays["clock_tau"].astype(np.float64), arrays["clock_log_total"].astype(np.float64)

    def hours(cells: float) -> float:  # from the 4-cell stage, at the card's pace
        at = np.interp(np.log([4.0, cells]), log_total, tau)
        return float(at[1] - at[0]) * pace / 3600

    assert abs(hours(290) - int(m.group(2))) < 0.25  # "about"
    assert abs(hours(500) - (int(m.group(3)) + int(m.group(4)) / 60)) <= 5 / 60  # to the 5 minutes said


# ----------------------------------------------------------------------------- 2. identify's P and Z classes
def test_identify_says_what_its_p_and_z_classes_are():
    from devolens.cli import app
    from devolens.cli.identify import CLASSES_HELP
    from devolens.predict.identity import identity_label

    command = typer.main.get_command(app).commands["identify"]
    out = next(p for p in command.params if p.name == "out")
    assert CLASSES_HELP in out.help
    assert "P for P0-P4" in command.help or "P: P0-P4" in command.help
    for words in ("P stands for the germline cells P0-P4", "Z for Z2 and Z3", "a P2, P3 or P4 row reads P"):
        assert words in CLASSES_HELP
    # as the model names them: the classes said are the card's, and P3 / Z2 rows are the classes P / Z at both depths
    card = json.loads((ROOT / "src/devolens/models/zoo/identity/card.json").read_text())
    for cls in card["architecture"]["founders"] + card["architecture"]["depth1"]:
        assert re.search(rf"\b{cls}\b", CLASSES_HELP), cls
    assert [identity_label(n, d) for n in ("P3", "Z2") for d in (0, 1)] == ["P", "P", "Z", "Z"]
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "`P` stands for the germline P0-P4 (a P2, P3 or P4 row reads `P`) and `Z` for Z2 and Z3" in readme
    md = (ROOT / "src/devolens/models/zoo/identity/card.md").read_text()
    assert "P: the germline cells P0-P4, so a P2, P3 or P4 nucleus is named P; Z: Z2 and Z3" in md


# ----------------------------------------------------------------------------- 3. Z2 and Z3 do not divide
def test_z2_and_z3_have_no_daughters():
    from devolens.lineage.names import daughters
    from devolens.lineage.simulate import daughters as sim_daughters
    from devolens.predict.identity import _division_daughters

    assert daughters("Z2") is None and daughters("Z3") is None and daughters("Z2a") is None
    assert daughters("Z3", "lr") is None
    assert daughters("P4") == ("Z2", "Z3") and daughters("D") == ("Da", "Dp")
    assert sim_daughters("Z2") == daughters("Z2") and sim_daughters("Z3") == daughters("Z3")
    assert sorted(_division_daughters("P")) == sorted(["AB", "P", "EMS", "P", "C", "P", "D", "P", "Z", "Z"])
    assert _division_daughters("Z") == []


# ----------------------------------------------------------------------------- 4. a note on one row
def test_the_miscased_note_on_one_row_is_in_the_singular(tmp_path, capsys):
    from devolens.lineage.populations import miscased_note

    assert miscased_note(pd.Series(["aBpl", "ABa"])).startswith(
        "1 row carries a name that is a Sulston name but for its case ('aBpl'; the founder in capitals")
    assert miscased_note(pd.Series(["aBpl", "aBpl", "ABa"])).startswith(
        "2 rows carry names that are Sulston names but for their case (e.g. 'aBpl'")
    rows = [("ABa", 1, 1.0, 10, 20, 10, 0), ("aBpl", 1, 2.0, 30, 20, 10, 0), ("ABp", 1, 3.0, 50, 20, 10, 0)]
    cd = write_cd(tmp_path / "CDx.csv", rows)
    code, _, err = run_cli(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0, err
    assert "note: 1 row carries a name that is a Sulston name but for its case" in " ".join(err.split())


# ----------------------------------------------------------------------------- 5. a lineage table to an image command
@pytest.mark.parametrize("argv, name", [
    (["population"], "CDx.csv"),
    (["segment", "nuclei"], "CDx.csv"),
    (["segment", "membrane"], "nuclei.zip"),
])
def test_a_lineage_table_given_for_images_points_to_lineage_populations(tmp_path, capsys, argv, name):
    table = tmp_path / name
    if name.endswith(".csv"):
        write_cd(table, [("ABa", 1, 1.0, 10, 20, 10, 0)])
    else:
        import zipfile

        with zipfile.ZipFile(table, "w") as zf:
            zf.writestr("nuclei/t001-nuclei", "1, 1, -1, -1, -1, 10, 20, 1, 10, ABa, 1500\n")
    out = tmp_path / ("out.csv" if argv == ["population"] else "seg")
    code, _, err = run_cli([*argv, str(table), "-o", str(out)], capsys)
    err = " ".join(err.split())
    assert code != 0 and "Traceback" not in err
    assert f"got a '{table.suffix}' file; for a lineage table" in err and "use `devolens lineage populations`" in err
    assert ("for a zip of images, unzip it" in err) == (table.suffix == ".zip")
    assert not out.exists()
