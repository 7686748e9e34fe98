"""A model folder whose weights do not fit its card's network: one line, not PyTorch's list of every key."""

import pytest
import torch

from devolens.errors import DevolensError
from devolens.models.zoo import load_state


def test_a_weights_mismatch_is_one_line_naming_the_first_and_how_many_more(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 2, 3))
    state = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) for k, v in model.state_dict().items()}
    with pytest.raises(DevolensError) as info:
        load_state(model, state, tmp_path / "weights.safetensors")
    text = str(info.value)
    assert "\n" not in text and "\t" not in text
    assert "size mismatch for 0.weight" in text and "(4 tensors do not fit in all)" in text


def test_renamed_keys_are_counted_as_keys_not_lines(tmp_path):
    """Every key renamed: PyTorch gives two lines (missing, unexpected) of 80 keys each; the count says 160."""
    model = torch.nn.Sequential(*[torch.nn.Conv2d(1, 1, 1) for _ in range(40)])
    state = {"x" + k: v for k, v in model.state_dict().items()}
    with pytest.raises(DevolensError) as info:
        load_state(model, state, tmp_path / "weights.safetensors")
    text = str(info.value)
    assert "\n" not in text and "Missing key(s)" in text and "(160 tensors do not fit in all)" in text


def test_weights_that_fit_load():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3))
    state = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
    assert float(load_state(model, state, "w").state_dict()["0.weight"].sum()) == 36.0
