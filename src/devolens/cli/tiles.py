"""Giant images and live/dead wells: ``devolens simulate well``, ``devolens tile``,
``devolens segment livedead``.

``simulate well`` is added to the ``simulate`` group of :mod:`devolens.cli.simulate`;
``segment`` is created here when the app has none yet and kept as :data:`segment_app`, so
that other areas (nuclei, membrane) add their commands to the same group.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperGroup

from devolens.cli._common import (DEVICE_HELP, FAST_HELP, PRECISION_CHOICE, PRECISION_HELP, THREADS_HELP, apply_threads,
                                  choice, device_option, same_file)

segment_app: typer.Typer | None = None

KEEP_CHOICES = ("mixed", "all")
COMPRESSIONS = ("lzf", "gzip", "none")
#: the names of a tile store (``train`` and ``evaluate`` take a file of these as a store)
STORE_SUFFIXES = (".h5", ".hdf5")
#: `tile make --tile`'s least (devolens.data.tiling.MIN_TILE: not imported here, it imports h5py)
MIN_TILE = 8
#: the record ``segment livedead`` writes beside its outputs (how they were made)
LIVEDEAD_RECORD = "livedead.json"
#: what ``segment livedead`` writes into its output folder: one well's labels.tif (probs.tif with --probabilities,
#: instances.tif with --instances), a folder of wells' labels/ (probs/, instances/), and for either the tables,
#: overlays/ and the record. An earlier run's entries of these names go when a run replaces it (a plate's labels/
#: does not stay beside one well's labels.tif)
LIVEDEAD_OUTPUTS = ("labels.tif", "labels", "objects.csv", "counts.csv", "probs.tif", "probs", "instances.tif",
                    "instances", "overlays", LIVEDEAD_RECORD)
#: the subfolders of a plate's --out that a rerun replaces whole, and the ending of the names written there after
#: the well's name
LIVEDEAD_FOLDER_FILES = {"labels": "_labels.tif", "probs": "_probs.tif", "instances": "_instances.tif",
                         "overlays": "_overlay.png"}
#: the longest side of a well's overlay PNG (and of ``segment nuclei``'s and ``segment membrane``'s): a larger image
#: is drawn shrunk by a whole factor (a 100,000-pixel scan would make an RGB image of 30 GB)
OVERLAY_SIDE = 4096
#: the overlays' outlines: live nuclei green, dead magenta (segment nuclei's outline colour)
LIVE_COLOUR, DEAD_COLOUR = (0, 255, 0), (255, 0, 255)
#: the memory `simulate well` takes a pixel, for its --help (devolens.render.wells.WELL_PIXEL_BYTES: not imported
#: here, it imports scipy and pandas)
WELL_PIXEL_BYTES = 60
#: `simulate well --size`'s least side, for its --help (devolens.render.wells.MIN_WELL, which checks it)
MIN_WELL = 8


# ----------------------------------------------------------------------------------------
# helpers

#: how a well saved as PNG, JPEG or BMP is read (devolens.data.tiling.read_colour_image)
_COLOUR_WELL = ("an RGB PNG, JPEG or BMP with Hoechst in blue and Draq7 in red (green empty: a grey image, or "
                "green signal without --channels, is refused; 8-bit values are read as counts / 257, so a "
                "contrast-stretched export changes the results)")


#: --channels of segment livedead and tile make
_CHANNELS_HELP = ("Which channels of a well TIFF hold Hoechst (every nucleus) and Draq7 (dead nuclei): H,D, 0-based "
                  "(1,0: Draq7 saved first; 0,2: two of three channels; an RGB image's red 0, green 1, blue 2: TIFF, "
                  "PNG or JPEG). Default: as the file's channel names say (OME-TIFF, ImageJ: Hoechst/DAPI, "
                  "DRAQ7/PI/SYTOX; a note says so), an RGB TIFF without names by its colours (Hoechst blue, Draq7 "
                  "red: 2,0), else Hoechst first.")


def _parse_channels(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        order = [int(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        order = []
    if len(order) != 2 or len(set(order)) != 2 or min(order) < 0:
        raise typer.BadParameter(f"expected two different channel indices H,D, e.g. 1,0; got {text!r}",
                                 param_hint="--channels")
    return order


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = text.lower().replace("*", "x").split("x")
        size = (int(h), int(w))
    except ValueError:
        raise typer.BadParameter(f"expected HxW in pixels, e.g. 2700x3600; got {text!r}", param_hint="--size")
    from devolens.render.wells import well_size_problem

    problem = well_size_problem(*size)  # (the library's limit and words)
    if problem:
        raise typer.BadParameter(problem, param_hint="--size")
    return size


def _tiff_into(tmp: Path, arr, axes: str, path: Path, options: Optional[dict] = None) -> None:
    """Write ``arr`` as a TIFF to ``tmp``, :func:`devolens.io.atomic.atomic_path`'s temporary file for ``path``
    (a short write told as a full disk, naming ``path``); ``options``: tifffile's, instead of ``axes`` alone."""
    import tifffile

    try:
        tifffile.imwrite(tmp, arr, **(options or {"metadata": {"axes": axes}, "photometric": "minisblack"}))
    except OSError as exc:
        if exc.errno is not None:  # (atomic_path names a full disk with an errno)
            raise
        # a short write (numpy's "N requested and M written", which tifffile raises without an errno)
        raise _short_write(tmp, arr.nbytes, path) from None


def _short_write(tmp: Path, nbytes: int, path: Path) -> Exception:
    """The error of a write of ``nbytes`` to ``tmp`` (for ``path``) that came out short: a full disk, as a rule
    (told while ``tmp`` still takes its space)."""
    import errno
    import shutil

    from devolens.errors import DevolensError
    from devolens.io.atomic import cannot_write_errno

    try:
        if shutil.disk_usage(tmp.absolute().parent).free < nbytes:  # (os.statvfs: not on Windows)
            return cannot_write_errno(errno.ENOSPC, path)
    except OSError:
        pass
    return DevolensError("cannot write output: the file came out short (disk full or quota exceeded?)", path=path)


def _show_warnings():
    """Context manager: library warnings (e.g. dtype conversion) become one-line ``warning:`` lines, printed at its
    end, how a well's channels were chosen (:class:`~devolens.errors.ReadNote`) ``note:`` lines; it yields the list
    of the warnings caught so far (``warnings.WarningMessage``)."""
    import contextlib
    import warnings

    from devolens.cli._common import console, note
    from devolens.errors import ReadNote

    @contextlib.contextmanager
    def cm():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            try:
                yield caught
            finally:
                for w in caught:
                    if issubclass(w.category, ReadNote):
                        note(str(w.message))
                    elif issubclass(w.category, UserWarning):
                        console.print(f"warning: {w.message}")

    return cm()


# ----------------------------------------------------------------------------------------
# devolens simulate well


#: the names simulate well's --out and --labels take: it writes TIFFs (a hyperstack, a label image) whatever the name
WELL_SUFFIXES = (".tif", ".tiff")


