"""Small things a teaching lab met: lineage populations --help says what the letters count."""

from __future__ import annotations

from devolens.cli import main


def test_lineage_populations_help_explains_the_letters(capsys):
    assert main(["lineage", "populations", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "A = AB lineage" in text and "Z = Z2/Z3" in text and "P = germline P0-P4" in text


def test_a_folder_given_as_curation_report_is_said_to_be_one(tmp_path):
    """--skip-flagged RESULTS/ said 'no such curation report' of a folder that exists."""
    import pytest

    from devolens.curate.frames import load_report
    from devolens.errors import DevolensError

    (tmp_path / "seg").mkdir()
    with pytest.raises(DevolensError, match="is a folder, not a curation report") as err:
        load_report(tmp_path / "seg")
    assert err.value.message == "is a folder, not a curation report (a CSV of `devolens curate frames`)"
    (tmp_path / "seg" / "curation.csv").write_text("frame,flagged\n0,False\n")
    with pytest.raises(DevolensError, match=r"give .*seg/curation\.csv"):
        load_report(tmp_path / "seg")


def test_simulate_embryo_summary_keeps_brackets_and_counts_in_words(tmp_path, capsys):
    """'wrote x [raw].csv' lost '[raw]' (read as markup); one time point read '1 time points'."""
    from devolens.cli import main

    out = tmp_path / "e [raw].csv"
    assert main(["simulate", "embryo", "--out", str(out), "--times", "1", "--seed", "0"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"wrote {out}:" in err and "1 time point," in err
