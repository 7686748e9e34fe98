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


def test_another_extra_word_is_still_an_extra_input(tmp_path, capsys):
    assert main(["train", "r.yaml", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--resume", "maybe"]) == 2
    assert "takes one RECIPE" in capsys.readouterr().err