def simulate_well_command(
    out: Path = typer.Option(..., "--out", "-o", help="Output image: (C, H, W) uint16 TIFF, channels Hoechst, Draq7 "
                             "(an ImageJ hyperstack whose channels are named so: Fiji opens 2 channels; an OME "
                             "BigTIFF past 4 GB). Existing files (this image, --labels, --objects, the record) are "
                             "replaced, all four together."),
    labels: Path = typer.Option(
        ..., "--labels", help="Output label image: (H, W) uint8 TIFF, 0 background, 1 live, 2 dead."
    ),
    size: str = typer.Option(
        "2700x3600", "--size",
        help=f"Well size HxW in pixels, at least {MIN_WELL}x{MIN_WELL}. Simulating takes about {WELL_PIXEL_BYTES} "
        f"bytes of memory a pixel (2700x3600: 0.6 GB; 12000x8000: 5.8 GB): a well that would not fit in the memory available is "
        f"refused before it is drawn (exit 75; DEVOLENS_NO_MEMORY_CHECK=1 tries anyway).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; the same seed gives the same well."),
    dead_fraction: Optional[float] = typer.Option(
        None, "--dead-fraction", min=0.0, max=1.0, help="Fraction of dead nuclei (default: drawn from the seed)."
    ),
    density: Optional[float] = typer.Option(
        None, "--density", min=0.0,
        help="Nuclei per megapixel asked for (default: drawn from the seed, 150..1200). Nuclei that would overlap "
        "one placed before them are dropped, so the well holds fewer, the more so the denser, larger and more "
        "clustered they are (one seed: 400 of 500 kept, 1023 of 1900), and dead nuclei, smaller, are dropped less "
        "(its fraction dead comes out higher): the summary and the record give the density and fraction reached, "
        "and a note says when the well holds over 10 % fewer than --density asked, with about the most its nuclei's "
        "size allows.",
    ),
    objects: Optional[Path] = typer.Option(
        None, "--objects",
        help="Object table CSV (columns id, x, y, area, class, in_focus, radius; x, y the nucleus's centre in pixels, "
        "from 0 at the first pixel's centre, as segment's objects.csv counts them; radius the mean semi-axis in "
        "pixels; x, y and radius to 3 decimals); default: beside --out, named after "
        "it without its extension (--out w.tif writes w.objects.csv). A record of how the well was made is "
        "written beside --out too, w.json (command line, devolens version, seed, size, the dead fraction and "
        "density drawn or given, every appearance parameter, the counts).",
    ),
) -> None:
    """Simulate a stitched two-channel live/dead well with its ground truth."""
    import contextlib

    from devolens.cli._common import console, note
    from devolens.cli.identify import record_path
    from devolens.errors import DevolensError
    from devolens.io.atomic import TEXT_ERRORS, WRITE_ERRNOS, atomic_path, cannot_write
    from devolens.render.wells import OBJECTS_DECIMALS, simulate_well, well_tiff_options

    hw = _parse_size(size)
    obj_path = objects if objects is not None else out.with_name(out.stem + ".objects.csv")
    record = record_path(out)  # w.json beside w.tif (w.record.json for an --out named .json)
    outputs = {"--out": out, "--labels": labels, "--objects": obj_path, f"the record {record.name}": record}
    for p in outputs.values():
        if p.is_dir():
            raise DevolensError("is a folder; give a file name", path=p)
    # the three files are written one after the other: two options naming one file would leave only the last
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if same_file(outputs[a], outputs[b]):
                raise DevolensError(f"{a} and {b} name the same file; give each output its own name",
                                    path=outputs[b])
    # (after the folder and same-file checks, whose words say more of those mistakes)
    for option, path in (("--out", out), ("--labels", labels)):  # TIFF data under a .png name opens as nothing
        if path.suffix.lower() not in WELL_SUFFIXES:
            got = f"got {path.suffix!r}" if path.suffix else "got no extension"
            raise DevolensError(f"{option} must end in .tif or .tiff (simulate well writes TIFFs), {got}", path=path)
    well = simulate_well(seed=seed, size=hw, dead_fraction=dead_fraction, density=density)
    text = _well_record(well, seed=seed, size=hw, given={"dead_fraction": dead_fraction, "density": density},
                        outputs={"image": out, "labels": labels, "objects": obj_path})
    writers = {  # each writes its output's temporary file
        "--out": lambda tmp: _tiff_into(tmp, well.image, "CYX", out, well_tiff_options(well.image)),  # (channels named)
        "--labels": lambda tmp: _tiff_into(tmp, well.labels, "YX", labels),
        "--objects": lambda tmp: well.objects.round(OBJECTS_DECIMALS).to_csv(tmp, index=False,  # (as write_csv does)
                                                                             errors=TEXT_ERRORS),
        f"the record {record.name}": lambda tmp: tmp.write_text(text, encoding="utf-8", errors=TEXT_ERRORS),
    }
    # the four files all or none: each written to its temporary file, renamed in place only when all are written
    # (the last entered renamed first: the record last)
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(outputs[name])) for name in reversed(outputs)}
        for name, write in writers.items():
            try:
                write(tmp[name])
            except OSError as exc:  # a full disk named by the file that met it (not the innermost of the four)
                if exc.errno in WRITE_ERRNOS:
                    raise cannot_write(exc, outputs[name]) from None
                raise
    c = well.counts
    # the parameters that made it, drawn from the seed or given (recorded in the record too), and what it holds
    shown = [(dead_fraction, f"dead fraction {well.params.dead_fraction:.3f}"),
             (density, f"density {well.params.density:.0f} nuclei/megapixel asked")]
    drawn = [text for option, text in shown if option is None]
    given = [text for option, text in shown if option is not None]
    how = "; ".join(f"{word}: {', '.join(texts)}" for word, texts in (("drawn", drawn), ("given", given)) if texts)
    console.print(
        f"wrote {out} ({hw[0]}x{hw[1]}, 2 channels), {labels}, {obj_path}, {record}: "
        f"{c['live']} live, {c['dead']} dead nuclei, {well.density:.0f} per megapixel "
        f"(fraction dead {c['fraction_dead']:.3f}; {how})"
    )
    short = _density_note(well, density, dead_fraction)
    if short:
        note(short)


#: a well that holds this much less than the --density asked for gets a note (:func:`_density_note`)
DENSITY_SHORT = 0.1


def _density_note(well, asked: Optional[float], dead_fraction: Optional[float] = None) -> Optional[str]:
    """The note on a simulated ``well`` that holds over :data:`DENSITY_SHORT` fewer nuclei than the ``--density``
    ``asked`` (None: drawn from the seed, no note): nuclei overlapping one placed before them are dropped
    (:func:`devolens.render.wells.packing_limit`), dead ones less, so its fraction dead is said too, beside the
    ``--dead-fraction`` given (None: drawn)."""
    from devolens.render.wells import packing_limit

    if not asked or well.density >= (1 - DENSITY_SHORT) * asked:
        return None
    p, c = well.params, well.counts
    n = c["live"] + c["dead"]
    dead = (f"its fraction dead is {c['fraction_dead']:.3f} where {p.dead_fraction:.3f} was "
            f"{'drawn' if dead_fraction is None else 'asked'}")
    if n and round(c["fraction_dead"], 3) > round(p.dead_fraction, 3):  # (where it is lower: chance, a small count)
        dead = f"dead nuclei, smaller, are dropped less: {dead}"
    return (f"--density {asked:g}: the well holds {well.density:.0f} nuclei per megapixel, "
            f"{100 * (1 - well.density / asked):.0f} % fewer, as nuclei that would overlap one placed before them "
            f"are dropped (the more, the denser and more clustered they are); nuclei of this well's size (radius "
            f"{p.radius:.1f} px, drawn from the seed) fit at most about {packing_limit(p):.0f} per megapixel, and "
            f"asking for more only nears that slowly; " + (dead if n else "it holds no nuclei"))


