"""What a cellpose or StarDist user expects of ``segment nuclei|membrane``: the post-processing as options
(``--threshold``, ``--seed-threshold``, ``--min-size`` in the image's own pixels, ``--keep-small``) recorded in
segment.json, a note when the speck step dropped lone objects far above the smallest size kept, their option names
typed from habit answered with devolens' own, the colour channel read said in a line, and ``load(color=...)``
pointed to ``channel``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())  # (the console wraps long lines)


def _squares(shape, boxes) -> np.ndarray:
    """A float mask of the squares ``(y, x, side)``."""
    m = np.zeros(shape, np.float32)
    for y, x, side in boxes:
        m[y:y + side, x:x + side] = 1.0
    return m


def _probs(mask: np.ndarray) -> np.ndarray:
    """Three-class probabilities (background, interior, boundary) of a sure network seeing ``mask``."""
    return np.stack([1.0 - 0.98 * mask, 0.98 * mask, np.full_like(mask, 0.02)]).astype(np.float32)


#: 8 big nuclei (16 working px wide) and 4 lone small ones (7 px: 49 working px, under a quarter of the big ones' 256,
#: and over 4x the card's min_size of 8), far apart: a mixed culture at the working resolution
_BIG = [(8 + 40 * (k // 4), 8 + 40 * (k % 4), 16) for k in range(8)]
_SMALL = [(96, 12 + 40 * k, 7) for k in range(4)]


@pytest.fixture
def oracle(monkeypatch):
    """A network that reads its (prepared, working-resolution) input as it is: bright = nucleus interior."""
    from devolens.predict._engine import ImageNetwork

    monkeypatch.setattr(ImageNetwork, "probabilities_working",
                        lambda self, prepared: [_probs((np.asarray(p) > 0.5).astype(np.float32)) for p in prepared])


@pytest.fixture
def shipped_post(tiny_zoo):
    """The tiny nuclei model with the shipped nuclei card's post-processing (its speck step: isolated_fraction)."""
    from devolens.models import zoo

    shipped = json.loads((Path(zoo.__file__).parent / "nuclei" / "card.json").read_text())["postprocess"]
    path = tiny_zoo / "nuclei" / "card.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "postprocess": shipped}))
    zoo.card.cache_clear()
    return shipped


