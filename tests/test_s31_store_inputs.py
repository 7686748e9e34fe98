"""Untrusted inputs to training: recipes whose YAML aliases expand to millions of values (refused before they are
walked, and every value a recipe error shows is cut short), tile stores made by someone else (their datasets'
dtypes and shapes and their attributes checked at open, one line each), labels beyond the recipe's classes (refused
as the chunk is read, not inside the loss), and HDF5 wells stored as one huge compressed chunk (a chunk cache that
holds a band's chunks, or a warning)."""

from __future__ import annotations

import glob
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from _train_data import tiny_recipe
from devolens.cli import main
from devolens.data.h5stream import H5TileStream
from devolens.data.tiling import open_store, store_stats, tile_to_h5
from devolens.errors import DevolensError
from devolens.train import recipe as recipe_module
from devolens.train.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- recipes
def _bomb(levels: int, key: str = "name") -> str:
    """Nested anchors and aliases: nine-fold a level (levels 5: 59,049 strings from a few hundred bytes)."""
    names = "abcdefghi"
    parts = ['&a ["x","x","x","x","x","x","x","x","x"]']
    parts += [f"&{names[i]} [{','.join(['*' + names[i - 1]] * 9)}]" for i in range(1, levels)]
    return f"{key}: [{', '.join(parts)}]\ntask: segmentation\n"


def test_a_recipe_of_nested_aliases_is_refused_in_one_line(tmp_path):
    """A 200-byte recipe whose aliases expand to 59,049 strings printed all of them in its error (9^6: 3.1 MB); it
    is refused before its values are built, in one short line, and the shipped recipes stay far below the cap."""
    p = tmp_path / "laughs.yaml"
    p.write_text(_bomb(5))
    with pytest.raises(DevolensError, match="expands to more than") as exc:
        load_recipe(p)
    assert str(exc.value).startswith(str(p)) and len(str(exc.value)) < 250 and "\n" not in str(exc.value)
    p.write_text(_bomb(5, "tune"))  # anywhere in the recipe, not only where a message would print it
    with pytest.raises(DevolensError, match="expands to more than"):
        load_recipe(p)
    p.write_text("name: &a [x, *a]\ntask: segmentation\n")  # an alias inside its own anchor
    with pytest.raises(DevolensError, match="refers to the value that holds it"):
        load_recipe(p)
    p.write_text("task: segmentation\nname: " + "[" * 5000 + "]" * 5000 + "\n")  # nested, not aliased
    with pytest.raises(DevolensError, match="nested too deeply"):
        load_recipe(p)
    p.write_text("task: segmentation\noptimizer: &o {name: adam, lr: 0.01}\n")
    assert load_recipe(p)["optimizer"]["lr"] == 0.01
    shipped = sorted(glob.glob(str(ROOT / "recipes" / "*.yaml")))
    assert shipped
    for r in shipped:
        if "identity" not in r:  # not a `devolens train` recipe (refused by task)
            load_recipe(r)
    assert recipe_module.MAX_RECIPE_NODES >= 1000


def test_values_shown_in_recipe_errors_are_cut_short(tmp_path):
    """A long list or string in a recipe key came back whole in the error (one line of megabytes)."""
    p = tmp_path / "r.yaml"
    p.write_text("task: segmentation\nname: [" + ", ".join(["item"] * 5000) + "]\n")
    with pytest.raises(DevolensError, match=r"name: expected a string, got \['item', ") as exc:
        load_recipe(p)
    assert len(str(exc.value)) < len(str(p)) + 200
    p.write_text("task: segmentation\nseed: " + "nine" * 10000 + "\n")
    with pytest.raises(DevolensError, match=r"seed: expected an integer, got 'nine") as exc:
        load_recipe(p)
    assert len(str(exc.value)) < len(str(p)) + 200 and "..." in str(exc.value)
    p.write_text("task: segmentation\ndata: {" + "q" * 1000 + ": 1}\n")  # an unknown key, long (YAML: <= 1024)
    with pytest.raises(DevolensError, match="unknown key 'data.qqq") as exc:
        load_recipe(p)
    assert len(str(exc.value)) < len(str(p)) + 400


