"""What the outputs' records say of how they were made: the devolens and PyTorch versions, the command line, the
sha256 of input files (``segment.json``, population's and identify's JSON, ``render.json``, a simulated embryo's
``.meta.json``, a training run's ``run.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def version() -> str:
    """The installed distribution's version (the package's own when it runs from a source tree)."""
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("devolens")
    except PackageNotFoundError:
        from devolens import __version__

        return __version__


def torch_version() -> Optional[str]:
    """The installed PyTorch's version (None without one: the onnx backend alone)."""
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("torch")
    except PackageNotFoundError:
        return None


def command_line(default: str) -> str:
    """The command line that ran this command, as ``devolens ...`` (``shlex.join`` of ``sys.argv``, the program
    named ``devolens`` whatever its path), for the outputs' records. ``default`` (the command's name, e.g.
    ``devolens segment nuclei``) when this process is not the devolens program or its ``sys.argv`` does not hold
    the running command (a library call, ``main([...])`` from a script or a test)."""
    import shlex
    import sys

    argv = list(sys.argv)
    program = Path(argv[0]).name.lower() if argv and argv[0] else ""
    if program.endswith((".exe", ".py")):
        program = program.rsplit(".", 1)[0]
    if program not in ("devolens", "devolens-script") and not (
            program == "__main__" and Path(argv[0]).parent.name == "devolens"):
        return default
    words = iter(argv[1:])
    if not all(any(arg == word for arg in words) for word in default.split()[1:]):  # in order, options between
        return default
    return shlex.join(["devolens", *argv[1:]])


def record_header(command: str, input_path: str | Path, model: str, output: str | Path | None = None) -> dict:
    """The first entries of the JSON records of the inference commands (``segment.json``, ``livedead.json``,
    population's and identify's JSON), in this order: ``command`` (:func:`command_line` of the command's name, e.g.
    ``devolens identify``), ``input`` (absolute: a pipeline may read the record from another working directory),
    ``output`` (absolute; only when given) and ``model``. Each record adds its own entries after them."""
    header = {"command": command_line(command), "input": str(Path(input_path).absolute())}
    if output is not None:
        header["output"] = str(Path(output).absolute())
    header["model"] = str(model)
    return header


def record_text(record: dict, default=str) -> str:
    """A JSON record as written: indented by one space, ending in a line feed; a value JSON has no type for is
    written as ``default`` makes it (``str``; None: refused, a TypeError)."""
    import json

    return json.dumps(record, indent=1, default=default) + "\n"


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks; of a folder (an AceTree folder), the sha256 over its
    files in sorted order, each as its path relative to the folder, a NUL byte, its size, a NUL byte and its
    bytes."""
    import hashlib

    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for f in files:
        if f is not path:
            digest.update(f"{f.relative_to(path).as_posix()}\0{f.stat().st_size}\0".encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
