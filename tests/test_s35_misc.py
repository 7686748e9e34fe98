"""Small things a teaching lab met: lineage populations --help says what the letters count."""

from __future__ import annotations

from devolens.cli import main


def test_lineage_populations_help_explains_the_letters(capsys):
    assert main(["lineage", "populations", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "A = AB lineage" in text and "Z = Z2/Z3" in text and "P = germline P0-P4" in text
