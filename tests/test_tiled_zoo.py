"""The shipped livedead model: loads from the zoo and separates live from dead nuclei."""

from __future__ import annotations

import numpy as np
import pytest

from devolens.models.zoo import available


@pytest.mark.slow
def test_zoo_livedead_on_a_simulated_well():
    if "livedead" not in available():
        pytest.skip("livedead weights not shipped")
    from devolens.models import card, load
    from devolens.render.wells import simulate_well
    from devolens.train.metrics import average_precision

    info = card("livedead")
    assert info["predictor"] == "devolens.predict.livedead:LiveDeadPredictor"
    assert info["metrics"]["pr_auc_live"]["value"] >= 0.0
    model = load("livedead")
    well = simulate_well(seed=424242, size=(540, 720), density=800, dead_fraction=0.4)
    res = model.predict(well.image)
    ap_live = average_precision(res.probabilities[1], well.labels == 1)
    ap_dead = average_precision(res.probabilities[2], well.labels == 2)
    assert ap_live > 0.8 and ap_dead > 0.8
    true = well.counts
    assert abs(res.counts["fraction_dead"] - true["fraction_dead"]) < 0.15
