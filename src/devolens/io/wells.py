"""How a well file's channels are read (the layer below :mod:`devolens.data.tiling` and
:mod:`devolens.predict.tiled`, which both read wells through it): a TIFF's layout (:func:`channels_last`), its
channel names (:func:`well_channel_order`, :func:`well_channels`), the RGB colour rule (:func:`colour_tiff_page`,
:func:`colour_tiff`; Hoechst from blue, Draq7 from red) and PNG, JPEG or BMP wells (:func:`read_colour_image`).
Everything here is re-exported by :mod:`devolens.data.tiling` under the same names."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import tifffile

from devolens.errors import DevolensError, command_running, option
from devolens.io.stacks import quiet_tifffile

#: the ``format`` attribute of a devolens tile store (:mod:`devolens.data.tiling`)
STORE_FORMAT = "devolens-tiles"


def channels_last(shape: Sequence[int], channels: int | None = None) -> bool:
    """Whether a 3-D image of ``shape`` holds its channels last, ``(H, W, C)``: at most 4 along its last axis and
    more than 4 along its first (``(C, H, W)`` otherwise). ``channels``: the channel count expected, for a reader
    that takes a first axis of exactly that many as the channels. The one layout rule of
    :func:`devolens.data.tiling.read_image`, ``devolens tile``'s progress total and
    :class:`devolens.predict.tiled.RowReader`."""
    return (len(shape) == 3 and int(shape[2]) <= 4 and int(shape[0]) > 4
            and (channels is None or int(shape[0]) != channels))


#: what the well readers call the live/dead predictor's ``channels`` (the Hoechst and Draq7 channels chosen)
ORDER_READERS = "order= of tile_to_h5, read_image and RowReader"


def channels_value(text: str) -> str:
    """Channels chosen, as a message writes them: ``2,0`` while the ``devolens`` command runs (its ``--channels``),
    ``[2, 0]`` in Python (``text``: ``"H,D"``, ``"2,0"``)."""
    return text if command_running() else "[" + ", ".join(text.split(",")) + "]"


def channels_option(text: str = "H,D") -> str:
    """The choice of a well's Hoechst and Draq7 channels as a message names it (:func:`devolens.errors.option`):
    ``--channels 2,0`` while the ``devolens`` command runs, ``channels=[2, 0]`` (the live/dead predictor's argument)
    in Python, where :func:`channels_aside` names the readers' ``order``."""
    return option("channels", channels_value(text), cli_value=text)


def channels_aside() -> str:
    """What a message adds, inside its parentheses, after :func:`channels_option` in Python: ``"; order= of
    tile_to_h5, read_image and RowReader"`` (:data:`ORDER_READERS`: those readers' ``channels`` is a count); ``""``
    while the ``devolens`` command runs."""
    return "" if command_running() else "; " + ORDER_READERS


#: channel names (OME-TIFF ``Channel Name``, ImageJ labels): the dyes of every nucleus (DRAQ5 and SiR-DNA enter
#: living cells, as Hoechst does) and of the dead ones; a name's words, and two or three of them joined
#: ('TO-PRO-3', 'Hoechst 33342'), are looked up
NUCLEAR_STAINS = frozenset({"hoechst", "dapi", "h33342", "h33258", "nucblue", "sirdna", "draq5"})
DEAD_STAINS = frozenset({"draq7", "pi", "propidium", "sytox", "topro3", "7aad", "ethd1", "ethidium"})
#: words that name no dye, read only when no dye is named: 'Dead nuclei' is the dead stain, 'All nuclei' Hoechst
_NUCLEAR_WORDS, _DEAD_WORDS = frozenset({"nuclei", "nuclear", "all"}), frozenset({"dead"})
#: stains of whole cells (their cytoplasm: live-cell esterase dyes, cell trackers, membrane dyes), not of nuclei: a
#: two-channel file naming one of them beside a nuclear or dead stain is read by position, with a note
#: (:func:`well_channel_order`). Not the nucleic-acid SYTO dyes (SYTO 9 enters every cell and stains its DNA, and
#: some RNA): those get the note of an unknown name
WHOLE_CELL_STAINS = frozenset({"calcein", "calceinam", "fda", "fluorescein", "fluoresceindiacetate", "cfse", "cfda",
                               "cmfda", "cmtmr", "celltracker", "cellmask", "bcecf", "carboxyfluorescein"})


def _stain_words(name: str) -> tuple[list[str], set[str]]:
    """The lower-case words of a channel name, and every run of one to three of them joined ('TO-PRO-3' ->
    'topro3', 'Calcein AM' -> 'calceinam'): the forms the stain sets are written in."""
    import re

    words = [t for t in re.split(r"[^a-z0-9]+", str(name).lower()) if t]
    joined = {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, min(i + 3, len(words)) + 1)}
    return words, joined