#: a crowded mixed culture: 100 nuclei 14 working px wide on an 18 px pitch and the same 4 lone small ones (36
#: working px: under a quarter of 196, over 4x min_size), enough objects for the shipped card's speck step
#: (isolated_min_objects 100)
_CROWD = [(2 + 18 * (k // 10), 2 + 18 * (k % 10), 14) for k in range(100)]
_CROWD_SMALL = [(196, 10 + 40 * k, 6) for k in range(4)]


def _culture(path: Path, crowded: bool = False) -> Path:
    """A grey image of the mixed culture at twice the working size (the tiny cards' scale 0.5): 256x320, or
    420x380 ``crowded``."""
    mask = _squares((210, 190), _CROWD + _CROWD_SMALL) if crowded else _squares((128, 160), _BIG + _SMALL)
    img = (np.kron(mask, np.ones((2, 2), np.float32)) * 3000 + 200).astype(np.uint16)
    tifffile.imwrite(path, img)
    return path


# --------------------------------------------------------------------------------------------- the predictors
def test_min_size_in_input_pixels_follows_each_images_working_scale(tiny_zoo):
    from devolens.models import load

    pred = load("nuclei", postprocess={"smooth": 0.0})
    probs = _probs(_squares((40, 40), [(2, 2, 3), (20, 20, 4)]))  # 9 and 16 working pixels
    assert pred._finish(probs, (80, 80)).count == 2  # the card's min_size 8 (working)
    pred.min_size_input = 48  # input pixels: the objects' 36 and 64 input pixels at scale 0.5
    assert pred.network.scale == 0.5
    assert pred._without_small(pred._finish(probs, (80, 80))).count == 1
    assert pred.postprocess_for()["min_size"] == 8  # (the postprocess's own: its seeds and noise)
    pred.network.scale = 1.0  # another image's resizing: 9 and 16 input pixels
    assert pred._without_small(pred._finish(probs, (40, 40))).count == 0


def test_speck_step_reports_what_it_dropped_with_the_same_labels(tiny_zoo):
    from devolens.models import load
    from devolens.predict.postprocess import instances_from_probabilities
    from devolens.predict.segment import _input_labels

    probs = _probs(_squares((128, 160), _BIG + _SMALL))
    pred = load("nuclei", postprocess={"isolated_fraction": 0.25, "smooth": 0.0})
    res = pred._finish(probs, (256, 320))
    assert res.count == 8
    assert sorted(res.extra["isolated_dropped"]) == [196] * 4  # 49 working px at scale 0.5: input pixels
    same = instances_from_probabilities(1.0 - probs[0], probs[1], **pred.postprocess_for())  # (one step)
    assert np.array_equal(res.labels, _input_labels(same, (256, 320))[0])
    kept = load("nuclei", postprocess={"isolated_fraction": 0.0, "smooth": 0.0})._finish(probs, (256, 320))
    assert kept.count == 12 and "isolated_dropped" not in kept.extra


# --------------------------------------------------------------------------------------------- the command
def test_segment_nuclei_keep_small_and_its_note(shipped_post, oracle, tmp_path, capsys):
    src = _culture(tmp_path / "culture.tif", crowded=True)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-flatten", "--no-overlay"]) == 0
    err = _err(capsys)
    assert "100 nuclei" in err
    assert "4 lone nuclei of about" in err and "were dropped as specks" in err and "--keep-small" in err
    record = json.loads((out / "segment.json").read_text())
    assert record["postprocess"]["isolated_fraction"] > 0 and record["postprocess"]["min_size_px"] == 32.0
    assert record["postprocess"]["isolated_min_objects"] == 100
    assert record["options"]["keep_small"] is False
    assert any("--keep-small" in n for n in record["notes"])

    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-flatten", "--no-overlay",
                 "--keep-small"]) == 0
    err = _err(capsys)
    assert "104 nuclei" in err and "dropped as specks" not in err
    record = json.loads((out / "segment.json").read_text())
    assert record["options"]["keep_small"] is True and record["postprocess"]["isolated_fraction"] == 0.0


def test_segment_nuclei_min_size_and_thresholds_recorded(shipped_post, oracle, tmp_path, capsys):
    src = _culture(tmp_path / "culture.tif")
    out = tmp_path / "seg"
    # 49 working pixels are 196 image pixels: --min-size 200 (image pixels) drops them, whatever the speck step does
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-flatten", "--no-overlay", "--keep-small",
                 "--min-size", "200", "--threshold", "0.4", "--seed-threshold", "0.55"]) == 0
    assert "8 nuclei" in _err(capsys)
    record = json.loads((out / "segment.json").read_text())
    assert {k: record["options"][k] for k in ("threshold", "seed_threshold", "min_size", "keep_small")} == {
        "threshold": 0.4, "seed_threshold": 0.55, "min_size": 200, "keep_small": True}
    post = record["postprocess"]
    # (the postprocess's own min_size, 8 working px, stays: --min-size drops the objects found under 200 image px)
    assert (post["threshold"], post["seed_threshold"], post["min_size"], post["min_size_px"]) == (0.4, 0.55, 8.0,
                                                                                                  200.0)
    areas = np.loadtxt(out / "objects.csv", delimiter=",", skiprows=1, usecols=4, ndmin=1)
    assert len(areas) == 8 and areas.min() >= 200


@pytest.mark.parametrize("args, words", [
    (["--threshold", "1.5"], "--threshold must be a probability between 0 and 1"),
    (["--seed-threshold", "0"], "--seed-threshold must be a probability between 0 and 1"),
    (["--threshold", "nan"], "--threshold must be a probability between 0 and 1"),
    (["--min-size", "-4"], "--min-size must be a number of pixels >= 0"),
])
def test_segment_postprocess_options_refused_out_of_range(tiny_zoo, tmp_path, capsys, args, words):
    src = _culture(tmp_path / "culture.tif")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), *args]) == 2
    assert words in _err(capsys)
    assert not out.exists()


def test_segment_membrane_takes_the_options_that_apply(tiny_zoo, tmp_path, capsys):
    src = _culture(tmp_path / "culture.tif")
    out = tmp_path / "seg"
    assert main(["segment", "membrane", str(src), "--out", str(out), "--keep-small"]) == 2
    assert "segment membrane has no --keep-small: it is an option of segment nuclei" in _err(capsys)
    assert main(["segment", "membrane", str(src), "--out", str(out), "--no-overlay", "--threshold", "0.45",
                 "--min-size", "40"]) == 0
    capsys.readouterr()
    record = json.loads((out / "segment.json").read_text())
    assert record["postprocess"]["threshold"] == 0.45 and record["postprocess"]["min_size_px"] == 40.0
    assert "isolated_fraction" not in record["postprocess"] and "keep_small" not in record["options"]
    from devolens.cli.predict import run_segmentation

    with pytest.raises(DevolensError, match="--keep-small is segment nuclei's"):
        run_segmentation("membrane", src, tmp_path / "other", model="membrane", keep_small=True)


