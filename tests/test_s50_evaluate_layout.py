"""`devolens evaluate --data` on StarDist's layout (train/ and test/ data folders, no images/ of its own) names the
held-out folder to score the run on; it named train/ first, as train's error does."""

from __future__ import annotations

import pytest

from _train_data import train_tiny_run
from devolens.errors import DevolensError
from devolens.data.datasets import index_dataset
from test_s48_own_masks import _folder, _labels


def _stardist(root):
    for side in ("train", "test"):
        _folder(root, [_labels(0)], side)
    return root


def test_scoring_names_the_held_out_folder(tmp_path):
    root = _stardist(tmp_path / "G")
    with pytest.raises(DevolensError, match=r"are data folders of their own: give one, data='\S*G/test' to score "
                                            r"the run on the held-out images$"):
        index_dataset(root, scoring=True)
    with pytest.raises(DevolensError, match=r"data='\S*G/train' \(and devolens evaluate RUN --data \S*G/test"):
        index_dataset(root)  # (training: the training folder first, as before)


def test_the_evaluate_command_names_it(tmp_path, capsys):
    from devolens.cli import main

    run = train_tiny_run(tmp_path / "run")[0]
    root = _stardist(tmp_path / "G")
    assert main(["evaluate", str(run), "--data", str(root)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"give one, --data {root / 'test'} to score the run on the held-out images" in err, err
