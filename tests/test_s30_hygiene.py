"""Thirtieth session's hygiene: Pillow's decompression-bomb limit raised only while devolens opens a file (an
application keeps its guard), ``tile make`` and a training set's image sizes decode a PNG once (its EXIF read from
its chunks, not by decoding it), and a multi-position OME file (one file per stage position, each carrying the whole
OME-XML) tiled, band-read and trained on as its own position everywhere, not as the first position's."""

from __future__ import annotations

import io
import struct
import threading
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from devolens.cli import main
from devolens.io import images
from devolens.io.atomic import Exhausted

APPLICATION_LIMIT = 1000  # an application's own Pillow limit: a 100 x 100 image is past twice it (refused)


# ---------------------------------------------------------------------------- 1. Pillow's limit, devolens' opens only
@pytest.fixture
def application_limit(monkeypatch):
    """The host application (a napari plugin, a notebook) set its own limit before devolens read anything."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", APPLICATION_LIMIT)


def _png(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path)
    return path


def test_reading_an_image_leaves_pillows_limit_as_it_was(tmp_path, application_limit):
    """Reading an image set Image.MAX_IMAGE_PIXELS to 2^30 for the whole process: the application's own opens of
    untrusted images lost their guard. Every devolens reader opens past the application's limit and leaves it."""
    from devolens.data.datasets import image_shape
    from devolens.data.tiling import _grid_size
    from devolens.io.frames import open_animated
    from devolens.io.stacks import stack_info

    grey = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    png = _png(tmp_path / "a.png", grey)
    Image.fromarray(grey).save(tmp_path / "png.tif", format="PNG")  # a PNG named .tif (read by Pillow)
    gif = tmp_path / "m.gif"
    frames = [Image.fromarray(np.full((100, 100), v, np.uint8)) for v in (0, 200)]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    readers = [  # (what reads, what it gives)
        (lambda: images.read_image(png).shape, (100, 100)),
        (lambda: _grid_size(png, 50, 50, True, 2), 4),  # tile make's progress total
        (lambda: image_shape(png), (100, 100)),  # a training set's sizes
        (lambda: stack_info(tmp_path / "png.tif").shape, (100, 100)),
        (lambda: len(list(open_animated(gif)[0])), 2),  # a GIF's later frames are weighed as they are decoded
    ]
    for read, want in readers:
        assert read() == want
        assert Image.MAX_IMAGE_PIXELS == APPLICATION_LIMIT
    with pytest.raises(Image.DecompressionBombError):  # the application's own open: guarded as it asked
        Image.open(png)


def test_an_application_without_limit_keeps_none(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    images.read_image(_png(tmp_path / "a.png", np.zeros((20, 20), np.uint8)))
    assert Image.MAX_IMAGE_PIXELS is None


def test_an_application_without_limit_has_none_while_devolens_opens(tmp_path, monkeypatch):
    """An application that lifted Pillow's limit (None) had 2^30 set during devolens' opens: tighter than its own,
    for its other threads' opens at that moment too. None is left alone."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    seen = []
    real = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: seen.append(Image.MAX_IMAGE_PIXELS) or real(*a, **k))
    images.read_image(_png(tmp_path / "a.png", np.zeros((20, 20), np.uint8)))
    assert seen and seen == [None] * len(seen)
    with images._pillow_limit(Image):
        assert Image.MAX_IMAGE_PIXELS is None
    assert Image.MAX_IMAGE_PIXELS is None


def test_a_giant_png_still_opens_past_pillows_default(tmp_path, monkeypatch):
    """A stitched well of 20000 x 20000 pixels declared (Pillow's default refuses past 179 M pixels): opened,
    weighed against the memory available (here too little: refused by the memory check, not as a bomb)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89478485)  # Pillow's default, as in a fresh process
    monkeypatch.setattr(images, "MEMORY_CHECK_BYTES", 1024)
    monkeypatch.setattr(images, "memory_available", lambda: 5000)
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:20], data[20:24] = (20000).to_bytes(4, "big"), (20000).to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    (tmp_path / "well.png").write_bytes(bytes(data))
    with pytest.raises(Exhausted):
        images.read_image(tmp_path / "well.png")
    assert Image.MAX_IMAGE_PIXELS == 89478485


