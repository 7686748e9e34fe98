"""Session 48's small leftovers: segment_livedead_file / predict_file write the TIFFs the command writes (deflate,
probs.tif too, tags kept); no empty progress row after a giant image's writing phase; the seg.npy export text
shared; ``segment livedead --diameter`` told it is another kind's option."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from devolens.cli import main
from devolens.io.stacks import pixel_size
from devolens.predict import livedead

from _livedead_helpers import channel_predictor, weights  # noqa: F401  (weights: a fixture)


def _well(h=150, w=180, seed=0):
    """A calibrated (2, h, w) uint16 well of live and dead discs (ImageJ, 0.65 µm a pixel)."""
    rng = np.random.default_rng(seed)
    img = np.full((2, h, w), 100, np.uint16)
    yy, xx = np.mgrid[:h, :w]
    for i in range(12):
        cy, cx = rng.integers(8, h - 8), rng.integers(8, w - 8)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 20
        img[0][disc] = 3000
        if i % 3 == 0:
            img[1][disc] = 3000
    return img


def _calibrated(path, img):
    tifffile.imwrite(path, img, imagej=True, resolution=(1 / 0.65, 1 / 0.65), metadata={"axes": "CYX", "unit": "um"})
    return path


def _check_outputs(out, raw):
    """labels.tif, probs.tif, instances.tif in ``out`` deflate-compressed, smaller than ``raw`` (their uncompressed
    sizes), their data ``raw``'s own (when given as arrays) and their tags kept."""
    for name in ("labels.tif", "probs.tif", "instances.tif"):
        with tifffile.TiffFile(out / name) as tf:
            assert all(p.compression == 8 for p in tf.pages), name  # deflate (zlib), as segment nuclei's labels
            data = tf.asarray()
            assert tf.is_imagej, name
            if name == "probs.tif":
                assert len(tf.pages) == 3 and tf.series[0].axes == "CYX"
                assert tf.imagej_metadata["Labels"] == ["background", "live", "dead"]
        assert (out / name).stat().st_size < data.nbytes, name
        assert pixel_size(out / name) == (0.65, 0.65, "µm"), name
        if raw is not None:
            assert np.array_equal(data, raw[name]), name


def test_predict_file_compresses_labels_probs_and_instances(tmp_path):
    path = _calibrated(tmp_path / "w.tif", _well())
    pred = channel_predictor()
    raw = tmp_path / "raw"  # the same well, left uncompressed: what the compressed files must read back as
    pred.predict_file(path, raw, write_probabilities=True, write_instances=True, compress=False)
    for name in ("labels.tif", "probs.tif", "instances.tif"):
        with tifffile.TiffFile(raw / name) as tf:
            assert all(p.compression == 1 for p in tf.pages)
    arrays = {name: tifffile.imread(raw / name) for name in ("labels.tif", "probs.tif", "instances.tif")}
    counts = livedead.segment_livedead_file(path, tmp_path / "out", predictor=pred, write_probabilities=True,
                                            write_instances=True)
    assert counts["live"] + counts["dead"] > 5
    _check_outputs(tmp_path / "out", arrays)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["counts.csv", "instances.tif", "labels.tif",
                                                                    "objects.csv", "probs.tif"]


def test_compress_outputs_keeps_an_ome_bigtiffs_description(tmp_path, monkeypatch):
    """probs.tif past PROBS_IMAGEJ_BYTES (an OME BigTIFF, its channel names and µm in its UTF-8 XML) compresses with
    its description byte for byte."""
    monkeypatch.setattr(livedead, "PROBS_IMAGEJ_BYTES", 10)
    data = np.zeros((3, 60, 50), np.uint8)
    data[:, 10:20] = 200
    with livedead._ProbsWriter(tmp_path / "p.tif", (60, 50), pixel=(0.5, 0.5, "µm")) as w:
        w.write(0, data)
    with tifffile.TiffFile(tmp_path / "p.tif") as tf:
        said = tf.pages[0].description
    livedead.compress_outputs(tmp_path / "p.tif", None, tmp_path / "absent.tif")
    with tifffile.TiffFile(tmp_path / "p.tif") as tf:
        assert tf.is_ome and tf.is_bigtiff and tf.pages[0].compression == 8 and tf.series[0].axes == "CYX"
        assert tf.pages[0].description == said and np.array_equal(tf.asarray(), data)
    assert (tmp_path / "p.tif").stat().st_size < data.nbytes


