"""Usage errors click raises without a context (an option given no value, or too few) end like every other usage
error, with where to read the usage (README: "as `error: ... (see devolens segment nuclei --help)`"), and an
option of two numbers given joined (render --size 200x140, as simulate well's --size is written) says how."""
import pytest

from devolens.cli import main


@pytest.mark.parametrize("argv, line", [
    (["simulate", "embryo", "--seed", "1", "--out"],
     "error: Option '--out' requires an argument (see devolens simulate embryo --help)"),
    (["-q", "segment", "nuclei", "x.png", "--out", "x", "--diameter"],
     "error: Option '--diameter' requires an argument (see devolens segment nuclei --help)"),
    (["lineage", "populations", "t.csv", "-o"],
     "error: Option '-o' requires an argument (see devolens lineage populations --help)"),
    (["render", "t.csv", "--out", "r", "--size", "200x140"],
     "error: Option '--size' requires 2 arguments; give them apart: --size 200 140 (see devolens render --help)"),
    (["render", "t.csv", "--out", "r", "--size", "200"],
     "error: Option '--size' requires 2 arguments (see devolens render --help)"),
])
def test_contextless_usage_errors_say_where_the_usage_is(argv, line, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [line]


def test_a_file_name_with_a_newline_keeps_the_error_on_one_line(tmp_path, capsys):
    bad = tmp_path / "new\nline.png"
    bad.write_bytes(b"x")
    assert main(["curate", "frames", str(bad), "-o", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "new\\nline.png" in err[0]
    from devolens.errors import shown_path

    assert shown_path("émbryo\t1.png") == "émbryo\\t1.png"  # other letters as they are