#: seconds: only ever reached when something is broken (10 s passed by for a thread waiting for a CPU on a loaded
#: machine: the slow reader left before the test looked, or was still inside when it looked again)
WAIT = 120


def test_the_limit_holds_while_any_reader_thread_opens_and_is_put_back_by_the_last():
    """Devolens' reader threads (ReadAhead) open files at once: one thread's end must not put the application's
    limit back under another's open; the last one out puts it back."""
    inside, leave = threading.Event(), threading.Event()

    def slow():
        with images._pillow_limit(Image):
            inside.set()
            leave.wait(WAIT)

    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = APPLICATION_LIMIT
        t = threading.Thread(target=slow)
        t.start()
        assert inside.wait(WAIT)
        with images._pillow_limit(Image):
            assert Image.MAX_IMAGE_PIXELS == images.PILLOW_PIXELS
        assert Image.MAX_IMAGE_PIXELS == images.PILLOW_PIXELS  # the slow thread still opens
        leave.set()
        t.join(WAIT)
        assert Image.MAX_IMAGE_PIXELS == APPLICATION_LIMIT
        # an application that sets its own value meanwhile keeps it
        with images._pillow_limit(Image):
            Image.MAX_IMAGE_PIXELS = 5000
        assert Image.MAX_IMAGE_PIXELS == 5000
    finally:
        leave.set()
        Image.MAX_IMAGE_PIXELS = saved


def test_many_reader_threads_all_open_past_the_application_limit(tmp_path, application_limit):
    """Reads in 8 threads at once (as ReadAhead's): each opens past the application's limit, which is back after."""
    png = _png(tmp_path / "a.png", np.full((100, 100), 9, np.uint8))
    with ThreadPoolExecutor(8) as pool:
        shapes = list(pool.map(lambda _: images.read_image(png).shape, range(200)))
    assert shapes == [(100, 100)] * 200
    assert Image.MAX_IMAGE_PIXELS == APPLICATION_LIMIT


# ---------------------------------------------------------------------------- 2. a PNG decoded once
@pytest.fixture
def decodes(monkeypatch):
    """The file names whose pixels Pillow decodes (ImageFile.load with data still to decode), one per decode."""
    seen: list[str] = []
    real = ImageFile.ImageFile.load

    def load(self):
        if self.tile:
            seen.append(Path(getattr(self, "filename", "") or "?").name)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return seen


def _well_png(path: Path, h: int = 64, w: int = 80) -> Path:
    rng = np.random.default_rng(1)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = rng.integers(0, 255, (h, w))  # Draq7 in red
    rgb[..., 2] = rng.integers(0, 255, (h, w))  # Hoechst in blue
    return _png(path, rgb)