def _stain_role(name: str) -> str | None:
    """``hoechst``, ``draq7`` or None (no dye named, or both: a merge 'DAPI/PI', a file name, 'Live/Dead')."""
    words, joined = _stain_words(name)
    nuclear = bool(joined & NUCLEAR_STAINS) or any(t.startswith("hoechst") for t in words)  # 'Hoechst33342'
    dead = bool(joined & DEAD_STAINS) or any(t.startswith(("propidium", "draq7", "sytox")) for t in words)
    if not (nuclear or dead):
        if "live" in words:  # 'Live/Dead', 'Live cells': a live stain, or both
            return None
        dead = bool(joined & _DEAD_WORDS)
        nuclear = bool(joined & _NUCLEAR_WORDS) and not dead  # 'Dead nuclei'
    if nuclear == dead:
        return None
    return "hoechst" if nuclear else "draq7"


def _whole_cell(name: str) -> bool:
    """Whether ``name`` names a stain of whole cells (:data:`WHOLE_CELL_STAINS`: 'Calcein', 'Calcein-AM', 'FDA',
    'CellTracker Green'...), not of nuclei."""
    words, joined = _stain_words(name)
    return bool(joined & WHOLE_CELL_STAINS) or any(t.startswith(("calcein", "celltracker")) for t in words)


def _guessed_note(name: str, known: str, as_nuclear: bool) -> str:
    """The note on a channel whose role was taken from the other channel's name (``known``) alone: named a stain of
    whole cells (:func:`_whole_cell`), or by no stain known here."""
    role = ("the nuclear stain (Hoechst's place: every nucleus)" if as_nuclear
            else "the dead stain (Draq7's place: dead nuclei only)")
    if _whole_cell(name):
        if as_nuclear:
            why = ("it stains whole cells, not nuclei: the model was trained on Hoechst/Draq7 nuclear stains, and "
                   "whole cells touching one another merge into one object, so the counts are not to be trusted")
        else:
            why = ("it stains whole living cells, not dead nuclei: the nuclei it covers read as dead, so the counts "
                   "are not to be trusted")
        return (f"channel {name!r} read as {role}, as the other is named {known!r}; {why} (choose the channels with "
                f"{channels_option()}{channels_aside()})")
    known_ones = "Hoechst, DAPI, DRAQ5..." if as_nuclear else "DRAQ7, PI, SYTOX, EthD-1..."
    return (f"channel {name!r} read as {role}, as the other is named {known!r}; {name!r} names no stain known here "
            f"({known_ones}): if it is not one, the counts are not to be trusted")


def tiff_channel_names(path: str | Path) -> list[str] | None:
    """The channel names a TIFF stores (an OME-TIFF's ``Channel Name`` of its first image, an ImageJ hyperstack's
    labels, one per channel); None when it stores none."""
    import re

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tf:
            if tf.is_ome and tf.ome_metadata:
                first = re.search(r"<Pixels\b.*?</Pixels>", tf.ome_metadata, re.S)
                names = re.findall(r"<Channel\b[^>]*?\bName=\"([^\"]*)\"", first.group(0) if first else "")
                return names or None
            if tf.is_imagej:
                meta = tf.imagej_metadata or {}
                labels, n = meta.get("Labels"), int(meta.get("channels", 1) or 1)
                if isinstance(labels, (list, tuple)) and n > 1 and len(labels) >= n:
                    return [str(x) for x in labels[:n]]
    except Exception:  # unreadable metadata: read by position, as before
        return None
    return None


