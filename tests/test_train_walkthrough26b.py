"""An analyst's walkthrough of training their own nuclei model, second part: multi-channel images and
data.channel, 8-bit masks whose labels wrapped past 255, 12-bit data under dtype normalisation, evaluate's
default output name with --weights, and the mask suffixes the no-pairs error lists."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import yaml

from _train_data import disc_frame, make_pairs, tiny_recipe
from devolens.errors import DevolensError
from devolens.train.recipe import validate_recipe


def _rec(**over) -> dict:
    return validate_recipe(tiny_recipe(**over))


def _cli(args, capsys):
    from devolens.cli import main

    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, got.out, " ".join(got.err.split())


def _pairs(root: Path, write_image, n: int = 4, size: int = 64) -> Path:
    """images/emb<g>_t000.* + masks/emb<g>_t000_labels.tif, each image written by ``write_image(path_stem, grey)``
    (``grey``: a uint8 frame of bright discs)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for g in range(n):
        img, lab = disc_frame(rng, size)
        write_image(root / "images" / f"emb{g}_t000", img)
        tifffile.imwrite(root / "masks" / f"emb{g}_t000_labels.tif", lab)
    return root


def _cyx(stem: Path, img: np.ndarray) -> None:  # ImageJ hyperstack: C=2, nuclei in channel 1
    planes = np.stack([np.full_like(img, 30), img]).astype(np.uint16) * 16
    tifffile.imwrite(stem.with_suffix(".tif"), planes, imagej=True, metadata={"axes": "CYX"})


def _yxc(stem: Path, img: np.ndarray) -> None:  # channels last, 2 of them
    tifffile.imwrite(stem.with_suffix(".tif"), np.stack([np.full_like(img, 30), img], -1))