# ----------------------------------------------------------------------------------------------- tile stores
@pytest.fixture(scope="module")
def good_store(tmp_path_factory):
    """A store as `devolens tile` writes it: 2-channel uint16 tiles of two wells, labels 0..2."""
    d = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(2):
        img = rng.integers(100, 4000, (2, 64, 64), dtype=np.uint16)
        lab = np.zeros((64, 64), np.uint8)
        lab[8:20, 8:20], lab[40:50, 30:44] = 1, 2
        tifffile.imwrite(d / f"w{i}.tif", img)
        tifffile.imwrite(d / f"w{i}_labels.tif", lab)
        images.append(d / f"w{i}.tif")
        labels.append(d / f"w{i}_labels.tif")
    store = d / "good.h5"
    tile_to_h5(images, store, labels, tile=32, stride=32, keep="all", chunk=4)
    return store


def _variant(good: Path, tmp_path: Path, change) -> Path:
    out = tmp_path / "v.h5"
    shutil.copyfile(good, out)
    with h5py.File(out, "r+") as f:
        change(f)
    return out


def _replace(name, data):
    def change(f):
        del f[name]
        f[name] = data
    return change


@pytest.mark.parametrize("what, change, message", [
    ("no sources", lambda f: f.attrs.__delitem__("sources"), "'sources' attribute is missing"),
    ("sources not JSON", lambda f: f.attrs.__setitem__("sources", "not json"),
     "'sources' attribute is not a JSON list of names"),
    ("1-D class_counts", lambda f: _replace("class_counts", np.arange(f["images"].shape[0], dtype=np.int64))(f),
     r"'class_counts' is int64 of shape \(\d+,\)"),
    ("float class_counts", lambda f: _replace("class_counts", f["class_counts"][:].astype(np.float64))(f),
     "'class_counts' is float64"),
    ("string class_counts", lambda f: _replace("class_counts", f["class_counts"][:].astype("S1"))(f),
     "'class_counts' is |S1"),
    ("negative class_counts", lambda f: f["class_counts"].__setitem__((1, 1), -3),
     r"class_counts of tile 1 are negative \(\[.*-3"),
    ("float images", lambda f: _replace("images", f["images"][:].astype(np.float32))(f),
     "'images' is float32 .* uint16 camera counts.*devolens tile make"),
    ("labels of another size", lambda f: _replace("labels", f["labels"][:, :16, :16])(f),
     "its labels are 16x16 tiles but its images 32x32"),
    ("images a group", lambda f: (f.__delitem__("images"), f.create_group("images")),
     "'images' is a group, not a dataset"),
    ("class_counts width", lambda f: f.attrs.__setitem__("n_classes", 5), "counts 3 classes but its n_classes"),
])
def test_a_damaged_store_is_refused_in_one_line(good_store, tmp_path, capsys, what, change, message):
    """`devolens tile stats` of a store with one thing changed: KeyError, IndexError, casting and JSON tracebacks,
    or negative frequencies printed as statistics; now one line naming the store and what is wrong."""
    store_stats(good_store)  # the store itself is fine
    bad = _variant(good_store, tmp_path, change)
    with pytest.raises(DevolensError, match=message) as exc:
        store_stats(bad)
    assert str(exc.value).startswith(str(bad)) and "\n" not in str(exc.value)
    assert main(["tile", "stats", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "v.h5: " in err


def test_a_store_of_nan_pixels_is_refused_before_training(good_store, tmp_path):
    """Float images half NaN trained on: a cast warning, then "training diverged; lower optimizer.lr" (the rate was
    not the cause). The store's image dtype is checked first: no run folder is made."""
    def nan_images(f):
        x = f["images"][:].astype(np.float32)
        x[::2] = np.nan
        _replace("images", x)(f)

    bad = _variant(good_store, tmp_path, nan_images)
    rec = tiny_recipe(data={"target": "classes", "classes": 3, "channels": 2, "val_fraction": 0.34,
                            "normalize": "log"}, loss={"name": "ce_dice"}, augment={"preset": "livedead"},
                      train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0})
    from devolens.train.trainer import train

    with pytest.raises(DevolensError, match="'images' is float32"):
        train(rec, bad, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(DevolensError, match="'images' is float32"):
        H5TileStream(bad)


def test_labels_beyond_the_recipes_classes_are_refused_not_a_loss_traceback(good_store, tmp_path):
    """Labels holding 7 in a 3-class store (its class_counts as before) failed inside the loss, mid-epoch:
    "IndexError: Target 7 is out of bounds". Each chunk's labels are checked as it is read."""
    def seven(f):
        lab = f["labels"][:]
        lab[5, 3, 3] = 7
        f["labels"][...] = lab

    bad = _variant(good_store, tmp_path, seven)
    with pytest.raises(DevolensError, match=r"tile 5 holds class 7 in its labels, but data.classes is 3"):
        list(H5TileStream(bad, shuffle=False, classes=3))
    assert len(list(H5TileStream(bad, shuffle=False, classes=8))) == 8  # within the classes: read
    rec = tiny_recipe(data={"target": "classes", "classes": 3, "channels": 2, "val_fraction": 0.34,
                            "normalize": "log"}, loss={"name": "ce_dice"}, augment={"preset": "livedead"},
                      train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0})
    from devolens.train.trainer import train

    with pytest.raises(DevolensError, match="holds class 7 in its labels"):
        train(rec, bad, tmp_path / "run")


def test_appending_to_a_store_without_sources_is_refused(good_store, tmp_path):
    """An append reads the store's sources and settings: a KeyError inside the copy; now refused first."""
    bad = _variant(good_store, tmp_path, lambda f: f.attrs.__delitem__("sources"))
    before = bad.read_bytes()
    ip = good_store.parent / "w0.tif"
    with pytest.raises(DevolensError, match="'sources' attribute is missing"):
        tile_to_h5([ip], bad, [good_store.parent / "w0_labels.tif"], tile=32, stride=32, keep="all", append=True)
    assert bad.read_bytes() == before
    with open_store(good_store, need=("sources", "tile")) as f:  # the store as written has them
        assert f["images"].dtype == np.uint16


# ----------------------------------------------------------------------------------------------- HDF5 wells
def _one_chunk_well(path: Path, shape=(2, 1500, 1500)) -> np.ndarray:
    """A well saved as one gzip chunk of 9 MB: more than HDF5's own chunk cache (1 MB; 8 MB from HDF5 2.0)."""
    img = np.random.default_rng(1).integers(0, 5000, shape, dtype=np.uint16)
    with h5py.File(path, "w") as f:
        f.create_dataset("image", data=img, chunks=shape, compression="gzip", compression_opts=1)
    return img


def test_an_hdf5_well_of_one_big_chunk_is_read_through_a_cache_that_holds_it(tmp_path):
    """A 2 x 6000 x 6000 well saved as one gzip chunk took 25 s to read in 256-row bands (0.7 s in 256 x 256
    chunks): HDF5's 1 MB chunk cache cannot hold the chunk, so each band decompressed all of it again. RowReader
    now opens it with a cache that holds the chunks of a band of rows."""
    from devolens.predict.tiled import RowReader

    path = tmp_path / "well.h5"
    img = _one_chunk_well(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with RowReader(path) as r:
            cache_bytes = r._h5.id.get_access_plist().get_cache()[2]
            got = np.concatenate([r.rows(y, y + 256) for y in range(0, 1500, 256)], axis=1)
    assert cache_bytes >= img.nbytes
    assert np.array_equal(got, img)


def test_an_hdf5_chunk_beyond_the_cache_budget_is_said_once(tmp_path, monkeypatch):
    """A chunk larger than the memory RowReader gives the cache: a warning says why reading is slow and how to
    save the well, rather than a silent 25 s (or hours on a larger well)."""
    from devolens.predict import tiled
    from devolens.predict.tiled import RowReader

    path = tmp_path / "well.h5"
    img = _one_chunk_well(path)
    monkeypatch.setattr(tiled, "H5_CACHE_BYTES", 1 << 20)
    with pytest.warns(UserWarning, match=r"compressed chunks of 9 MB \(2 x 1500 x 1500\).*chunks=\(C, 256, 256\)"):
        with RowReader(path) as r:
            assert np.array_equal(r.rows(0, 300), img[:, :300])
