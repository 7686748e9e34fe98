"""The ``devolens`` command: one module per area, each with ``register(app)``.

Every sub-command parses its options, calls the library and prints. A
:class:`devolens.errors.DevolensError` (a user's mistake) becomes a one-line ``error:``
message and exit code 2, never a traceback; so does an output the system refuses (read-only
file system, no permission, full disk), and Ctrl-C prints ``error: interrupted`` (exit 130).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import warnings
from pathlib import Path

#: the commands that stream frames through a network (:func:`devolens.cli._common.streaming_threads`)
STREAMING_COMMANDS = ("segment", "population")


def _streaming_blas(argv: list[str]) -> None:
    """One OpenBLAS thread for ``devolens segment``/``population``, set before NumPy loads (imported below).

    NumPy's OpenBLAS starts a worker thread per core as it loads, which spins ~0.1 s of CPU before it sleeps;
    at start-up, where decoding shares the CPU with PyTorch's import, that is time taken from both (the
    streaming commands call no large BLAS routine). Only when this process is the ``devolens`` command itself
    (not a program importing this module), and a setting of the user's is kept."""
    if "numpy" in sys.modules or os.path.basename(argv[0] if argv else "") not in ("devolens", "devolens.exe"):
        return
    words = [a for a in argv[1:] if not a.startswith("-")]
    if words and words[0] in STREAMING_COMMANDS:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


_streaming_blas(sys.argv)

import typer  # noqa: E402

from devolens.errors import DevolensError, DiameterWarning  # noqa: E402
from devolens.io.atomic import WRITE_ERRNOS  # noqa: E402

app = typer.Typer(
    name="devolens",
    help="Deep learning for developmental-biology microscopy (C. elegans embryos and more).",
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
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("devolens")
    except PackageNotFoundError:
        from devolens import __version__

        return __version__


def _print_version(value: bool) -> None:
    # eager: runs while the options are parsed, before click asks for a command ("Missing command.")
    if value:
        typer.echo(f"devolens {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """devolens: lineage tables, a digital embryo, training and a model zoo."""


for _name in _AREAS:
    try:
        _mod = importlib.import_module(f"devolens.cli.{_name}")
    except ModuleNotFoundError as exc:  # area not written yet
        if exc.name != f"devolens.cli.{_name}":
            raise
        continue
    _mod.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``devolens`` command; returns the exit code.

    A :class:`DevolensError`, or an :class:`OSError` that the environment causes (read-only file
    system, no permission, full disk: see :func:`_environment_error`), is one ``error:`` line and
    exit code 2; Ctrl-C is ``error: interrupted`` and 130. Any other exception is a bug and keeps
    its traceback.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with warnings.catch_warnings():  # the commands print their own note (library users get the warning)
            warnings.simplefilter("ignore", DiameterWarning)
            app(args=args, prog_name="devolens", standalone_mode=True)
    except SystemExit as exc:  # typer/click exit
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == 130 and _interrupted(exc):
            # typer turns Ctrl-C into a silent exit 130 (typer.Exit(130) from the KeyboardInterrupt)
            print("error: interrupted", file=sys.stderr)
        return code
    except DevolensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside typer's reach (e.g. while the app starts)
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        message = _environment_error(exc, args)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


def _interrupted(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt caused ``exc`` (directly or through typer's Exit)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


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


def _environment_error(exc: OSError, argv: list[str]) -> str | None:
    """The one-line message for an OSError that the environment caused, or None for a bug.

    An error on an output given on the command line (``--out``, ``-o``, ``--to``: the path, a
    file or folder in it, one of its missing parent folders, or its hidden temporary siblings)
    reads ``<output>: cannot write output: <reason>``, as the commands' own checks do.
    """
    files = [f for f in (exc.filename, exc.filename2) if f is not None]
    for out in _output_args(argv):
        for f in files:
            relation = _relation(f, out)
            if relation and (exc.errno in _ENVIRONMENT_ERRNOS or (exc.errno in _PLACE_ERRNOS and relation != "in")):
                from devolens.io.atomic import cannot_write

                return str(cannot_write(exc, out))
    if exc.errno not in _ENVIRONMENT_ERRNOS:
        return None
    reason = exc.strerror or str(exc)
    if not files:
        return reason
    name = os.fsdecode(files[0]) if isinstance(files[0], (bytes, os.PathLike)) else str(files[0])
    return f"{name}: {reason}"


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


def run() -> None:  # pragma: no cover - console script shim
    code = main()
    _fast_exit(code)


def _fast_exit(code: int) -> None:
    """End the process without the interpreter's teardown.

    By the time :func:`main` returns, every command has closed its files, committed its
    outputs (atomic writes) and joined its worker threads; what remains is unloading
    PyTorch and a few thousand modules, about 0.4-0.6 s of a short command (measured:
    ``benchmarks/RESULTS.md``, speed section). Streams and logging are flushed first.
    ``DEVOLENS_SLOW_EXIT=1`` keeps the ordinary exit (e.g. for tools hooking ``atexit``).
    """
    import os

    if os.environ.get("DEVOLENS_SLOW_EXIT"):
        sys.exit(code)
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing more to say
            pass
    os._exit(code)