def _well_record(well, *, seed: int, size: tuple[int, int], given: dict, outputs: dict) -> str:
    """The JSON record ``simulate well`` writes beside its outputs, as ``simulate embryo``'s ``.meta.json``: the
    command line, the devolens version (``devolens``, as every record names it, and ``devolens_version``, as
    ``simulate embryo``'s has it too), the outputs (absolute), the seed and size, the dead fraction and density the
    well has with ``drawn`` naming those drawn from the seed (the others given), every appearance parameter
    (``params``: :meth:`devolens.render.wells.WellParams.as_dict`) and the counts. ``given``: the options
    ``--dead-fraction`` and ``--density`` (None: drawn)."""
    from devolens.cli._common import json_number
    from devolens.provenance import command_line, record_text, version_keys

    params = well.params.as_dict()
    return record_text({
        "command": command_line("devolens simulate well"),
        **version_keys(),
        "outputs": {k: str(Path(v).absolute()) for k, v in outputs.items()},
        "seed": seed, "size": [int(size[0]), int(size[1])],
        "dead_fraction": params["dead_fraction"], "density": params["density"],
        "drawn": [k for k in ("dead_fraction", "density") if given.get(k) is None],
        # what the well holds: nuclei that would overlap one placed before them are dropped (fewer than asked)
        "reached": {"density": json_number(well.density), "dead_fraction": None if not
                    well.counts["live"] + well.counts["dead"] else json_number(well.counts["fraction_dead"])},
        "params": params,
        # no nuclei: no fraction dead (null, as livedead.json records it; simulate_well's counts say 0)
        "counts": {k: None if k == "fraction_dead" and not well.counts["live"] + well.counts["dead"] else
                   json_number(v, whole_as_int=True) for k, v in well.counts.items()},
    })


# ----------------------------------------------------------------------------------------
# devolens tile


class _TileGroup(TyperGroup):
    """``devolens tile IMAGE...`` (default command) and ``devolens tile stats FILE``.

    Anything that is not a sub-command name is handed to the hidden default command
    ``make``; ``--labels A B C`` (several values after one flag) is accepted as well as
    repeating ``--labels``.
    """

    default = "make"

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default] + list(args)
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage("devolens tile", "IMAGE... [--labels LABELS...] --out STORE.h5 [OPTIONS]")
        formatter.write_usage("devolens tile", "stats STORE.h5", prefix="       ")


