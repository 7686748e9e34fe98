"""What a methods section needs, in the records (session 44, a postdoc's walkthrough).

``curate frames`` wrote its report and no record (the other commands write one beside their outputs: version,
command line, the input's sha256, the options); a report read with ``--skip-flagged`` was recorded by path only, so a
report edited by hand after the run could not be told from the one it read; population's record did not say which
colour channel it read of a colour input (``segment.json`` did)."""

from __future__ import annotations

import errno
import hashlib
import json
import pathlib
from pathlib import Path

import pytest

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main


def _movie(folder: Path, n: int = 3) -> Path:
    """A folder of ``n`` 64x64 colour frames (green nuclei)."""
    from devolens.io.images import write_png

    folder.mkdir()
    for i in range(n):
        write_png(blob_frame(64, 64, seed=i), folder / f"t{i + 1:03d}.png")
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_sha256(folder: Path) -> str:
    """The digest ``inputs`` records of a folder: each file's relative path, NUL, size, NUL, bytes, sorted."""
    digest = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        digest.update(f"{f.name}\0{f.stat().st_size}\0".encode() + f.read_bytes())
    return digest.hexdigest()


def test_curate_writes_a_record_beside_its_report(tmp_path):
    from devolens.curate.frames import curate_path, report_for_csv
    from devolens.io.atomic import write_csv
    from devolens.provenance import version

    src = _movie(tmp_path / "in")
    out = tmp_path / "R.csv"
    assert main(["curate", "frames", str(src), "--out", str(out)]) == 0
    record = json.loads((tmp_path / "R.json").read_text())
    assert record["devolens"] == version()
    assert record["command"].startswith("devolens curate frames")
    assert record["input"] == str(src.absolute()) and record["output"] == str(out.absolute())
    assert [(e["path"], e["files"], e["sha256"]) for e in record["inputs"]] == [
        (str(src.absolute()), 3, _folder_sha256(src))]
    assert record["options"] == {"stack_z": "project", "channel": None, "pages": "time", "threads": None}
    assert record["counts"]["frames"] == 3
    # the report itself as before, byte for byte
    write_csv(report_for_csv(curate_path(src)), tmp_path / "direct.csv")
    assert out.read_bytes() == (tmp_path / "direct.csv").read_bytes()


@pytest.mark.parametrize("previous", [False, True])
def test_curate_report_and_record_are_written_together(tmp_path, monkeypatch, capsys, previous):
    """A record that cannot be written (a full disk) leaves neither new file: none on a first run, the previous
    run's pair otherwise."""
    src = _movie(tmp_path / "in")
    outdir = tmp_path / "o"
    outdir.mkdir()
    out = outdir / "R.csv"
    before = {}
    if previous:
        for p in (out, outdir / "R.json"):
            p.write_text(f"previous {p.name}\n")
            before[p.name] = p.read_bytes()
    write_text = pathlib.Path.write_text

    def full(self, *args, **kwargs):
        if self.suffix == ".json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    assert main(["curate", "frames", str(src), "--out", str(out)]) != 0
    assert capsys.readouterr().err.endswith(f"error: {outdir / 'R.json'}: cannot write output: No space left on "
                                            "device\n")
    assert {p.name: p.read_bytes() for p in outdir.iterdir()} == before  # (no temporaries either)


def _report(tmp_path: Path, src: Path) -> Path:
    report = tmp_path / "report.csv"
    assert main(["curate", "frames", str(src), "--out", str(report)]) == 0
    return report


def test_segment_records_the_report_it_read_by_its_sha256(tiny_zoo, tmp_path):
    src = _movie(tmp_path / "in")
    report = _report(tmp_path, src)
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg"), "--skip-flagged", str(report)]) == 0
    entry = json.loads((tmp_path / "seg" / "segment.json").read_text())["curation_report"]
    assert entry["by"] == "given" and entry["path"] == str(report.absolute())
    assert entry["sha256"] == _sha256(report) and entry["bytes"] == report.stat().st_size


def test_population_records_the_report_and_the_colour_read(tiny_zoo, tmp_path):
    src = _movie(tmp_path / "in")
    report = _report(tmp_path, src)
    out = tmp_path / "p.csv"
    assert main(["population", str(src), "--out", str(out), "--skip-flagged", str(report)]) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    entry = record["curation_report"]
    assert entry["by"] == "given" and entry["path"] == str(report.absolute()) and entry["sha256"] == _sha256(report)
    assert record["color_read"] == "green"  # (the nuclei are green: as segment.json says of them)
    assert "color_read_frames" not in record  # (one channel read them all)


def test_population_says_auto_curated_and_grey_reads_no_colour(tiny_zoo, tmp_path):
    from devolens.io.images import write_png

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_png(blob_frame(64, 64, seed=i, rgb=False), src / f"t{i + 1:03d}.png")
    out = tmp_path / "p.csv"
    assert main(["population", str(src), "--out", str(out), "--skip-flagged", "auto"]) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["curation_report"] == {"by": "auto", "path": str((tmp_path / "p.curation.csv").absolute())}
    assert record["color_read"] is None
    assert main(["population", str(src), "--out", str(out)]) == 0  # and without --skip-flagged: none
    assert json.loads((tmp_path / "p.json").read_text())["curation_report"] is None