def test_tile_make_decodes_a_png_well_once(tmp_path, decodes, capsys):
    """The progress total read the size and EXIF orientation of the well: Pillow's getexif() of a PNG decodes the
    whole image, then the well was decoded again to be tiled."""
    well = _well_png(tmp_path / "well.png")
    labels = np.zeros((64, 80), np.uint8)
    labels[10:40, 10:40] = 1
    _png(tmp_path / "well_labels.png", labels)
    code = main(["tile", "make", str(well), "--labels", str(tmp_path / "well_labels.png"),
                 "--out", str(tmp_path / "t.h5"), "--tile", "32"])
    assert code in (0, None), capsys.readouterr().err
    assert sorted(decodes) == ["well.png", "well_labels.png"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _with_chunk_after_pixels(src: Path, kind: bytes, data: bytes, dest: Path) -> Path:
    """``src`` with a ``kind`` chunk put just before IEND (after the pixel data, where Pillow reads it on load)."""
    raw = src.read_bytes()
    end = raw.rindex(b"IEND") - 4
    dest.write_bytes(raw[:end] + _chunk(kind, data) + raw[end:])
    return dest


from test_io_png16 import _exif_orientation as _orientation_exif  # noqa: E402  (an orientation's eXIf data)


@pytest.mark.parametrize("kind", ["eXIf", "XMP"])
def test_header_readers_turn_a_png_by_its_exif_after_the_pixels_without_decoding(tmp_path, decodes, kind):
    """An orientation after the pixel data (an eXIf chunk, or XMP's tiff:Orientation) is read from the chunks:
    the same turn as read_image's, and no decode."""
    from devolens.data.datasets import image_shape
    from devolens.data.tiling import _grid_size

    plain = _png(tmp_path / "plain.png", np.zeros((30, 50), np.uint8))
    if kind == "eXIf":
        turned = _with_chunk_after_pixels(plain, b"eXIf", _orientation_exif(6), tmp_path / "turned.png")
    else:
        xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="8"/></rdf:RDF>'
               b"</x:xmpmeta>")
        turned = _with_chunk_after_pixels(plain, b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp, tmp_path / "turned.png")
    assert image_shape(plain) == (30, 50) and image_shape(turned) == (50, 30)
    assert _grid_size(turned, 10, 10, True, 2) == 5 * 3
    assert decodes == []
    assert images.read_image(turned).shape == (50, 30)  # as read_image turns it


def test_an_unreadable_chunk_walk_leaves_it_to_pillow(tmp_path, monkeypatch):
    """Where the chunk walk fails, Pillow reads the orientation as before (decoding the image)."""
    def broken(path):
        raise ValueError("no")

    monkeypatch.setattr(images, "_png_metadata", broken)
    plain = _png(tmp_path / "plain.png", np.zeros((30, 50), np.uint8))
    turned = _with_chunk_after_pixels(plain, b"eXIf", _orientation_exif(6), tmp_path / "turned.png")
    with Image.open(turned) as im:
        assert images.exif_orientation(im) == 6


# ---------------------------------------------------------------------------- 3. multi-position OME: its own series
def _position_wells(folder: Path, n: int = 2, C: int = 2, Y: int = 48, X: int = 64, top: int = 1000, seed: int = 0):
    """A Micro-Manager multi-position acquisition of wells: one file per stage position, each carrying the whole
    OME-XML (every position's Image, each TiffData naming the file that holds its plane); tifffile's first series
    of every file is position 0's, read from the first file. Returns the files and each position's (C, Y, X)
    values below ``top``."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, top, (C, Y, X)).astype(np.uint16) for _ in range(n)]
    names = [f"well_MMStack_Pos{p}.ome.tif" for p in range(n)]
    uuids = [f"urn:uuid:{uuid.UUID(int=int(rng.integers(1 << 62)))}" for _ in names]
    images_xml = ""
    for p in range(n):
        tds = "".join(f'<TiffData FirstC="{c}" FirstT="0" FirstZ="0" IFD="{c}" PlaneCount="1"><UUID '
                      f'FileName="{names[p]}">{uuids[p]}</UUID></TiffData>' for c in range(C))
        images_xml += (f'<Image ID="Image:{p}"><Pixels ID="Pixels:{p}" DimensionOrder="XYCZT" Type="uint16" '
                       f'SizeX="{X}" SizeY="{Y}" SizeZ="1" SizeC="{C}" SizeT="1">'
                       + "".join(f'<Channel ID="Channel:{p}:{c}" SamplesPerPixel="1"/>' for c in range(C))
                       + tds + "</Pixels></Image>")
    ns = 'xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"'
    for p in range(n):
        xml = f'<?xml version="1.0" encoding="UTF-8"?><OME {ns} UUID="{uuids[p]}">{images_xml}</OME>'
        with tifffile.TiffWriter(folder / names[p]) as w:
            for k, plane in enumerate(arrays[p]):
                # the files' layouts differ (a one-plane series is read at its first file's offsets)
                w.write(plane, description=xml if k == 0 else None, metadata=None, contiguous=False,
                        software="acquisition" + "." * 64 * p)
    files = [folder / name for name in names]
    with tifffile.TiffFile(files[1]) as tf:  # the set is what it stands for: the first series is not its own
        assert len(tf.series) == n and not np.array_equal(tf.series[0].asarray().reshape(C, Y, X), arrays[1])
    return files, arrays


def test_tiling_reads_a_position_files_own_position(tmp_path):
    """tile make's whole reads (tiling.read_image, read_labels) took tifffile's first series: position 0's."""
    from devolens.data.tiling import read_image, read_labels

    files, arrays = _position_wells(tmp_path)
    for path, a in zip(files, arrays):
        np.testing.assert_array_equal(read_image(path), a)
    (tmp_path / "labels").mkdir()
    files, arrays = _position_wells(tmp_path / "labels", C=1, top=3, seed=3)
    for path, a in zip(files, arrays):
        np.testing.assert_array_equal(read_labels(path, n_classes=3), a[0])


