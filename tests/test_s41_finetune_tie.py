"""Session 41: a fine-tuning run whose best epoch only ties its starting weights says so (its first line said an
epoch must beat them; a tie is no loss, so no "no epoch beat" note came, and nothing was said)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from devolens.cli.train import _summary, _tied_start


def _res(start, best, note=None):
    history = pd.DataFrame({"train_loss": [0.5, 0.4], "val_loss": [0.3, 0.35]})
    return SimpleNamespace(complete=False, history=history, best_epoch=0, best_value=best, monitor="val_f1",
                           run_dir=Path("run"), start_note=note, pruned=None, device="cpu", start_value=start)


def test_a_tie_with_the_starting_weights_is_said(capsys, monkeypatch):
    import devolens.cli.train as train

    monkeypatch.setattr(train, "_how_to_use", lambda run: None)
    _summary(_res(0.9302, 0.9302), None)
    text = capsys.readouterr()
    assert "only tied the starting weights (val_f1 0.9302" in text.out + text.err


def test_only_a_tie_is_one():
    assert _tied_start(_res(0.9302, 0.9302))
    assert not _tied_start(_res(0.9302, 0.95))  # beaten: nothing to say
    assert not _tied_start(_res(0.0, 0.0))  # a start that scored nothing
    assert not _tied_start(_res(None, 0.9))  # no starting weights
