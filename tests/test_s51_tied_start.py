"""Session 51: a fine-tuning run whose best epoch only tied its starting weights records it (run.json's
``start["tied"]`` and notes, the result's ``start_tie``, an exported card's ``trained["tied"]`` and card.md's note).
Before, ``devolens train`` said it once on the console and nothing kept it: a run used later, or exported, showed
no sign that its weights scored no better than those it started from."""

from __future__ import annotations

import json

from devolens.models.export import _run_start, card_md
from devolens.train.trainer import tie_line


def test_export_records_a_tie_without_a_note():
    record = {"mode": "max", "monitor": "val_f1", "best_epoch": 1, "best_value": 0.8947,
              "start": {"init": "zoo:nuclei", "monitor": "val_f1", "value": 0.8947}}
    got = _run_start(record)
    assert "note" not in got  # a tie is no loss: no note, no warning on load
    assert got["tied"] == tie_line("zoo:nuclei", "val_f1", 0.8947)
    assert got["tied"].startswith("the best epoch only tied the starting weights (zoo:nuclei: val_f1 0.8947")
    assert "tied" not in _run_start(record, {"epoch": 2, "value": 0.91})  # beaten
    assert "tied" not in _run_start(record, {"epoch": 2, "value": 0.85})  # worse: the note instead
    assert "note" in _run_start(record, {"epoch": 2, "value": 0.85})
    zero = {**record, "best_value": 0.0, "start": {**record["start"], "value": 0.0}}
    assert "tied" not in _run_start(zero)  # a start that scored nothing is no tie
    from devolens.models import zoo

    card = {**zoo.card("nuclei"), "trained": got}
    assert f"**Note:** {got['tied']}." in card_md(card)


def test_a_tie_line_names_the_start_where_known():
    assert "(zoo:nuclei: val_f1 0.9302 before" in tie_line("zoo:nuclei", "val_f1", 0.9302)
    assert "(val_f1 0.9302 before" in tie_line(None, "val_f1", 0.9302)


def test_a_tied_run_records_it(tmp_path, monkeypatch):
    """The trainer's end: a best epoch equal to the start's score goes into run.json and the result."""
    from devolens.train import trainer as T
    from _train_data import make_pairs, tiny_recipe

    pairs = make_pairs(tmp_path / "pairs", groups=3, per_group=4, size=64)
    rec = tiny_recipe()
    base = T.train(rec, pairs, tmp_path / "base")
    tuned = {**rec, "model": {**rec["model"], "init": str(base.run_dir / "best.safetensors")}}
    # whatever the epoch scores, it scores as the start did (the metric the trainer compares is made equal)
    monkeypatch.setattr(T, "tied_start", lambda start, best: start is not None and best is not None)
    monkeypatch.setattr(T, "_start_verdict", lambda *a, **k: None)
    res = T.train(tuned, pairs, tmp_path / "tuned", epochs=1)
    record = json.loads((tmp_path / "tuned" / "run.json").read_text())
    assert res.start_note is None and res.start_tie == record["start"]["tied"]
    assert record["start"]["tied"].startswith("the best epoch only tied the starting weights (")
    assert record["notes"].count(record["start"]["tied"]) == 1
    # resumed to a second epoch that beat it: the tie is dropped from both (and said once where it stays)
    monkeypatch.setattr(T, "tied_start", lambda start, best: False)
    again = T.train(tuned, pairs, tmp_path / "tuned", epochs=2, resume=True)
    after = json.loads((tmp_path / "tuned" / "run.json").read_text())
    assert "tied" not in after["start"] and not any("only tied" in n for n in after["notes"])
    assert again.start_tie is None and again.notes == after["notes"]
