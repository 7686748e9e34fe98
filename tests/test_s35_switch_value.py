"""A value given to a switch: `--resume true` says the switch takes none (it was "extra arguments: takes one RECIPE")."""
import pytest

from devolens.cli import main


@pytest.mark.parametrize("given,said", [
    (["--resume", "true"], "--resume is a switch and takes no value: give --resume alone"),
    (["--resume", "false"], "--resume is a switch and takes no value: leave it out"),
    (["--plots", "false"], "--plots is a switch and takes no value: give --no-plots instead"),
    (["--no-plots", "YES"], "--no-plots is a switch and takes no value: give --no-plots alone"),
])
def test_a_value_after_a_switch_is_said_to_be_none_of_its(tmp_path, capsys, given, said):
    assert main(["train", "r.yaml", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *given]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"got extra arguments ({given[1]}): {said} (see devolens train --help)" in err and "takes one RECIPE" not in err


def test_another_word_after_a_switch_is_said_to_be_read_as_an_input(tmp_path, capsys):
    assert main(["train", "r.yaml", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--resume", "maybe"]) == 2
    assert "--resume is a switch here and takes no value (maybe was read as one more input)" in " ".join(
        capsys.readouterr().err.split())


def test_an_extra_word_not_after_a_switch_is_still_an_extra_input(tmp_path, capsys):
    assert main(["train", "r.yaml", "other.yaml", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "takes one RECIPE" in capsys.readouterr().err


def test_a_path_after_a_switch_is_said_to_be_read_as_an_input(tmp_path, capsys):
    """population's --plot is a switch (lineage populations' takes a path): `--plot p.png` blamed shell patterns."""
    movie = tmp_path / "m.png"
    movie.write_bytes(b"")
    assert main(["population", str(movie), "--out", str(tmp_path / "p.csv"), "--plot", "p.png"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--plot is a switch here and takes no value (p.png was read as one more input)" in err
    assert "pattern such as" not in err


def test_inputs_given_one_by_one_around_a_switch_get_the_advice_on_inputs(tmp_path, capsys, monkeypatch):
    """`a.png --no-overlay b.png c.png`: the words after the switch are more inputs, not the switch's value."""
    monkeypatch.chdir(tmp_path)
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(b"")
    assert main(["segment", "nuclei", "a.png", "--no-overlay", "b.png", "c.png", "--out", "o"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "takes one INPUT" in err and "is a switch here" not in err
