"""Helpers shared by the CLI modules: progress bars and console output."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced by an object without it
        return False


#: how the lines begin that ``--quiet`` still prints on stderr: what went wrong, and what may make a result wrong
WARNING_PREFIXES = ("error:", "warning:", "note:")
#: the help of ``devolens --quiet`` (README, "Every command has --help")
QUIET_HELP = ("Print on stderr only the lines that begin error:, warning: or note: (a note says that a result may be "
              "wrong or incomplete, or that an input was read in a way you may not have meant): no progress bars, "
              "summary lines or tips. What a command prints on stdout and the files it writes (their notes "
              "included) are unchanged.")


class _Messages(Console):
    """The console of the commands' messages, on stderr. Under ``--quiet`` (:func:`set_quiet`) it prints, of each
    message, the lines from the first that begins with one of :data:`WARNING_PREFIXES` on, and nothing else: the
    rule is the line's first word rather than each call's choice, so that a warning added later is never silenced by
    mistake (and the clock's summary keeps the ``note:`` line under it). Every ``note:`` of devolens says that a
    result may be wrong or incomplete, or that an input was read in a way the user may not have meant (a stack's
    pages taken as time points, a file's other series left out): a warning in substance, kept. Renderables other
    than text (a table) are never warnings."""

    warnings_only = False

    def print(self, *objects, sep: str = " ", **kwargs) -> None:
        if self.warnings_only:
            objects = self._warning_part(objects, sep, kwargs.get("markup"), kwargs.get("emoji"))
            if not objects:
                return
        super().print(*objects, sep=sep, **kwargs)

    def _warning_part(self, objects: tuple, sep: str, markup, emoji) -> tuple:
        """``objects`` when the message begins with a warning's word, its lines from the first that does (one
        ``Text``), or () for none."""
        from rich.text import Text

        texts = []
        for obj in objects:
            if isinstance(obj, str):
                texts.append(self.render_str(obj, markup=markup, emoji=emoji, highlight=False))
            elif isinstance(obj, Text):
                texts.append(obj)
            else:
                return ()
        lines = Text(sep).join(texts).split("\n")
        for i, line in enumerate(lines):
            if line.plain.lstrip().lower().startswith(WARNING_PREFIXES):
                return objects if i == 0 else (Text("\n").join(lines[i:]),)
        return ()


# Not a terminal (a log file, a pipeline's capture): messages are not folded at 80 columns, so that a note or a
# summary stays on one line for grep; a terminal folds them at its width as usual.
console = _Messages(stderr=True, soft_wrap=not _tty(sys.stderr))
out = Console(soft_wrap=not _tty(sys.stdout))


def set_quiet(quiet: bool) -> None:
    """``devolens --quiet`` (``DEVOLENS_QUIET=1``): :data:`console` prints warnings only (:class:`_Messages`) and
    :func:`progress_bar` shows no bar. What goes to stdout (:data:`out`, ``typer.echo``), Python's warnings and the
    files written are as without it."""
    console.warnings_only = bool(quiet)


def quiet() -> bool:
    """Whether ``--quiet`` is in force (:func:`set_quiet`)."""
    return console.warnings_only


# Help pages: how a parameter is shown ------------------------------------------------------------------------------


def _argument_name(param) -> str:
    """An argument's name on the help pages: its ``metavar`` (``INPUT``), else its name in capitals (``RECIPE``)."""
    return param.metavar if param.metavar is not None else (param.name or "").upper()


def _argument_usage(param, ctx) -> list[str]:
    """An argument in the usage line, as click writes it: ``RECIPE``, ``[TABLE]`` where it may be left out,
    ``IMAGES...`` where it takes several (typer >= 0.27 writes ``{recipe}``)."""
    name = _argument_name(param)
    if not param.required:
        name = f"[{name}]"
    if param.nargs != 1:
        name += "..."
    return [name]


def _no_switch_value(shown: Callable) -> Callable:
    """typer's ``display_type_rich`` of an option, shown for an option that takes a value only: an on/off switch
    (``--resume``, ``--plots/--no-plots``, ``--help``) or a counter takes none (typer 0.29 shows ``<bool>``)."""
    import functools

    @functools.wraps(shown)
    def display_type_rich(self, ctx):
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        return shown(self, ctx)

    return display_type_rich


def _item_type(shown: Callable) -> Callable:
    """typer's ``display_type`` of a parameter, a list's shown as the type of its items, as an option's is
    (``<path>``; typer 0.29 shows ``<list[Path]>``): the list is said by ``...`` or by repeating the option."""
    import functools
    import re

    listed = re.compile(r"<list\[(\w+)\]>")

    @functools.wraps(shown)
    def display_type(self, ctx):
        text = shown(self, ctx)
        match = listed.fullmatch(text) if isinstance(text, str) else None
        return f"<{match.group(1).lower()}>" if match else text

    return display_type


def _help_style() -> None:
    """Show the commands' parameters on their help pages as devolens documents them, whatever typer (>= 0.12) is
    installed: an on/off switch with no value, an argument by its name in capitals as in the usage line (``RECIPE``,
    ``[TABLE]``, ``IMAGES...``), a list by its items' type.

    typer 0.27 began writing a required argument as ``{recipe}`` in the usage line, and typer 0.29 fills the help
    pages' type column from each parameter's annotation, switches included: ``--resume <bool>``, ``--plots
    --no-plots <bool>``, even ``--help <bool>`` (a user gives ``--resume true``, refused as an extra argument),
    and ``<list[Path]>``. typer offers no setting for either, and ``--help`` is typer's own option (no metavar can
    be given to it), so the display methods of typer's parameter classes are wrapped here, once, when the commands'
    modules import this one (for every typer command of the process, then); a method that the installed typer
    does not have (older typer shows them so already) is left alone. Only what the help pages, usage lines and
    error hints show changes (``Missing argument 'RECIPE'``, as click words it): parsing is typer's, unchanged."""
    from typer import core

    argument, option = core.TyperArgument, core.TyperOption
    if getattr(argument, "_devolens_help", False):
        return
    argument._devolens_help = True
    argument.get_usage_pieces = _argument_usage
    if isinstance(getattr(argument, "display_name_raw", None), property):  # typer >= 0.29: the Arguments panel's
        argument.display_name_raw = property(_argument_name)               # name column and its error hints
    if hasattr(option, "display_type_rich"):  # typer >= 0.29
        option.display_type_rich = _no_switch_value(option.display_type_rich)
    parameter = getattr(core, "_TyperParameter", None)
    if hasattr(parameter, "display_type"):  # typer >= 0.29
        parameter.display_type = _item_type(parameter.display_type)


_help_style()


#: help of the ``--precision`` and ``--fast`` options of the inference commands
PRECISION_HELP = ("Network arithmetic: auto (on the CPU int8 where the model card has int8 scales, this PyTorch has "
                  "the oneDNN engine and the CPU has VNNI/AMX, or AVX2 without native bf16 (7-bit activations "
                  "there), else bf16 where the CPU has native bf16, else fp32; on a GPU fp32; population's nuclei: "
                  "the card's bf16 where the CPU or GPU has native bf16, else fp32), int8 (CPU only; with a note on "
                  "a CPU with neither VNNI/AMX nor AVX2, where it was never measured), bf16 or fp32. The model card "
                  "gives the accuracy of each.")
FAST_HELP = "Fast arithmetic (int8 or bf16 where the CPU has it, see --precision); --no-fast: fp32."
#: help of the --pages option (segment, population, curate frames)
PAGES_HELP = ("Plain multi-page TIFFs (pages without axis labels, as many acquisition programs save them): read the "
              "pages as time points (time, the default) or as the z planes of one stack (z: then --stack-z applies). "
              "Axes that the file labels itself (ImageJ hyperstacks, OME-TIFF) are always kept.")
#: what `population --clock` gains, as measured (benchmarks/RESULTS.md, section "population", the twenty-second
#: session: held-out EPIC-framed movies, total MAE / mean 0.087 per frame, 0.020 with --clock)
CLOCK_GAIN = "held-out EPIC-framed movies: total error 9% per frame -> 2% with --clock"
#: help of the --device option (segment, population, segment livedead)
DEVICE_HELP = ("Where the networks run: cpu (the default; int8, bf16 or fp32 as the CPU allows, see --precision), "
               "cuda (the first CUDA GPU; an error where PyTorch sees none), cuda:N (the GPU numbered N) or auto (a "
               "CUDA GPU when there is one, else the CPU). On a GPU the networks run in fp32 (--precision bf16 for "
               "bf16 on an Ampere or newer GPU, where population's nuclei run in bf16 by default). Apple GPUs (MPS) "
               "are not used.")



def device_option(device: str) -> str:
    """The ``--device`` option, checked before any input opens: its name, and for a GPU whether PyTorch sees one
    it can run (:func:`devolens.predict.devices.resolve_device`, whose errors then name ``--device``)."""
    from devolens.predict.devices import device_name, resolve_device

    name = device_name(device, "--device")
    if name != "cpu":
        resolve_device(name, "--device")
    return name

def choice(*choices: str) -> Callable[[Optional[str]], Optional[str]]:
    """A typer ``callback`` for an option whose value is one of ``choices``: any case is accepted and the command
    gets the canonical spelling (``--color GREEN`` is ``--color green``, ``--start p0`` is ``--start P0``).
    Other values pass unchanged, for the command's own check to refuse in its own words.

    >>> precision: str = typer.Option("auto", "--precision", callback=choice(*PRECISIONS))  # doctest: +SKIP
    """
    canonical = {c.lower(): c for c in choices}

    def callback(value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        return canonical.get(value.strip().lower(), value)

    return callback


def _choices(key: str) -> tuple[str, ...]:
    from devolens.io.stacks import PAGES_MODES, Z_MODES
    from devolens.predict.devices import BACKENDS, PRECISIONS
    from devolens.predict.postprocess import CHANNELS

    return {"precision": PRECISIONS, "backend": BACKENDS, "color": CHANNELS, "stack_z": Z_MODES,
            "pages": PAGES_MODES}[key]


def _word_choice(key: str) -> Callable[[Optional[str]], Optional[str]]:
    """:func:`choice` of one of the inference commands' word options, its words looked up when it is first used
    (the modules that define them, and NumPy with them, are not imported by every command, ``--help`` included)."""
    made: list = []

    def callback(value: Optional[str]) -> Optional[str]:
        if not made:
            made.append(choice(*_choices(key)))
        return made[0](value)

    return callback


#: ``callback=`` of the word options the inference commands share (``--precision FP32`` is ``--precision fp32``)
PRECISION_CHOICE = _word_choice("precision")
BACKEND_CHOICE = _word_choice("backend")
COLOR_CHOICE = _word_choice("color")
STACK_Z_CHOICE = _word_choice("stack_z")
PAGES_CHOICE = _word_choice("pages")


def same_file(a: Path, b: Path) -> bool:
    """Whether paths ``a`` and ``b`` name the same file, whether or not it exists yet (symbolic links, ``..``
    and hard links of existing files are seen through)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


#: the lines said of the model a command loaded, as the command printed them without ``note:`` or ``warning:``
#: (its weights not those its card records, a run that did not beat its starting weights: the CLI's own display of
#: those library warnings), for the command's record's ``notes`` (:func:`model_said`)
MODEL_SAID: list[str] = []


def model_said() -> list[str]:
    """What the command said of the model it loaded (:data:`MODEL_SAID`), for its record's notes."""
    return list(MODEL_SAID)


def note(text: str) -> None:
    """Print a one-line note on stderr (``text`` is not read as markup; no wrapping)."""
    from rich.markup import escape

    console.print(f"[yellow]note:[/] {escape(text)}", soft_wrap=True)


def stack_notes(path: Path, pages: str = "time", stack_z: Optional[str] = None, *,
                slices_advice: bool = True, timelapses: Optional[list] = None) -> list[str]:
    """How a TIFF input was read (``segment``, ``population``, ``curate frames``), in order: its pages had no axis
    labels and were read as time points, its Z planes (and no time axis) were projected into one frame
    (``stack_z``, the command's --stack-z; None: not said; ``slices_advice=False``: without the advice to give
    ``--stack-z slices``, for a command that only projects), a file holds several image series and only the first
    was read (and, in the same note, a folder's files left out as the later parts of a multi-file OME-TIFF set),
    3 or 4 planes were read as one colour image (tifffile's default for such a stack), a folder holds several
    timelapses read as one sequence (``timelapses``: :func:`~devolens.io.frames.folder_timelapses`'s answer where
    the command has it already), a folder's videos, HEIC photos or microscope files were not read as frames
    (:func:`~devolens.io.frames.left_out_note`)."""
    from devolens.io.frames import left_out_note, timelapses_note
    from devolens.io.stacks import other_series_note, planar_rgb_note, unlabelled_pages_note, z_projection_note

    from rich.markup import escape

    z_note = z_projection_note(path, stack_z, slices_advice=slices_advice) if stack_z is not None else None
    # markup-escaped: they name files, and rich would read a name's "[raw]" as a tag and drop it
    return [escape(text) for text in (unlabelled_pages_note(path, pages), z_note, other_series_note(path),
                                      planar_rgb_note(path), timelapses_note(path, pages, timelapses),
                                      left_out_note(path)) if text]


def print_stack_notes(path: Path, pages: str = "time", stack_z: Optional[str] = None) -> None:
    """Print :func:`stack_notes`."""
    for text in stack_notes(path, pages, stack_z):
        console.print(text)


def checked_record(record: Path, beside: str = "CSV") -> Path:
    """A command's ``record`` (:func:`devolens.cli.predict.record_path`, identify's own), refused where it is a folder
    (it replaces a file there, as the output it records does: ``beside``, ``CSV`` or ``report``)."""
    from devolens.errors import DevolensError

    if record.is_dir():
        raise DevolensError(f"{record.name} (the record written beside the {beside}) is a folder: choose another "
                            "--out", path=record)
    return record


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output file whose folder (or the nearest one that exists, where the folders will
    be made) takes no new file: a temporary file is made there and removed at once (asking for permissions instead
    is wrong for root, NFS root squash, read-only mounts). A command that reads a whole movie first would
    otherwise fail at its end.

    In a command, the output's lock (:func:`~devolens.io.atomic.files_locked`) is then held until the command ends,
    where its folder exists (a missing one is made only when the output is written): a second run writing the same
    file is refused now, before its work, not only when both write at once (the last replaced the first's output,
    both said done)."""
    import tempfile

    from devolens.io.atomic import cannot_write

    path = Path(path)
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.probe-", dir=folder)
    except OSError as exc:
        raise cannot_write(exc, path) from None
    os.close(fd)
    os.unlink(tmp)
    if folder == path.absolute().parent:
        _hold_until_done(path)


#: what the running command holds until it ends (:func:`_hold_until_done`, :func:`hold_output_folder`), released when
#: its context closes (``devolens.cli._root``), on an error too
HELD = contextlib.ExitStack()


def _hold_until_done(path: Path) -> None:
    """Hold the lock of the output file ``path`` until the running ``devolens`` command ends (:data:`HELD`); nothing
    outside a command (a library call)."""
    from devolens.errors import command_running
    from devolens.io.atomic import files_locked

    if command_running():
        HELD.enter_context(files_locked([path]))


def hold_output_folder(out: Path) -> None:
    """In a command, take the lock of the output folder ``out`` now, at its checks, and hold it until the command
    ends (:data:`HELD`): a second run writing the same folder is refused before its work ("another devolens run is
    writing here (pid N)"), not only when its staging begins, seconds or minutes in (two runs started a few seconds
    apart both finished, the last silently replacing the first's outputs). The lock is the staging's own
    (:func:`~devolens.io.atomic.output_lock`: ``.NAME.lock`` beside ``out``, or ``.devolens.lock`` inside it where
    the folder beside it takes no new file), taken as kept (``kept=True``): :class:`~devolens.io.atomic.StagedDir`
    then finds it held by this command and does not take it again (any other lock of the folder taken in this
    process still refuses, as another run's).

    Nothing where the folder above ``out`` does not exist yet: the lock file has no place before the staging makes
    that folder (and a lock beside a folder further up would be another file than the one a run finding the folder
    made takes, so no lock at all); the staging takes it then, as before. Nothing either outside a command (a library
    call: its staging locks), nor for a folder inside a staging folder (a step of a run writing into its own staged
    output, as ``demo`` runs ``segment``: the run's own)."""
    from devolens.errors import command_running
    from devolens.io.atomic import output_lock, public_path

    out = Path(out)
    if not command_running() or public_path(out) != out:
        return
    if not Path(os.path.realpath(out)).parent.is_dir():  # (output_lock would find no place for it either)
        return
    lock = output_lock(out, kept=True)  # refused at once when another run holds it; None where no lock can be had
    if lock is not None:
        HELD.callback(lock.release)


#: the words of the command line this process runs (set by :func:`devolens.cli._run`; empty in a library call): tells
#: an option typed from one left at its default (:func:`option_given`)
COMMAND_ARGS: list[str] = []


def typed_value(*names: str) -> str | None:
    """The value the command line (:data:`COMMAND_ARGS`) gives the option ``names`` (``--out X``, ``--out=X``, ``-oX``)
    as typed, the last one given; None where it gives none."""
    words = _option_words()
    value = None
    for i, w in enumerate(words):
        if w in names and i + 1 < len(words):
            value = words[i + 1]
        elif "=" in w and w.split("=", 1)[0] in names:
            value = w.split("=", 1)[1]
        elif any(len(n) == 2 and w.startswith(n) and len(w) > 2 for n in names):
            value = w[2:]
    return value


def option_given(*names: str) -> bool:
    """Whether the command line (:data:`COMMAND_ARGS`, before a ``--``) gives one of the options ``names``
    (``--model``, also as ``--model=X``)."""
    return any(w in names or w.split("=", 1)[0] in names for w in _option_words())


def _option_words() -> list[str]:
    """The words of the command line (:data:`COMMAND_ARGS`) that may be options: those before ``--``."""
    return COMMAND_ARGS[:COMMAND_ARGS.index("--")] if "--" in COMMAND_ARGS else list(COMMAND_ARGS)


def model_folder_words(folder: Path) -> str | None:
    """What model ``folder`` holds, in words, when it is one's own folder: a training run's (``best.safetensors`` or
    ``checkpoint.safetensors`` beside ``run.json``), a tune study's (``trials/`` beside ``trials.csv`` or
    ``study.db``) or an exported model's (``weights.safetensors`` beside ``card.json``); None for any other."""
    def has(*names: str) -> bool:
        return all((folder / name).exists() for name in names)

    if has("run.json") and (has("best.safetensors") or has("checkpoint.safetensors")):
        return "a training run's folder (run.json, its checkpoints)"
    if has("trials") and (has("trials.csv") or has("study.db")):
        return "a tune study's folder (trials/)"
    if has("weights.safetensors", "card.json"):
        return "an exported model's folder (weights.safetensors, card.json)"
    return None


def earlier_names(table: Path, column: str) -> Optional[set[str]]:
    """The values of ``column`` in the CSV ``table`` an earlier run wrote (``segment``'s counts.csv ``frame``,
    ``segment livedead``'s ``well``), as text; None where it cannot be read (gone, edited into another shape)."""
    import csv

    try:
        with open(table, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            at = next(rows).index(column)
            return {row[at] for row in rows if len(row) > at}
    except (OSError, UnicodeDecodeError, ValueError, StopIteration, csv.Error):
        return None


def is_run_record(path: Path, command: str) -> bool:
    """Whether ``path`` is the record a run of ``devolens COMMAND`` (``segment``, ``segment livedead``) wrote into its
    --out (``segment.json``, ``livedead.json``): a file holding a JSON object whose ``command`` line's words begin
    with COMMAND's (:func:`~devolens.provenance.command_words`; every such record has had it). A file of that name
    another tool wrote (``{"tool": "my other segmenter"}``), a folder of that name, is no mark that the entries
    beside it are an earlier run's to replace."""
    from devolens.io.atomic import own_record
    from devolens.provenance import command_words

    record = own_record(path)
    words = command.split()
    return record is not None and command_words(record.get("command"))[:len(words)] == words


def foreign_files(out: Path, suffixes: dict[str, str], own: Optional[Callable[[str], bool]] = None) -> list[str]:
    """The entries of the subfolders of --out ``out`` that a rerun replaces whole (``suffixes``: a subfolder's name,
    ``labels``, and the ending of the names the command writes in it, ``_labels.tif``) that an earlier run of the
    command did not write, as ``labels/NAME`` (:func:`devolens.io.atomic.foreign_entries`): a file of another ending,
    a folder, a file whose name before the ending is no frame (well) of the earlier run (``own``: whether it is one;
    None: any is). Labels corrected by hand and saved beside the originals (``t1_labels_corrected.tif``) are the
    user's work, which the rerun would delete; a file browser's are not."""
    from devolens.io.atomic import foreign_entries

    def owned_by(ending: str) -> Callable[[os.DirEntry], bool]:
        def owned(entry: os.DirEntry) -> bool:
            stem = entry.name[:-len(ending)] if entry.name.endswith(ending) else ""
            return bool(stem) and entry.is_file(follow_symlinks=False) and (own is None or own(stem))
        return owned

    return foreign_entries(out, {folder: owned_by(ending) for folder, ending in suffixes.items()})


def foreign_files_error(out: Path, found: list[str], command: str):
    """The :class:`~devolens.errors.DevolensError` refusing --out ``out`` whose subfolders hold the files ``found``
    (:func:`foreign_files`) that ``devolens COMMAND`` did not write: a rerun replaces those folders whole, which
    would delete them."""
    from devolens.errors import DevolensError

    from devolens.errors import listed

    whole = " and ".join(dict.fromkeys(f"{name.split('/')[0]}/" for name in found))
    return DevolensError(f"--out holds {listed(found, 3)} that devolens {command} did not write (labels corrected by hand?): "
                         f"a rerun replaces {whole} whole, which would delete them; move them out of --out or give "
                         "another --out", path=out)


def check_not_folder_typed(path: Path) -> None:
    """Refuse an output file whose ``--out`` was typed as a folder's name, ending in a slash (``--out nd/``: a Path
    drops the slash, and a file named ``nd`` was written)."""
    from devolens.errors import DevolensError

    typed = typed_value("--out", "-o")
    if typed and typed.endswith(("/", os.sep)) and Path(typed) == Path(path):
        raise DevolensError(f"--out {typed} ends in a slash, as a folder's name, and this command writes a file: give "
                            f"the file's name (a new folder is made for it: {typed}NAME.csv)", path=path)


def check_out(path: Path, source: Path) -> None:
    """Refuse an output file that would overwrite the input ``source`` or is a folder, before any work
    (``devolens identify t.csv --out t.csv`` would replace the user's table). The files read with it are inputs
    too: an EPIC table's AuxInfo and TIME files beside it (whatever its name: the reader goes by content), a tidy
    table's ``.meta.json``."""
    from devolens.errors import DevolensError

    check_not_folder_typed(path)
    if not path.exists():
        return
    if path.is_dir():
        raise DevolensError("output path is a folder", path=path)
    if source.exists() and same_file(path, source):
        raise DevolensError("output would overwrite the input; choose another file", path=path)
    if source.is_file():  # read with it: an EPIC table's AuxInfo and TIME files, a tidy table's .meta.json
        from devolens.io.tables import epic_companions, meta_sidecar

        for companion in (*epic_companions(source), meta_sidecar(source)):
            if companion.exists() and same_file(path, companion):
                raise DevolensError(f"output would overwrite {companion.name}, read with {source.name} (a file "
                                    "that goes with it); choose another file", path=path)


#: ``DEVOLENS_PROGRESS``: how the commands show their progress on stderr (README, "Without a terminal")
PROGRESS_ENV = "DEVOLENS_PROGRESS"
#: its values: auto (the default: a bar on a terminal, ``progress:`` lines elsewhere), bar (a bar on a terminal,
#: nothing elsewhere), lines (``progress:`` lines, a terminal too), off (nothing)
PROGRESS_MODES = ("auto", "bar", "lines", "off")
#: seconds of work before the first ``progress:`` line (a shorter run prints none), then between two lines
FIRST_LINE_S = 10.0
LINE_EVERY_S = 30.0
#: the clock of the ``progress:`` lines (seconds; tests put a fake one here)
_clock: Callable[[], float] = time.monotonic
_said_progress_env: set = set()  # the bad values of DEVOLENS_PROGRESS already warned about (once a process)


def progress_mode() -> str:
    """How :func:`progress_bar` shows progress now: ``"bar"`` (rich's bar), ``"lines"`` or ``"off"``, from
    :data:`PROGRESS_ENV` (:data:`PROGRESS_MODES`; unset or empty: auto), whether stderr is a terminal and
    ``--quiet`` (off). A value not among the modes is taken as auto, with a warning (once)."""
    asked = os.environ.get(PROGRESS_ENV, "").strip().lower() or "auto"
    if asked not in PROGRESS_MODES:
        if asked not in _said_progress_env:
            _said_progress_env.add(asked)
            console.print(f"warning: {PROGRESS_ENV}={os.environ[PROGRESS_ENV].strip()} is not one of "
                          f"{', '.join(PROGRESS_MODES)}: progress is shown as for auto", markup=False,
                          highlight=False, soft_wrap=True)
        asked = "auto"
    if quiet() or asked == "off":
        return "off"
    if asked == "lines":
        return "lines"
    return "bar" if console.is_terminal else ("lines" if asked == "auto" else "off")


def _clock_text(seconds: float) -> str:
    """``seconds`` as rich's progress bar shows a time: ``0:00:12``, ``25:03:00``."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _ProgressLines:
    """The ``callback(done, total)`` of :func:`progress_bar` without a bar: a line ``progress: DESCRIPTION
    35/140 (25%), 0:00:12 elapsed, ~0:00:36 left`` on stderr, the first once the work has run
    :data:`FIRST_LINE_S` seconds (a quicker command prints none), then at most every :data:`LINE_EVERY_S`
    seconds; nothing at the end (the command's summary follows). A log of Slurm or nohup then shows that a long
    command is working. Seconds are counted from the start of the work; the time left from the pace since the
    first call (not the model's loading before it), or since the work began a new pass: a :meth:`phase` of its
    own (its own description), or the count going down or the total changing (a second pass over the frames
    reported on the same callback). A total of 0 or less is unknown: no share, no time left."""

    def __init__(self, description: str, clock: Callable[[], float]):
        self.description, self.clock = description, clock
        self.start = clock()
        self.next_at = self.start + FIRST_LINE_S
        self.first: Optional[tuple[float, float]] = None  # (time, done) of the pass's first call
        self.last: Optional[tuple[float, float]] = None  # (done, total) of the last call

    def __call__(self, done: float, total: float) -> None:
        now = self.clock()
        if self.first is None or _new_pass(self.last, done, total):
            self.first = (now, done)
        self.last = (done, total)
        if now < self.next_at:
            return
        self.next_at = now + LINE_EVERY_S
        console.print(self.line(done, total, now), markup=False, highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[Callable[[float, float], None]]:
        """A part of the work with a progress of its own (:func:`progress_phase`): its lines say ``description``,
        their pace is its own; the command's description (and a new pace) again after it."""
        outer = self.description
        self.description, self.first, self.last = description, None, None
        yield self
        self.description, self.first, self.last = outer, None, None

    def line(self, done: float, total: float, now: float) -> str:
        """The line said at ``now`` of ``done`` of ``total``."""
        count = f"{int(done)}" if float(done).is_integer() else f"{math.floor(done * 10) / 10:.1f}"
        text = f"progress: {self.description} {count}"
        if total and total > 0:
            text += f"/{int(total) if float(total).is_integer() else total} ({int(100 * min(done, total) // total)}%)"
        else:
            text += " done"
        text += f", {_clock_text(now - self.start)} elapsed"
        then, done_then = self.first
        if total and total > 0 and done > done_then and now > then and done < total:
            left = (total - done) * (now - then) / (done - done_then)
            text += f", ~{_clock_text(left)} left"
        return text


def _new_pass(last: Optional[tuple[float, float]], done: float, total: float) -> bool:
    """Whether a call ``(done, total)`` after the one of ``last`` (``(done, total)``; None: none) begins a new pass
    over the work, whose pace is its own: the count went down, or the total changed."""
    return last is not None and (done < last[0] or total != last[1])


class _ProgressBar:
    """The ``callback(done, total)`` of :func:`progress_bar` on a terminal: rich's bar (``prog``), a row of its own
    for each :meth:`phase`; a count that goes down (a new pass on the same callback) starts the row again, its time
    and pace with it (rich's own pace restarts when the total changes)."""

    def __init__(self, prog: Progress, description: str):
        self.prog, self.description = prog, description
        self.task = prog.add_task(description, total=None)
        self.done: Optional[float] = None  # the row's last count (None: the row has shown none yet)
        self.pending: Optional[str] = None  # a row not added yet (the command's after a phase), added by a count

    def __call__(self, done: float, total: float) -> None:
        if self.pending is not None:  # the row a phase left to come: added now that it has a count to show
            self.task, self.pending = self.prog.add_task(self.pending, total=total, completed=done), None
        elif self.done is not None and done < self.done:
            self.prog.reset(self.task, total=total, completed=done)
        else:
            self.prog.update(self.task, completed=done, total=total)
        self.done = done

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[Callable[[float, float], None]]:
        """A part of the work with a progress of its own (:func:`progress_phase`): a row of its own, named
        ``description`` (the command's row, while it shows nothing yet); a new row of the command's after it, added
        once the command counts again (none left empty after the last image's phase: a giant image's writing)."""
        outer = self.description
        self._row(description)
        yield self
        self._row(outer, later=True)

    def _row(self, description: str, *, later: bool = False) -> None:
        """The row ``description``: the current row renamed while it shows nothing yet, else a new row (``later``:
        added by the next count, :meth:`__call__`)."""
        if self.pending is not None:  # a row still to come: it comes under this name
            self.pending = description
        elif self.done is None:  # nothing shown on the row yet (the model loading): it takes the new name
            self.prog.update(self.task, description=description)
        elif later:
            self.pending = description
        else:
            self.task = self.prog.add_task(description, total=None)
        self.description, self.done = description, None


@contextlib.contextmanager
def progress_phase(progress: Optional[Callable], description: str) -> Iterator[Optional[Callable]]:
    """The callback for a part of a command's work that reports its own progress, before the command's own on the
    same ``progress`` (``--skip-flagged auto``: the curation pass, then the frames segmented): a callback of
    :func:`progress_bar` shows it under ``description``, its count and pace its own (a bar's row of its own, the
    ``progress:`` lines' label), and the command's description again after it. Any other callback (a library
    caller's function) or None is given as it is (its count then starts again at the next part).

    >>> with progress_phase(progress, "curating") as cb:  # doctest: +SKIP
    ...     curate_path(path, progress=cb)
    """
    phase = getattr(progress, "phase", None)
    if phase is None:
        yield progress
        return
    with phase(description) as callback:
        yield callback


def summary(text: str) -> None:
    """Print a command's summary line (``wrote OUT: ...``) where every command prints its summary: on stderr, through
    the shared console that ``devolens --quiet`` silences (stdout keeps the results a user pipes: ``lineage
    cliffs``). ``text`` is not read as markup (a file name's ``[raw]`` is kept); one line, unfolded."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def count_of(n: int, word: str) -> str:
    """``1 row``, ``2 rows``: ``n`` and ``word``, plural (an ``s`` added) unless ``n`` is 1 (summary lines)."""
    return f"{n} {word}{'' if n == 1 else 's'}"


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Yield a ``callback(done, total)`` that shows the work's progress on stderr as :func:`progress_mode` says:
    a rich progress bar on a terminal; elsewhere (Slurm, nohup, a CI log) a ``progress:`` line now and then
    (:class:`_ProgressLines`: none for a run under :data:`FIRST_LINE_S` seconds); nothing under ``--quiet`` or
    ``DEVOLENS_PROGRESS=off``.

    Library functions take ``progress=callback`` and call it as work advances: they print no progress of their own.
    A part of the work with a progress of its own (a curation pass before the segmentation) is shown under its own
    description through :func:`progress_phase`.
    """
    mode = progress_mode()
    if mode == "lines":
        yield _ProgressLines(description, _clock)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=mode == "off",
        get_time=_clock,
    ) as prog:
        yield _ProgressBar(prog, description)


def streaming_threads() -> None:
    """Let idle OpenMP threads sleep at once (``OMP_WAIT_POLICY=PASSIVE``) for streaming inference.

    Streaming commands run the network in one thread while other threads decode, post-process
    and write; OpenMP's default spin-waiting after each network call takes the core those
    threads need (measured: ``devolens segment nuclei`` on a 140-frame video 5.4 -> 4.9 s on
    2 cores). Must run before PyTorch is imported; a policy the user set is kept.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    steady_malloc()


def steady_malloc() -> None:
    """Keep freed frame-sized buffers for reuse instead of giving them back to the system (glibc only).

    A streaming command allocates and frees the same few-megabyte arrays for every frame (frames,
    working images, probabilities, labels, overlays). glibc serves those from fresh ``mmap`` pages once
    its threshold is passed and trims the heap's top after frees, so every frame page-faults its memory
    in again (~330k faults for 140 frames of 752x512). Here blocks under 32 MB come from the heap and up
    to 256 MB of free heap is kept (``mallopt``: what ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``
    set at start-up): ~260k faults, ~4 % less CPU, the same peak memory (benchmarks/RESULTS.md, speed).
    Environment settings of the user's (``MALLOC_*_``) are kept; elsewhere than glibc, nothing happens.
    """
    if not sys.platform.startswith("linux"):  # mallopt is glibc's; CDLL(None) is a TypeError on Windows
        return
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (musl)
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for param, value in ((-3, 32 << 20), (-1, 256 << 20), (-2, 16 << 20)):  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD,
        mallopt(param, value)                                                # M_TOP_PAD


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a model (and PyTorch) loads, then freeze what was made.

    Importing PyTorch creates some 10^5 long-lived objects; with the collector on, its full
    collections walk them during the import and again later (~0.19 s of a 140-frame ``segment``
    run, measured with ``gc.callbacks``). Loading makes no garbage cycles worth collecting, and
    ``gc.freeze`` moves the survivors out of the collector's sight afterwards.
    """
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


#: help of the commands' --threads (PyTorch's CPU threads)
THREADS_HELP = ("CPU threads of the networks (PyTorch's; onnxruntime's with --backend onnx) (default: every core the "
                "process may use: OMP_NUM_THREADS or a CPU set, taskset or Slurm's, caps it; a container's CPU quota "
                "does not: give --threads).")


def check_threads(threads: Optional[int]) -> None:
    """Refuse a ``--threads`` below 1 (None: the default)."""
    from devolens.errors import DevolensError

    if threads is not None and int(threads) < 1:
        raise DevolensError(f"--threads must be at least 1, got {threads}")


def apply_threads(threads: Optional[int]) -> None:
    """``--threads``: PyTorch's CPU threads and onnxruntime's sessions' (None: their choice). Called after
    :func:`streaming_threads`, whose setting must come before PyTorch is imported, and before the predictor loads
    (an onnx session takes its threads when it is built). PyTorch is not imported for it."""
    from devolens.predict import _ort

    # (each command its own: an earlier command's is not kept; like torch.set_num_threads, it stays in the process
    # after the command, for predictors loaded later in it)
    _ort.THREADS = int(threads) if threads else None
    if threads and "torch" in sys.modules:  # (the commands call this again once their predictor has loaded torch)
        sys.modules["torch"].set_num_threads(int(threads))


def json_number(value, *, whole_as_int: bool = False):
    """A float or int for the JSON records (numpy scalars converted; non-finite: None); other values (bool, str,
    None, what float() refuses) as they are. An int stays an int, a float is rounded to 6 decimals;
    ``whole_as_int``: a whole float is an int too (``3.0`` -> ``3``: livedead.json's counts)."""
    import math

    import numpy as np

    if isinstance(value, (bool, str)) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    if not math.isfinite(number):
        return None
    if isinstance(value, (int, np.integer)) or (whole_as_int and number.is_integer()):
        return int(number)
    return round(number, 6)


def check_csv_out(out: Path, what: Optional[str] = None, *, folder_first: bool = True) -> None:
    """Refuse an ``--out`` that is not a CSV file: a folder ("--out is a folder; give a .csv file") or a name
    without the .csv suffix ("--out must be a .csv file (WHAT)", ``what``: what the CSV holds). ``folder_first``:
    which of the two a folder without the suffix is told (identify: the folder; population: the suffix)."""
    from devolens.errors import DevolensError

    def folder() -> None:
        if out.is_dir():
            raise DevolensError("--out is a folder; give a .csv file", path=out)

    def suffix() -> None:
        if out.suffix.lower() != ".csv":
            raise DevolensError("--out must be a .csv file" + (f" ({what})" if what else ""), path=out)

    for check in (folder, suffix) if folder_first else (suffix, folder):
        check()
