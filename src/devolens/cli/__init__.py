"""The ``devolens`` command: one module per area, each with ``register(app)``.

Every sub-command parses its options, calls the library and prints. A
:class:`devolens.errors.DevolensError` (a user's mistake) becomes a one-line ``error:``
message and exit code 2, never a traceback; so does an output the system refuses (read-only
file system, no permission), a command line that does not parse (a missing option, a
misspelt command: one line with the command's ``--help`` to see) and an empty path (``--out ""``: an unset shell
variable). The machine running out of memory, disk or quota is one ``error:`` line too, with exit code 75
(EX_TEMPFAIL: the run may succeed elsewhere or later). Ctrl-C prints ``error: interrupted``
(exit 130); SIGTERM (what ``kill``, Slurm, Snakemake and Nextflow send), SIGHUP and Windows' Ctrl-Break stop
the run the same way, ``error: terminated (SIGTERM)``, exit 128 + the signal's number (143, 129). Either way
what the run was writing is removed and nothing half-written is committed. ``devolens --quiet`` (or
``DEVOLENS_QUIET=1``) keeps of the messages on stderr only the errors, warnings and notes
(:class:`devolens.cli._common._Messages`).
"""

from __future__ import annotations

import errno
import importlib
import inspect
import os
import re
import signal
import sys
import threading
import warnings
from pathlib import Path

#: the commands that stream frames through a network (:func:`devolens.cli._common.streaming_threads`)
STREAMING_COMMANDS = ("segment", "population")


def _is_command(argv: list[str]) -> bool:
    """Whether this process is the ``devolens`` command itself (or ``python -m devolens``), not a program (a test)
    importing this module: ``argv`` is its ``sys.argv``."""
    program = argv[0] if argv else ""
    module = os.path.basename(program) == "__main__.py" and os.path.basename(os.path.dirname(program)) == "devolens"
    return module or os.path.basename(program) in ("devolens", "devolens.exe")


def _streaming_blas(argv: list[str]) -> None:
    """One OpenBLAS thread for ``devolens segment``/``population``, set before NumPy loads (imported below).

    NumPy's OpenBLAS starts a worker thread per core as it loads, which spins ~0.1 s of CPU before it sleeps;
    at start-up, where decoding shares the CPU with PyTorch's import, that is time taken from both (the
    streaming commands call no large BLAS routine). Only when this process is the ``devolens`` command itself
    (:func:`_is_command`), and a setting of the user's is kept."""
    if "numpy" in sys.modules or not _is_command(argv):
        return
    words = [a for a in argv[1:] if not a.startswith("-")]
    if words and words[0] in STREAMING_COMMANDS:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


_streaming_blas(sys.argv)

# Signals, first thing: the command's modules take ~0.2-0.8 s to import, and a stop then printed Python's
# KeyboardInterrupt traceback (SIGINT) or nothing at all (SIGTERM). Noted from here (devolens.io.atomic imports
# the standard library only), the stop ends the run at its start (_run) with its one line and exit code.
from devolens.io import atomic  # noqa: E402

_STOP_SIGNALS = atomic.STOP_SIGNALS


def _on_signal_quietly(signum: int, frame) -> None:
    """Record the signal only: before and after :func:`main`, where there is nothing to unwind (the outputs
    are committed; an exception would only print a traceback from the interpreter's teardown), and while the
    command's modules are imported (:func:`_run` stops the run at its start)."""
    atomic.received_signals.append(signum)


