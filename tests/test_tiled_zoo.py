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
    model = load("livedead")
    well = simulate_well(seed=424242, size=(540, 720), density=800, dead_fraction=0.4)
    res = model.predict(well.image)
    ap_live = average_precision(res.probabilities[1], well.labels == 1)
    ap_dead = average_precision(res.probabilities[2], well.labels == 2)
    # near what the card promises (pooled over 24 held-out wells: 0.980 / 0.968 in bf16). On this well the shipped
    # model gives 0.979-0.980 / 0.963-0.965 (int8, bf16) and the model before the twenty-fifth session's retrain
    # (card 0.94 / 0.91) 0.947-0.950 / 0.959: the live margin fails that model, the dead one does not tell the two
    # apart on this well (a floor only)
    assert ap_live >= info["metrics"]["pr_auc_live"]["value"] - 0.02
    assert ap_dead >= info["metrics"]["pr_auc_dead"]["value"] - 0.03
    true = well.counts
    assert abs(res.counts["fraction_dead"] - true["fraction_dead"]) < 0.15


@pytest.mark.slow
def test_zoo_livedead_int8_and_bf16_agree():
    if "livedead" not in available():
        pytest.skip("livedead weights not shipped")
    from devolens.models import card, load
    from devolens.models.quantize import (PrecisionWarning, bf16_fast_here, int8_fast_here, int8_reduced_here,
                                          int8_supported)
    from devolens.render.wells import simulate_well
    from devolens.train.metrics import average_precision

    if not int8_supported():
        pytest.skip("no oneDNN int8 engine in this PyTorch")
    assert card("livedead")["int8"]["activations"]
    if not (int8_fast_here() or int8_reduced_here()):
        # neither VNNI/AMX nor x86 AVX2: int8 was never measured there; asked for, it runs, but says so
        with pytest.warns(PrecisionWarning, match="measured on x86 CPUs with AVX2 or VNNI/AMX only"):
            assert load("livedead", precision="int8").precision == "int8"
        return
    # (on AVX2 without VNNI int8 runs with 7-bit activations: 8-bit ones saturated there, dead AP 0.80 against 0.94)
    well = simulate_well(seed=434343, size=(540, 720), density=800, dead_fraction=0.4)
    ref = "bf16" if bf16_fast_here() else "fp32"  # (emulated bf16 is slow: fp32 there)
    q = load("livedead", precision="int8")
    f = load("livedead", precision=ref)
    assert (q.precision, f.precision) == ("int8", ref)
    a, b = q.predict(well.image), f.predict(well.image)
    assert (a.labels == b.labels).mean() > 0.98  # the same class almost everywhere
    for k in (1, 2):
        assert abs(average_precision(a.probabilities[k], well.labels == k)
                   - average_precision(b.probabilities[k], well.labels == k)) < 0.05


def test_livedead_without_smp_and_precision_errors():
    import subprocess
    import sys

    if "livedead" not in available():
        pytest.skip("livedead weights not shipped")
    code = ("import sys\n"
            "from devolens.predict.livedead import LiveDeadPredictor\n"
            "p = LiveDeadPredictor.load('livedead')\n"
            "print('segmentation_models_pytorch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]  # plain-torch U-Net: no 2-3 s smp import
    from devolens.errors import DevolensError
    from devolens.predict.livedead import LiveDeadPredictor

    with pytest.raises(DevolensError, match="precision must be"):
        LiveDeadPredictor.load("livedead", precision="half")