def _spread_labels(args: list[str]) -> list[str]:
    """Rewrite ``--labels a b c`` as ``--labels a --labels b --labels c``."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--labels":
            out.append(a)
            i += 1
            first = True
            while i < len(args) and not args[i].startswith("-"):
                if not first:
                    out.append("--labels")
                out.append(args[i])
                first = False
                i += 1
            continue
        out.append(a)
        i += 1
    return out


class _MakeCommand(typer.core.TyperCommand):
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _spread_labels(list(args)))


tile_app = typer.Typer(
    cls=_TileGroup,
    help=(
        "Cut large images into tiles in an HDF5 store, or show a store's class statistics.\n\n"
        "devolens tile IMAGE... [--labels LABELS...] --out tiles.h5 [--tile 160] [--stride 80] "
        "[--keep mixed|all] [--ignore 255] [--append]\n\n"
        "devolens tile stats tiles.h5\n\n"
        "Run `devolens tile make --help` for the tiling options."
    ),
    no_args_is_help=True,
)


def _folder_suffix(folder: Path) -> str:
    """The suffix most of a folder's image files have, as written (``.tif``, ``.PNG``), for a pattern that names
    them; ``.tif`` when it holds none."""
    from collections import Counter

    from devolens.io.frames import FOLDER_SUFFIXES

    try:
        found = Counter(p.suffix for p in folder.iterdir()
                        if p.suffix.lower() in FOLDER_SUFFIXES and not p.name.startswith(".") and p.is_file())
    except OSError:
        return ".tif"
    return found.most_common(1)[0][0] if found else ".tif"


@tile_app.command("make", cls=_MakeCommand)
def tile_make_command(
    images: List[Path] = typer.Argument(..., help="Images to tile: (C, H, W) uint16 TIFF (C=2: Hoechst, Draq7), or "
                                        f"{_COLOUR_WELL}; an RGB TIFF without channel names is read by its colours "
                                        "likewise, as `segment livedead` reads it."),
    labels: Optional[List[Path]] = typer.Option(
        None, "--labels",
        help="Label images (H, W) uint8 (0 background, 1 live, 2 dead; --ignore's value: unannotated), TIFF or PNG "
        "(not JPEG: its compression changes the labels), one per image in the same order; give them after one "
        "--labels or repeat the flag.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="HDF5 tile store to write, .h5 or .hdf5 (replaced unless "
                             "--append). Runs "
                             "writing one store take turns (a lock file .NAME.lock beside it): a second run waits "
                             "for the first to finish, so that --append runs started together add all their images. "
                             "Its coords (N, 2) hold each tile's top-left corner as (y, x), row then column in "
                             "pixels: the reverse of the x, y of every CSV devolens writes (the dataset's attribute "
                             "axes says \"yx\")."),
    tile: int = typer.Option(160, "--tile", min=MIN_TILE, help="Tile side in pixels (at least 8)."),
    stride: int = typer.Option(80, "--stride", min=1, help="Step between tiles in pixels (tile/2 = 50% overlap); "
                               "the last row and column of tiles lie flush with the bottom and right edges, so that "
                               "every pixel is in a tile (a --stride larger than --tile leaves pixels between the "
                               "tiles in none, a sparse sample, with a warning). An image smaller than the tile is "
                               "refused."),
    keep: str = typer.Option(
        "mixed", "--keep", callback=choice(*KEEP_CHOICES),
        help="'mixed': keep only tiles holding more than one class; 'all': keep every tile."
    ),
    append: bool = typer.Option(False, "--append", help="Add the tiles to an existing store instead of replacing it. "
                                "--tile, --stride, --keep and --ignore must be the store's (refused otherwise: its attributes "
                                "describe every tile in it); its --chunk and --compression are kept."),
    compression: str = typer.Option("lzf", "--compression", callback=choice(*COMPRESSIONS), help="Chunk compression: lzf (fast; h5py's own filter, which HDF5 tools outside Python (h5dump, MATLAB, R, Fiji) read only with a plugin), gzip (level 1, read everywhere) or none."),
    chunk: int = typer.Option(1000, "--chunk", min=1, help="Samples per HDF5 chunk (what a streaming reader fetches; "
                              "fewer for large tiles: at most 256 MiB of samples a chunk)."),
    channels: Optional[str] = typer.Option(None, "--channels", help=_CHANNELS_HELP + " The same for every image."),
    ignore: Optional[int] = typer.Option(
        None, "--ignore", metavar="VALUE",
        help="The label value that marks unannotated pixels (e.g. 255; 3..255, beyond the class ids; nnU-Net's "
        "'ignore' label): allowed in the label images and kept in the tiles, but no class: not counted in "
        "class_counts (as background or a class), nor for --keep mixed; `devolens train` leaves those pixels out "
        "of its losses and its validation scores. Recorded in the store: --append takes the same value. "
        "Default: none (every label value must be a class id)."),
) -> None:
    """Tile images (and labels) into an HDF5 store: images (N,C,T,T), labels (N,T,T), class_counts, source, coords."""
    from devolens.cli._common import check_out, console, note, progress_bar
    from devolens.data.tiling import tile_to_h5
    from devolens.errors import DevolensError
    from devolens.provenance import command_line

    if keep not in KEEP_CHOICES:
        raise typer.BadParameter("must be 'mixed' or 'all'", param_hint="--keep")
    if compression not in COMPRESSIONS:
        raise typer.BadParameter("must be lzf, gzip or none", param_hint="--compression")
    order = _parse_channels(channels)
    for source in (*images, *(labels or ())):  # a folder: its files are meant (read as such, "Is a directory")
        if source.is_dir():
            raise DevolensError(f"a folder, not an image file: give the image files it holds (e.g. "
                                f"{source / ('*' + _folder_suffix(source))})", path=source)
    for source in (*images, *(labels or ())):  # the store replaces --out: never one of the inputs
        check_out(out, source)
    if out.suffix.lower() not in STORE_SUFFIXES:  # what `train` and `evaluate` take for a tile store
        raise DevolensError("--out must be an HDF5 tile store named .h5 or .hdf5", path=out)
    with _show_warnings(), progress_bar("tiling (tile positions)") as cb:  # counted row of tiles by row of tiles
        summary = tile_to_h5(
            images, out, labels or None, tile=tile, stride=stride, keep=keep, append=append,
            compression=None if compression == "none" else compression, chunk=chunk, progress=cb, order=order,
            waiting=note, ignore=ignore, command=command_line("devolens tile"),
        )
    added = sum(summary.added)
    looked = sum(summary.considered)
    console.print(
        f"wrote {out}: +{added} tiles of {looked} positions from {len(images)} image(s); "
        f"{summary.n_tiles} tiles from {len(summary.sources)} image(s) in the store"
    )


@tile_app.command("stats")
def tile_stats_command(
    store: Path = typer.Argument(..., help="HDF5 tile store written by `devolens tile`."),
) -> None:
    """Print the class frequencies (pixels) and balanced class weights of a tile store."""
    from devolens.cli._common import out as stdout
    from devolens.data.tiling import store_stats

    df = store_stats(store)
    stdout.print(f"{store}: {df.attrs['n_tiles']} tiles from {len(df.attrs['sources'])} image(s)")
    stdout.print(f"{'class':>5}  {'name':<12}{'pixels':>14}{'frequency':>11}{'tiles':>9}{'weight':>9}")
    for r in df.itertuples(index=False):
        stdout.print(f"{r[0]:>5}  {r.name:<12}{r.pixels:>14d}{r.frequency:>11.5f}{r.tiles:>9d}{r.weight:>9.4f}")
    stdout.print("class weights: " + ",".join(f"{w:.4f}" for w in df["weight"]))
    if df.attrs.get("ignore") is not None:
        stdout.print(f"ignore: label {df.attrs['ignore']} marks {df.attrs['ignored']} pixels of the tiles, left out "
                     "of these counts, the training losses and the scores")


# ----------------------------------------------------------------------------------------
# devolens segment livedead


def segment_livedead_command(
    image: Path = typer.Argument(..., help="Well image: (C, H, W) uint16 TIFF, C=2 (Hoechst, Draq7); any size, read "
                                 "in bands (bounded memory): uncompressed, compressed and tiled TIFFs alike (an OME "
                                 "pyramid at its full resolution); an RGB TIFF without channel names by its colours "
                                 "(Hoechst blue, Draq7 red). Or a (C, H, W) HDF5 dataset (--dataset), also in bands. "
                                 f"Or {_COLOUR_WELL}, read whole. Or a folder of wells (a plate): its TIFF, PNG, JPEG "
                                 "and BMP files, each one well, in natural order (A2 before A10; hidden files and "
                                 "*_labels files left out), all checked before any is segmented."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder. One well: labels.tif (uint8: 0 background, 1 "
                             "live, 2 dead); a folder: labels/WELL_labels.tif. Either: objects.csv (well; id: 1..n "
                             "in each well, the nucleus's value in instances.tif (--instances); x, y: centroid, px, "
                             "which may lie outside a curved nucleus; area, px; class: 1 live, 2 dead; one row per "
                             "nucleus: a connected region of one class, so touching nuclei of one class are one row, "
                             "with a warning where many regions are several nuclei large; x_um, y_um, area_um2: "
                             "the same in µm, µm², at --pixel-size, else from the well's calibration, where a "
                             "well's file records one, empty for the others), counts.csv (well, live, dead, fraction_dead: one row per well), "
                             "overlays/WELL_overlay.png (see --overlay), and "
                             "livedead.json: how they were made "
                             "(command line, devolens and torch versions, model, the sha256 of its weights and of "
                             "all its files, the precision and device the network ran in, the sha256 of the input, "
                             "options, counts and warnings printed, per well too, with the channels read as Hoechst "
                             "and Draq7 and what chose them: names, colours, position or --channels). WELL is the "
                             "file's name without its extension (the whole name where two files share one). An "
                             "--out holding such outputs "
                             "that segment livedead did not write is refused; an earlier run's are replaced whole, "
                             "labels/, overlays/, probs/ and instances/ with them (files of your own there are "
                             "refused)."),
    model: str = typer.Option("livedead", "--model", help="Zoo model name, a live/dead training run's folder "
                              "(`devolens train --out`: its best checkpoint) or its best.safetensors."),
    window: int = typer.Option(
        512, "--window", min=32,
        help="Sliding-window side in pixels; rounded up to the multiple of 2^depth that the network needs "
        "(8 for the zoo's 3-level livedead model, 32 for a 5-level U-Net).",
    ),
    overlap: int = typer.Option(
        64, "--overlap", min=0, help="Overlap between windows in pixels (blended smoothly); below --window."
    ),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Windows per forward pass."),
    fast: bool = typer.Option(True, "--fast/--no-fast", help=FAST_HELP),
    precision: str = typer.Option("auto", "--precision", callback=PRECISION_CHOICE, help=PRECISION_HELP),
    min_area: int = typer.Option(
        12, "--min-area", min=0, help="Drop objects smaller than this many pixels (an object: a 4-connected region "
        "of one class, pixels sharing an edge, not only a corner): no row in objects.csv, background in labels.tif "
        "and instances.tif, not counted. A separate population of specks kept (debris counted as nuclei: many "
        "objects under some size, few just above it) is warned of, with the --min-area that leaves it out."),
    probabilities: bool = typer.Option(
        False, "--probabilities", help="Also write probs.tif (a folder: probs/WELL_probs.tif): (3, H, W) uint8 class "
        "probabilities x255, an ImageJ hyperstack of 3 channels named background, live, dead (not a Z stack of 3 "
        "slices), calibrated as labels.tif and deflate-compressed as it is; over 4 GB, an OME BigTIFF with those "
        "channel names."
    ),
    instances: bool = typer.Option(
        False, "--instances", help="Also write instances.tif (a folder: instances/WELL_instances.tif): each nucleus's "
        "pixels hold its id in objects.csv, 0 elsewhere (nuclei under --min-area too); uint16, 2 bytes a pixel "
        "(uint32, 4 bytes, past 65535 nuclei, with a note), calibrated as labels.tif, written in bands (bounded memory), "
        "then deflate-compressed, as labels.tif and segment nuclei's label TIFFs."),
    overlay: bool = typer.Option(
        True, "--overlay/--no-overlay", help="Write overlays/WELL_overlay.png: the Hoechst channel in grey (1st to "
        f"99.8th percentile), live nuclei outlined in green, dead in magenta; at the well's size, or shrunk to "
        f"{OVERLAY_SIDE} px on its longer side (a note says so: small nuclei may lose their outline). Drawn from "
        "the Hoechst channel kept as the well is read for its segmentation (the well is not read again)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
    channels: Optional[str] = typer.Option(
        None, "--channels", help=_CHANNELS_HELP + " Read by position, a well with nearly every nucleus dead (what "
        "swapped channels give) gets a warning. The same for every well of a folder."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    pixel_size: Optional[float] = typer.Option(None, "--pixel-size", metavar="UM", help=(
        "Micrometres per pixel of every well (one image or a folder's), over a file's own calibration (a note says "
        "where they differ; PNG, JPEG, BMP and HDF5 record none): labels.tif (probs.tif, instances.tif) carry it and "
        "objects.csv gets x_um, y_um and area_um2 columns, as segment nuclei's --pixel-size. It changes no "
        "segmentation.")),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", metavar="NAME",
        help="For an HDF5 IMAGE: the dataset holding the well (C, H, W); default: the one named image, images or "
        "data, else its only 3-D dataset (several and none named: refused with their list)."),
) -> None:
    """Segment live and dead nuclei in a well of any size (tiled, bounded memory), or in each well of a folder."""
    from devolens.cli._common import console, note, progress_bar
    from devolens.errors import DevolensError
    from devolens.predict import livedead

    # options first: nothing is created and no model is loaded for a run that cannot work
    if overlap >= window:
        raise DevolensError(f"--overlap ({overlap}) must be smaller than --window ({window})")
    order = _parse_channels(channels)
    # --pixel-size as segment nuclei checks it (a positive, finite number of micrometres per pixel)
    given_pixel = livedead._given_pixel(pixel_size, "--pixel-size")  # (x, y, "µm"), what the labels carry
    # --precision checked, and --no-fast (fp32, as its help says) with --precision int8 or bf16 refused, as segment
    # nuclei refuses them (the network ran int8 then, --no-fast unheeded)
    from devolens.cli.predict import _check_network_options

    _check_network_options(precision, "torch", fast)
    device = device_option(device)
    _check_livedead_out(out, image)
    plate = image.is_dir()
    wells = _plate_wells(image, order, dataset) if plate else [(_well_name(image), image)]
    # a plate's microscope files (.czi, .nd2), HEIC photos and videos, which are not read: named, as segment nuclei
    # names a folder's (they were left out without a word)
    left = plate_left_out(image) if plate else None
    apply_threads(threads)
    options = {"window": window, "overlap": overlap, "batch_size": batch_size, "fast": fast, "precision": precision,
               "min_area": min_area}
    # a plate's wells share one model, loaded once (and before anything is written); one well: loaded after its check
    predictor = livedead.LiveDeadPredictor.load(model, device=device, **options) if plate else None
    ran: list = []  # (one well: the model segment_livedead_file loaded, for the record)
    results: list[dict] = []  # per well: its name, file, counts and notes
    shrunk: list[str] = []  # the notes of overlays drawn smaller than their well
    wide: list[str] = []  # the notes of instance TIFFs that are uint32 (over 65535 nuclei), as segment nuclei says
    microns: dict = {}  # per well: its micrometres per pixel (x, y), None where its file records none
    # built in a hidden sibling folder (a plate's wells written straight into it, staged only there): an error, in
    # any well, leaves neither a half-filled nor an empty --out, and a previous result in --out stays whole until the
    # new one is complete
    from devolens.io.atomic import staged_folder

    # an earlier run's entries this one does not write (its probs.tif, a plate's labels/) go too
    with staged_folder(out, owned=LIVEDEAD_OUTPUTS) as stage, _show_warnings() as caught, \
            progress_bar("segmenting wells" if plate else "segmenting") as cb:
        for i, (name, path) in enumerate(wells):
            seen = len(caught)
            # the overlay's Hoechst picture, kept as the well is read for its segmentation (not read again)
            picture = livedead.ShrunkHoechst(OVERLAY_SIDE) if overlay else None
            read: dict = {}  # the channels read as Hoechst and Draq7, and what chose them (for the record)
            if plate:  # written straight into the plate's stage: labels/, probs/, rows of the tables
                labels = stage.tmp / "labels" / f"{name}_labels.tif"
                probs = stage.tmp / "probs" / f"{name}_probs.tif" if probabilities else None
                inst = stage.tmp / "instances" / f"{name}_instances.tif" if instances else None
                for made in (labels, probs, inst):
                    if made is not None:
                        made.parent.mkdir(exist_ok=True)
                counts = predictor.predict_into(path, labels, tables=stage.tmp, probabilities=probs,
                                                progress=_well_progress(cb, i, len(wells)), channels=order,
                                                well=name, shrunk=picture, instances=inst, read=read,
                                                pixel_size=pixel_size)
            else:
                labels = stage.tmp / "labels.tif"
                counts = livedead.segment_livedead_file(
                    path, stage.tmp, model=model, **options, write_probabilities=probabilities, progress=cb,
                    channels=order, device=device, dataset=dataset, well=name, shrunk=picture,
                    write_instances=instances, loaded=ran, read=read, pixel_size=pixel_size,
                    compress=False,  # (compressed below, once the overlay has read labels.tif in place)
                )
            notes = [str(w.message) for w in caught[seen:] if issubclass(w.category, UserWarning)]
            if overlay:
                said = _livedead_overlay(picture, labels, stage.tmp / "overlays" / f"{name}_overlay.png")
                if said:
                    notes.append(said)
                    shrunk.append(said)
            inst = (inst if plate else stage.tmp / "instances.tif") if instances else None
            # the well's TIFFs, as segment_livedead_file compresses them, once the overlay has read labels.tif in place
            livedead.compress_outputs(labels, probs if plate else stage.tmp / "probs.tif", inst)
            from devolens.cli.predict import uint32_words
            from devolens.io.microns import um_per_pixel

            if inst is not None and counts["live"] + counts["dead"] > 65535:  # (an id per object)
                wide.append(f"{name}: " + uint32_words("nuclei", str(inst.relative_to(stage.tmp))))
                notes.append(wide[-1])
            from devolens.io.stacks import pixel_size as read_pixel_size

            # the labels' calibration, for livedead.json: --pixel-size as given (what they were written with, not
            # its rational resolution tags read back), else the file's own that they carry
            c = given_pixel or (read_pixel_size(labels) if labels.is_file() else None)
            microns[name] = um_per_pixel(c)  # (objects.csv's micron columns)
            # "from" in segment.json's words (its labels_pixel_size): the file's own calibration or --pixel-size
            results.append({"well": name, "file": path.name, **counts, "notes": notes, "channels_read": read,
                            "labels_pixel_size": None if c is None else {
                                "x": c[0], "y": c[1], "unit": c[2],
                                "from": "calibration" if pixel_size is None else "--pixel-size"}})
            if plate:
                cb(i + 1, len(wells))
        from devolens.io.atomic import write_text

        # (as segment: the columns where a pixel size is known; one well's, predict_file wrote them already)
        if plate and any(um is not None for um in microns.values()):
            _add_micron_columns(stage.tmp / "objects.csv", microns)
        # --pixel-size over a well's own, different calibration, or coarse for a microscope: segment nuclei's notes,
        # in its words (read once the wells have been: each was opened, so its header reads)
        pixel_notes = _pixel_size_notes(pixel_size, image)
        total = _total_counts(results)
        if predictor is None and ran:  # one well: the model segment_livedead_file loaded (after the well's check)
            predictor = ran[0]
        write_text(stage.tmp / LIVEDEAD_RECORD, _livedead_record(
            image, model, total, network=predictor, files=[path for _, path in wells] if plate else None, options={
                **options, "probabilities": probabilities, "instances": instances, "overlay": overlay,
                "threads": threads,
                "channels": None if order is None else list(order), "device": device, "dataset": dataset,
                "pixel_size": pixel_size},
            notes=[str(w.message) for w in caught if issubclass(w.category, UserWarning)] + shrunk + wide
            + ([left] if left else []) + pixel_notes, wells=results))
    fraction = total["fraction_dead"]
    # a well without objects has no dead fraction (NaN; counts.csv leaves it empty): said in words, not 'nan'
    said = "no objects: fraction dead none" if fraction != fraction else f"fraction dead {fraction:.3f}"
    if plate:
        drawn = ", overlays/" if overlay else ""
        more = ("".join(f", {k}/" for k, asked in (("probs", probabilities), ("instances", instances)) if asked)
                + drawn)
        console.print(f"wrote {out}: {len(results)} wells, labels/, objects.csv, counts.csv (a row per well){more}: "
                      f"{total['live']} live, {total['dead']} dead in all ({said})")
    else:
        drawn = f", overlays/{results[0]['well']}_overlay.png" if overlay else ""
        more = ("".join(f", {k}.tif" for k, asked in (("probs", probabilities), ("instances", instances)) if asked)
                + drawn)
        console.print(f"wrote {out}/labels.tif, objects.csv, counts.csv{more}: {total['live']} live, "
                      f"{total['dead']} dead ({said})")
    for text in shrunk + wide + ([left] if left else []) + pixel_notes:
        note(text)


def _pixel_size_notes(pixel_size: Optional[float], image: Path) -> list[str]:
    """What ``segment nuclei`` notes of a ``--pixel-size`` given (:func:`devolens.cli.predict._carried_notes`), for
    the wells of ``image`` (a well, or a folder's: :func:`devolens.io.frames.folder_files`, the files
    :func:`_plate_wells` reads): used for the label images over a file's own, different calibration (more than 1 %
    apart), and coarse for a microscope image. Without ``note:`` (:func:`devolens.cli._common.note` says it), as
    ``livedead.json``'s notes hold them; [] without ``--pixel-size``."""
    if pixel_size is None:
        return []
    from devolens.cli.predict import _Calibrations, _carried_notes

    notes = _carried_notes(pixel_size, None, _Calibrations(image), None, set())
    return [text.removeprefix("note: ") for text in notes]