def _set_signal_handlers(handler) -> dict | None:
    """Handle the stop signals with ``handler``; return the handlers replaced (None off the main thread, where
    Python cannot set handlers). A signal ignored (``nohup``: SIGHUP; a script's background job: SIGINT) stays
    ignored."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {}
    for signum in _STOP_SIGNALS:
        old = signal.getsignal(signum)
        if old == signal.SIG_IGN:
            continue
        signal.signal(signum, handler)
        previous[signum] = old
    return previous


if _is_command(sys.argv):  # (a program importing this module keeps its own handlers)
    _set_signal_handlers(_on_signal_quietly)

import typer  # noqa: E402

from devolens.cli._common import QUIET_HELP, set_quiet  # noqa: E402
from devolens.errors import (  # noqa: E402
    DevolensError, DiameterWarning, IdentityWarning, InputWarning, NoSignalWarning, set_command,
)
from devolens.io.atomic import EX_TEMPFAIL, RETRY_ERRNOS, WRITE_ERRNOS  # noqa: E402

app = typer.Typer(
    name="devolens",
    help="Deep learning for developmental-biology microscopy (C. elegans embryos and more).",
    epilog=("Offline: the models' weights ship inside the package; nothing is fetched from the network. Environment: "
            "DEVOLENS_QUIET=1 (as --quiet), DEVOLENS_PROGRESS=auto|bar|lines|off (progress on stderr), OMP_NUM_THREADS (PyTorch's threads where --threads is not given: otherwise every core the "
            "process may use), DEVOLENS_DATA (the shared real data some benchmarks and tests read)."),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Area modules, in pipeline order. Each defines ``register(app: typer.Typer) -> None``.
_AREAS = [
    "lineage",   # devolens lineage convert|populations|cliffs|clean
    "simulate",  # devolens simulate embryo|well
    "render",    # devolens render
    "train",     # devolens train|tune|evaluate
    "models",    # devolens models
    "tiles",     # devolens tile, simulate well, segment livedead
    "predict",   # devolens segment nuclei|membrane, population
    "identify",  # devolens identify
    "curate",    # devolens curate frames
    "demo",      # devolens demo
]


def _version() -> str:
    """The installed distribution's version (the package's own when it runs from a source tree)."""
    from devolens.provenance import version

    return version()


def _print_version(value: bool) -> None:
    # eager: runs while the options are parsed, before click asks for a command ("Missing command.")
    if value:
        typer.echo(f"devolens {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", envvar="DEVOLENS_QUIET", help=QUIET_HELP),
) -> None:
    """devolens: lineage tables, a digital embryo, training and a model zoo."""
    set_quiet(quiet)  # (each run sets it; main puts it back)
    # the library's messages name options as this command's flags (--channel 5, not channel=5) until the command
    # ends, however it is invoked (main, typer's CliRunner): closing the context puts the library's words back
    set_command(True)
    ctx.call_on_close(lambda: set_command(False))
    from devolens.cli._common import HELD

    ctx.call_on_close(HELD.close)  # output locks held since their checks (check_writable)


for _name in _AREAS:
    try:
        _mod = importlib.import_module(f"devolens.cli.{_name}")
    except ModuleNotFoundError as exc:  # area not written yet
        if exc.name != f"devolens.cli.{_name}":
            raise
        continue
    _mod.register(app)


# Help text ------------------------------------------------------------------------------------------

#: a help line that keeps its own line however the paragraph around it is re-wrapped: an indented line, a list item
#: ("- ", "* ", "1. "), a shell example ("$ ...", "devolens ...")
_LAID_OUT = re.compile(r"\s|[-*\u2022]\s|\d+[.)]\s|\$ |devolens\s")


def reflow_help(text: str | None) -> str | None:
    """``text`` (a command's help) with the single line breaks inside a paragraph made spaces.

    Typer's rich help keeps a help text's single newlines: a docstring hand-wrapped at ~110 columns broke, at 80,
    into a full line and a short ragged one at every newline. Joined, each paragraph fills the terminal whatever its
    width. Kept: blank lines (paragraph breaks), a paragraph that starts with ``\\b`` (click's "do not re-wrap"),
    lines laid out on purpose (:data:`_LAID_OUT`: lists, indented examples, command lines) and what follows ``\\f``
    (click's end of the help shown)."""
    if not text:
        return text
    shown, cut, hidden = inspect.cleandoc(text).partition("\f")
    paragraphs = []
    for paragraph in re.split(r"\n[ \t]*\n", shown):
        if paragraph.startswith("\b"):
            paragraphs.append(paragraph)
            continue
        lines = paragraph.split("\n")
        joined = lines[0]
        for line in lines[1:]:
            joined = joined + "\n" + line if _LAID_OUT.match(line) else joined.rstrip() + " " + line
        paragraphs.append(joined)
    return "\n\n".join(paragraphs) + cut + hidden


def _reflow_app_help(app: typer.Typer) -> None:
    """Re-wrap (:func:`reflow_help`) the help and epilog of ``app``, its commands and its groups, at every level.

    Done once on the Typer app (which every ``typer.main.get_command(app)`` builds from: :func:`main`, typer's
    ``CliRunner``) rather than in each area's docstrings, so help written later is mended too. Each help is read
    from the click command Typer builds (Typer settles which of a docstring, ``help=`` or a group's callback is
    the help) and written back where Typer looks first."""
    from typer.models import DefaultPlaceholder

    built = typer.main.get_command(app)
    callback = app.registered_callback
    root = callback if callback is not None and not isinstance(callback.help, DefaultPlaceholder) else app.info
    root.help = reflow_help(built.help)
    if built.epilog:
        root_epilog = callback if callback is not None and not isinstance(callback.epilog, DefaultPlaceholder) \
            else app.info
        root_epilog.epilog = reflow_help(built.epilog)
    _reflow_group_help(app, built)


def _reflow_group_help(instance: typer.Typer, group) -> None:
    """:func:`_reflow_app_help` for the commands and groups of the Typer ``instance``, built as the click ``group``."""
    commands = getattr(group, "commands", {})
    for info in instance.registered_commands:
        name = info.name or (typer.main.get_command_name(info.callback.__name__) if info.callback else None)
        command = commands.get(name)
        if command is not None:
            _reflowed_into(info, command)
    for info in instance.registered_groups:
        if info.typer_instance is None:
            continue
        name = info.name if isinstance(info.name, str) else info.typer_instance.info.name
        if not isinstance(name, str) or not name:  # a group added without a name: its commands are the parent's
            _reflow_group_help(info.typer_instance, group)
            continue
        sub = commands.get(name)
        if sub is not None:
            _reflowed_into(info, sub)
            _reflow_group_help(info.typer_instance, sub)


def _reflowed_into(info, built) -> None:
    """Write the help, short help and epilog of the click command ``built`` re-wrapped (:func:`reflow_help`) into
    Typer's record ``info`` of it (a command's or a group's), where Typer looks first."""
    info.help = reflow_help(built.help)
    info.short_help = reflow_help(built.short_help)
    info.epilog = reflow_help(built.epilog)


_reflow_app_help(app)

#: the click command last built from ``app``, beside what it was built from (:func:`_command`)
_BUILT: list = []


def _app_key(instance: typer.Typer) -> tuple:
    """What the click command of the Typer ``instance`` is built from: its callback, its commands and its groups'
    (the objects themselves, held by the key: an id freed and reused could not pass for another command)."""
    return (instance.registered_callback, tuple(instance.registered_commands),
            tuple((info, info.typer_instance and _app_key(info.typer_instance)) for info in instance.registered_groups))


def _command():
    """The click command of ``app``, built once a process and again only when the app changes (a command added,
    as tests add one): Typer builds the whole tree each call, reading the signature of each of the ~80 commands
    (about 60 ms on a 2-core AVX2 machine, each time a program calls :func:`main`)."""
    key = (typer.main.get_command, _app_key(app))
    if not _BUILT or _BUILT[0][0] != key:
        _BUILT[:] = [(key, typer.main.get_command(app))]
    return _BUILT[0][1]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``devolens`` command; returns the exit code.

    A :class:`DevolensError`, or an :class:`OSError` that the environment causes (read-only file
    system, no permission: see :func:`_environment_error`), is one ``error:`` line and
    exit code 2; so is a command line that does not parse (:func:`_usage_error`) or gives an empty path
    (:func:`_empty_path`). Out of memory, a full disk or quota: one line and 75 (:data:`EX_TEMPFAIL`). Ctrl-C is
    ``error: interrupted`` and 130; SIGTERM and SIGHUP are ``error: terminated (SIGTERM)`` and 128 + the
    signal (:func:`_on_signal`). Any other exception is a bug and keeps its traceback.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    hook = sys.unraisablehook
    previous = None
    try:
        previous = _set_signal_handlers(_on_signal)
        sys.unraisablehook = _quiet_unraisable(hook)
        lost = False
        try:
            try:
                code = _run(args)
            finally:  # (the command line's words are this run's only: option_given, typed_value)
                from devolens.cli import _common

                _common.COMMAND_ARGS.clear()
        except KeyboardInterrupt as exc:  # Ctrl-C, or a signal's Terminated
            code = _report_stop(exc)
        except Exception:
            if not atomic.received_signals:
                raise  # a bug: its traceback
            # an error the stop caused while unwinding (a training loader's worker killed by the same signal:
            # torch's "DataLoader worker ... is killed by signal"): the stop is what happened
            lost = True
        else:
            # the signal's exception was lost (raised in a weakref callback, a __del__) after the last output
            # was committed, or the command commits nothing: still not a success
            lost = code == 0 and bool(atomic.received_signals)
        if lost:
            code = _report_stop(atomic.interruption(atomic.received_signals[0]))
    finally:
        _restore_signal_handlers(previous)
        sys.unraisablehook = hook
        atomic.received_signals.clear()
        set_quiet(False)  # a program (a test) calling main again gets the messages unless it asks otherwise
    return code


def _device_notes() -> None:
    """Show a :class:`~devolens.predict.devices.DeviceWarning` (``auto`` chose the CPU over a GPU this PyTorch
    cannot run) or a :class:`~devolens.errors.StartWarning` (a run no epoch of which beat its starting weights) as
    one ``note:`` line, and a :class:`~devolens.models.zoo.WeightsWarning` (a model's weights are not
    those its card records) as one ``warning:`` line, each once however often the command resolves its device or
    loads its model; other warnings as before. Call inside ``warnings.catch_warnings()``, which puts both settings
    back."""
    from devolens.errors import StartWarning
    from devolens.models.zoo import WeightsWarning
    from devolens.predict.devices import DeviceWarning

    said: set[str] = set()
    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, (DeviceWarning, WeightsWarning, StartWarning)):
            show(message, category, filename, lineno, file, line)
        elif str(message) not in said:
            from devolens.cli._common import MODEL_SAID, console, note

            said.add(str(message))
            if issubclass(category, (WeightsWarning, StartWarning)):  # (the record's notes say it too)
                MODEL_SAID.append(str(message))
            if issubclass(category, WeightsWarning):
                console.print(f"warning: {message}", soft_wrap=True, markup=False)
            else:
                note(str(message))

    from devolens.cli._common import MODEL_SAID

    MODEL_SAID.clear()  # (this command's own)
    for category in (DeviceWarning, WeightsWarning, StartWarning):  # (said once here, whatever the registries remember)
        warnings.simplefilter("always", category)
    warnings.showwarning = showwarning


def _after_fork_in_child() -> None:
    """A process forked while devolens runs (render's worker pool, a training loader's workers) leaves stopping to
    its parent: SIGINT and SIGHUP (Ctrl-C, a closed terminal: sent to the whole group) are ignored there, SIGTERM
    (what a pool's terminate() sends) ends it. With main's handler each busy worker printed a traceback, with
    run()'s (record only) a stopped pool waited for ever, and with Python's own a worker killed holding the pool's
    queue lock hung its parent, or a training loader's dead worker ended the run with torch's traceback.
    Signals that were ignored stay ignored. SIGTERM sent to every process of the job (``timeout``, Slurm) still
    kills a worker wherever it is, holding that lock too: render stops its pool with a bounded wait, then kills the
    workers left (:func:`devolens.render.dataset._stop_pool`)."""
    for signum in _STOP_SIGNALS:
        if signal.getsignal(signum) in (_on_signal, _on_signal_quietly):
            signal.signal(signum, signal.SIG_DFL if signum == getattr(signal, "SIGTERM", None) else signal.SIG_IGN)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


#: the values ``DEVOLENS_QUIET`` takes (any case; empty: unset), as click reads a boolean: quiet, then not
QUIET_ENV_VALUES = (("1", "true", "t", "yes", "y", "on"), ("0", "false", "f", "no", "n", "off"))


def _bad_quiet_env() -> str | None:
    """The error for a ``DEVOLENS_QUIET`` that is no boolean (click's words were "Input should be a valid boolean,
    unable to interpret input"), naming the values it takes; None for a good one or none."""
    value = os.environ.get("DEVOLENS_QUIET", "")
    if value.strip().lower() in ("", *QUIET_ENV_VALUES[0], *QUIET_ENV_VALUES[1]):
        return None
    return (f"DEVOLENS_QUIET={value.strip()} is not a yes or no: set it to 1 (or true, yes, on) to keep only errors, "
            f"warnings and notes on stderr, 0 (or false, no, off, empty) for every message")


def _run(args: list[str]) -> int:
    """Run the command line ``args``; print an ``error:`` line and return the exit code (KeyboardInterrupt,
    Ctrl-C's or a signal's, propagates)."""
    command = None
    try:
        atomic.stop_if_signalled()  # a signal that came while the process started
        with warnings.catch_warnings():  # the commands print their own note (library users get the warning)
            for printed in (DiameterWarning, IdentityWarning, InputWarning, NoSignalWarning):
                warnings.simplefilter("ignore", printed)
            _device_notes()
            # click's parsing and invocation without typer's standalone wrapper, which prints usage errors in a
            # box over several lines and turns Ctrl-C into a bare exit 130
            command = _command()
            from devolens.cli import _common

            _common.COMMAND_ARGS[:] = args  # (what a command asks of its options as typed: option_given)
            empty = _empty_path(command, args) or _bad_quiet_env()
            if empty is not None:
                print(f"error: {empty}", file=sys.stderr)
                return 2
            with command.make_context("devolens", list(args)) as ctx:
                command.invoke(ctx)
    except SystemExit as exc:  # sys.exit in a command
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except DevolensError as exc:
        print(f"error: {_with_path_hint(exc, args)}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # atomic.Exhausted: a full disk or quota
    except MemoryError as exc:  # numpy's _ArrayMemoryError too
        return _oom_exit(exc, command, args)
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # stdout closed early (devolens ... | head): quiet, exit 1, as click does
            pacify = _pacify_flush()
            if pacify is not None:
                sys.stdout, sys.stderr = pacify(sys.stdout), pacify(sys.stderr)
            return 1
        if exc.errno == errno.ENOMEM:  # mmap, a thread's stack
            return _oom_exit(exc, command, args)
        message = _environment_error(exc, args)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EX_TEMPFAIL if exc.errno in RETRY_ERRNOS else 2
    except Exception as exc:
        if _is_out_of_memory(exc) or _is_mapping_failure(exc):
            return _oom_exit(exc, command, args)
        code = _click_exit(exc, args)
        if code is None:
            raise
        return code
    return 0


# Out of memory -------------------------------------------------------------------------------------

#: PyTorch's allocation failures, a RuntimeError (torch.cuda.OutOfMemoryError is one too): CPU, CUDA (cuBLAS's
#: handle or workspace included: "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"), Apple MPS
_TORCH_OOM = re.compile(r"DefaultCPUAllocator: can't allocate memory|CUDA out of memory|CUDA error: out of memory"
                        r"|CUBLAS_STATUS_ALLOC_FAILED|MPS backend out of memory")
#: options that lower a command's memory, and how to say so
_MEMORY_OPTIONS = (("--batch-size", "a smaller --batch-size"), ("--tile", "a smaller --tile"),
                   ("--workers", "fewer --workers"), ("--threads", "fewer --threads"))
#: those of them that lower the host's memory only (processes, CPU threads): no advice for a GPU's
_HOST_MEMORY_OPTIONS = ("--workers", "--threads")


def _is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is PyTorch's failure to allocate memory (its message, or a DataLoader worker's report of it)
    or OpenCV's (a ``cv2.error``: "Insufficient memory", a resize under ``ulimit -v``)."""
    from devolens.io.images import opencv_out_of_memory

    names = {c.__name__ for c in type(exc).__mro__}
    return ("OutOfMemoryError" in names or (isinstance(exc, RuntimeError) and bool(_TORCH_OOM.search(str(exc))))
            or opencv_out_of_memory(exc))


#: a shared library that could not be mapped into the address space (``ulimit -v``, a cluster's ``h_vmem``):
#: PyTorch's import fails so (an ImportError, or a SystemError over it)
_MAPPING_FAILURE = "failed to map segment from shared object"
#: the address space a PyTorch import maps (its CPU and CUDA libraries: a bare ``import torch`` failed under ``ulimit
#: -v`` of 2-3 GB, a segment run under 3.5 GB with --batch-size 1, and ran under 4 GB peaking at 637 MB resident)
TORCH_ADDRESS_SPACE = 4 << 30


def _is_mapping_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from or during) is a shared library's failure to map into a
    limited address space (:data:`_MAPPING_FAILURE`)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if _MAPPING_FAILURE in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _address_space_limit() -> int | None:
    """This process's address-space limit in bytes (``ulimit -v``; a cluster's ``h_vmem`` sets it), None without one."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError, AttributeError):  # (no resource module on Windows)
        return None
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else int(soft)


def _oom_exit(exc: BaseException, command, args: list[str]) -> int:
    """Print the ``error:`` line for memory that ran out; the exit code (:data:`EX_TEMPFAIL`)."""
    print(f"error: {_out_of_memory(exc, command, args)}", file=sys.stderr)
    return EX_TEMPFAIL


def _out_of_memory(exc: BaseException, command, args: list[str]) -> str:
    """The ``error:`` line for memory that ran out: what the command has to lower; where PyTorch could not be
    loaded under an address-space limit (``ulimit -v``, ``h_vmem``), or ran out under one below twice what it maps,
    that limit, which no option lowers."""
    limit = _address_space_limit()
    if _is_mapping_failure(exc) or ("torch" in sys.modules and limit is not None and limit < 2 * TORCH_ADDRESS_SPACE):
        said = "" if limit is None else f" to {limit / (1 << 30):.1f} GB"
        return (f"out of memory: this process's address space is limited{said} (ulimit -v, or a cluster job's "
                f"h_vmem), and PyTorch alone maps about {TORCH_ADDRESS_SPACE >> 30} GB of it before any work: raise "
                "that limit (ask for 8 GB or more; a job's resident memory stays far below it) rather than lowering "
                "the command's options")
    gpu = any(word in str(exc) for word in ("CUDA", "CUBLAS", "MPS"))
    tips: list[str] = []
    try:
        params = getattr(_scan(command, args)[0], "params", None) or () if command is not None else ()
        names = {o for p in params for o in getattr(p, "opts", ())}
        tips = [tip for option, tip in _MEMORY_OPTIONS
                if option in names and not (gpu and option in _HOST_MEMORY_OPTIONS)]
        if any(getattr(p, "name", None) == "recipe" for p in params):
            tips.append("a smaller train.batch_size in the recipe")
        if gpu and "--device" in names:
            tips.append("--device cpu")
    except Exception:  # the advice is a courtesy: the line is printed whatever happens here
        pass
    tips.append("more memory for the run (a larger job memory request or ulimit)" if not gpu else
                "a GPU with more free memory")
    advice = ", ".join(tips[:-1]) + (" or " if len(tips) > 1 else "") + tips[-1]
    return f"out of {'GPU ' if gpu else ''}memory: try {advice}"


# Command-line values --------------------------------------------------------------------------------


def _scan(command, args: list[str]) -> tuple:
    """The sub-command that ``args`` run and the values they give its parameters, as far as they can be told
    before click parses them: ``(command, [(parameter or None, value, option name or None), ...], unknown)``;
    ``unknown``: an option the command does not have was met (click refuses it; the scan stops there)."""
    cmd, found, pos, i = command, [], 0, 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            found += [(_argument(cmd, pos + k), v, None) for k, v in enumerate(args[i:])]
            break
        if arg.startswith("-") and arg != "-":
            opts = {o: p for p in cmd.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)}
            name, value = arg, None
            if arg.startswith("--") and "=" in arg:
                name, value = arg.split("=", 1)
            elif not arg.startswith("--") and len(arg) > 2 and arg[:2] in opts:  # -oVALUE
                name, value = arg[:2], arg[2:]
            param = opts.get(name)
            if param is None:
                if name in _HELP_OPTIONS:
                    continue
                return cmd, found, True  # click says "No such option"
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                continue
            # an option takes nargs values (--size H W), the first of them may be attached (--out=X, -oX)
            values = [] if value is None else [value]
            take = max(1, getattr(param, "nargs", 1) or 1) - len(values)
            values += args[i:i + take]
            i += take
            found += [(param, v, name) for v in values]
            continue
        commands = getattr(cmd, "commands", None)
        if commands is not None:  # a group: the word names its sub-command
            sub = commands.get(arg)
            if sub is None and getattr(cmd, "default", None) in commands:  # `devolens tile IMAGE...`
                sub, i = commands[cmd.default], i - 1
            if sub is None:
                break
            cmd, pos = sub, 0
            continue
        found.append((_argument(cmd, pos), arg, None))
        pos += 1
    return cmd, found, False


#: the help options (click adds them to every command; not among its params)
_HELP_OPTIONS = ("-h", "--help")


def _argument(command, pos: int):
    """The argument of ``command`` that takes its ``pos``-th word (None past the last)."""
    k = 0
    for p in command.params:
        if p.param_type_name != "argument":
            continue
        if p.nargs < 0 or pos < k + p.nargs:
            return p
        k += p.nargs
    return None


def _is_path(param) -> bool:
    """Whether a parameter takes a path (typer's ``Path`` annotations, alone or in a list)."""
    import typing
    from pathlib import PurePath

    descriptor = getattr(param, "type_descriptor", None)  # typer >= 0.2x
    if descriptor is not None:
        ann = getattr(descriptor, "annotation", None)
        kinds = typing.get_args(ann) if typing.get_origin(ann) in (list, tuple) else (ann,)
        return any(isinstance(k, type) and issubclass(k, PurePath) for k in kinds)
    return any(c.__name__ == "Path" for c in type(getattr(param, "type", None)).__mro__)  # click.Path


def _empty_path(command, args: list[str]) -> str | None:
    """The ``error:`` line for a path given empty (``--out "$OUT"`` with OUT unset: Path("") is the current
    folder, where the command would write) or beginning with a ``~`` the shell did not expand (``--out=~/seg``: a
    folder named ``~`` here; :func:`tilde_hint`), or an output typed as ``-``, which users read as stdout (a file or
    folder named ``-`` was written; ``./-`` still names one), or None."""
    if "-h" in args or "--help" in args:
        return None
    cmd, found, unknown = _scan(command, args)
    if unknown:  # click's own error says what is wrong
        return None
    # a command's other outputs (simulate well's --labels, --objects): the parameter names its callback lists
    callback = getattr(cmd, "callback", None)
    more = getattr(inspect.unwrap(callback), OUTPUT_PARAMS, ()) if callback is not None else ()
    for param, value, name in found:
        if value == "" and param is not None and _is_path(param):
            what = name or (param.metavar or param.name or "input").upper()
            return f"{what} is empty (an unset shell variable?): give a path"
        output = param is not None and (name in _OUT_OPTIONS or param.name in ("out", "to", *more)) and _is_path(param)
        if output and value == "-":
            return "-: writing to stdout is not supported: give a file name (./- for a file named -)"
        if isinstance(value, str) and output and not os.path.lexists(value):
            home = tilde_hint(Path(value), exists=False)  # (--out=~/seg: a folder named ~ here, a trap for rm -rf ~)
            if home:
                return f"{name or (param.metavar or param.name or 'input').upper()} {value}: {home}"
    return None


def _pacify_flush():
    """click's ``PacifyFlushWrapper`` (a stream whose flush ignores a closed pipe): typer's copy of click, or
    click's own; None if neither has it."""
    for name in ("typer._click.utils", "click.utils"):
        try:
            return importlib.import_module(name).PacifyFlushWrapper
        except (ImportError, AttributeError):
            continue
    return None


def _click_exit(exc: Exception, args: list[str] | None = None) -> int | None:
    """The exit code of click's (typer's) own exceptions, after printing their ``error:`` line: an exit
    (``--help``, ``--version``, ``typer.Exit``), a usage error (``args``: the command line, for
    :func:`_usage_error`), an abort; None for any other exception.

    Told apart by class name: typer ships its own copy of click (typer >= 0.26) or uses click's.
    """
    names = {c.__name__ for c in type(exc).__mro__}
    code = getattr(exc, "exit_code", None)
    if "Exit" in names and isinstance(code, int) and "ClickException" not in names:
        return code
    if "Abort" in names:  # end of input at a prompt
        print("error: aborted", file=sys.stderr)
        return 1
    if "ClickException" not in names or not hasattr(exc, "format_message"):
        return None
    if "NoArgsIsHelpError" in names:  # a group without its command: the help, printed as the error was made
        text = exc.format_message()
        if text.strip():
            print(text, file=sys.stderr)
        return exc.exit_code
    message = _one_line(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    if "UsageError" in names:
        message = _usage_error(message, ctx, args)
    print(f"error: {message}", file=sys.stderr)
    return exc.exit_code


def _one_line(text: str) -> str:
    """``text`` on one line, without its final full stop (click's wording is kept: "Missing option ...")."""
    return re.sub(r"\s*\n\s*", " ", str(text)).strip().rstrip(".")


#: how much of a list of unexpected arguments an error line quotes
_EXTRA_SHOWN = 160


def _usage_error(message: str, ctx, args: list[str] | None = None) -> str:
    """A usage error's line: ``message`` and where to read the usage (``(see devolens segment nuclei --help)``).

    Extra arguments (``devolens segment nuclei few/*.png``: the shell gives one argument per file) say how
    many inputs the command takes, and that a folder can be given when the input may be one. Where the command
    line ``args`` shows a beginner's typing mistake, the line says that instead or as well: an option typed with
    a typographic dash (``–out``, pasted from a PDF: :func:`_typographic_dashes`), a long option with one hyphen
    (``-out``, read as ``-o ut``: :func:`_one_hyphen`), a path with spaces not quoted (:func:`_unquoted_path`), a
    group given an input where its sub-command goes (``devolens segment img.png``: :func:`_command_first`). An
    option typed from another tool's habit (cellpose's ``--min_size``, StarDist's ``--prob_thresh``, ``--use_gpu``)
    names the command's own (:func:`_habit_option`) instead of click's guesses by spelling.
    """
    if ctx is None:  # click's parser raises some errors with no context ("Option '--out' requires an argument")
        return _contextless_usage(message, args or [])
    path = ctx.command_path
    words = _option_words(args or [])
    extra = re.fullmatch(r"got unexpected extra argument(?:s|\(s\))? \((.*)\)", message, re.S | re.I)
    quiet = re.match(r"no such option: (?:-q|--quiet)(?=\s|$)", message, re.I)
    if quiet and ctx.parent is not None:  # an option of devolens itself: `devolens segment nuclei ... -q`, a slip
        return (f"{quiet.group(0)} (--quiet is an option of devolens itself: give it before the command, "
                f"devolens --quiet {ctx.command_path.split(' ', 1)[-1]} ...)")
    typed = _hint(_typographic_dashes, words) or _hint(_one_hyphen, words, ctx.command)
    unknown = re.fullmatch(r"No such command '(.*)'(?:\. Did you mean .*)?", message, re.S)
    if extra:
        got = extra.group(1)
        if len(got) > _EXTRA_SHOWN:
            got = got[:_EXTRA_SHOWN].rsplit(" ", 1)[0] + " ..."
        spaced = None if typed else _hint(_unquoted_path, ctx, args or [])
        switch = None if typed or spaced else _hint(_switch_value, words, ctx.command, extra.group(1))
        inputs = [p for p in ctx.command.params if getattr(p, "param_type_name", "") == "argument"]
        if switch:  # `--resume true`: not a second input
            message = f"got extra arguments ({got}): {switch}"
        elif typed or spaced:  # (not a pattern's files: the *.png advice would mislead)
            message = f"got extra arguments ({got})"
            typed = typed or f'a path with spaces must be quoted: "{spaced}"'
        elif not inputs:
            message = f"got extra arguments ({got}): {path} takes options only"
        elif len(inputs) == 1 and inputs[0].nargs == 1:
            arg = inputs[0]
            name = (arg.metavar or arg.name or "INPUT").upper()
            message = f"got extra arguments ({got}): {path} takes one {name}"
            if "folder of images" in (getattr(arg, "help", None) or "").lower():  # segment, population, curate
                message += (" (a pattern such as *.png gives one argument per file); to read several images give "
                            "the folder that holds them instead")
        else:
            message = f"got extra arguments ({got})"
    elif unknown and not typed:
        typed = _hint(_command_first, unknown.group(1), ctx)
        if typed:
            message = f"No such command '{unknown.group(1)}'"
    no_option = re.match(r"No such option: (-\S+)", message)
    if no_option and not typed:  # another tool's option (cellpose's, StarDist's) or snake_case: click's guess replaced
        typed = (_hint(_dash_file, words, no_option.group(1))
                 or _hint(_habit_option, no_option.group(1), ctx.command))
        if typed:
            message = f"No such option: {no_option.group(1)}"
        elif sibling := _hint(_sibling_option, no_option.group(1), ctx):
            # an option of another kind of the group's (segment nuclei's --diameter given to segment livedead), and
            # click's guesses among the command's own that begin with the same word (segment livedead --min-size:
            # its --min-area, not --pixel-size; --diameter: not --dataset)
            first = no_option.group(1).lstrip("-").replace("_", "-").split("-")[0]
            guesses = [g for g in _click_guesses(message[no_option.end():])
                       if g.lstrip("-").split("-")[0] == first]
            message = f"{sibling}; did you mean {' or '.join(guesses)}?" if guesses else sibling
    if typed:
        message = f"{message}; {typed}"
    helps = sorted(ctx.help_option_names or (), key=lambda o: not o.startswith("--"))  # --help before -h
    return f"{message} (see {path} {helps[0]})" if helps else message


def _contextless_usage(message: str, args: list[str]) -> str:
    """A usage error click raised without its context (an option given no value, or fewer values than it takes,
    at the end of the line): where to read the usage, the command found by walking ``args`` through devolens'
    groups (``(see devolens render --help)``), and for an option of several values given one joined
    (``render --size 200x140``; ``simulate well --size`` takes ``200x140``) how to give them."""
    command, path = _command(), ["devolens"]
    for word in _option_words(args):
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            if not hasattr(command, "commands"):  # a command (no group): found, its options and inputs follow
                break
            continue  # a group's own options (devolens -q)
        command = sub
        path.append(word)
    needs = re.fullmatch(r"Option '(-[^']+)' requires (\d+) arguments", message)
    if needs:
        words = _option_words(args)
        given = words[words.index(needs.group(1)) + 1] if needs.group(1) in words[:-1] else ""
        parts = re.split(r"[x×X,]", given)
        if len(parts) == int(needs.group(2)) and all(_is_number(part) for part in parts):
            message += f"; give them apart: {needs.group(1)} {' '.join(parts)}"
    return f"{message} (see {' '.join(path)} --help)"


def _is_number(word: str) -> bool:
    """Whether ``word`` reads as a number (``200``, ``0.5``)."""
    try:
        float(word)
    except ValueError:
        return False
    return True


# Typing mistakes --------------------------------------------------------------------------------------

#: what a word processor, a PDF or a web page puts where hyphens were typed: the en dash (for ``--``), the em dash
#: and the minus sign
_TYPOGRAPHIC_DASHES = "\u2013\u2014\u2212"


def _hint(find, *args) -> str | None:
    """``find(*args)``, or None where it fails: a hint is a courtesy, the error line is printed whatever happens."""
    try:
        return find(*args)
    except Exception:
        return None


def _option_words(args: list[str]) -> list[str]:
    """The words of a command line that may be options: those before ``--``."""
    return args[:args.index("--")] if "--" in args else list(args)


#: the words given to a switch as its value (``--resume true``), which click reads as extra arguments
_SWITCH_VALUES = ("true", "false", "yes", "no")


def _switch_value(words: list[str], command, extra: str) -> str | None:
    """What to say of a word such as ``true`` given right after a switch (``--resume true``, ``--plots false``,
    population's ``--plot p.png``): a switch takes no value, and click read the word as an extra argument
    (``extra``: click's list of them); None when no such word follows a switch."""
    switches: dict[str, tuple[str, str | None]] = {}  # a switch -> itself, the switch that turns it the other way
    for param in command.params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            other = list(getattr(param, "secondary_opts", None) or [])
            for opt in param.opts:
                switches[opt] = (opt, other[0] if other else None)
            for opt in other:
                switches[opt] = (opt, param.opts[0])
    got = extra.split()
    for flag, word in zip(words, words[1:]):
        if flag not in switches or word not in got:
            continue
        flag, other = switches[flag]
        if word.lower() not in _SWITCH_VALUES:  # population's --plot p.png: a switch there, a path in lineage's
            if len(got) > 1 or os.path.lexists(word):  # inputs given one by one: the advice on inputs says more
                return None
            return f"{flag} is a switch here and takes no value ({word} was read as one more input)"
        if word.lower() in ("true", "yes"):
            return f"{flag} is a switch and takes no value: give {flag} alone"
        return (f"{flag} is a switch and takes no value: give {other} instead" if other else
                f"{flag} is a switch and takes no value: leave it out")
    return None


def _typographic_dashes(words: list[str]) -> str | None:
    """What to say of the words that start with a typographic dash (:data:`_TYPOGRAPHIC_DASHES`: ``–out``,
    ``–-out``, ``—out``, ``−5``), which click reads as inputs, not options; None when there are none."""
    bad = list(dict.fromkeys(w.split("=", 1)[0] for w in words if w[:1] in _TYPOGRAPHIC_DASHES))
    if not bad:
        return None
    plain = []
    for word in bad:
        rest = word.lstrip("-" + _TYPOGRAPHIC_DASHES)
        plain.append(("--" if len(rest) > 1 and rest[0].isalpha() else "-") + rest)
    looks = f"{bad[0]} looks like {plain[0]}" + "".join(f", {w} like {p}" for w, p in zip(bad[1:3], plain[1:3]))
    hyphens = "two plain hyphens" if all(p.startswith("--") for p in plain) else "plain hyphens"
    if len(plain) == 1 and not plain[0].startswith("--"):
        hyphens = "a plain hyphen"
    dashes = "a typographic dash" if len(bad) == 1 else "typographic dashes"
    return (f"{looks} typed with {dashes} (from a PDF or word processor?): type {hyphens}"
            + ("" if len(bad) <= 3 else f" ({len(bad) - 3} more words start with one)"))


def _one_hyphen(words: list[str], command) -> str | None:
    """What to say of a word that is one of ``command``'s long options typed with one hyphen (``-out``: click reads
    ``-o ut``, the option -o with the value ``ut``, or a -o that takes none and then -u...); None when there is
    none."""
    params = [p for p in getattr(command, "params", ()) if getattr(p, "param_type_name", "") == "option"]
    longs = {o[2:] for p in params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")} | {"help"}
    shorts = {o: p for p in params for o in (*p.opts, *p.secondary_opts) if len(o) == 2 and o[0] == "-"}
    for word in words:
        name = word[1:].split("=", 1)[0]
        if not word.startswith("-") or word.startswith("--") or len(name) < 2 or name not in longs:
            continue
        short = shorts.get(word[:2])
        read = ""
        if short is not None and not (getattr(short, "is_flag", False) or getattr(short, "count", False)):
            read = f" was read as {word[:2]} {word[2:]}"
        return f"{word.split('=', 1)[0]}{read}: long options take two hyphens (--{name})"
    return None


def _dash_file(words: list[str], option: str) -> str | None:
    """What to say where the unknown ``option`` click names is the start of a file's name that begins with a hyphen
    (``-dash.png``: click reads the options -d, -a...): a word of ``words`` that starts with it and is an existing
    path or ends as an image, table or video does; None when none does."""
    from devolens.io.frames import FOLDER_SUFFIXES, TABLE_SUFFIXES, VENDOR_SUFFIXES, VIDEO_SUFFIXES

    suffixes = (*FOLDER_SUFFIXES, *TABLE_SUFFIXES, *VIDEO_SUFFIXES, *VENDOR_SUFFIXES, ".h5", ".hdf5", ".json")
    for word in words:
        if not word.startswith(option) or word.startswith("--") and "=" in word:
            continue
        if Path(word).suffix.lower() in suffixes or Path(word).exists():
            return f"a file whose name begins with '-'? give it as ./{word}"
    return None


#: options of other tools typed from habit (cellpose's and StarDist's command lines and Python arguments, spelt
#: with hyphens): the option of a command that makes the advice apply, and the advice (aliases in advice only: the
#: commands take their own names)
_HABITS = {
    **dict.fromkeys(("prob-thresh", "prob-threshold"), (
        "--threshold", "StarDist's prob_thresh is --threshold here (the probability a pixel needs, 0 to 1)")),
    **dict.fromkeys(("cellprob-threshold", "cellprob-thresh"), (
        "--threshold", "cellpose's cellprob_threshold is --threshold here, a probability from 0 to 1 (cellpose's 0 "
                       "is about 0.5)")),
    **dict.fromkeys(("nms-thresh", "nms-threshold"), (
        "--seed-threshold", "no overlap (NMS) threshold is needed: touching nuclei are split by a watershed from "
                            "their seeds (--seed-threshold sets how sure a seed must be)")),
    **dict.fromkeys(("flow-threshold", "flow-thresh"), (
        "--seed-threshold", "there are no flows to check: objects grow from their seeds by a watershed "
                            "(--threshold, --seed-threshold and --min-size tune it)")),
    **dict.fromkeys(("use-gpu", "gpu", "cuda"), ("--device", "the GPU is --device cuda")),
    **dict.fromkeys(("chan", "chan2", "channels", "nuclear-channel", "chan-nuc"), (
        "--color", "the channel read is --color for an RGB image's (red, green, blue) or --channel N for a TIFF's "
                   "channel axis; one channel is read")),
    **dict.fromkeys(("save-tif", "save-tiff", "save-png", "save-masks"), (
        "--overlay", "label images are always written as TIFF (labels/ in --out); overlays/ holds PNG overlays "
                     "(--no-overlay leaves them out)")),
}


def _habit_option(name: str, command) -> str | None:
    """What to say of ``name``, an option ``command`` does not have, typed from another tool's habit
    (:data:`_HABITS`: ``--prob_thresh``, ``--use_gpu``, ``--chan 2``) or with underscores for hyphens (cellpose's
    ``--min_size``: ``--min-size``); None when it is neither (click's guess by spelling stands)."""
    options = {o for p in getattr(command, "params", ()) if getattr(p, "param_type_name", "") == "option"
               for o in (*p.opts, *p.secondary_opts)}
    plain = name.lstrip("-").lower().replace("_", "-")
    habit = _HABITS.get(plain)
    if habit is not None and habit[0] in options:
        return habit[1]
    if "_" in name and f"--{plain}" in options:
        return f"options are spelt with hyphens: --{plain}"
    return None


def _click_guesses(said: str) -> list[str]:
    """The options click guessed by spelling, from what its "No such option: NAME" line says after the name
    ("Did you mean --min-area?", "(Possible options: --a, --b)"); none when it guessed none."""
    guess = (re.fullmatch(r"\s*Did you mean (\S+?)\??", said)
             or re.fullmatch(r"\s*\(Possible options: (.+)\)", said))
    return guess.group(1).split(", ") if guess else []


def _sibling_option(name: str, ctx) -> str | None:
    """What to say of ``name``, an option ``ctx``'s command does not have, that the other commands of its group have
    (``segment livedead --diameter``: an option of segment nuclei and membrane), from the commands themselves,
    instead of click's guess by spelling (``--dataset``); None when none of them has it, or for a command of
    devolens itself (its other commands are other tools, not other kinds of one)."""
    parent = ctx.parent
    group = getattr(parent.command, "commands", None) if parent is not None and parent.parent is not None else None
    if not group:
        return None
    plain = "--" + name.lstrip("-").replace("_", "-") if name.startswith("--") else name  # (--min_size)
    having = []
    for word in parent.command.list_commands(parent):
        other = group.get(word)
        if other is None or other is ctx.command or getattr(other, "hidden", False):
            continue
        if any(plain in (*p.opts, *p.secondary_opts) for p in other.params
               if getattr(p, "param_type_name", "") == "option"):
            having.append(word)
    if not having:
        return None
    words = ctx.command_path.split(" ")[1:]  # (without "devolens")
    kind = " ".join(words[:-1])
    return f"{' '.join(words)} has no {plain}: it is an option of {kind} {'/'.join(having)}"


def _unquoted_path(ctx, args: list[str]) -> str | None:
    """The path that the input of ``ctx``'s command and the extra arguments after it name, joined with single
    spaces (``Embryo Übung 1.png`` unquoted: the shell splits it at its spaces), when such a file or folder exists
    and the input alone does not; None otherwise."""
    _, found, _ = _scan(ctx.find_root().command, args)
    words = [value for param, value, name in found if name is None]
    if len(words) < 2 or os.path.lexists(words[0]):
        return None
    return _spaced_path(words)


def _spaced_path(words: list[str], at: int = 0) -> str | None:
    """The longest run of ``words`` from ``at`` (at most 32: not a pattern's files) that, joined with single
    spaces, names an existing file or folder; None when none does."""
    for end in range(min(len(words), at + 32), at + 1, -1):
        joined = " ".join(words[at:end])
        if os.path.lexists(joined):
            return joined
    return None


def _command_first(word: str, ctx) -> str | None:
    """What to say of ``word`` given to a group where its sub-command goes (``devolens segment img.png``), when it
    is a file or folder or looks like one (has a suffix): the group's sub-commands, in the order its help names them,
    and the command line with the first; None for a word that looks like a misspelt command."""
    commands = getattr(ctx.command, "commands", None)
    if not commands:
        return None
    if not os.path.lexists(word) and not (Path(word).suffix and not word.startswith(".")):
        return None
    names = [n for n in ctx.command.list_commands(ctx) if not getattr(commands.get(n), "hidden", False)]
    if not names:
        return None
    text = (ctx.command.help or "").lower()
    where = {n: text.find(n.lower()) for n in names}
    names.sort(key=lambda n: (where[n] < 0, where[n]))  # those the help names first, in its order; then the others
    listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    path = ctx.command_path
    if ctx.parent is None:  # devolens img.png
        return f"{path} needs a command before the input, one of {listed}"
    return f"{path} needs a sub-command before the input ({listed}): {path} {names[0]} {word} ..."


def _with_path_hint(exc: DevolensError, args: list[str]) -> str:
    """A :class:`DevolensError`'s line, with what was wrong with the path it names when that path does not exist
    and the command line shows why (:func:`_missing_path_hint`)."""
    hint = _hint(_missing_path_hint, exc, args)
    return f"{exc}; {hint}" if hint else str(exc)


#: how the library says that an input does not exist ("no such file or folder", "file not found", ...)
_MISSING = re.compile(r"no such file|not found|does not exist", re.I)


def tilde_hint(path: Path, exists: bool = True) -> str | None:
    """For a path that begins with ``~`` (the shell leaves it as it is when quoted or after ``=``, as in
    ``--out=~/seg``): where the shell would have taken it, when that is another path (``exists``: and one that
    exists); None otherwise."""
    text = str(path)
    if not text.startswith("~"):
        return None
    home = os.path.expanduser(text)
    if home == text or (exists and not os.path.lexists(home)):
        return None
    return f"the shell did not expand ~ here (quoted, or after =): give the path as {home}"


def _missing_path_hint(exc: DevolensError, args: list[str]) -> str | None:
    """For an error on a path that does not exist: it begins with a ``~`` the shell did not expand
    (:func:`tilde_hint`); the same name with its accents encoded otherwise exists
    (:func:`devolens.io.frames.composed_twin`), it was typed with a typographic dash, or its word and those after it
    on the command line name an existing path with spaces, unquoted; None otherwise."""
    from devolens.io.frames import composed_twin, composed_twin_hint

    path = exc.path
    if path is None or not _MISSING.search(exc.message) or os.path.lexists(path):
        return None
    home = tilde_hint(Path(path))
    if home:
        return home
    # looked for once: an error of devolens.io.frames.missing_input has said it already, where there is one
    twin = exc.twin if hasattr(exc, "twin") else composed_twin(path)
    if twin is not None:
        hint = composed_twin_hint(twin)
        return None if hint in exc.message else hint
    words = _option_words(args)
    at = next((i for i, w in enumerate(words) if w and Path(w) == path), None)
    if at is None:
        return None
    typed = _typographic_dashes([words[at]])
    if typed:
        return typed
    joined = _spaced_path(words, at)
    return None if joined is None else f'a path with spaces must be quoted: "{joined}"'


# Signals (the handlers installed as the module loads: at its top) ---------------------------------------


def _on_signal(signum: int, frame) -> None:
    """Record the signal (:data:`devolens.io.atomic.received_signals`) and raise its interruption: KeyboardInterrupt
    for SIGINT, :class:`devolens.io.atomic.Terminated` (a KeyboardInterrupt) for the others, so that the run
    unwinds as on Ctrl-C and removes what it was writing. The record stops the run at the next commit when the
    exception is lost (Python drops exceptions raised in weakref callbacks and ``__del__``)."""
    atomic.received_signals.append(signum)
    raise atomic.interruption(signum)


def _restore_signal_handlers(previous: dict | None) -> None:
    for signum, old in (previous or {}).items():
        signal.signal(signum, signal.SIG_DFL if old is None else old)


def _quiet_unraisable(hook):
    """``sys.unraisablehook`` that keeps quiet about an interruption lost in a callback ("Exception ignored in ...
    KeyboardInterrupt"): the signal is recorded and stops the run at its next commit."""

    def quiet(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and atomic.received_signals:
            return
        hook(unraisable)

    return quiet


def _report_stop(exc: BaseException) -> int:
    """Print the one line of an interruption and return its exit code: 130 for Ctrl-C, 128 + the signal for
    :class:`devolens.io.atomic.Terminated`."""
    if isinstance(exc, atomic.Terminated):
        print(f"error: {exc}", file=sys.stderr)
        return 128 + exc.signum
    print("error: interrupted", file=sys.stderr)
    return 130


#: errors of the machine rather than the code, whatever file they concern: the user can act on them
_ENVIRONMENT_ERRNOS = WRITE_ERRNOS | frozenset(
    getattr(errno, name) for name in ("EACCES", "EPERM", "EROFS", "EXDEV", "ENAMETOOLONG", "EIO", "ESTALE")
    if hasattr(errno, name)
)
#: errors that are the environment's only when they concern where an output goes (``--out`` in
#: /proc, under a file, a folder that vanished); on a file inside the output they may be a bug
_PLACE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOENT", "ENOTDIR", "EISDIR", "EEXIST", "ENOTEMPTY", "EBUSY")
    if hasattr(errno, name)
)
#: options that name an output file or folder
_OUT_OPTIONS = ("--out", "-o", "--to")
#: the attribute of a command's function that names its other output parameters (``("labels", "objects")``),
#: refused as ``-`` as ``--out`` is (:func:`_empty_path`)
OUTPUT_PARAMS = "devolens_outputs"


def _environment_error(exc: OSError, argv: list[str]) -> str | None:
    """The one-line message for an OSError that the environment caused, or None for a bug.

    An error on an output given on the command line (``--out``, ``-o``, ``--to``: the path, a
    file or folder in it, one of its missing parent folders, or its hidden temporary siblings)
    reads ``<output>: cannot write output: <reason>``, as the commands' own checks do; a write that names no file
    (a full disk under ``devolens models > list.txt``) in a command without such an option is stdout's:
    ``stdout: cannot write output: <reason>``.
    """
    from devolens.io.atomic import cannot_write, public_path

    # a hidden staging folder or temporary file stands for the output it becomes
    files = [_public(f, public_path) for f in (exc.filename, exc.filename2) if f is not None]
    outs = _output_args(argv)
    for out in outs:
        for f in files:
            relation = _relation(f, out)
            if relation and (exc.errno in _ENVIRONMENT_ERRNOS or (exc.errno in _PLACE_ERRNOS and relation != "in")):
                return str(cannot_write(exc, out))
    if exc.errno not in _ENVIRONMENT_ERRNOS:
        return None
    if not files and exc.errno in WRITE_ERRNOS and len(set(outs)) == 1:  # a write that names no file: the output's
        return str(cannot_write(exc, outs[0]))
    if not files and exc.errno in WRITE_ERRNOS and not outs:  # a command without --out writes stdout only
        return f"stdout: cannot write output: {exc.strerror or exc}"
    reason = exc.strerror or str(exc)
    if not files:
        return reason
    name = os.fsdecode(files[0]) if isinstance(files[0], (bytes, os.PathLike)) else str(files[0])
    return f"{name}: {reason}"


def _public(filename, public_path):
    """``filename`` (an error's) with staging and temporary names replaced (a file descriptor as it is)."""
    try:
        name = os.fsdecode(filename)
        public = public_path(name)
    except (TypeError, ValueError):
        return filename
    return filename if public == Path(name) else str(public)


def _output_args(argv: list[str]) -> list[str]:
    """The values of the output options in ``argv`` (``--out X``, ``--out=X``, ``-o X``, ``-oX``)."""
    outs = []
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg in _OUT_OPTIONS and i + 1 < len(argv):
            outs.append(argv[i + 1])
        elif arg.startswith("--") and arg.split("=", 1)[0] in _OUT_OPTIONS and "=" in arg:
            outs.append(arg.split("=", 1)[1])
        elif arg.startswith("-o") and not arg.startswith("--") and len(arg) > 2:
            outs.append(arg[2:])
    return outs


def _relation(filename, out: str) -> str | None:
    """How ``filename`` stands to the output ``out``: "out" (the output itself, one of its parent
    folders or a hidden temporary beside it: where it goes), "in" (inside it) or None."""
    try:
        f = Path(os.path.abspath(os.fsdecode(filename)))
        o = Path(os.path.abspath(out))
    except (TypeError, ValueError):  # a file descriptor, a name with a NUL
        return None
    if f == o or f in o.parents:
        return "out"
    if f.parent == o.parent and f.name.startswith(f".{o.stem}."):  # atomic_path's and StagedDir's temporaries
        return "out"
    if o in f.parents:
        return "in"
    return None


def _tolerant_streams() -> None:
    """stdout and stderr write a character their encoding lacks as an escape (``\\u80da``) instead of failing
    with UnicodeEncodeError: a Windows console or a redirected stream in cp1252 given a file name in another script.
    Streams with another error handler (stderr's backslashreplace, a C locale's surrogateescape) are left as they
    are."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) != "strict" or not hasattr(stream, "reconfigure"):
            continue
        try:
            stream.reconfigure(errors="backslashreplace")
        except Exception:  # a stream that takes no new settings (already written to, detached): as it is
            pass


def run() -> None:  # pragma: no cover - console script shim
    _tolerant_streams()
    _set_signal_handlers(_on_signal_quietly)  # main() raises on signals; before and after it, they are noted
    try:
        code = main()
    except KeyboardInterrupt as exc:  # a second signal in main's last instants
        code = _report_stop(exc)
    _fast_exit(code)


def _fast_exit(code: int) -> None:
    """End the process without the interpreter's teardown.

    By the time :func:`main` returns, every command has closed its files, committed its
    outputs (atomic writes) and joined its worker threads; what remains is unloading
    PyTorch and a few thousand modules, about 0.4-0.6 s of a short command (measured:
    ``benchmarks/RESULTS.md``, speed section). Streams and logging are flushed first.
    ``DEVOLENS_SLOW_EXIT=1`` keeps the ordinary exit (e.g. for tools hooking ``atexit``).

    The stop signals are ignored from here: the outputs are committed and ``code`` says how the run went (a
    Ctrl-C now would only print a traceback from logging's shutdown, and exit 0 all the same).
    """
    import os

    if threading.current_thread() is threading.main_thread():
        for signum in _STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
    if os.environ.get("DEVOLENS_SLOW_EXIT"):
        sys.exit(code)
    try:
        if "logging" in sys.modules:
            sys.modules["logging"].shutdown()
    except Exception:  # a handler that cannot flush (a closed pipe): nothing more to say
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing more to say
            pass
    os._exit(code)