def _rgb_png(stem: Path, img: np.ndarray) -> None:  # green nuclei
    iio.imwrite(stem.with_suffix(".png"), np.stack([img // 4, img, img // 3], -1))


# ---------------------------------------------------------------- 1. multi-channel images and data.channel
@pytest.mark.parametrize("write", [_cyx, _yxc], ids=["imagej_cyx", "yxc"])
def test_a_multi_channel_image_without_data_channel_is_refused_naming_it(tmp_path, write):
    from devolens.train.trainer import build_data

    data = _pairs(tmp_path / "d", write)
    with pytest.raises(DevolensError) as exc:
        build_data(_rec(), data)
    text = str(exc.value)
    assert "emb0_t000.tif" in text and "2 channels" in text and "data.channel: N (0 to 1)" in text
    assert "--channel N" in text and "\n" not in text


def test_data_channel_picks_one_channel_and_says_how_to_segment_alike(tmp_path):
    from devolens.train.trainer import build_data, model_config
    from devolens.train.recipe import resolved

    data = _pairs(tmp_path / "d", _cyx)
    rec = tiny_recipe(data={"target": "semantic", "channels": 1, "val_fraction": 0.34, "channel": 1,
                            "normalize": "percentile"})
    bundle = build_data(validate_recipe(rec), data)
    sample = bundle.train[0]["image"].numpy()
    assert sample.shape[0] == 1
    raw = tifffile.imread(bundle.train.images[0])[1].astype(np.float32)  # channel 1 of the C axis
    lo, hi = np.percentile(raw, 1.0), np.percentile(raw, 99.8)
    want = np.clip((raw - lo) / (hi - lo), 0, 1)
    assert np.allclose(sample[0, :64, :64], want, atol=1e-5)
    assert any("data.channel 1" in n and "--channel 1" in n for n in bundle.notes)
    full = resolved(validate_recipe(rec))
    assert model_config(full, 0)["input"]["channel"] == 1
    with pytest.raises(DevolensError, match="data.channel is 2, but this image has 2 channels"):
        build_data(_rec(data={"target": "semantic", "channels": 1, "channel": 2}), data)
    with pytest.raises(DevolensError, match="data.channel: expected a channel index"):
        validate_recipe(tiny_recipe(data={"target": "semantic", "channel": "cyan"}))


def test_colour_images_train_as_before_and_green_is_a_channel(tmp_path):
    from devolens.data.datasets import read_image
    from devolens.train.trainer import build_data

    data = _pairs(tmp_path / "d", _rgb_png)
    bundle = build_data(_rec(), data)  # RGB PNGs: the per-pixel maximum, no data.channel needed
    rgb = read_image(bundle.train.images[0])
    assert np.allclose(bundle.train[0]["image"].numpy()[0, :64, :64], rgb.max(-1) / 255.0)
    green = build_data(_rec(data={"target": "semantic", "channels": 1, "val_fraction": 0.34,
                                         "channel": "green"}), data)
    assert np.allclose(green.train[0]["image"].numpy()[0, :64, :64], rgb[..., 1] / 255.0)
    assert any("--color green" in n for n in green.notes)
    # a 3-plane 8-bit TIFF as tifffile writes it by default (planar RGB) is a colour image; an ImageJ CYX one is not
    planar = _pairs(tmp_path / "p", lambda s, im: tifffile.imwrite(s.with_suffix(".tif"), np.stack([im, im // 2, im])))
    build_data(_rec(), planar)
    hyper = _pairs(tmp_path / "h", lambda s, im: tifffile.imwrite(
        s.with_suffix(".tif"), np.stack([im, im // 2, im]), imagej=True, metadata={"axes": "CYX"}))
    with pytest.raises(DevolensError, match="3 channels"):
        build_data(_rec(), hyper)


# ---------------------------------------------------------------- 2. 8-bit labels wrapped past 255
def _many_nuclei(n: int = 300, size: int = 256) -> np.ndarray:
    """uint16 labels 1..n: discs of radius 4 on a 14-px grid."""
    yy, xx = np.mgrid[:size, :size]
    lab = np.zeros((size, size), np.uint16)
    k = 0
    for cy in range(7, size - 6, 14):
        for cx in range(7, size - 6, 14):
            if k == n:
                return lab
            k += 1
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] = k
    return lab


def test_wrapped_8_bit_labels_are_noted_naming_the_mask(tmp_path):
    import pandas as pd

    from devolens.train.trainer import check_masks

    lab = _many_nuclei(300)
    assert lab.max() == 300
    iio.imwrite(tmp_path / "img.png", np.zeros((256, 256), np.uint8))
    iio.imwrite(tmp_path / "wrapped.png", (lab % 256).astype(np.uint8))
    iio.imwrite(tmp_path / "fine8.png", np.minimum(lab, 250).astype(np.uint8) * (lab <= 250))
    tifffile.imwrite(tmp_path / "fine16.tif", lab)
    iio.imwrite(tmp_path / "binary.png", ((lab > 0) * 255).astype(np.uint8))
    df = pd.DataFrame({"image": [str(tmp_path / "img.png")] * 4,
                       "labels": [str(tmp_path / n) for n in ("fine8.png", "fine16.tif", "binary.png", "wrapped.png")]})
    notes = check_masks(df)
    said = [n for n in notes if "label values repeat in separate nuclei" in n]
    assert len(said) == 1 and "1 of the 4 masks" in said[0] and "wrapped.png" in said[0]
    assert "save the labels as 16-bit TIFF" in said[0]
    assert not any("repeat" in n for n in check_masks(df.iloc[:3]))
    from devolens.data.datasets import repeated_labels

    assert repeated_labels((lab % 256).astype(np.uint8)) >= 40
    assert repeated_labels((np.minimum(lab, 250) * (lab <= 250)).astype(np.uint8)) == 0


# ---------------------------------------------------------------- 3. 12-bit data, dtype normalisation
def test_12_bit_data_under_dtype_normalisation_suggest_percentile(tmp_path):
    from devolens.train.trainer import build_data

    twelve = _pairs(tmp_path / "d12", lambda s, im: tifffile.imwrite(s.with_suffix(".tif"), im.astype(np.uint16) * 16))
    notes = build_data(_rec(), twelve).notes  # data.normalize left out: dtype
    said = [n for n in notes if "data.normalize: percentile" in n]
    top = max(int(tifffile.imread(p).max()) for p in (twelve / "images").iterdir())
    assert len(said) == 1 and f"up to {top} only" in said[0] and "16-bit" in said[0]
    rec = tiny_recipe(data={"target": "semantic", "channels": 1, "val_fraction": 0.34, "normalize": "percentile"})
    assert not any("data.normalize: percentile" in n for n in build_data(validate_recipe(rec), twelve).notes)
    full = _pairs(tmp_path / "d16", lambda s, im: tifffile.imwrite(s.with_suffix(".tif"), im.astype(np.uint16) * 257))
    assert not any("data.normalize: percentile" in n for n in build_data(_rec(), full).notes)


# ---------------------------------------------------------------- 4. evaluate's default output name
def test_evaluate_with_weights_keeps_the_runs_own_scores(tmp_path, capsys):
    from devolens.train.trainer import train

    run, data = tmp_path / "run", make_pairs(tmp_path / "A", groups=2, per_group=2, size=32)
    train(tiny_recipe(train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1}), data, run,
          device="cpu")
    code, _, err = _cli(["evaluate", run, "-d", data, "--weights", run / "checkpoint.safetensors"], capsys)
    assert code == 0 and f"metrics -> {run / 'eval_A_checkpoint.json'}" in " ".join(err.split())
    code, _, err = _cli(["evaluate", run, "-d", data], capsys)
    assert code == 0 and f"metrics -> {run / 'eval_A.json'}" in " ".join(err.split())
    first = json.loads((run / "eval_A_checkpoint.json").read_text())
    assert first["weights"].endswith("checkpoint.safetensors")
    assert json.loads((run / "eval_A.json").read_text())["weights"].endswith("best.safetensors")
    code, _, err = _cli(["evaluate", run, "-d", data], capsys)
    assert code == 0 and "(replacing the earlier one)" in err
    from devolens.cli.train import default_eval_json

    assert default_eval_json(run, data, "zoo:nuclei") == run / "eval_A_zoo-nuclei.json"
    assert default_eval_json(run, data) == run / "eval_A.json"
    assert default_eval_json(run, data, str(tmp_path / "other" / "best.safetensors")) == run / "eval_A_other-best.json"


# ---------------------------------------------------------------- 5. the suffixes a mask may carry
def test_no_pairs_error_lists_every_accepted_mask_suffix(tmp_path):
    from devolens.data.datasets import MASK_SUFFIXES, index_dataset

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    iio.imwrite(tmp_path / "images" / "a.png", np.zeros((32, 32), np.uint8))
    iio.imwrite(tmp_path / "masks" / "b.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(DevolensError, match="no image has a mask with the same name") as exc:
        index_dataset(tmp_path)
    assert all(suf in str(exc.value) for suf in MASK_SUFFIXES)
    assert "_cp_masks" in str(exc.value) and "-labels" in str(exc.value)


def test_a_run_trained_on_one_colour_channel_segments_with_it(tmp_path):
    """data.channel green on RGB images: the run's card reads the green channel (not the maximum) when used as a
    model, as its training data were read."""
    from devolens.models import load
    from devolens.models.export import card_from_run
    from devolens.train.trainer import train

    data = _pairs(tmp_path / "d", _rgb_png)
    rec = _rec(data={"target": "boundary", "channels": 1, "val_fraction": 0.34, "channel": "green",
                     "normalize": "percentile"})
    rec["train"]["epochs"] = 1
    train(rec, data, tmp_path / "run")
    card = card_from_run(tmp_path / "run", "nuclei")
    assert card["preprocessing"]["channel"] == "green" and "green channel" in card["preprocessing"]["steps"]
    assert load(tmp_path / "run", kind="nuclei", diameter=None).network.channel == "green"


def test_a_network_of_several_channels_takes_multi_channel_images_as_before(tmp_path):
    """data.channels 2 and two-channel images (no data.channel): both channels reach the network, not a refusal;
    data.channel with data.channels 2 is a recipe error."""
    from devolens.train.trainer import build_data

    data = _pairs(tmp_path / "d", _yxc)
    bundle = build_data(_rec(data={"target": "semantic", "channels": 2, "val_fraction": 0.34}), data)
    assert bundle.train[0]["image"].shape[0] == 2
    with pytest.raises(DevolensError, match="data.channel picks one channel"):
        validate_recipe(_rec(data={"target": "semantic", "channels": 2, "channel": 1}))


# ---------------------------------------------------------------- 6. third round: colour TIFFs of any type,
# a channel index in the run's card, alpha refused, 255 as an 'ignore' value
@pytest.mark.parametrize("write", [
    lambda s, im: tifffile.imwrite(s.with_suffix(".tif"), np.dstack([im, im, im]).astype(np.uint16) * 200,
                                   photometric="rgb"),
    lambda s, im: tifffile.imwrite(s.with_suffix(".tif"), np.stack([im, im // 2, im]).astype(np.uint16) * 200),
    lambda s, im: tifffile.imwrite(s.with_suffix(".tif"), np.dstack([im, im, im]).astype(np.float32) / 255,
                                   photometric="rgb"),
], ids=["rgb16_chunky", "rgb16_planar", "rgb_float"])
def test_16_bit_and_float_rgb_tiffs_are_colour_images_as_segment_reads_them(tmp_path, write):
    """segment reads these as one colour image (axes YXS / SYX, no C axis, and --channel 1 refused): training
    reads them alike, with no data.channel, rather than asking for a --channel N that segment refuses."""
    from devolens.data.datasets import colour_image, read_image
    from devolens.io.stacks import stack_info
    from devolens.train.trainer import build_data

    data = _pairs(tmp_path / "d", write)
    first = data / "images" / "emb0_t000.tif"
    info = stack_info(first)
    assert "C" not in info.axes and info.channels == 1 and not info.is_stack
    assert colour_image(read_image(first), first)
    bundle = build_data(_rec(), data)
    assert bundle.train[0]["image"].shape[0] == 1
    green = build_data(_rec(data={"target": "semantic", "channels": 1, "val_fraction": 0.34, "channel": 1}), data)
    assert any("--color green" in n for n in green.notes) and not any("--channel 1" in n for n in green.notes)


def test_channels_that_are_a_real_c_axis_or_channels_last_stay_multi_channel(tmp_path):
    from devolens.data.datasets import colour_image, read_image

    g = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    tifffile.imwrite(tmp_path / "cyx.tif", np.stack([g] * 3), imagej=True, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "yxc.tif", np.dstack([g] * 3), photometric="minisblack")
    for name in ("cyx.tif", "yxc.tif"):
        assert not colour_image(read_image(tmp_path / name), tmp_path / name), name


def _fake_run(root: Path, channel) -> Path:
    run = root / f"run_{channel}"
    run.mkdir(parents=True)
    (run / "best.safetensors").write_bytes(b"x")
    (run / "best.json").write_text(json.dumps({
        "task": "segmentation", "recipe": {"name": "my_nuclei", "model": {}},
        "input": {"channels": 1, "channel": channel, "size": None, "scale": 1.0, "normalize": "percentile",
                  "target": "boundary"},
        "model": {"kind": "segmentation", "encoder_depth": 5}}))
    return run


@pytest.mark.parametrize("index,colour", [(0, "red"), (1, "green"), (2, "blue")])
def test_a_run_trained_with_a_channel_index_reads_that_colour_as_a_model(tmp_path, index, colour):
    """data.channel 1 on RGB images trains on green (select_channel applies the index to colour images): the
    run's card reads green, not the maximum; its steps say how a stack's channel is chosen, in clean text."""
    from devolens.models.export import card_from_run

    card = card_from_run(_fake_run(tmp_path, index), "nuclei")
    steps = card["preprocessing"]["steps"]
    assert card["preprocessing"]["channel"] == colour
    assert f"the {colour} channel of an RGB image" in steps and f"--channel {index}" in steps
    assert "as the training data were read" not in steps and "; (" not in steps and ";;" not in steps
    card = card_from_run(_fake_run(tmp_path, 4), "nuclei")
    assert card["preprocessing"]["channel"] == "max" and "--channel 4" in card["preprocessing"]["steps"]
    assert "as the training data were read" not in card["preprocessing"]["steps"]


def test_data_channel_3_on_a_colour_image_is_alpha_and_refused(tmp_path):
    from devolens.data.datasets import select_channel

    rgba = np.zeros((16, 16, 4), np.uint8)
    iio.imwrite(tmp_path / "a.png", rgba)
    with pytest.raises(DevolensError, match="alpha") as exc:
        select_channel(rgba, 3, tmp_path / "a.png")
    assert "\n" not in str(exc.value) and "a.png" in str(exc.value)
    assert select_channel(rgba, 2, tmp_path / "a.png").shape == (16, 16)
    four = np.zeros((16, 16, 4), np.uint16)  # a four-channel ImageJ hyperstack: channel 3 is a channel
    tifffile.imwrite(tmp_path / "c4.tif", np.moveaxis(four, -1, 0), imagej=True, metadata={"axes": "CYX"})
    assert select_channel(four, 3, tmp_path / "c4.tif").shape == (16, 16)


def test_255_as_an_ignore_value_over_several_blobs_is_not_wrapped_labels():
    from devolens.data.datasets import repeated_labels

    lab = _many_nuclei(200).astype(np.uint8)  # 200 nuclei, labels 1..200
    ignore = lab.copy()
    yy, xx = np.mgrid[:256, :256]
    for cy, cx in ((20, 20), (20, 230), (230, 20), (230, 230)):  # regions to ignore, far apart
        ignore[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = 255
    assert repeated_labels(ignore) == 0
    assert repeated_labels((_many_nuclei(300) % 256).astype(np.uint8)) >= 40  # wrapped labels still counted