def _check_livedead_out(out: Path, image: Path) -> None:
    """Refuse an --out that is the input or a file, one of whose entries that the run replaces
    (:data:`LIVEDEAD_OUTPUTS`) is or holds the input, or one holding such entries that no ``segment livedead`` run
    wrote (no ``livedead.json`` there: another command's results, labels of one's own), as ``segment nuclei`` refuses
    an --out without its ``segment.json``; an earlier run's outputs are replaced whole. In a command, --out's lock
    is taken first and held until the command ends (:func:`~devolens.cli._common.hold_output_folder`): a second run
    writing it is refused now, before any well is read."""
    import os

    from devolens.cli._common import hold_output_folder, model_folder_words
    from devolens.errors import DevolensError

    hold_output_folder(out)
    if same_file(out, image):
        raise DevolensError("output would overwrite the input; --out is a folder, give a new folder name", path=out)
    if out.exists() and not out.is_dir():
        raise DevolensError("exists and is not a folder", path=out)
    holds = model_folder_words(out) if out.is_dir() else None
    if holds:  # (segment livedead --model RUN --out RUN: its results among the model's files)
        raise DevolensError(f"--out is {holds}: the outputs would be mixed with the model's files (and shared with "
                            "it); choose another --out", path=out)
    try:
        source = image.resolve()
    except OSError:
        source = None
    for name in LIVEDEAD_OUTPUTS:
        if same_file(out / name, image) or (source is not None and (out / name).resolve() in source.parents):
            raise DevolensError(f"output would overwrite the input ({name} in --out); choose another folder",
                                path=image)
    if not out.is_dir():
        return
    from devolens.cli._common import is_run_record

    if is_run_record(out / LIVEDEAD_RECORD, "segment livedead"):  # an earlier run's: files of one's own refused
        from devolens.cli._common import earlier_names, foreign_files, foreign_files_error

        wells = earlier_names(out / "counts.csv", "well")
        found = foreign_files(out, LIVEDEAD_FOLDER_FILES, None if wells is None else wells.__contains__)
        if found:
            raise foreign_files_error(out, found, "segment livedead")
        return
    clash = [name for name in LIVEDEAD_OUTPUTS if os.path.lexists(out / name)]
    if clash:
        raise DevolensError(f"--out already holds {', '.join(clash)} that devolens segment livedead did not write "
                            "(another command's results? labels of your own?) and would replace: choose another "
                            "folder", path=out)


