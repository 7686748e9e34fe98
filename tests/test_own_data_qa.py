"""QA of training on a biologist's own annotated data: masks as annotation tools save them (paletted or
colour PNGs, float or 32-bit TIFFs), cellpose's names and layout, sub-folders, images of several sizes,
ambiguous names, bad mask values refused in one line, and resuming a run or a study only on its data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from _train_data import disc_frame, make_pairs, tiny_recipe
from devolens.cli import main
from devolens.data.datasets import SegmentationDataset, find_pairs, index_dataset, read_mask
from devolens.errors import DevolensError
from devolens.train.recipe import load_recipe
from devolens.train.trainer import build_data, train
from devolens.train.tuning import tune


def quick(**over) -> dict:
    """A recipe that trains an epoch in well under a second on small pairs (``over`` replaces sections)."""
    base = {"train": {"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0, "max_batches": 1}}
    return tiny_recipe(**{**base, **over})


def cli(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def cellpose_pairs(root: Path, n: int = 4, sizes=(48,), seed: int = 0, flat: bool = False) -> Path:
    """``img_NNN.tif`` + ``img_NNN_masks.tif`` (in images/ and masks/, or side by side with ``flat``)."""
    rng = np.random.default_rng(seed)
    idir, mdir = (root, root) if flat else (root / "images", root / "masks")
    idir.mkdir(parents=True, exist_ok=True)
    mdir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, lab = disc_frame(rng, sizes[i % len(sizes)])
        tifffile.imwrite(idir / f"img_{i:03d}.tif", img)
        tifffile.imwrite(mdir / f"img_{i:03d}_masks.tif", lab)
    return root


def two_nuclei() -> np.ndarray:
    lab = np.zeros((32, 32), np.uint8)
    lab[4:12, 4:12] = 1
    lab[4:12, 20:28] = 2
    lab[20:28, 10:18] = 3
    return lab


# ----------------------------------------------------------------------------- resuming on other data
def test_a_complete_run_resumed_on_other_data_says_so(tmp_path, capsys):
    data = make_pairs(tmp_path / "data", groups=3, per_group=2, size=32)
    other = make_pairs(tmp_path / "other", groups=3, per_group=2, size=32, seed=5)  # same names, other files
    run = tmp_path / "run"
    train(quick(), data, run)
    with pytest.raises(DevolensError, match="differ from those the run was trained on"):
        train(quick(), other, run, resume=True)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(quick()))
    code, out, err = cli(["train", recipe, "--data", other, "--out", run, "--resume"], capsys)
    assert code == 2 and "already complete" not in out + err and "differ from those" in err
    moved = Path(shutil.copytree(data, tmp_path / "moved"))  # the same data elsewhere: still complete
    code, out, err = cli(["train", recipe, "--data", moved, "--out", run, "--resume"], capsys)
    assert code == 0 and "already complete" in " ".join((out + err).split())


def test_tune_refuses_to_resume_a_study_on_other_data(tmp_path):
    rec = quick(tune={"trials": 1, "epochs": 1, "space": {
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}})
    data = make_pairs(tmp_path / "data", groups=3, per_group=2, size=32)
    other = make_pairs(tmp_path / "other", groups=3, per_group=2, size=32, seed=5)
    out = tmp_path / "study"
    assert tune(rec, data, out).n_new == 1
    with pytest.raises(DevolensError, match="tuned on other data"):
        tune(rec, other, out, trials=2)
    moved = Path(shutil.copytree(data, tmp_path / "moved"))
    assert tune(rec, moved, out, trials=2).n_new == 1  # the same data moved go on


def test_the_own_data_recipe_can_be_tuned():
    rec = load_recipe(Path(__file__).parent.parent / "recipes" / "finetune_own_nuclei.yaml")
    assert rec["tune"]["space"] and rec["model"]["init"] == "zoo:nuclei"


# ----------------------------------------------------------------------------- masks as tools save them
def test_colour_and_paletted_masks_keep_every_nucleus(tmp_path):
    from PIL import Image

    lab = two_nuclei()
    # colours sharing their red value (read by the red channel, nuclei 1 and 2 merged) and a pure green
    # nucleus (read by the red channel, background)
    colours = np.array([[0, 0, 0], [200, 0, 0], [200, 90, 0], [0, 255, 0]], np.uint8)
    Image.fromarray(colours[lab]).save(tmp_path / "rgb.png")
    pal = Image.fromarray(lab, mode="P")
    pal.putpalette(colours.ravel().tolist() + [0] * (768 - colours.size))
    pal.save(tmp_path / "pal.png")
    kinds: list[str] = []
    for name in ("rgb.png", "pal.png"):
        got = read_mask(tmp_path / name, kinds)
        assert got.shape == lab.shape
        pairs = set(zip(got.ravel().tolist(), lab.ravel().tolist()))
        assert len(pairs) == 4 and (0, 0) in pairs  # one label per nucleus, background kept
    assert kinds == ["colour"]  # the paletted mask read by its indices, no colour note
    with pytest.raises(DevolensError, match="colour mask"):
        read_mask(tmp_path / "rgb.png", classes=True)


def test_wide_float_and_bad_masks(tmp_path):
    lab = two_nuclei().astype(np.int64)
    big = np.where(lab > 0, lab * 70_000 + 2**26, 0).astype(np.uint32)  # > 65535 and > float32's exact integers
    big[lab == 2] += 1
    tifffile.imwrite(tmp_path / "big.tif", big)
    got = read_mask(tmp_path / "big.tif")
    assert got.dtype == np.uint16 and len(set(zip(got.ravel().tolist(), lab.ravel().tolist()))) == 4
    tifffile.imwrite(tmp_path / "float.tif", lab.astype(np.float32))
    assert np.array_equal(read_mask(tmp_path / "float.tif"), lab)
    tifffile.imwrite(tmp_path / "prob.tif", lab.astype(np.float32) * 0.3)
    with pytest.raises(DevolensError, match="fractional"):
        read_mask(tmp_path / "prob.tif")
    tifffile.imwrite(tmp_path / "neg.tif", np.where(lab > 0, lab, -1).astype(np.int16))
    with pytest.raises(DevolensError, match="negative"):
        read_mask(tmp_path / "neg.tif")
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "m.jpg", (lab > 0).astype(np.uint8) * 255)
    with pytest.raises(DevolensError, match="JPEG"):
        read_mask(tmp_path / "m.jpg")


def test_a_bad_mask_is_one_line_even_from_a_worker_process(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("devolens.train.trainer.CHECK_SECONDS", 0.0)  # masks past the first left to the epoch
    data = cellpose_pairs(tmp_path / "data", n=8, sizes=(32,))
    rec = quick(data={"val_fraction": 0.25}, train={"epochs": 1, "batch_size": 8, "threads": 1, "overlay_samples": 0,
                                                     "num_workers": 1})
    split = build_data(load_recipe(rec), data).split
    # a training sample (read by the worker) past the masks read up front
    bad = [s for s, side in zip(split["sample"], split["side"]) if side == "train" and s >= "images/img_005"][0]
    tifffile.imwrite(data / "masks" / (Path(bad).stem + "_masks.tif"), np.zeros((40, 40), np.uint16))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(rec))
    code, out, err = cli(["train", recipe, "--data", data, "--out", tmp_path / "run"], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err and len(errors) == 1 and "differ in size" in errors[0]
    assert not (tmp_path / "run").exists()


def test_a_mask_of_another_size_names_the_files_sizes(tmp_path):
    data = cellpose_pairs(tmp_path / "data", n=4, sizes=(64,))
    tifffile.imwrite(data / "masks" / "img_000_masks.tif", np.zeros((128, 128), np.uint16))
    with pytest.raises(DevolensError, match="64x64 and 128x128 pixels"):  # not the sizes after data.scale
        build_data(load_recipe(quick(data={"val_fraction": 0.5, "scale": 0.5})), data)  # found before training
    df = index_dataset(data)
    ds = SegmentationDataset(df["image"], df["labels"], scale=0.5)  # and by the dataset (masks left unchecked)
    with pytest.raises(DevolensError, match="64x64 and 128x128 pixels"):
        ds[0]


def test_empty_masks_are_noted(tmp_path):
    data = cellpose_pairs(tmp_path / "data", n=4, sizes=(32,))
    for m in (data / "masks").iterdir():
        tifffile.imwrite(m, np.zeros((32, 32), np.uint16))
    notes = build_data(load_recipe(quick()), data).notes
    assert any("4 of the 4 masks hold no object" in n for n in notes)


# ----------------------------------------------------------------------------- names and layouts
def test_two_masks_for_one_image_or_two_images_of_one_name_are_refused(tmp_path):
    data = cellpose_pairs(tmp_path / "a", n=3)
    tifffile.imwrite(data / "masks" / "img_000_mask.tif", np.zeros((48, 48), np.uint16))  # an empty second mask
    with pytest.raises(DevolensError, match="2 masks match images/img_000.tif"):
        index_dataset(data)
    data = cellpose_pairs(tmp_path / "b", n=3)
    tifffile.imwrite(data / "images" / "img_000.png", np.zeros((48, 48), np.uint8))  # which one is annotated?
    with pytest.raises(DevolensError, match="share a name"):
        index_dataset(data)


def test_sub_folders_cellpose_layouts_and_system_files(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "nested"
    for emb in ("embryoA", "embryoB"):
        for t in range(2):
            img, lab = disc_frame(rng, 32)
            for kind, arr in (("images", img), ("masks", lab)):
                (root / kind / emb).mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(root / kind / emb / f"t{t:03d}.tif", arr)
    (root / "images" / "._t000.tif").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / "masks" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "images" / "__MACOSX").mkdir()
    (root / "images" / "__MACOSX" / "t000.tif").write_bytes(b"junk")
    df = index_dataset(root)
    assert len(df) == 4 and sorted(set(df["group"])) == ["embryoA", "embryoB"] and not df.attrs["unmatched"]
    assert all(Path(i).parent.name == Path(m).parent.name for i, m in zip(df["image"], df["labels"]))
    (root / "images").rename(root / "Images")  # as Windows and macOS users name them
    (root / "masks").rename(root / "Masks")
    assert len(index_dataset(root)) == 4

    flat = cellpose_pairs(tmp_path / "flat", n=3, flat=True)  # x.tif beside x_masks.tif
    df = index_dataset(flat)
    assert len(df) == 3 and all(Path(m).stem == Path(i).stem + "_masks" for i, m in zip(df["image"], df["labels"]))
    for f in list(flat.iterdir()):  # cellpose's datasets: 000_img.tif + 000_masks.tif
        f.rename(flat / f.name.replace("img_", "").replace(".tif", "_img.tif").replace("_masks_img", "_masks"))
    assert len(find_pairs(flat, flat).pairs) == 3


def test_no_pairs_says_what_the_folders_hold(tmp_path):
    data = cellpose_pairs(tmp_path / "data", n=2)
    for m in (data / "masks").iterdir():
        m.unlink()
    np.save(data / "masks" / "img_000_seg.npy", {"masks": np.zeros((4, 4))}, allow_pickle=True)
    with pytest.raises(DevolensError, match=r"images/ holds 2 image files.*masks/ holds no image file.*_seg\.npy "
                                            r"files are not read"):
        index_dataset(data)
    with pytest.raises(DevolensError, match=r"--data is the folder that holds them \(here "):
        index_dataset(data / "images")
    shutil.make_archive(str(tmp_path / "data"), "zip", data)
    with pytest.raises(DevolensError, match="a zip file: unpack it"):
        index_dataset(tmp_path / "data.zip")


def test_images_of_several_sizes_train_and_validate(tmp_path, capsys):
    data = cellpose_pairs(tmp_path / "data", n=6, sizes=(32, 64, 48))
    rec = quick(data={"val_fraction": 0.34}, train={"epochs": 1, "batch_size": 4, "threads": 1,
                                                    "overlay_samples": 2})
    res = train(rec, data, tmp_path / "run")
    assert len(res.history) == 1 and (tmp_path / "run" / "best.safetensors").exists()
    code, out, err = cli(["evaluate", tmp_path / "run", "--data", data, "--batch-size", 3], capsys)
    assert code == 0, err


# ----------------------------------------------------------------------------- recipes and options
def test_a_data_path_in_the_recipe_and_cuda_without_a_gpu(tmp_path, capsys):
    import torch

    data = make_pairs(tmp_path / "data", groups=3, per_group=2, size=32)
    rec = quick()
    rec["data"]["path"] = str(data)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(rec))
    code, out, err = cli(["train", recipe, "--data", data, "--out", tmp_path / "run"], capsys)
    assert code == 2 and "unknown key 'data.path'" in err and "--data DIR" in err
    if torch.cuda.is_available():
        return
    recipe.write_text(yaml.safe_dump(quick()))
    code, out, err = cli(["train", recipe, "--data", data, "--out", tmp_path / "run", "--device", "cuda"], capsys)
    assert code == 2 and "--device 'cuda'" in err and not (tmp_path / "run").exists()
