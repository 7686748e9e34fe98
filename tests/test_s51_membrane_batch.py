"""Session 51: the membrane predictor's ``predict_batch`` and ``predict_iter`` read each colour image as ``predict``
reads it alone: a two-colour image of membranes (green) and nuclei (red) is read by its membranes
(``notes.membrane_channel``). Before, ``predict(x)`` read green and ``predict_batch([x])`` red, the nuclei, which the
network outlined as cells (with an InputWarning saying they looked like nuclei)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from test_s47_channels import _membranes
from test_s48_membrane_channel import _two_colour


@pytest.fixture(scope="module")
def model():
    from devolens.models import load

    return load("membrane", postprocess={"edge_membrane": 0.25})


def test_batch_and_stream_read_each_image_as_predict_does(model):
    rgb = _two_colour()
    grey = _membranes()
    alone = model.predict(rgb)
    assert alone.extra["color_read"] == "green"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no InputWarning: the membranes read, not the nuclei
        batch = model.predict_batch([rgb, grey, rgb[:, ::-1].copy()])
    assert [r.extra.get("color_read") for r in batch] == ["green", None, "green"]
    assert np.array_equal(batch[0].labels, alone.labels) and batch[0].count == alone.count
    assert np.array_equal(batch[1].labels, model.predict(grey).labels)
    assert batch[0].centroids["mean_intensity"].tolist() == alone.centroids["mean_intensity"].tolist()
    streamed = list(model.predict_iter(iter([grey, rgb])))
    assert [r.extra.get("color_read") for r in streamed] == [None, "green"]
    assert np.array_equal(streamed[1].labels, alone.labels)


def test_a_channel_given_and_the_command_keep_their_reading(model, tmp_path):
    import json

    import imageio.v3 as iio

    from devolens.cli import main
    from devolens.models import load

    rgb = _two_colour()
    given = load("membrane", channel="red")
    with pytest.warns(Warning):  # (red: the nuclei, as asked: they look like nuclei)
        assert given.predict_batch([rgb])[0].extra["color_read"] == "red"
    folder = tmp_path / "f"
    folder.mkdir()
    iio.imwrite(folder / "a.png", rgb)
    iio.imwrite(folder / "b.png", rgb)
    assert main(["segment", "membrane", str(folder), "--out", str(tmp_path / "o"), "--diameter", "none"]) == 0
    record = json.loads((tmp_path / "o" / "segment.json").read_text())
    assert record["color_read"] == "red"  # a folder: the card's rule, file by file, as documented
    assert any("--color green" in n for n in record["notes"])
