"""Session 51: the membrane predictor's ``predict_batch`` and ``predict_iter`` read each colour image as ``predict``
reads it alone: a two-colour image of membranes (green) and nuclei (red) is read by its membranes
(``notes.membrane_channel``). Before, ``predict(x)`` read green and ``predict_batch([x])`` red, the nuclei, which the
network outlined as cells (with an InputWarning saying they looked like nuclei)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
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


def test_a_channel_given_keeps_its_reading():
    from devolens.models import load

    rgb = _two_colour()
    given = load("membrane", channel="red")
    with pytest.warns(Warning):  # (red: the nuclei, as asked: they look like nuclei)
        assert given.predict_batch([rgb])[0].extra["color_read"] == "red"


def test_the_command_reads_each_file_of_a_folder_as_one_image(model, tmp_path):
    """``segment membrane FOLDER``: each two-colour file read by its membranes, as ``segment membrane FILE`` reads
    it (labels identical), a green-only file by the rule; the colour line names them (it read the nuclei of every
    two-colour file before, with a note naming --color)."""
    import json

    import imageio.v3 as iio
    import tifffile

    from devolens.cli import main

    rgb = _two_colour()
    green = np.dstack([np.zeros_like(_membranes()), _membranes(), np.zeros_like(_membranes())])
    folder = tmp_path / "f"
    folder.mkdir()
    iio.imwrite(folder / "a.png", rgb)
    iio.imwrite(folder / "b.png", rgb)
    assert main(["segment", "membrane", str(folder), "--out", str(tmp_path / "o"), "--diameter", "none"]) == 0
    record = json.loads((tmp_path / "o" / "segment.json").read_text())
    notes = " ".join(record["notes"])
    assert record["color_read"] == "green"
    assert "the green channel was read in every file (its bright structure is lines" in notes
    assert "looks like nuclei (bright blobs" not in notes  # (the shape note: judged on the channel read)
    assert main(["segment", "membrane", str(folder / "a.png"), "--out", str(tmp_path / "one"),
                 "--diameter", "none"]) == 0
    assert np.array_equal(tifffile.imread(tmp_path / "o" / "labels" / "a_labels.tif"),
                          tifffile.imread(tmp_path / "one" / "labels" / "a_labels.tif"))
    objects = pd.read_csv(tmp_path / "o" / "objects.csv", dtype={"frame": str})
    alone = pd.read_csv(tmp_path / "one" / "objects.csv", dtype={"frame": str})
    assert objects[objects["frame"] == "a"]["mean_intensity"].tolist() == alone["mean_intensity"].tolist()
    # a folder of a two-colour file and a green-only export: each named
    iio.imwrite(folder / "b.png", green)
    assert main(["segment", "membrane", str(folder), "--out", str(tmp_path / "m"), "--diameter", "none"]) == 0
    notes = " ".join(json.loads((tmp_path / "m" / "segment.json").read_text())["notes"])
    assert "the green channel was read in a.png (its bright structure is lines" in notes
    assert "the other colour files by the card's rule: green in b.png" in notes