#: the rows of objects.csv read at a time as its micron columns are added (a giant plate's table is not held whole)
_MICRON_ROWS = 200_000


def _add_micron_columns(table: Path, microns: dict) -> None:
    """Add ``x_um``, ``y_um`` and ``area_um2`` to ``segment livedead``'s objects.csv, as ``segment nuclei`` writes
    them (:func:`devolens.io.microns.micron_columns`: 3 decimals), each well's at its own pixel size (``microns``:
    well name -> micrometres per pixel (x, y), or None: empty cells, as segment gives a frame whose file records
    none). Called where a well records its pixel size: a plate's table then has one layout whatever its other wells
    record (without any, the table keeps its pixel columns alone, as segment's). From the table as written (x, y to 2 decimals), read in chunks and rewritten with its own cells kept as they are."""
    import pandas as pd

    from devolens.io.atomic import TEXT_ERRORS, atomic_path
    from devolens.io.microns import MICRON_COLUMNS, micron_columns

    with atomic_path(table) as tmp, pd.read_csv(table, dtype=str, keep_default_na=False,
                                                chunksize=_MICRON_ROWS) as chunks:
        first = True
        for chunk in chunks:
            for column in MICRON_COLUMNS:
                chunk[column] = None
            for well, rows in chunk.groupby("well", sort=False):
                for column, cells in micron_columns(rows, microns.get(well)).items():
                    chunk.loc[rows.index, column] = cells
            chunk.to_csv(tmp, mode="w" if first else "a", header=first, index=False, errors=TEXT_ERRORS)
            first = False