@pytest.mark.slow
def test_segment_livedead_writes_the_librarys_compressed_files(weights, tmp_path):  # noqa: F811
    """The command (overlay drawn from labels.tif in place, then compressed) and the library write the same files."""
    path = _calibrated(tmp_path / "w.tif", _well(72, 88))
    out = tmp_path / "cmd"
    assert main(["segment", "livedead", str(path), "--out", str(out), "--model", str(weights), "--window", "64",
                 "--overlap", "16", "--no-fast", "--probabilities", "--instances"]) == 0
    assert (out / "overlays" / "w_overlay.png").is_file()
    _check_outputs(out, None)
    lib = tmp_path / "lib"
    livedead.segment_livedead_file(path, lib, model=str(weights), window=64, overlap=16, fast=False,
                                   write_probabilities=True, write_instances=True, well="w")
    for name in ("labels.tif", "probs.tif", "instances.tif"):
        assert (out / name).read_bytes() == (lib / name).read_bytes(), name


# ------------------------------------------------------------------------------ 2. no empty row after a phase
def _bar(monkeypatch):
    """:mod:`devolens.cli._common`, its progress bars drawn as on a terminal (not shown: DEVOLENS_PROGRESS off)."""
    from devolens.cli import _common

    monkeypatch.setattr(_common.console, "_force_terminal", True)
    monkeypatch.setenv("DEVOLENS_PROGRESS", "off")  # the same bar, not drawn
    return _common


def _rows(prog) -> list[tuple[str, float, float | None]]:
    return [(t.description, t.completed, t.total) for t in prog.tasks]


def _shown(prog) -> list[str]:
    """The rows the bar ``prog`` shows (each row's text before its bar), rendered on a recording terminal console."""
    from rich.console import Console

    with open("/dev/null", "w") as sink:
        rec = Console(record=True, force_terminal=True, width=100, file=sink)
        rec.print(prog.get_renderable())
    return [line.split("━")[0].strip() for line in rec.export_text().splitlines() if line.strip()]


def test_no_empty_row_after_the_last_images_writing_phase(monkeypatch):
    """A giant image last: its "writing labels" phase ends the run; no empty "segment nuclei" row after it."""
    _common = _bar(monkeypatch)
    with _common.progress_bar("segment nuclei") as cb:
        cb(1, 2)
        cb(2, 2)
        with _common.progress_phase(cb, "writing labels") as phase:
            phase(0, 2)
            phase(2, 2)
        rows, shown = _rows(cb.prog), _shown(cb.prog)
    assert rows == [("segment nuclei", 2, 2), ("writing labels", 2, 2)]
    assert shown == ["segment nuclei", "writing labels"], shown


def test_the_commands_row_comes_back_when_it_counts_again(monkeypatch):
    """After a phase the command's row is added by its next count; two phases in a row share none between them."""
    _common = _bar(monkeypatch)
    with _common.progress_bar("segment nuclei") as cb:
        cb(1, 3)
        for k in (1, 2):
            with _common.progress_phase(cb, f"writing labels {k}") as phase:
                phase(1, 1)
        cb(3, 3)
        rows, shown = _rows(cb.prog), _shown(cb.prog)
    assert rows == [("segment nuclei", 1, 3), ("writing labels 1", 1, 1), ("writing labels 2", 1, 1),
                    ("segment nuclei", 3, 3)]
    assert shown == [name for name, _, _ in rows]
    with _common.progress_bar("segment nuclei") as cb:  # a phase before any count: the row renamed, then back
        with _common.progress_phase(cb, "curating") as phase:
            pass
        cb(1, 1)
        assert _rows(cb.prog) == [("segment nuclei", 1, 1)]