def well_channel_order(path: str | Path, n_channels: int, order: Sequence[int] | None = None
                       ) -> tuple[list[int] | None, str | None]:
    """Which channels of a well TIFF hold Hoechst and Draq7: ``order`` when given (checked against
    ``n_channels``), else the channels whose names say so (``Hoechst``/``DAPI``..., ``DRAQ7``/``PI``/``SYTOX``...;
    with two channels one such name is enough), else None (read by position: Hoechst first). Returns the order and
    a note to show when it is not simply the first two channels by position, or when one name alone decided it and
    the other names a stain of whole cells ('Calcein' beside 'EthD-1': :data:`WHOLE_CELL_STAINS`) or no stain known
    here."""
    if order is not None:
        order = [int(k) for k in order]
        if len(order) != 2 or len(set(order)) != 2:
            raise DevolensError(f"give the Hoechst and Draq7 channels as two different indices (e.g. 1,0), got {order}")
        bad = [k for k in order if not 0 <= k < n_channels]
        if bad:
            raise DevolensError(f"channel {bad[0]} does not exist: the image has {n_channels} channel(s) "
                                f"(0..{n_channels - 1})", path=path)
        return order, None
    names = tiff_channel_names(path)
    if not names or len(names) != n_channels:
        return None, None
    roles = [_stain_role(n) for n in names]
    hoechst = [k for k, r in enumerate(roles) if r == "hoechst"]
    draq7 = [k for k, r in enumerate(roles) if r == "draq7"]
    guessed = None  # the note on a channel whose role only the other one's name gives
    if n_channels == 2 and len(hoechst) + len(draq7) == 1:  # one name known: the other channel is the other stain
        known = (hoechst or draq7)[0]
        guessed = _guessed_note(names[1 - known], names[known], as_nuclear=bool(draq7))
        hoechst, draq7 = (hoechst, [1 - hoechst[0]]) if hoechst else ([1 - draq7[0]], draq7)
    if len(hoechst) != 1 or len(draq7) != 1:
        return None, None
    found = [hoechst[0], draq7[0]]
    if found == [0, 1] and n_channels == 2:
        return found, guessed
    note = (f"channels named {', '.join(repr(n) for n in names)}: Hoechst read from channel {found[0]}, "
            f"Draq7 from channel {found[1]}")
    return found, note if guessed is None else f"{note}; {guessed}"


#: how to make a well file from the two channel images (the end of the errors for a well with one channel)
SAVE_WELL = ("save the two channels as a (2, H, W) TIFF (Fiji: Image > Color > Split Channels, Image > Stacks > "
             "Images to Stack, then Save As Tiff)")


def one_channel_error(path: str | Path, shape: tuple | None = None) -> DevolensError:
    """The error for a well image with one channel (a grey image; ``shape``: the file's own, said when given)."""
    what = "a grey image" if shape is None else f"a grey image (shape {tuple(int(s) for s in shape)})"
    return DevolensError(f"{what} holds one channel; a well needs two (Hoechst, Draq7): {SAVE_WELL}, or an RGB "
                         "image with Hoechst in blue and Draq7 in red", path=path)


def well_channels(path: str | Path, n_channels: int, order: Sequence[int] | None = None, *,
                  tiff: bool | None = True, shape: tuple | None = None) -> tuple[list[int] | None, str | None]:
    """The two channels a well is read from, for :func:`read_image` and :class:`devolens.predict.tiled.RowReader`:
    :func:`well_channel_order` (``order``, else a TIFF's channel names; ``tiff`` None: a file without them, HDF5),
    None for the first two by position. A PNG, JPEG or BMP (``tiff`` False) is read by its colours, or by
    ``order`` (its colours numbered red 0, green 1, blue 2, as in an RGB TIFF: ``n_channels`` its colours, as
    :func:`read_colour_image` gives them with ``order``).

    Raises
    ------
    DevolensError
        Not two channels (``shape``, as the file holds it, in the message) and none chosen; one channel (a grey
        image); an ``order`` naming a channel the image lacks.
    """
    if tiff is False:
        if order is None:
            return None, None
        if n_channels < 3:  # a grey image (with alpha): one channel whatever is chosen
            raise one_channel_error(path)
        return well_channel_order(path, n_channels, order)
    found, note = well_channel_order(path, n_channels, order) if tiff or order is not None else (None, None)
    if found is None and n_channels == 1:
        raise one_channel_error(path, shape)
    if found is None and n_channels != 2:
        example = f"e.g. {channels_value('0,1')}"
        if tiff and n_channels in (3, 4) and colour_tiff(path):  # colours: not 0,1 (red, empty green)
            example = f"red 0, green 1, blue 2: Hoechst in blue and Draq7 in red is {channels_value('2,0')}"
        raise DevolensError(
            f"expected 2 channels (Hoechst, Draq7) in a (C, H, W) image, got shape {tuple(shape or (n_channels,))}"
            + (f": choose its Hoechst and Draq7 channels with {channels_option()} (0-based, {example}"
               f"{channels_aside()})" if n_channels > 2 else ""), path=path)
    return found, note


