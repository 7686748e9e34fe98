"""Images in and out: TIFF, PNG, JPEG, BMP and WebP to numpy; PNG and label TIFF (uint16; uint32 past 65535 labels) written atomically.

>>> img = read_image("frame.png")          # doctest: +SKIP
>>> write_label_tif(labels, "labels.tif")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import weakref
from pathlib import Path

import numpy as np

from devolens.errors import DevolensError, option
from devolens.io.atomic import Exhausted, atomic_path

__all__ = ["read_image", "write_png", "write_label_tif", "check_image_size", "check_stack_planes", "check_memory",
           "memory_available", "cgroup_memory_available", "address_space_available", "IMAGE_SUFFIXES",
           "ExifTurns", "EXIF_TURNS", "exif_turned_words"]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")  # GIF: its first frame


def check_image_size(height: int, width: int, path: str | Path | None = None) -> None:
    """Refuse an image (or a stack's planes) under 2 x 2 pixels, naming ``path``: no reader of the frames
    hands such an image on (a predictor would refuse it without saying which file it was)."""
    if height < 2 or width < 2:
        raise DevolensError(f"image too small: {height} x {width} pixels (at least 2 x 2)", path=path)


#: planes this narrow (a side of at most this many pixels: up to 8 channels)...
NARROW_PLANE = 8
#: ...in a stack of at least this many of them: a channel-last image (``Y x X x C``) saved without axes, whose rows
#: became pages (tifffile writes ``np.dstack([a, b])`` as one page per row, each ``X x 2`` pixels)
NARROW_PAGES = 16


def check_stack_planes(height: int, width: int, pages: int, path: str | Path | None = None) -> None:
    """Refuse a stack of ``pages`` planes of ``height`` x ``width`` pixels that is a channel-last image saved without
    axes (planes a few pixels wide, as many as the image has rows), naming ``path``; then planes under 2 x 2 pixels
    (:func:`check_image_size`)."""
    if min(height, width) <= NARROW_PLANE and pages >= NARROW_PAGES:
        raise DevolensError(
            f"planes of {height} x {width} pixels in {pages} pages: this looks like a channel-last image (Y x X x "
            f"{min(height, width)} channels) saved without axes, each of its rows stored as a page; save it channels "
            "first with its axes, e.g. tifffile.imwrite(path, np.moveaxis(image, -1, 0), imagej=True, "
            "metadata={'axes': 'CYX'}) (Fiji: Image > Properties), then choose the channel with "
            f"{option('channel', 'N', cli_value='')}", path=path)
    check_image_size(height, width, path)


#: decoded arrays smaller than this are not weighed against the memory available (reading it costs ~0.2 ms: a cgroup
#: tree's files; a frame this small fits wherever devolens runs at all)
MEMORY_CHECK_BYTES = 64 << 20
#: what to do with an image too large for the memory: the commands that read a well TIFF in bands
BANDS_ADVICE = "a well image saved as TIFF is read in bands by `devolens tile make` and `devolens segment livedead`"
#: set (to anything but "" or "0"): no image is weighed against the memory available (:func:`check_memory`), for
#: memory that MemAvailable does not count (ZFS's ARC, swap)
NO_CHECK_ENV = "DEVOLENS_NO_MEMORY_CHECK"


def out_of_memory(what: str, path: str | Path | None, extra: str = "") -> Exhausted:
    """The error for memory running out while ``what`` (decoding, reading a plane), exit 75: the limit that binds
    now (:func:`memory_available`, read after the failure: the tightest of the machine's free memory, a job's or
    container's memory limit and ``ulimit -v``), with what it leaves and its remedy (``raise ulimit -v`` under an
    address-space limit: freeing memory would not help there); the machine's free memory where none is known."""
    try:
        free = memory_available()
    except Exception:  # the error being reported matters more than a limit that cannot be read
        free = None
    limit = getattr(free, "limit", Available.limit)
    if free is None or limit == Available.limit:  # the machine's free memory (or none known): its remedy alone
        return Exhausted(f"out of memory while {what}: {Available.remedy}{extra}", path=path)
    # what it leaves now is not said: the failed decoding's buffers may not all be freed yet
    return Exhausted(f"out of memory while {what}: {limit} is reached; {free.remedy}{extra}", path=path)


class Available(int):
    """Bytes of memory a process can take now (:func:`memory_available`), with the limit that sets them: ``leaves``
    ends "more than the 2.0 GB ...", ``limit`` names it ("... is reached": :func:`out_of_memory`) and ``remedy``
    says how to get more (``raise ulimit -v`` under an address-space limit, a job's memory under a cgroup's)."""

    leaves = "of memory available"
    limit = "the machine's free memory"
    remedy = "free memory or run it where more is free"

    @classmethod
    def of(cls, n: int, leaves: str, remedy: str, limit: str | None = None) -> "Available":
        got = cls(n)
        got.leaves, got.remedy = leaves, remedy
        got.limit = limit or leaves.removesuffix(" leaves")
        return got


#: where the kernel shows this process's control groups and their files (tests point these elsewhere)
PROC_CGROUP = "/proc/self/cgroup"
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_MEMINFO = "/proc/meminfo"
PROC_STATM = "/proc/self/statm"
#: a cgroup v1 limit this large is none (its "unlimited" is 2^63 rounded down to a page)
_V1_UNLIMITED = 1 << 62


def memory_available() -> Available | None:
    """The memory the system can give a process now without swapping, in bytes: the smallest of Linux's
    ``MemAvailable`` (``/proc/meminfo``), what this process's control group's memory limit leaves (a Slurm job, a
    Docker or Kubernetes container: :func:`cgroup_memory_available`) and what its address-space limit leaves
    (``ulimit -v``: :func:`address_space_available`); an :class:`Available` that says which it is. None where none
    is known (other systems: no check)."""
    found = []
    free = _meminfo_available()
    if free is not None:
        found.append(Available(free))
    group = cgroup_memory_available()
    if group is not None:
        found.append(Available.of(group[0], f"this job's {_bytes(group[1])} memory limit (cgroup) leaves",
                                  "ask for more memory for the job or container (sbatch --mem, docker run --memory)"))
    space = address_space_available()
    if space is not None:
        found.append(Available.of(space[0], f"this process's {_bytes(space[1])} address-space limit (ulimit -v) "
                                  "leaves", "raise ulimit -v"))
    return min(found) if found else None  # the first of equals


def _meminfo_available(meminfo: str | None = None) -> int | None:
    try:
        with open(meminfo or PROC_MEMINFO, "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cgroup_memory_available(proc_cgroup: str | None = None, root: str | None = None) -> tuple[int, int] | None:
    """``(bytes, limit)``: what the tightest memory limit of this process's control group, or of one above it, leaves
    (the limit less the group's use, its file cache, active and inactive, and reclaimable kernel slab counted as
    free: the kernel reclaims those before it kills); None where no limit is set (none, or one of 0 or below) or
    none can be read.

    cgroup v2 (``0::/PATH`` in ``/proc/self/cgroup``): ``memory.max`` (``max``: none), ``memory.current`` and
    ``memory.stat``'s ``active_file``, ``inactive_file`` and ``slab_reclaimable`` in ``ROOT/PATH`` and each folder
    above it up to ``ROOT``; v1 (``N:memory:/PATH``): ``memory.limit_in_bytes`` (also ``memory.stat``'s
    ``hierarchical_memory_limit``), ``memory.usage_in_bytes`` and ``total_active_file`` and
    ``total_inactive_file`` under ``ROOT/memory``. Where ``PATH`` is not under ``ROOT`` (a container's own group
    mounted as its root), the root's files are read."""
    root = root or CGROUP_ROOT
    try:
        with open(proc_cgroup or PROC_CGROUP) as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    best = None
    for line in lines:
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hid == "0" and controllers == "":
            base, files = root, ("memory.max", "memory.current", _V2_RECLAIMABLE)
        elif "memory" in controllers.split(","):
            base, files = os.path.join(root, "memory"), ("memory.limit_in_bytes", "memory.usage_in_bytes",
                                                         _V1_RECLAIMABLE)
        else:
            continue
        for folder in _cgroup_folders(base, path):
            got = _cgroup_level(folder, *files)
            if got is not None and (best is None or got[0] < best[0]):
                best = got
    return best


def _cgroup_folders(base: str, path: str) -> list[str]:
    """``base/path`` and each folder above it up to ``base``; ``base`` alone where ``base/path`` is not a folder."""
    parts = [p for p in path.strip().split("/") if p]
    if ".." in parts or not os.path.isdir(os.path.join(base, *parts)):
        return [base]
    return [os.path.join(base, *parts[:n]) for n in range(len(parts), -1, -1)]


#: memory.stat's reclaimable memory, counted as free (each: its keys, the first found is read): the file cache,
#: active and inactive (the input's, the weights', the libraries'), and v2's reclaimable slab (dentries, inodes)
_V2_RECLAIMABLE = (("active_file",), ("inactive_file",), ("slab_reclaimable",))
_V1_RECLAIMABLE = (("total_active_file", "active_file"), ("total_inactive_file", "inactive_file"))


def _cgroup_level(folder: str, limit_name: str, usage_name: str,
                  reclaimable: tuple[tuple[str, ...], ...]) -> tuple[int, int] | None:
    """``(bytes left, limit)`` of one control group's folder; None where it sets no limit or a file is missing."""
    try:
        with open(os.path.join(folder, limit_name)) as f:
            text = f.read().strip()
        if text == "max":
            return None
        stat = {}
        try:
            with open(os.path.join(folder, "memory.stat")) as f:
                stat = dict(line.split()[:2] for line in f if len(line.split()) >= 2)
        except OSError:
            pass
        limits = [n for n in (int(text), int(stat.get("hierarchical_memory_limit", text))) if n > 0]
        if not limits or min(limits) >= _V1_UNLIMITED:  # 0 or below (-1: an emulated cgroup file's none): none
            return None
        limit = min(limits)
        with open(os.path.join(folder, usage_name)) as f:
            usage = int(f.read().strip())
        cache = sum(next((int(stat[k]) for k in keys if k in stat), 0) for keys in reclaimable)
    except (OSError, ValueError):
        return None
    return max(0, limit - max(0, usage - cache)), limit


def address_space_available(statm: str | None = None) -> tuple[int, int] | None:
    """``(bytes, limit)``: what this process's address-space limit (``ulimit -v``, RLIMIT_AS) leaves to a new mapping,
    the limit less the process's virtual size (``/proc/self/statm``: every mapping counts, PyTorch's reserved ones
    too, as the kernel counts them); None where no limit is set or the size is not known."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft == resource.RLIM_INFINITY or soft < 0:
            return None
        with open(statm or PROC_STATM) as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, IndexError):
        return None
    return max(0, soft - size), soft


#: OpenCV's failure to allocate (a cv2.error, StsNoMem): "(-4:Insufficient memory) Failed to allocate N bytes"
_OPENCV_OOM = re.compile(r"insufficient memory|failed to allocate", re.IGNORECASE)


def opencv_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is OpenCV's failure to allocate memory (a ``cv2.error`` that says so)."""
    return type(exc).__module__.partition(".")[0] == "cv2" and bool(_OPENCV_OOM.search(str(exc)))


def _bytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def check_memory(shape: tuple[int, ...], dtype, path: str | Path | None = None, what: str = "an image",
                 advice: str = "", factor: float = 1.0, extra_bytes: int = 0) -> None:
    """Refuse, before decoding it, an array of ``shape`` and ``dtype`` (what a file's header declares) that would not
    fit in the memory available (:func:`memory_available`) while it is decoded: a small file can declare a huge
    image, whose decoding would swap for ever, get the process killed without a word, or fail half-way under
    ``ulimit -v``. What decoding takes is ``factor`` times the array (the decoder's buffers and copies besides the
    array: :func:`_pillow_decode_factor`, :data:`TIFF_DECODE_FACTOR`, :data:`GIF_FRAME_FACTOR`; 1, the default,
    weighs the array alone) plus
    ``extra_bytes`` (the file's own bytes where the reader holds them all). Raises
    :class:`devolens.io.atomic.Exhausted` (the command's exit code 75), naming ``path`` and the limit (the machine's
    memory, a job's or container's memory limit, ``ulimit -v``); ``what`` says what the
    shape is, ``advice`` ends the message. Nothing is read for arrays under :data:`MEMORY_CHECK_BYTES`, nor checked
    where the memory available is unknown or the environment variable ``DEVOLENS_NO_MEMORY_CHECK`` is set
    (:data:`NO_CHECK_ENV`)."""
    import math

    if dtype is None or os.environ.get(NO_CHECK_ENV, "") not in ("", "0"):  # not known from the header; no check
        return
    nbytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    if nbytes < MEMORY_CHECK_BYTES:
        return
    need = int(nbytes * max(1.0, factor)) + max(0, int(extra_bytes))
    free = memory_available()
    if free is None or need <= free:
        return
    dims = " x ".join(str(int(n)) for n in shape)
    leaves, remedy = getattr(free, "leaves", Available.leaves), getattr(free, "remedy", Available.remedy)
    # what decoding takes besides the array is said where it is why: the array alone would fit
    peak = f", about {_bytes(need)} while it is decoded (the reader's buffers and copies)" if nbytes <= free else ""
    raise Exhausted(f"the file declares {what} of {dims} {np.dtype(dtype).name} values, {_bytes(nbytes)} decoded{peak}: "
                    f"more than the {_bytes(free)} {leaves}; {remedy}, or cut it into smaller images, or set "
                    f"{NO_CHECK_ENV}=1 to try anyway{'; ' + advice if advice else ''}", path=path)


#: what reading a TIFF with tifffile (:func:`read_image`) takes at its peak, in decoded arrays: the array and one
#: more (a compressed strip's or tile's decoding, planar RGB's samples moved last), the file's compressed bytes
#: besides (``extra_bytes``: tifffile reads them all before decoding). Measured on Linux as the rise of the peak
#: resident size (VmHWM, reset through /proc/self/clear_refs) and of the peak virtual size (VmPeak: what ulimit -v
#: counts) over one read_image of 100-130 MB images (tifffile 2026.3): uncompressed 1.02 x, zlib tiles 1.97 x,
#: planar RGB 2.03 x, LZW strips 3.12 x of which its file 1.04 x (tracemalloc misses the decoders' C buffers)
TIFF_DECODE_FACTOR = 2.1
#: the same for a 16-bit colour PNG, which OpenCV decodes from the file's bytes (those besides: ``extra_bytes``):
#: 3.87 x of VmPeak, 2.94 x of VmHWM, of which the file 0.90 x (a 5000 x 5000 RGB PNG, 150 MB decoded)
PNG16_DECODE_FACTOR = 3.0
#: the same for a frame of a GIF or WebP read by :func:`devolens.io.frames.open_animated`, in its ``H x W x 3`` uint8
#: arrays: Pillow's frame (RGB after a GIF's first, as RGBX; an animated WebP's decoder's RGBA canvas and frame), its
#: RGB conversion and the array's bytes. Measured as the others (Pillow 13, every frame of 4-frame 3000 x 4000 and
#: 2000 x 5000 files, the frames not kept): GIF 4.63 x, WebP (lossless or lossy) 7.32 x
GIF_FRAME_FACTOR = 4.7
WEBP_FRAME_FACTOR = 7.4
#: bytes per pixel of Pillow's own image of each mode (every mode of more than one band takes 4: RGB is RGBX)
_PILLOW_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}


def _pillow_decode_factor(mode: str, samples: int, itemsize: int, converted: int = 0, turned: bool = False) -> float:
    """What :func:`read_image` takes at its peak while Pillow decodes an image of ``mode`` into an array of
    ``samples`` values of ``itemsize`` bytes a pixel, in such arrays: Pillow's image (:data:`_PILLOW_PIXEL_BYTES`),
    the image it is ``converted`` to (its bytes a pixel: a palette's colours, LA's grey), its EXIF turn (a copy of
    Pillow's image: ``turned``), then ``np.asarray``'s bytes (``tobytes``, the array's size) and the array's copy.
    Measured as :data:`TIFF_DECODE_FACTOR` was (Pillow 13, 64-192 MB decoded; each within 1% of this sum):
    L PNG 3.02 x, JPEG 3.03 x; RGB PNG 3.35 x, JPEG 3.36 x; RGBA 3.01 x; 16-bit grey (I;16) 3.01 x; a palette
    PNG as RGB 3.68 x; LA as its grey 7.03 x; an RGB JPEG turned by its EXIF tag 4.69 x."""
    out = max(1, samples * itemsize)
    own = _PILLOW_PIXEL_BYTES.get(mode, 4)
    if mode == "I":
        # astype(int64), then the uint16 or int32 array (not measured: Pillow opens no file of these suffixes as I)
        converted = 8 + 4
    # + 0.05: the measured peaks lie up to 0.03 x over the sum (a few MB of the decoder's own)
    return (own + converted + (own if turned else 0)) / out + 2.05


#: samples per pixel of what :func:`read_image` makes of each Pillow mode (others become RGB)
_MODE_SAMPLES = {"1": 3, "L": 1, "LA": 1, "La": 1, "RGB": 3, "RGBA": 4, "I;16": 1, "I;16B": 1, "I;16L": 1, "I": 1}


def pillow():
    """Pillow's ``Image`` module, set for the user's own files: while this ``open()`` opens a file, its
    decompression-bomb limit raised to 2^30 pixels (OpenCV's, as for the 16-bit colour PNGs; a stitched well saved
    as PNG passes Pillow's 179 M pixels: :func:`_pillow_limit`) and its warning past it silenced
    (:func:`check_memory` weighs a large image against the memory available; past 2^31 pixels Pillow refuses the
    file); an animated GIF's frames likewise as they are reached. Returned as a stand-in for the module whose
    ``open`` is that; the limit and the warning stay as they are for the rest of the process (an application
    importing devolens keeps Pillow's guard for its own files)."""
    from PIL import Image

    return _Pillow(Image)


class _Pillow:
    """PIL.Image, its ``open`` with devolens' limit and without the DecompressionBombWarning (:func:`pillow`)."""

    def __init__(self, module):
        self.module = module

    def __getattr__(self, name: str):
        return getattr(self.module, name)

    def open(self, *args, **kwargs):
        with self._limits():
            im = self.module.open(*args, **kwargs)
        if im.format == "GIF":
            # a GIF's frames are weighed again as they are reached and decoded (their extent, what each disposes):
            # this image's own seek and load (those ImageSequence and convert call) under the same limit
            for name in ("seek", "load"):
                setattr(im, name, self._limited(getattr(im, name)))
        return im

    def _limited(self, method):
        def limited(*args, **kwargs):
            with self._limits():
                return method(*args, **kwargs)

        return limited

    @contextlib.contextmanager
    def _limits(self):
        """:func:`_pillow_limit` and :func:`_bomb_warning_ignored` together."""
        with _pillow_limit(self.module), _bomb_warning_ignored(self.module.DecompressionBombWarning):
            yield


#: Pillow's decompression-bomb limit while devolens opens a file (:func:`pillow`)
PILLOW_PIXELS = 2**30
_limit_lock = threading.Lock()
_limit_state: dict = {"users": 0, "before": None, "raised": None}


@contextlib.contextmanager
def _pillow_limit(module):
    """``module.MAX_IMAGE_PIXELS`` (Pillow's, a process-wide setting) at least :data:`PILLOW_PIXELS` in this block,
    and put back after: an application that also opens untrusted images with Pillow keeps its guard. Counted across
    threads: the limit is raised by the first of devolens' reader threads (ReadAhead) to open a file and put back
    by the last to finish, so that one thread's end never lowers it under another's open. Put back only where
    nothing else set it meanwhile (an application's own value is kept). Other threads' opens in the block have
    the raised limit too, as they have the warning filter (:func:`_bomb_warning_ignored`). An application that
    lifted the limit (``MAX_IMAGE_PIXELS = None``) keeps none: 2^30 would tighten it, for its own threads too."""
    state = _limit_state
    with _limit_lock:
        if state["users"] == 0:
            state["before"] = module.MAX_IMAGE_PIXELS
            if module.MAX_IMAGE_PIXELS is not None:
                module.MAX_IMAGE_PIXELS = max(module.MAX_IMAGE_PIXELS, PILLOW_PIXELS)
            state["raised"] = module.MAX_IMAGE_PIXELS
        state["users"] += 1
    try:
        yield
    finally:
        with _limit_lock:
            state["users"] -= 1
            if state["users"] == 0:
                if module.MAX_IMAGE_PIXELS == state["raised"]:
                    module.MAX_IMAGE_PIXELS = state["before"]
                state["before"] = state["raised"] = None


@contextlib.contextmanager
def _bomb_warning_ignored(category):
    """``category`` ignored in this block: a filter entry of its own, put first and taken out after. Not
    ``warnings.catch_warnings``: in a reader's thread (ReadAhead) its exit puts back the whole process's filters as
    they were on entry, dropping those other threads added meanwhile. Other threads' warnings of ``category`` are
    ignored in the block too."""
    import warnings

    entry = ("ignore", None, category, None, 0)
    filters = warnings.filters
    filters.insert(0, entry)  # no version bump needed: "ignore" leaves nothing in the warning registries
    try:
        yield
    finally:
        # from the list it went into, and from the one now in use where another thread's catch_warnings copied it
        for where in (filters,) + ((warnings.filters,) if warnings.filters is not filters else ()):
            try:
                where.remove(entry)
            except ValueError:
                pass


def exif_orientation(im) -> int:
    """The EXIF orientation tag of an image Pillow has opened (1, or absent: as stored; 5 to 8: turned a quarter),
    as :func:`read_image` reads it (``getexif()``), without decoding the pixels: Pillow's ``getexif()`` of a PNG
    decodes the whole image first where its EXIF is not before the pixel data (it may follow them, in an eXIf
    chunk or in a text chunk with EXIF or XMP), so that the header readers (tile make's progress total, a training
    set's image sizes) decoded every PNG once more than :func:`read_image` did. A PNG's chunks are walked instead,
    its pixel data skipped (:func:`_png_metadata`); anything that walk cannot read is left to Pillow."""
    if im.format == "PNG" and "exif" not in im.info and getattr(im, "filename", None):
        try:
            from PIL import Image

            bare = Image.Image()  # Pillow's own reading of the EXIF, XMP and text: from the chunks, not the pixels
            bare.info = _png_metadata(Path(im.filename))
            return bare.getexif().get(0x0112, 1)
        except Exception:  # noqa: BLE001 - a chunk this walk cannot read: Pillow reads it (decoding the pixels)
            pass
    return im.getexif().get(0x0112, 1)


def header_shape(path: str | Path) -> tuple[int, int]:
    """(height, width) of a PNG, JPEG, BMP... as :func:`read_image` gives it (EXIF-turned), from its header: the
    pixels are not decoded (:func:`exif_orientation`); within read_image's limits (no bomb warning for a large well).

    Raises whatever Pillow raises for a file it cannot open (the callers fall back to reading it)."""
    with pillow().open(path) as im:
        w, h = int(im.size[0]), int(im.size[1])
        turned = exif_orientation(im) in (5, 6, 7, 8)  # read_image turns it a quarter
    return (w, h) if turned else (h, w)


def _png_metadata(path: Path) -> dict:
    """The metadata Pillow keeps from a PNG's eXIf and text chunks (tEXt, zTXt, iTXt), before and after the pixel
    data, as its ``load()`` would leave them in ``info``: each chunk's header read, the pixel data (IDAT) skipped
    unread; an animated PNG's up to its second frame (where Pillow's first frame ends)."""
    from PIL import PngImagePlugin

    wanted = (b"eXIf", b"tEXt", b"zTXt", b"iTXt")
    with open(path, "rb") as fh:
        if fh.read(8) != b"\x89PNG\r\n\x1a\n":
            raise ValueError("not a PNG file")
        stream = PngImagePlugin.PngStream(fh)
        animated = pixels = False
        while True:
            cid, pos, length = stream.read()
            if cid == b"IEND" or (cid == b"fcTL" and animated and pixels):
                break
            animated |= cid == b"acTL"
            pixels |= cid == b"IDAT"
            if cid in wanted:
                stream.call(cid, pos, length)
                fh.seek(4, os.SEEK_CUR)  # its CRC
            else:
                fh.seek(length + 4, os.SEEK_CUR)
        return stream.im_info


def _pillow_refusal(exc: Exception, path: Path) -> DevolensError | None:
    """Pillow's DecompressionBombError (an image past 2^31 pixels) in words; None for any other exception."""
    if type(exc).__name__ != "DecompressionBombError":
        return None
    found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
    declared, limit = (f"{found.group(1)} pixels", f"{found.group(2)} ") if found else ("too many pixels", "")
    return DevolensError(f"image too large: its header declares {declared}, more than the {limit}pixels read from a "
                         "PNG, JPEG, BMP, WebP or GIF file (a decompression bomb?); cut it into smaller images, or "
                         f"save it as TIFF ({BANDS_ADVICE})", path=path)


def read_image(path: str | Path, *, indices: bool = False) -> np.ndarray:
    """Read a TIFF, PNG, JPEG, BMP, WebP or GIF image into a numpy array.

    Parameters
    ----------
    indices : bool
        An indexed-colour (palette) image comes back as its palette indices instead of the colours
        they show (label images saved with a colour table: the indices are the labels).
    path : str or Path
        Image file. TIFF keeps its dtype and all its pages/planes (e.g. a z-stack) but not its
        axes of length 1 (a ``1xHxW`` or ``HxWx1`` array saved as such is ``HxW``), and an
        indexed-colour TIFF comes back as the RGB colours it shows (one with a lookup table, as
        ImageJ saves them, as its indices); PNG, JPEG, BMP and WebP come back as uint8 (or uint16
        for 16-bit PNG, grey or RGB(A)), (H, W) or (H, W, C), turned as their EXIF orientation
        says (as photo viewers show them; napari and scikit-image do not: :class:`ExifTurns` tells a caller
        which files were turned); a GIF as its first frame, RGB, and an animated WebP as its first
        frame (:mod:`devolens.io.frames` reads every frame of both). The content decides how a file
        is read, not its name (a PNG saved as ``.tif`` is read). An image whose header declares more
        than the memory available is refused before it is decoded (:func:`check_memory`).

    Returns
    -------
    ndarray

    Raises
    ------
    DevolensError
        The file is missing, not an image, of an unsupported type or corrupt;
        :class:`devolens.io.atomic.Exhausted` (one) when it does not fit in the memory available.
    """
    path = Path(path)
    if not path.exists():
        raise DevolensError("no such file", path=path)
    if not path.is_file():
        raise DevolensError("not a file", path=path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        from devolens.io.frames import VIDEO_SUFFIXES

        if suffix in VIDEO_SUFFIXES:  # predictor.predict("movie.avi"): one image is read here, a video is frames
            raise DevolensError(
                f"this is a video ({suffix}), not an image: predict() (and read_image) take one image; stream a "
                "video's frames with predictor.predict_iter(devolens.io.frames.iter_path_frames(path)[0]) (read one "
                "at a time), or use the command line (devolens segment nuclei VIDEO --out DIR; devolens population "
                "VIDEO --out counts.csv)", path=path)
        raise DevolensError(f"unsupported image type {suffix!r} (use {', '.join(IMAGE_SUFFIXES)})", path=path)
    from devolens.io.stacks import is_tiff

    try:
        if is_tiff(path):  # by content: a TIFF named .png and a PNG named .tif are both read
            from devolens.io.stacks import open_tiff, own_series, samples_last, squeeze_axes

            with open_tiff(path) as tif:
                if not tif.series:
                    raise DevolensError("no image in this TIFF file", path=path)
                series = tif.series[own_series(tif)]  # its own, in a multi-file OME set (one file per position)
                # axes of length 1 dropped (a 1xHxW or HxWx1 array saved as such is the HxW image)
                axes, shape = squeeze_axes(str(series.axes), tuple(int(n) for n in series.shape))
                check_memory(shape, series.dtype, path, advice=BANDS_ADVICE, factor=TIFF_DECODE_FACTOR,
                             extra_bytes=_tiff_compressed_bytes(series))
                arr = series.asarray().reshape(shape)
                # planar RGB (samples stored as planes, axes "SYX"): samples last, as PNG/JPEG
                arr = samples_last(arr, axes.endswith("SYX"))
                arr = arr if indices else _apply_palette(tif, arr)
        else:
            Image = pillow()
            with Image.open(path) as im:  # the header only: the pixels are decoded by load()
                png16 = im.format == "PNG" and _is_png16_colour(path)
                samples = _MODE_SAMPLES.get(im.mode, 3)
                if im.mode == "P":  # the indices, or the colours they show
                    samples = 1 if indices else 4 if "transparency" in im.info else 3
                shape = (im.size[1], im.size[0]) + ((samples,) if samples > 1 else ())
                dtype = np.uint16 if png16 or im.mode.startswith("I") else np.uint8
                if int(np.prod(shape)) * np.dtype(dtype).itemsize >= MEMORY_CHECK_BYTES:  # (smaller: nothing to weigh)
                    if png16:  # OpenCV decodes the file's bytes, held whole
                        factor, extra = PNG16_DECODE_FACTOR, path.stat().st_size
                    else:  # (its EXIF block parsed only here: a folder's frames pay nothing for the check)
                        factor, extra = _pillow_decode_factor(im.mode, samples, np.dtype(dtype).itemsize,
                                                              _pillow_converted(im.mode, indices, im.info),
                                                              _exif_turned(im)), 0
                    check_memory(shape, dtype, path, advice=BANDS_ADVICE, factor=factor, extra_bytes=extra)
                if png16:
                    # Pillow has no 16-bit colour modes: it would keep each sample's upper byte
                    return _read_png16_colour(path, im)
                im.load()
                orientation = im.getexif().get(0x0112, 1)
                if orientation not in (0, 1):
                    # EXIF orientation (phone and camera JPEGs): the image as every viewer shows it
                    from PIL import ImageOps  # only then: not imported for every frame's start-up

                    im = ImageOps.exif_transpose(im)
                    _turned(path, orientation)  # (the watches of ExifTurns are told)
                if im.mode == "P" and indices:
                    return np.asarray(im).copy()
                if im.mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif im.mode in ("I;16", "I;16B", "I;16L"):
                    return np.asarray(im, dtype=np.uint16).copy()
                elif im.mode == "I":
                    return np.asarray(im).astype(np.int64).astype(np.uint16 if np.asarray(im).max() < 65536 else np.int32)
                elif im.mode in ("LA", "La"):  # grey + alpha: the grey values (alpha is not signal)
                    im = im.getchannel("L")
                elif im.mode not in ("L", "RGB", "RGBA"):
                    im = im.convert("RGB")
                arr = np.asarray(im).copy()
    except DevolensError:
        raise
    except Exception as exc:
        if isinstance(exc, MemoryError) or opencv_out_of_memory(exc):  # the decoder's copies: not declared
            raise out_of_memory("decoding this image", path, ", or cut it into smaller images") from None
        # corrupt or truncated file
        from devolens.io.video import renamed_video_words

        renamed = renamed_video_words(path)  # a video named as an image (an AVI saved as .png)
        raise _pillow_refusal(exc, path) or DevolensError(f"cannot read image: {renamed or exc}", path=path) from None
    if arr.size == 0:
        raise DevolensError("empty image", path=path)
    return arr


def _pillow_converted(mode: str, indices: bool, info: dict) -> int:
    """Bytes a pixel of the image :func:`read_image` converts Pillow's image of ``mode`` to before its array: a
    palette's RGB(A) colours, LA's grey, another mode's RGB; 0 where it takes the image's own."""
    if mode == "P":
        return 0 if indices else 4
    if mode in ("LA", "La"):
        return 1
    return 0 if mode in ("L", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I") else 4


def _exif_turned(im) -> bool:
    """Whether :func:`read_image` will turn Pillow's image ``im`` by its EXIF orientation tag, where that is known
    before decoding (a JPEG's or WebP's tag is in its header; Pillow decodes a PNG to find its tag: False)."""
    if im.format == "PNG":
        return False
    try:
        return im.getexif().get(0x0112, 1) not in (0, 1)
    except Exception:  # a broken EXIF block: read_image's own reading of it says so
        return False


def _tiff_compressed_bytes(series) -> int:
    """The bytes of a TIFF series' compressed strips or tiles, which tifffile reads whole before decoding them; 0
    for uncompressed data (read straight into the array), where the pages cannot say, and for a series too small to
    be weighed (:data:`MEMORY_CHECK_BYTES`: its pages are not gone through)."""
    total = 0
    try:
        if int(series.nbytes) < MEMORY_CHECK_BYTES:
            return 0
        for page in series.pages:
            if page is None or getattr(page, "compression", 1) == 1:
                continue
            total += sum(int(n) for n in getattr(page, "databytecounts", ()) or ())
    except Exception:  # a page that cannot be read: the decoding says what is wrong
        return total
    return total


#: what each EXIF orientation tag (2-8) makes :func:`read_image` do to an image, in words (1: nothing)
EXIF_TURNS = {2: "mirrored left to right", 3: "turned upside down", 4: "mirrored top to bottom",
              5: "mirrored across its diagonal", 6: "turned a quarter clockwise",
              7: "mirrored across its other diagonal", 8: "turned a quarter anticlockwise"}

#: the watches open now (:class:`ExifTurns`), held weakly: a watch dropped without ``close()`` ends with it
_turn_watches: "weakref.WeakSet[ExifTurns]" = weakref.WeakSet()
_turns_lock = threading.Lock()


class ExifTurns:
    """The image files :func:`read_image` turned (or mirrored) by their EXIF orientation tag while this watch is
    open, in any thread (a reader thread reading ahead too), with the tag's value: what a caller that reads files
    through other functions (a folder's frames, :func:`devolens.io.frames.iter_path_frames`) tells its user and
    records, without reading a file twice. Close it (or use it as a context manager) when done; every open watch
    hears of every file turned in the process (a caller asks after its own, :meth:`get`).

    >>> with ExifTurns() as turns:      # doctest: +SKIP
    ...     image = read_image("photo.jpg")
    >>> turns.get("photo.jpg")          # doctest: +SKIP
    6
    """

    def __init__(self):
        self._found: dict[str, int] = {}
        with _turns_lock:
            _turn_watches.add(self)

    def get(self, path: str | Path) -> int | None:
        """The EXIF orientation (2-8: :data:`EXIF_TURNS`) ``path`` was turned by while the watch was open; None for
        a file not turned (or not read)."""
        if not self._found:
            return None
        return self._found.get(_turn_key(path))

    def __len__(self) -> int:
        return len(self._found)

    def close(self) -> None:
        """Stop watching (what was found stays readable)."""
        with _turns_lock:
            _turn_watches.discard(self)

    def __enter__(self) -> "ExifTurns":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _turn_key(path: str | Path) -> str:
    return os.path.abspath(os.fspath(path))


def _turned(path: str | Path, orientation: int) -> None:
    """Tell the open watches (:class:`ExifTurns`) that ``path`` was turned by EXIF ``orientation``."""
    if orientation not in EXIF_TURNS or not _turn_watches:
        return
    key = _turn_key(path)
    with _turns_lock:
        for watch in list(_turn_watches):
            watch._found[key] = int(orientation)


def exif_turned_words(files: "list[tuple[str, int]]", follow: str = "") -> str:
    """A note's words (without ``note:``) on the image ``files`` (each its name and EXIF orientation) that
    :func:`read_image` turned as their EXIF orientation tag says: as a photo viewer shows them, while napari and
    scikit-image (imageio) read such a file unturned. ``follow``: the outputs that follow the turned image (e.g.
    ``"the label images, objects.csv's x and y and the overlays"``), with how to lay them over the file."""
    if len(files) == 1:
        name, tag = files[0]
        what = f"{name} was {EXIF_TURNS.get(tag, 'turned')} as its EXIF orientation tag ({tag}) says"
        unturned = "the file"
    else:
        shown = ", ".join(name for name, _ in files[:8]) + (f" and {len(files) - 8} more" if len(files) > 8 else "")
        what = f"{len(files)} images ({shown}) were turned or mirrored as their EXIF orientation tags say"
        unturned = "the files"
    head = f"{what}, as a photo viewer shows {'it' if len(files) == 1 else 'them'}"
    tail = f"napari and scikit-image show {unturned} unturned"
    if not follow:
        return f"{head} ({tail})"
    return (f"{head}: {follow} follow the turned image{'s' if len(files) > 1 else ''}; {tail}, so to lay the "
            f"labels over {'it' if len(files) == 1 else 'one'} there, turn it as the tag says first")


def _is_png16_colour(path: Path) -> bool:
    """Whether a PNG holds 16-bit RGB, RGBA or grey + alpha samples (IHDR bit depth 16, colour type 2, 6 or 4):
    what Fiji, ZEN or NIS save as a 16-bit colour PNG (Pillow reads these as 8 bits)."""
    with open(path, "rb") as f:
        head = f.read(26)
    return (len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
            and head[24] == 16 and head[25] in (2, 4, 6))


#: numpy for each EXIF orientation, as ``PIL.ImageOps.exif_transpose`` turns an image
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
           8: lambda a: np.rot90(a, 1)}


def _read_png16_colour(path: Path, im) -> np.ndarray:
    """A 16-bit RGB(A) PNG at its full depth: uint16 ``HxWx3`` (``HxWx4`` for RGBA), RGB order, turned as its
    EXIF orientation says (as the 8-bit images read through Pillow are). ``im``: the file opened by Pillow.
    Memory: the file's bytes and the decoded array (colours reordered in place)."""
    import cv2

    raw = path.read_bytes()  # decoded from memory: any file name (cv2.imread fails on some)
    # an embedded colour profile is not used here (no colour management), and a broken one makes libpng print
    # warnings on stderr ("iCCP: known incorrect sRGB profile"): left out of what OpenCV decodes
    body = _without_chunks(raw, b"iCCP") if b"iCCP" in raw else raw
    arr = cv2.imdecode(np.frombuffer(body, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    del body
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        im.load()  # a corrupt or truncated file: Pillow's error says what is wrong
        raise DevolensError("cannot read this 16-bit colour PNG at its full depth", path=path)
    # RGB with a transparent colour (tRNS): cv2 adds an alpha channel; read as RGB, as the 8-bit ones are
    if _png_colour_type(raw) == 4:  # grey + alpha: the grey values (alpha is not signal), as 8-bit LA
        arr = np.ascontiguousarray(arr[..., 0])
    elif im.mode == "RGB" and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
    else:  # BGR -> RGB, BGRA -> RGBA, in place
        cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA, dst=arr)
    if any(m in raw for m in (b"eXIf", b"Raw profile type exif", b"XML:com.adobe.xmp")):  # else no orientation
        orientation = im.getexif().get(0x0112, 1)
        turn = _ORIENT.get(orientation)
        if turn is not None:
            arr = np.ascontiguousarray(turn(arr))
            _turned(path, orientation)
    return arr


def _without_chunks(png: bytes, kind: bytes) -> bytes:
    """A PNG file's bytes without its chunks of type ``kind`` (the rest as it was; a truncated file is left to
    the decoder to report)."""
    out, pos = [png[:8]], 8
    while pos + 12 <= len(png):
        end = pos + 12 + int.from_bytes(png[pos:pos + 4], "big")
        if png[pos + 4:pos + 8] != kind:
            out.append(png[pos:end])
        pos = end
    out.append(png[pos:])  # whatever follows the last whole chunk (nothing in a sound file)
    return b"".join(out)


def _png_colour_type(data: bytes) -> int:
    """The colour type in a PNG's IHDR (its bytes)."""
    return int(data[25]) if len(data) > 25 else -1


def _apply_palette(tif, arr: np.ndarray) -> np.ndarray:
    """An indexed-colour (palette) TIFF image as the colours it shows, RGB: its indices are no intensities.
    Kept as they are when they are: an ImageJ image with a lookup table (Green, Fire...: ImageJ saves an 8-bit
    image with a colour LUT as a palette TIFF), or any palette whose brightness rises with the index."""
    page = tif.pages[0]
    cmap = getattr(page, "colormap", None)
    if int(page.photometric) != 3 or cmap is None or arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        return arr
    cmap = np.asarray(cmap)
    if cmap.ndim != 2 or cmap.shape[0] != 3 or tif.is_imagej:
        return arr
    brightness = cmap.astype(np.float64).sum(axis=0)
    if brightness.std() == 0 or np.corrcoef(np.arange(brightness.size), brightness)[0, 1] > 0.9:
        return arr  # a lookup table: the indices are the intensities
    rgb = cmap.T[np.clip(arr, 0, cmap.shape[1] - 1)]
    return (rgb >> 8).astype(np.uint8) if cmap.max() > 255 else rgb.astype(np.uint8)


def write_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 or uint16 image (H, W), (H, W, 3) or (H, W, 4) as PNG, atomically.

    Parameters
    ----------
    image : ndarray
        uint8 or uint16 (grey only for uint16); bool is written as 0/255.
    path : str or Path
        Destination (``.png``); parent folders are created.

    Returns
    -------
    Path
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ValueError(f"cannot write an image of shape {arr.shape} as PNG")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype == np.uint16:
        if arr.ndim != 2:
            raise ValueError("16-bit PNG must be greyscale")
        im = Image.fromarray(arr)
    elif arr.dtype == np.uint8:
        im = Image.fromarray(arr)
    else:
        raise ValueError(f"write_png needs uint8 or uint16, got {arr.dtype}")
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG", compress_level=1)
    return Path(path)


def calibration_kept(labels: np.ndarray, unit: str) -> bool:
    """Whether :func:`write_label_tif` writes a pixel size in ``unit`` into ``labels``' TIFF: ImageJ's tags for a 2-D
    uint16 image (any unit), resolution tags per centimetre otherwise, micrometres only."""
    return unit == "µm" or (labels.ndim == 2 and int(labels.max(initial=0)) < 65536)


def write_label_tif(labels: np.ndarray, path: str | Path,
                    pixel: "tuple[float, float, str] | None" = None) -> Path:
    """Write an instance label image as uint16 TIFF (zlib-compressed), atomically; as uint32 when
    it holds labels above 65535 (a giant image with that many objects).

    Parameters
    ----------
    labels : ndarray, integer, (H, W) (or (Z, H, W))
        0 = background, 1..K instances; values must fit in uint32.
    path : str or Path
        Destination (``.tif``).
    pixel : (x, y, unit), optional
        The input's pixel size (:func:`devolens.io.stacks.pixel_size`): written as ImageJ reads it (resolution
        tags and ``unit``; a uint32 image, which ImageJ does not open, as resolution tags per centimetre when
        the unit is micrometres), so Fiji and napari show the labels calibrated as the input was.

    Returns
    -------
    Path
    """
    import tifffile

    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise ValueError(f"labels must be integers, got {arr.dtype}")
    top = int(arr.max()) if arr.size else 0
    if arr.size and (arr.min() < 0 or top > 2**32 - 1):
        raise ValueError("labels do not fit in uint32")
    extra: dict = {}
    if pixel is not None:
        sx, sy, unit = pixel
        if top < 65536 and arr.ndim == 2:
            # ImageJ's description is ASCII: micrometres as ImageJ itself writes them
            extra = {"imagej": True, "resolution": (1.0 / sx, 1.0 / sy),
                     "metadata": {"unit": "micron" if unit == "µm" else unit.encode("ascii", "replace").decode()}}
        elif unit == "µm":
            extra = {"resolution": (1e4 / sx, 1e4 / sy), "resolutionunit": "CENTIMETER"}
    with atomic_path(path) as tmp:
        # deflate at level 6 (libdeflate through imagecodecs): on label images faster than its level 1 (1.37 vs
        # 1.58 ms for a 752x512 frame) and a quarter smaller (benchmarks/bench_small_costs.py)
        tifffile.imwrite(tmp, arr.astype(np.uint16 if top < 65536 else np.uint32, copy=False), compression="zlib",
                         compressionargs={"level": 6}, **extra)
    return Path(path)