# ------------------------------------------------------------------------------ 3. one cellpose export text
def test_no_pairs_tells_the_shared_seg_npy_export(tmp_path):
    """The folder whose masks are only cellpose _seg.npy files is told the export every other message tells."""
    from devolens.data.datasets import SEG_NPY_EXPORT, index_dataset
    from devolens.errors import DevolensError

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i in range(2):
        tifffile.imwrite(data / "images" / f"img_{i:03d}.tif", np.zeros((8, 8), np.uint8))
    np.save(data / "masks" / "img_000_seg.npy", np.zeros(3))  # (a stand-in: never loaded)
    with pytest.raises(DevolensError) as info:
        index_dataset(data)
    said = str(info.value)
    assert "img_000_seg.npy files are not read" in said and SEG_NPY_EXPORT in said, said
    assert "File > Save masks" not in said and "\n" not in said


# ------------------------------------------------------------------------------ 4. another kind's option
def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("args, option", [
    (["--diameter", "10"], "--diameter"), (["--threshold", "0.5"], "--threshold"), (["--min-size", "9"], "--min-size"),
    (["--min_size", "9"], "--min-size"),
])
def test_another_segment_kinds_option_is_named_so(tmp_path, capsys, args, option):
    """``segment livedead --diameter`` was told "Possible options: --dataset": now which kinds have it."""
    assert main(["segment", "livedead", str(tmp_path / "well.tif"), "--out", str(tmp_path / "x"), *args]) == 2
    err = _err(capsys)
    guess = "; did you mean --min-area?" if option == "--min-size" else ""  # (its own: test_s48_leftovers2)
    assert (f"error: segment livedead has no {option}: it is an option of segment nuclei/membrane{guess} "
            "(see devolens segment livedead --help)") in err, err
    assert "Possible options" not in err and "Traceback" not in err


def test_sibling_options_are_read_from_the_commands(tmp_path, capsys):
    line = [str(tmp_path / "a.png"), "--out", str(tmp_path / "x")]
    assert main(["segment", "nuclei", *line, "--min-area", "3"]) == 2  # livedead's: the other way round
    assert "segment nuclei has no --min-area: it is an option of segment livedead" in _err(capsys)
    assert main(["segment", "livedead", *line, "--bogus"]) == 2  # no kind has it: click's own words stand
    assert "No such option: --bogus" in _err(capsys)
    assert main(["segment", "nuclei", *line, "--diameter", "0"]) == 2  # a habit's advice comes first
    assert "cellpose's 0" in _err(capsys)
    assert main(["train", "--diameter", "3"]) == 2  # devolens's own commands are other tools, not kinds of one
    assert "it is an option of" not in _err(capsys)


@pytest.mark.slow
def test_a_plates_probs_are_compressed_too(weights, tmp_path):  # noqa: F811
    plate = tmp_path / "plate"
    plate.mkdir()
    _calibrated(plate / "A1.tif", _well(72, 88))
    out = tmp_path / "res"
    assert main(["segment", "livedead", str(plate), "--out", str(out), "--model", str(weights), "--window", "64",
                 "--overlap", "16", "--no-fast", "--probabilities", "--instances", "--no-overlay"]) == 0
    for name in ("labels/A1_labels.tif", "probs/A1_probs.tif", "instances/A1_instances.tif"):
        with tifffile.TiffFile(out / name) as tf:
            assert all(p.compression == 8 for p in tf.pages), name
            assert (out / name).stat().st_size < tf.asarray().nbytes
            if "probs" in name:
                assert tf.imagej_metadata["Labels"] == ["background", "live", "dead"]
        assert pixel_size(out / name) == (0.65, 0.65, "µm"), name