def test_help_states_the_shipped_cards_values():
    from devolens.cli.predict import _CARD_POSTPROCESS, _min_size_help
    from devolens.models import zoo

    for kind, stated in _CARD_POSTPROCESS.items():
        card = json.loads((Path(zoo.__file__).parent / kind / "card.json").read_text())
        assert {k: card["postprocess"][k] for k in ("threshold", "seed_threshold", "min_size")} == {
            k: stated[k] for k in ("threshold", "seed_threshold", "min_size")}
        assert card["input"]["scale"] == stated["scale"]
    assert "32 pixels of an image" in _min_size_help("nuclei")


# --------------------------------------------------------------------------------------------- habits
@pytest.mark.parametrize("args, words", [
    (["--min_size", "10"], "--min_size; options are spelt with hyphens: --min-size"),
    (["--prob_thresh", "0.5"], "StarDist's prob_thresh is --threshold"),
    (["--prob-thresh", "0.5"], "StarDist's prob_thresh is --threshold"),
    (["--cellprob_threshold", "0"], "cellpose's cellprob_threshold is --threshold"),
    (["--nms-thresh", "0.3"], "touching nuclei are split by a watershed"),
    (["--use_gpu"], "--device cuda"),
    (["--gpu"], "--device cuda"),
    (["--chan", "2"], "--color for an RGB image's (red, green, blue) or --channel N for a TIFF's channel axis"),
    (["--chan2", "1"], "--channel N"),
    (["--save_tif"], "label images are always written as TIFF"),
    (["--save_png"], "label images are always written as TIFF"),
    (["--diameter", "0"], "for an automatic estimate leave it out or give auto (cellpose's 0)"),
])
def test_cellpose_and_stardist_options_get_devolens_names(tmp_path, capsys, args, words):
    img = tmp_path / "a.png"
    img.write_bytes(b"")  # (never read: the command line is refused first)
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "seg"), *args]) == 2
    err = _err(capsys)
    assert words in err
    assert "Possible options" not in err and "Did you mean" not in err


def test_habits_only_where_the_command_has_the_option(tmp_path, capsys):
    line = ["--out", str(tmp_path / "out"), str(tmp_path / "a.png")]
    # population has --device (the GPU advice) but no --threshold: click's own guess stands for prob_thresh
    assert main(["population", *line, "--use_gpu"]) == 2
    assert "--use_gpu; the GPU is --device cuda" in _err(capsys)
    assert main(["population", *line, "--prob_thresh", "0.5"]) == 2
    assert "--threshold" not in _err(capsys)
    # a misspelling of the command's own option, no habit: click's guess by spelling
    assert main(["segment", "nuclei", *line, "--chanel", "1"]) == 2
    assert "--channel" in _err(capsys)


# --------------------------------------------------------------------------------------------- colour
def _rgb(path: Path, at: int) -> Path:
    from PIL import Image

    mask = np.kron(_squares((64, 80), [(4, 4, 8), (4, 30, 8), (30, 12, 8), (30, 50, 8), (50, 60, 8)]),
                   np.ones((2, 2), np.float32))
    rgb = np.full((*mask.shape, 3), 10, np.uint8)
    rgb[..., at] = (mask * 220 + 10).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def test_segment_says_which_colour_channel_it_read(tiny_zoo, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(3):
        _rgb(folder / f"f{k}.png", 2)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay", "--diameter", "none"]) == 0
    err = _err(capsys)
    assert err.count("colour input: the blue channel was read") == 1  # once per run, not per frame
    assert "--color red|green|mean reads another" in err
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay", "--diameter", "none",
                 "--color", "blue"]) == 0
    assert "colour input" not in _err(capsys)


def test_load_color_points_to_channel(tiny_zoo):
    from devolens.models import load

    with pytest.raises(DevolensError, match=r"unknown option 'color' \(an RGB image's channel is channel='blue'"):
        load("nuclei", color="blue")
