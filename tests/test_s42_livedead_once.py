"""Session 42: `segment livedead` on one well loaded its model twice (once for the well, once more for livedead.json's
record of what the network ran as); the record now takes the model that ran."""

from __future__ import annotations

import json

import pytest

from devolens.cli import main
from devolens.models.zoo import ZOO_DIR
from devolens.predict import livedead


@pytest.mark.skipif(not (ZOO_DIR / "livedead" / "weights.safetensors").is_file(), reason="livedead weights not shipped")
def test_one_well_loads_its_model_once_and_records_what_ran(tmp_path, monkeypatch):
    well = tmp_path / "w.tif"
    assert main(["-q", "simulate", "well", "--out", str(well), "--labels", str(tmp_path / "l.tif"), "--size", "256x320",
                 "--seed", "3"]) == 0
    real = livedead.LiveDeadPredictor.load.__func__
    loads = []

    def counted(cls, *args, **kwargs):
        loads.append(args)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(livedead.LiveDeadPredictor, "load", classmethod(counted))
    assert main(["-q", "segment", "livedead", str(well), "--out", str(tmp_path / "o"), "--precision", "bf16"]) == 0
    assert len(loads) == 1
    record = json.loads((tmp_path / "o" / "livedead.json").read_text())
    assert record["precision"] == "bf16" and record["device"] == "cpu"