def _well_name(path: Path) -> str:
    """A well's name in the tables and output names: its file's name without the extension (``.ome.tif`` too)."""
    from devolens.io.frames import image_stem

    return image_stem(path)


def _plate_wells(folder: Path, order: list[int] | None, dataset: str | None) -> list[tuple[str, Path]]:
    """The wells of a folder, ``(name, path)`` in natural order (:func:`devolens.io.frames.folder_files`, as ``segment
    nuclei`` reads a folder), each checked to be readable as a well before any is segmented (a file that is not one
    stops the run at once, named, rather than after hours of wells). A name is the file's stem, or its whole name when
    two files share a stem (``A01.tif`` and ``A01.png``; ``A.tif`` and ``a.tif``, one name on macOS and Windows),
    whose outputs would otherwise replace each other."""
    import warnings

    from devolens.errors import DevolensError
    from devolens.io.frames import folder_files, unique_stems
    from devolens.predict.tiled import RowReader

    if dataset is not None:
        raise DevolensError("--dataset names the dataset of one HDF5 well; a folder's wells are TIFF, PNG, JPEG or "
                            "BMP files", path=folder)
    # HDF5 files are no members of a folder's frames (folder_files): a plate would run without them, silently
    h5 = sorted((p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".h5", ".hdf5")
                 and not p.name.startswith(".")), key=str.casefold)
    if h5:
        shown = ", ".join(h5[:3]) + (f" and {len(h5) - 3} more" if len(h5) > 3 else "")
        raise DevolensError(f"holds HDF5 files ({shown}), which a folder of wells does not read: segment each "
                            "HDF5 well on its own (with --dataset where it holds several), and move them out of "
                            "the folder of TIFF, PNG, JPEG or BMP wells", path=folder)
    files = folder_files(folder)
    if not files:
        left = plate_left_out(folder)
        from devolens.io.frames import _subfolders_hint

        raise DevolensError("no well images in this folder (TIFF, PNG, JPEG or BMP files)"
                            + (f"; {left}" if left else "") + _subfolders_hint(folder), path=folder)
    for path in files:
        try:
            with warnings.catch_warnings():  # the reading's notes are told as each well is segmented
                warnings.simplefilter("ignore")
                RowReader(path, channels=2, order=order).close()
        except DevolensError as exc:
            raise DevolensError(f"{exc.message} (every image file of a folder of wells is read as a well: move this "
                                "one out, or segment the wells one by one)", path=exc.path or path) from None
    return list(zip(unique_stems(files), files))


def plate_left_out(folder: Path) -> str | None:
    """What a folder of wells holds that is not read as wells, in the words of ``segment nuclei``'s note on a folder
    (:func:`devolens.io.frames.left_out_note`): microscope files (.czi, .nd2...: save them as OME-TIFF first), HEIC
    photos and videos, named, then the other files it skips (:func:`plate_skipped`: label images, ``*_labels``, left
    out by design, tables, records...), by kind; None where it holds none."""
    from devolens.io.frames import _left_out_words, folder_left_out

    found = folder_left_out(folder)
    words = _left_out_words({k: v for k, v in found.items() if k in ("vendor", "heic")})
    videos = found.get("video", [])
    if videos:
        names = ", ".join(p.name for p in videos[:3]) + (f" and {len(videos) - 3} more" if len(videos) > 3 else "")
        words.append(f"{len(videos)} video{'s' if len(videos) != 1 else ''} ({names}): not a well image")
    n = sum(len(found.get(k, ())) for k in ("vendor", "heic", "video"))
    said = [(f"{n} file{'s' if n != 1 else ''} of this folder {'is' if n == 1 else 'are'} not read as "
             f"{'a well' if n == 1 else 'wells'}: " + "; ".join(words))] if n else []
    skipped = plate_skipped(folder, found)
    if skipped:
        said.append(skipped)
    return "; ".join(said) or None


#: the kinds of files a folder of wells skips besides those :func:`plate_left_out` advises on, as named in its note
_SKIPPED_KINDS = {"labels": ("label image", "label images"), "mask": ("mask of an image beside it",
                                                                     "masks of images beside them"),
                  "output": ("earlier devolens output", "earlier devolens outputs"),
                  "other": ("file that is not an image", "files that are not images")}


def plate_skipped(folder: Path, found: Optional[dict] = None) -> str | None:
    """The other files of a folder of wells that are skipped, by kind, named (at most 3 a kind): label images
    (``*_labels``), masks of the images beside them, images an earlier devolens run wrote there and files that are
    not images (tables, records); None where there are none. Hidden files, folders, the HDF5 files a plate refuses and
    the files :func:`plate_left_out` names otherwise (``found``: :func:`devolens.io.frames.folder_left_out`) are not
    counted, nor the files continuing a multi-file OME-TIFF, which are read with the first."""
    import os

    from devolens.errors import listed
    from devolens.io.frames import FOLDER_SUFFIXES, _image_name, _natural_key, folder_files, folder_left_out

    found = folder_left_out(folder) if found is None else found
    wells = folder_files(folder)
    where = wells[0].parent if wells else folder
    read = {p.name for p in wells}
    told = {p.name for k in ("vendor", "heic", "video") for p in found.get(k, ())}
    masks = {p.name for p in found.get("mask", ())}
    outputs = {p.name for p in found.get("output", ())}
    kinds: dict[str, list[str]] = {}
    try:
        members = sorted((e.name for e in os.scandir(where) if not e.name.startswith(".") and e.is_file()),
                         key=_natural_key)
    except OSError:
        return None
    for name in members:
        suffix = os.path.splitext(name)[1].lower()
        if name in read or name in told or suffix in (".h5", ".hdf5"):
            continue
        if _image_name(name, labels=True):
            kind = "labels"
        elif name in masks:
            kind = "mask"
        elif name in outputs:
            kind = "output"
        elif suffix in FOLDER_SUFFIXES:  # an image read with another (a multi-file OME-TIFF's continuation)
            continue
        else:
            kind = "other"
        kinds.setdefault(kind, []).append(name)
    if not kinds:
        return None
    parts = []
    for kind in _SKIPPED_KINDS:
        names = kinds.get(kind)
        if names:
            shown = listed(names, 3)
            parts.append(f"{len(names)} {_SKIPPED_KINDS[kind][len(names) != 1]} ({shown})")
    n = sum(map(len, kinds.values()))
    return (f"skipped {n} file{'s' if n != 1 else ''} that {'is' if n == 1 else 'are'} not "
            f"{'a well image' if n == 1 else 'well images'}: " + ", ".join(parts))