def colour_tiff_page(page) -> bool:
    """Whether a TIFF page holds colour pixels: photometric RGB or YCbCr with its samples interleaved
    (``H x W x 3|4``, planar configuration CONTIG: what cameras, scanners and image editors write). The one
    predicate of the RGB TIFF colour rule (Hoechst from blue, Draq7 from red), for ``tile``
    (:func:`devolens.data.tiling.read_image`, :func:`well_channels`) and ``segment livedead``
    (:class:`devolens.predict.tiled.RowReader`). A planar ``(3|4, H, W)`` TIFF (SEPARATE: what
    ``tifffile.imwrite`` makes of a stack of 3 or 4 channels by default) is a stack of channels: not by colour."""
    return (int(page.photometric) in (2, 6)
            and int(getattr(page, "planarconfig", 1) or 1) == int(tifffile.PLANARCONFIG.CONTIG))


def colour_tiff(path: str | Path) -> bool:
    """:func:`colour_tiff_page` of a TIFF's first page (False when unreadable: its reader says what is wrong)."""
    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tf:
            return colour_tiff_page(tf.pages[0])
    except Exception:  # unreadable: its reader says what is wrong
        return False



#: a colour image whose green holds more than this fraction of its red or blue signal (99th percentiles; a JPEG's
#: colour subsampling leaks ~12 % of sharp red or blue edges into green) has no
#: safe reading as Hoechst (blue) and Draq7 (red): a grey image, a cyan Hoechst, an ordinary photograph
GREEN_SIGNAL = 0.25


def read_colour_image(path: str | Path, channels: int | None = 2, order: Sequence[int] | None = None) -> np.ndarray:
    """A well image saved as PNG, JPEG or BMP (read by :func:`devolens.io.images.read_image`), for ``channels``
    2 as a ``(2, H, W)`` array in its own dtype: Hoechst from the blue of an RGB image, Draq7 from its red, as a
    two-colour composite shows them (green must be empty). With ``order`` (``--channels``: the colours chosen, red
    0, green 1, blue 2) every colour channel instead, ``(C, H, W)``, for :func:`well_channels` to check the choice
    and its caller to take them (green may hold signal then: a third stain, Calcein say). Other ``channels``: the
    image as read (``(H, W)`` or ``(H, W, C)``).

    Raises
    ------
    DevolensError
        Unreadable file; for ``channels`` 2, a grey image (one channel) or, without ``order``, a colour image whose
        green holds signal (which colour is Hoechst and which Draq7 cannot be told).
    """
    from devolens.io.images import read_image as read_any

    path = Path(path)
    arr = np.asarray(read_any(path))
    if channels != 2:
        return arr
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] < 3):
        raise one_channel_error(path)
    if arr.ndim != 3 or arr.shape[-1] > 4:
        raise DevolensError(f"expected an RGB image (Hoechst in blue, Draq7 in red), got shape {arr.shape}", path=path)
    red, green, blue = (arr[..., k] for k in range(3))
    if np.array_equal(red, green) and np.array_equal(green, blue):
        raise DevolensError(f"a grey image (red, green and blue equal) holds one channel; a well needs two "
                            f"(Hoechst, Draq7): {SAVE_WELL}", path=path)
    if order is not None:
        return np.ascontiguousarray(np.moveaxis(arr, -1, 0))
    top = [float(np.percentile(c, 99)) for c in (red, green, blue)]
    if top[1] > GREEN_SIGNAL * max(top[0], top[2]):
        raise DevolensError("a colour image with signal in green: which colour holds Hoechst and which Draq7 cannot "
                            "be told (read by default: Hoechst in blue, Draq7 in red, green empty); choose them with "
                            f"{channels_option()} (0-based: red 0, green 1, blue 2; Hoechst in blue and Draq7 in red "
                            f"is {channels_option('2,0')}{channels_aside()}), or {SAVE_WELL}", path=path)
    return np.stack([blue, red])

