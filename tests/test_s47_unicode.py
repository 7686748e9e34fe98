"""Records keep non-ASCII text as it is (UTF-8), so `grep 日本` finds a path in them and a command reads as typed."""
from __future__ import annotations

import json

import pandas as pd

from devolens.cli import main
from devolens.provenance import record_text


def test_record_text_keeps_non_ascii_characters():
    text = record_text({"command": "devolens segment nuclei 'messy ü/日本 🐛'"})
    assert "messy ü/日本 🐛" in text and "\\u" not in text
    assert json.loads(text)["command"].endswith("日本 🐛'")


def test_a_command_record_names_a_unicode_path_as_typed(tmp_path):
    folder = tmp_path / "é 日本"
    folder.mkdir()
    rows = [(t, c, 10.0 * i, 5.0, 3.0) for t in range(1, 4) for i, c in enumerate(["ABa", "ABp", "EMS", "P2"])]
    pd.DataFrame(rows, columns=["time", "cell", "x", "y", "z"]).to_csv(folder / "t.csv", index=False)
    out = folder / "pops.csv"
    assert main(["lineage", "populations", str(folder / "t.csv"), "-o", str(out)]) == 0
    records = [p for p in folder.iterdir() if p.suffix == ".json"]
    assert records, sorted(p.name for p in folder.iterdir())
    raw = records[0].read_bytes().decode("utf-8")
    assert "é 日本" in raw and "\\u65e5" not in raw
