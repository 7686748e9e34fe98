"""The ``devolens`` command: one module per area, each with ``register(app)``.

Every sub-command parses its options, calls the library and prints. A
:class:`devolens.errors.DevolensError` (a user's mistake) becomes a one-line ``error:``
message and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from devolens.errors import DevolensError

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


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    """devolens: lineage tables, a digital embryo, training and a model zoo."""
    if version:
        from devolens import __version__

        typer.echo(__version__)
        raise typer.Exit()


for _name in _AREAS:
    try:
        _mod = importlib.import_module(f"devolens.cli.{_name}")
    except ModuleNotFoundError as exc:  # area not written yet
        if exc.name != f"devolens.cli.{_name}":
            raise
        continue
    _mod.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``devolens`` command; returns the exit code."""
    try:
        app(args=argv, prog_name="devolens", standalone_mode=True)
    except SystemExit as exc:  # typer/click exit
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code
    except DevolensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


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
