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


def test_the_version_is_read_once_per_process():
    """importlib.metadata scans sys.path for each lookup (1-4 MB of transient allocations): a tile store's write,
    whose memory is bounded, records it; so does every record."""
    import tracemalloc

    from devolens.provenance import version

    first = version()
    tracemalloc.start()
    try:
        assert version() == first
        assert tracemalloc.get_traced_memory()[1] < 100_000
    finally:
        tracemalloc.stop()


def test_a_folder_holding_population_s_curation_report_names_it(tmp_path):
    import pytest

    from devolens.curate.frames import load_report
    from devolens.errors import DevolensError

    (tmp_path / "p.curation.csv").write_text("frame,flagged\n0,False\n")
    with pytest.raises(DevolensError, match=r"give .*p\.curation\.csv"):
        load_report(tmp_path)
