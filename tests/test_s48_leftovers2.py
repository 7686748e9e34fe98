"""Mends of session 48 (leftovers, 2): compress_tiff's temporary file is atomic_path's (a killed run's is removed by
the next); an option of a sibling command keeps click's guess among the command's own (segment livedead --min-size:
--min-area); a model exported from a run that did not beat its starting weights warns on load, as the run does."""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pytest
import tifffile

from _train_data import not_beaten_run as _not_beaten
from _train_data import train_tiny_run
from devolens.cli import main


# ---------------------------------------------------------------------------- 1. compress_tiff's temporary
def _uncompressed(path, shape=(40, 30)):
    data = (np.arange(shape[0] * shape[1]) % 7).astype(np.uint8).reshape(shape)
    tifffile.imwrite(path, data, photometric="minisblack")
    return data


def test_compress_tiff_writes_an_atomic_path_temporary(tmp_path, monkeypatch):
    from devolens.io import atomic
    from devolens.predict import tiled

    path = tmp_path / "labels.tif"
    data = _uncompressed(path)
    written = []
    imwrite = tifffile.imwrite

    def spy(file, *args, **kwargs):
        written.append(os.path.basename(file))
        return imwrite(file, *args, **kwargs)

    monkeypatch.setattr(tiled.tifffile, "imwrite", spy)
    tiled.compress_tiff(path)
    (name,) = written
    # named as atomic_path names its temporaries: public_path sees through it, and the stale-file sweep's pattern for
    # this output (a dead writer's copy removed by the next run) takes it
    assert atomic.public_path(tmp_path / name) == path and atomic._TEMP_NAME.fullmatch(name)
    assert name.startswith(".labels.tmp-") and name.endswith(".tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif"]  # (no temporary, no lock file left)
    with tifffile.TiffFile(path) as tf:
        assert tf.pages[0].compression == 8 and np.array_equal(tf.pages[0].asarray(), data)


def test_compress_tiff_of_a_stale_killed_run_is_removed(tmp_path):
    from devolens.io import atomic
    from devolens.predict import tiled

    path = tmp_path / "labels.tif"
    _uncompressed(path)
    dead = os.getpid() + 1
    while atomic._alive(dead):  # (a pid no process has)
        dead += 1
    # what a compress_tiff killed outright (SIGKILL, out of memory) leaves, named as it now names its temporary
    left = tmp_path / f".labels.tmp-{dead}-abcd1234.tif"
    left.write_bytes(b"half")
    atomic._temp_names.pop(os.path.abspath(tmp_path), None)
    tiled.compress_tiff(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif"]


def test_compress_tiff_of_a_temporary_of_this_process(tmp_path):
    """A caller's own atomic_path temporary (which atomic_path hands back to be written in place) is compressed
    through a temporary of its own, not written over while it is read."""
    from devolens.io.atomic import atomic_path
    from devolens.predict import tiled

    with atomic_path(tmp_path / "labels.tif") as tmp:
        data = _uncompressed(tmp)
        tiled.compress_tiff(tmp)
        with tifffile.TiffFile(tmp) as tf:
            assert tf.pages[0].compression == 8 and np.array_equal(tf.pages[0].asarray(), data)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([tmp.name, ".labels.tif.lock"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif"]


# ---------------------------------------------------------------------------- 2. a sibling's option, click's guess
def _error(capsys, args):
    capsys.readouterr()
    assert main(args) == 2
    return capsys.readouterr().err.strip()


def test_sibling_option_keeps_clicks_guess_among_the_commands_own(tmp_path, capsys):
    err = _error(capsys, ["segment", "livedead", str(tmp_path / "well.tif"), "--out", str(tmp_path / "x"),
                          "--min-size", "10"])
    assert err == ("error: segment livedead has no --min-size: it is an option of segment nuclei/membrane; did you "
                   "mean --min-area? (see devolens segment livedead --help)")
    # and the other way round
    err = _error(capsys, ["segment", "nuclei", str(tmp_path / "a.png"), "--out", str(tmp_path / "x"),
                          "--min-area", "10"])
    assert "segment nuclei has no --min-area: it is an option of segment livedead; did you mean --min-size?" in err
    # a guess by spelling alone (--dataset for --diameter) is still left out
    err = _error(capsys, ["segment", "livedead", str(tmp_path / "well.tif"), "--out", str(tmp_path / "x"),
                          "--diameter", "10"])
    assert err == ("error: segment livedead has no --diameter: it is an option of segment nuclei/membrane "
                   "(see devolens segment livedead --help)")


# ------------------------------------------------------------------ 3. an export of a run worse than its start
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("s48m17"))



def _start_warnings(name):
    from devolens.errors import StartWarning
    from devolens.models import load

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(name, device="cpu")
    return [str(w.message) for w in caught if issubclass(w.category, StartWarning)]


def test_an_export_of_a_run_that_did_not_beat_its_start_warns_on_load(tiny, tmp_path, capsys):
    from devolens.models import card

    run, data = tiny
    ft = _not_beaten(run, tmp_path)
    capsys.readouterr()
    assert main(["models", "export", str(ft), "--to", str(tmp_path / "shared")]) == 0
    exported = tmp_path / "given" / "shared"  # the folder as a colleague receives it: elsewhere, without the run
    shutil.copytree(tmp_path / "shared", exported)
    shutil.rmtree(ft)
    note = card(exported)["trained"]["note"]
    assert note.startswith("no epoch beat the starting weights")
    assert _start_warnings(exported) == [note]
    # and a command loading it says so once, as for the run itself
    capsys.readouterr()
    assert main(["segment", "nuclei", str(data / "images"), "--model", str(exported), "--out",
                 str(tmp_path / "seg"), "--device", "cpu", "--diameter", "none"]) == 0
    assert capsys.readouterr().err.replace("\n", " ").count("note: no epoch beat the starting weights") == 1


def test_an_export_of_a_run_that_beat_its_start_and_shipped_models_do_not_warn(tiny, tmp_path, capsys):
    run, _ = tiny
    assert main(["models", "export", str(run), "--to", str(tmp_path / "plain")]) == 0
    assert _start_warnings(tmp_path / "plain") == []
    assert _start_warnings("nuclei") == []