@pytest.mark.parametrize("band_read", [True, False])
def test_tile_make_tiles_each_position_file_as_its_own(tmp_path, monkeypatch, band_read):
    """Read by bands, or whole (a file the band reader declines): before, the whole read took position 0's pixels
    for every file (and refused the second file as 'the same pixels' as the first)."""
    from devolens.data import tiling

    if not band_read:
        monkeypatch.setattr(tiling._Bands, "_reader", staticmethod(lambda *a: None))
    files, arrays = _position_wells(tmp_path)
    out = tmp_path / "t.h5"
    code = main(["tile", "make", *map(str, files), "--out", str(out), "--tile", "32", "--stride", "16",
                 "--keep", "all"])
    assert code in (0, None)
    with h5py.File(out) as f:
        tiles, source, coords = f["images"][:], f["source"][:], f["coords"][:]
    assert set(source.tolist()) == {0, 1}
    for tile, s, (y, x) in zip(tiles, source, coords):
        np.testing.assert_array_equal(tile, arrays[s][:, y:y + 32, x:x + 32])


@pytest.mark.parametrize("segments", [True, False])
def test_the_tiled_reader_reads_a_position_files_own_position(tmp_path, monkeypatch, segments):
    """RowReader decodes a compressed file's segments, or (a layout the segment reader does not assemble) the
    whole series: that read was tifffile's first series, position 0's."""
    from devolens.predict import tiled

    if not segments:
        monkeypatch.setattr(tiled._TiffSegments, "open", classmethod(lambda cls, *a: None))
    files, arrays = _position_wells(tmp_path)
    for path, a in zip(files, arrays):
        with tiled.RowReader(path, channels=2) as src:
            np.testing.assert_array_equal(src[:, 0:48, :], a)


def test_a_training_set_of_position_files_reads_each_position(tmp_path):
    from devolens.data.datasets import SegmentationDataset, image_shape, index_dataset

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    files, arrays = _position_wells(tmp_path / "images")
    for path in files:
        mask = np.zeros((48, 64), np.uint8)
        mask[5:20, 5:20] = 1
        _png(tmp_path / "masks" / f"{path.name[:-len('.ome.tif')]}_masks.png", mask)
    df = index_dataset(tmp_path)
    assert len(df) == 2
    ds = SegmentationDataset(list(df["image"]), list(df["labels"]), channel=1)
    for i, path in enumerate(df["image"]):
        p = files.index(Path(path))
        assert image_shape(path) == (48, 64)
        img, _ = ds._read(i)
        np.testing.assert_array_equal(img, arrays[p][1])