def _well_progress(cb, i: int, n: int):
    """A well's progress (windows) as a fraction of the plate's (wells): the bar moves within a giant well too."""
    return lambda done, total: cb(i + (done / total if total else 0), n)


def _total_counts(results: list[dict]) -> dict:
    """The live and dead nuclei of all wells and their dead fraction (NaN without any nucleus)."""
    live, dead = sum(int(r["live"]) for r in results), sum(int(r["dead"]) for r in results)
    return {"live": live, "dead": dead, "fraction_dead": dead / (live + dead) if live + dead else float("nan")}


def _livedead_overlay(shrunk, labels: Path, png: Path) -> str | None:
    """Write a well's overlay: its Hoechst channel in grey (1st to 99.8th percentile) with the outlines of live
    nuclei in green and dead ones in magenta (``segment nuclei``'s drawing), at the well's size, or shrunk by a whole
    factor to at most :data:`OVERLAY_SIDE` pixels on its longer side (every n-th row and column), then the note that
    says so (returned; None at full size). ``shrunk``: the :class:`devolens.predict.livedead.ShrunkHoechst` kept as
    the well was segmented (the well is not read again). Memory: the overlay, whatever the well's size: the label
    image (uncompressed) is read row by row as needed."""
    import numpy as np
    import tifffile

    from devolens.cli.predict import _overlay
    from devolens.io.images import write_png

    classes = tifffile.memmap(labels, mode="r")
    h, w = classes.shape
    step = shrunk.step
    small = np.array(classes[::step, ::step])
    del classes
    rgb = _overlay(shrunk.image, (small == 1).view(np.uint8), LIVE_COLOUR)
    rgb = _overlay(rgb, (small == 2).view(np.uint8), DEAD_COLOUR)
    write_png(rgb, png)
    return shrunk_overlay_note(f"overlays/{png.name}", step, small.shape, (h, w))


def overlay_step(height: int, width: int) -> int:
    """The whole factor an overlay of an image of ``height`` x ``width`` pixels is shrunk by (every n-th row and
    column) to at most :data:`OVERLAY_SIDE` pixels on its longer side; 1: drawn at the image's size."""
    return max(1, -(-max(int(height), int(width)) // OVERLAY_SIDE))


def shrunk_overlay_note(name: str, step: int, small: tuple, full: tuple, what: str = "well",
                        objects: str = "nuclei") -> str | None:
    """The note on an overlay (``name``) drawn at 1/``step`` of the size of its ``what`` (``small`` and ``full``:
    the overlay's and the image's height and width): ``objects`` too small to keep an outline, the labels at the full
    size; None at full size (``step`` 1). ``segment livedead``'s and ``segment nuclei``'s (membrane's) alike."""
    if step == 1:
        return None
    return (f"{name}: drawn at 1/{step} of the {what}'s size ({small[1]} x {small[0]} px of {full[1]} x {full[0]}): "
            f"{objects} under ~{step} px across may show no outline; labels hold the full size")


def _livedead_record(image: Path, model: str, counts: dict, *, options: dict, notes: list,
                     wells: list[dict] | None = None, network=None, files: list[Path] | None = None) -> str:
    """``livedead.json``, in the style of ``segment.json``: the command line, the input (absolute: a well or a folder
    of wells), the model, its weights' sha256 and its files' (``model_sha256``: card and weights,
    :func:`devolens.provenance.model_sha256`), the devolens and PyTorch versions, what the network ran as
    (``network``: the :class:`~devolens.predict.livedead.LiveDeadPredictor`; ``precision`` resolved from
    ``options.precision``, ``int8_activations``: 8 or 7 bits where it ran int8
    (:func:`devolens.provenance.int8_activations`), ``backend`` and ``device``, where it ran, ``--device auto``
    resolved; all None without one), the input's sha256 and size (``inputs``: :func:`devolens.provenance.input_entry`;
    a folder of wells: of its wells, ``files``), the options as this run took them, the counts (of all wells), the
    warnings and notes printed, and per well (``wells``) its name, file, counts, notes, the calibration its labels
    carry (``labels_pixel_size``: x, y, unit, ``from``: ``calibration``, the well file's own, or ``--pixel-size``,
    as ``segment.json``'s ``labels_pixel_size`` says; None without one; ``options.pixel_size`` is the option as
    given) and the channels read as Hoechst and Draq7
    with what chose them (``channels_read``: :func:`devolens.predict.livedead.channels_read`; ``options.channels``
    is only the option as given)."""
    from devolens.cli._common import json_number
    from devolens.models import zoo
    from devolens.provenance import (input_entry, int8_activations, model_sha256, record_header, record_text,
                                     torch_version, version)

    def numbers(c: dict) -> dict:
        return {k: json_number(c[k], whole_as_int=True) for k in ("live", "dead", "fraction_dead") if k in c}

    return record_text({
        **record_header("devolens segment livedead", image, model),
        "devolens": version(), "weights_sha256": zoo.weights_sha256(model), "model_sha256": model_sha256(model),
        # as segment.json: what the network ran as (options.precision and options.device keep what was asked)
        "precision": getattr(network, "precision", None), "int8_activations": int8_activations(network),
        "backend": None if network is None else "torch",  # (livedead runs on torch alone)
        "device": None if network is None else str(network.device),
        "inputs": [input_entry(image, files)] if Path(image).exists() else [],
        "options": options,
        "counts": numbers(counts),
        "wells": [{"well": r["well"], "file": r["file"], **numbers(r), "notes": list(r["notes"]),
                   "labels_pixel_size": r.get("labels_pixel_size"), "channels_read": r.get("channels_read")}
                  for r in wells or ()],
        "torch": torch_version(), "notes": list(notes),
    })


# ----------------------------------------------------------------------------------------


def _group_named(app: typer.Typer, name: str) -> typer.Typer | None:
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    return None


#: simulate well's outputs besides --out, refused as "-" (stdout) before it runs, as --out is
simulate_well_command.devolens_outputs = ("labels", "objects")


def register(app: typer.Typer) -> None:
    """Add ``simulate well``, ``tile`` and ``segment livedead`` to the root app."""
    global segment_app
    try:
        from devolens.cli.simulate import simulate_app
    except ImportError:  # the simulate area is not there: make the group here
        simulate_app = _group_named(app, "simulate")
        if simulate_app is None:
            simulate_app = typer.Typer(help="Simulate data: digital embryos and live/dead wells.", no_args_is_help=True)
            app.add_typer(simulate_app, name="simulate")
    simulate_app.command("well")(simulate_well_command)
    if _group_named(app, "simulate") is None:  # simulate.py exists but did not register (yet)
        app.add_typer(simulate_app, name="simulate")

    app.add_typer(tile_app, name="tile")

    seg = _group_named(app, "segment")
    if seg is None:
        seg = typer.Typer(
            help="Segment images with the zoo's models: nuclei and membrane (images, folders, videos, "
            "TIFF stacks), livedead (wells of any size).",
            no_args_is_help=True,
        )
        app.add_typer(seg, name="segment")
    segment_app = seg
    seg.command("livedead")(segment_livedead_command)
