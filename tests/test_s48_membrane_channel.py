"""s48 m3: the membrane model's colour channel. The library's ``predict`` of one colour image reads the channel
``segment membrane`` reads (one rule: notes.membrane_channel), ``segment`` reads the first frame of its input once
for that choice, a video is read by the channel chosen on its first frame, and --color / channel= override it."""

import json
from pathlib import Path

import numpy as np
import pytest

from test_s47_channels import _membranes, _nuclei


def _two_colour():
    """Membranes (a grid of lines) in green, nuclei-like blobs in red: the rule alone reads red."""
    return np.dstack([_nuclei(), _membranes(), np.zeros((256, 256), np.uint8)])


def _labels(path: Path) -> np.ndarray:
    import tifffile

    return tifffile.imread(path)


def test_library_and_command_read_the_membranes_channel_alike(tmp_path):
    import imageio.v3 as iio

    from devolens.cli import main
    from devolens.models import load
    from devolens.predict.postprocess import auto_channel

    rgb = _two_colour()
    assert auto_channel(rgb) == "red"  # the rule's channel: the nuclei's
    path = tmp_path / "two.png"
    iio.imwrite(path, rgb)
    # the command's post-processing (edge pieces dropped) and its images as they are (--diameter none)
    res = load("membrane", postprocess={"edge_membrane": 0.25}).predict(rgb)
    assert res.extra["color_read"] == "green"
    assert main(["segment", "membrane", str(path), "--out", str(tmp_path / "o"), "--diameter", "none"]) == 0
    record = json.loads((tmp_path / "o" / "segment.json").read_text())
    assert record["color_read"] == "green"
    assert "the green channel was read" in " ".join(record["notes"])
    labels = _labels(tmp_path / "o" / "labels" / "two_labels.tif")
    assert res.count > 0 and np.array_equal(labels, res.labels)


@pytest.mark.filterwarnings("ignore::devolens.errors.DiameterWarning")
def test_library_grey_image_and_a_channel_given_keep_their_reading(tmp_path):
    import imageio.v3 as iio

    from devolens.cli import main
    from devolens.errors import InputWarning
    from devolens.models import load

    rgb = _two_colour()
    grey = _membranes()
    model = load("membrane")
    assert model._read_by(grey) is model  # grey: the predictor as it is
    assert model._read_by(np.dstack([grey] * 3)) is model  # grey stored as colour
    given = load("membrane", channel="red", postprocess={"edge_membrane": 0.25})
    assert given._read_by(rgb) is given  # a channel given: no rule over it
    with pytest.warns(InputWarning, match="look like nuclei"):  # (red: the nuclei, as asked)
        res = given.predict(rgb)
    assert res.extra["color_read"] == "red"
    path = tmp_path / "two.png"
    iio.imwrite(path, rgb)
    assert main(["segment", "membrane", str(path), "--out", str(tmp_path / "o"), "--diameter", "none",
                 "--color", "red"]) == 0
    assert json.loads((tmp_path / "o" / "segment.json").read_text())["color_read"] == "red"
    assert np.array_equal(_labels(tmp_path / "o" / "labels" / "two_labels.tif"), res.labels)


def test_library_auto_diameter_recorded_on_the_predictor():
    from devolens.models import load

    model = load("membrane", diameter="auto")
    res = model.predict(_two_colour())
    assert res.extra["color_read"] == "green"
    assert model.last_estimate is res.extra["estimate"]  # (recorded as a call of its own records it)


def test_segment_reads_the_first_frame_once(tmp_path, monkeypatch):
    import imageio.v3 as iio

    import devolens.io.images as images
    from devolens.cli import main

    path = tmp_path / "two.png"
    iio.imwrite(path, _two_colour())
    reads = []
    read_image = images.read_image

    def counted(p, *args, **kwargs):
        reads.append(Path(p).name)
        return read_image(p, *args, **kwargs)

    monkeypatch.setattr(images, "read_image", counted)
    assert main(["segment", "membrane", str(path), "--out", str(tmp_path / "o"), "--diameter", "none"]) == 0
    assert reads.count("two.png") == 1, reads
    assert json.loads((tmp_path / "o" / "segment.json").read_text())["color_read"] == "green"


def test_segment_reads_each_frame_of_a_stack_once(tmp_path, monkeypatch):
    tifffile = pytest.importorskip("tifffile")

    import devolens.io.stacks as stacks
    from devolens.cli import main

    path = tmp_path / "two.tif"
    tifffile.imwrite(path, np.stack([_two_colour()] * 3), photometric="rgb")
    read = [0]
    iter_stack_frames = stacks.iter_stack_frames

    def counted(*args, **kwargs):
        for frame in iter_stack_frames(*args, **kwargs):
            read[0] += 1
            yield frame

    monkeypatch.setattr(stacks, "iter_stack_frames", counted)
    assert main(["segment", "membrane", str(path), "--out", str(tmp_path / "o"), "--diameter", "none"]) == 0
    record = json.loads((tmp_path / "o" / "segment.json").read_text())
    assert record["frames"] == 3
    assert read[0] == 3  # (the choice's frame is the run's first: read once)
    assert record["color_read"] == "green"
    assert "in every frame of the stack" in " ".join(record["notes"])


def test_segment_video_read_by_the_channel_chosen_on_its_first_frame(tmp_path):
    from devolens.cli import main
    from devolens.io.video import write_video

    movie = write_video((_two_colour() for _ in range(3)), tmp_path / "two.mp4", fps=4)
    assert main(["segment", "membrane", str(movie), "--out", str(tmp_path / "o"), "--diameter", "none"]) == 0
    record = json.loads((tmp_path / "o" / "segment.json").read_text())
    assert record["color_read"] == "green"
    assert "green channel was read in every frame of the video" in " ".join(record["notes"])
