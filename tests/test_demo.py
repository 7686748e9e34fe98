"""The demo runs end to end on data the project makes itself."""

import pytest

from devolens.cli import main


@pytest.mark.slow
def test_demo_writes_a_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--cells", "40", "--frames", "6", "--seed", "3"]) == 0
    report = (out / "report.md").read_text()
    for section in ("Corrupt frames", "populations", "Cell identities"):
        assert section in report
    for name in ("embryo.csv", "curation.csv", "populations.csv", "cells.csv", "populations.png"):
        assert (out / name).is_file(), name
    assert any((out / "segment" / "labels").glob("*_labels.tif"))


def test_demo_rejects_a_file_as_out(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["demo", "--out", str(target)]) == 2
