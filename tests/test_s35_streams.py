"""Where the summary lines go: ``lineage convert|populations|clean`` and ``curate frames`` print theirs
(``wrote OUT: ...``, ``N frames, M flagged -> OUT``) on stderr, as every other command does, so ``devolens -q``
silences them; stdout keeps the results a user pipes (``lineage cliffs``). Counts of one read in the singular."""

from __future__ import annotations

import json

import pytest

from _lineage_builders import growth_rows, write_cd
from curate_synth import synth_sequence
from devolens.cli import main


def _run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("command", ["convert", "populations", "clean"])
def test_lineage_summary_is_on_stderr_and_quiet_silences_it(tmp_path, capsys, command):
    cd = write_cd(tmp_path / "CD.csv", growth_rows(6, 4))
    out = tmp_path / "t [raw].csv"  # a name rich would read as markup
    code, stdout, err = _run(["lineage", command, str(cd), "--out", str(out)], capsys)
    assert code == 0, err
    assert stdout == "" and err.startswith(f"wrote {out}: "), (stdout, err)
    code, stdout, err = _run(["--quiet", "lineage", command, str(cd), "--out", str(out)], capsys)
    assert code == 0 and stdout == "" and err == "", (stdout, err)


def test_lineage_cliffs_answer_stays_on_stdout_under_quiet(tmp_path, capsys):
    cd = write_cd(tmp_path / "CD.csv", growth_rows(6, 4))
    code, stdout, err = _run(["--quiet", "lineage", "cliffs", str(cd)], capsys)
    assert code == 0 and "no annotation cliff; last good time point 6" in stdout and err == "", (stdout, err)
    code, stdout, _ = _run(["-q", "lineage", "cliffs", str(cd), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["last_good_time"] == 6


def test_curate_summary_is_on_stderr_and_quiet_silences_it(tmp_path, capsys):
    import imageio.v3 as iio

    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(synth_sequence(3, size=(48, 64), seed=1), start=1):
        iio.imwrite(folder / f"t{t:03d}.png", frame)
    out = tmp_path / "r [raw].csv"  # was printed as "r .csv": the name read as markup
    code, stdout, err = _run(["curate", "frames", str(folder), "--out", str(out)], capsys)
    assert code == 0, err
    assert stdout == "" and err.startswith("3 frames, 0 flagged -> ") and err.rstrip().endswith(str(out)), err
    code, stdout, err = _run(["--quiet", "curate", "frames", str(folder), "--out", str(out)], capsys)
    assert code == 0 and stdout == "" and err == "", (stdout, err)


def test_summaries_count_one_in_the_singular(tmp_path, capsys):
    one = write_cd(tmp_path / "CDone.csv", [("ABa", 1, 1.0, 10, 20, 10, 0)])
    code, _, err = _run(["lineage", "convert", str(one), "--out", str(tmp_path / "t.csv")], capsys)
    assert code == 0 and f"wrote {tmp_path / 't.csv'}: 1 row, 1 time point, format epic" in err, err
    code, _, err = _run(["lineage", "populations", str(one), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and err.startswith(f"wrote {tmp_path / 'p.csv'}: 1 time point, up to 1 cell\n"), err
    # a cliff with one row after it, at one time point
    cd = write_cd(tmp_path / "CDcut.csv", growth_rows(20, 20) + [("ABa", 21, 1.0, 10, 20, 10, 0)])
    code, _, err = _run(["lineage", "clean", str(cd), "--out", str(tmp_path / "c.csv")], capsys)
    assert code == 0 and "610 of 611 rows; cut after time 20" in err and "dropped 1 row in 1 time point;" in err, err


def test_a_dip_of_one_cell_says_cell():
    from devolens.cli.lineage import _dip_text
    from devolens.lineage.cliffs import Dip

    assert _dip_text(Dip(5, 5, (1,), 25, 26)).startswith("time 5 has 1 cell between 25 and 26: ")
    assert _dip_text(Dip(5, 5, (2,), 25, 26)).startswith("time 5 has 2 cells between 25 and 26: ")
