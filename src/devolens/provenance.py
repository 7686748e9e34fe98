"""What the outputs' records say of how they were made: the devolens and PyTorch versions, the command line, the
sha256 of input files (``segment.json``, ``livedead.json``, population's and identify's JSON: ``inputs``, each entry
of :func:`input_entry`; ``render.json``, a simulated embryo's ``.meta.json``, a training run's ``run.json``), the
digest of the model files that made a result (:func:`model_sha256`), which int8 ran (:func:`int8_activations`) and a
cheap fingerprint of an input file (:func:`file_fingerprint`, which a curation report records)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional


@functools.lru_cache(maxsize=1)
def version() -> str:
    """The installed distribution's version (the package's own when it runs from a source tree). Read once per
    process: importlib.metadata scans sys.path for it (1-4 MB of transient allocations a call, measured), and a
    tile store's write, inside its bounded memory, records it."""
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("devolens")
    except PackageNotFoundError:
        from devolens import __version__

        return __version__


def version_keys() -> dict:
    """``{"devolens": version, "devolens_version": version}``: the version as every record names it, and the older
    key the render, simulate, lineage and demo records wrote it under (kept for their readers)."""
    v = version()
    return {"devolens": v, "devolens_version": v}


def _installed_version(package: str) -> Optional[str]:
    """The installed ``package``'s version, None without one."""
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version(package)
    except PackageNotFoundError:
        return None


def torch_version() -> Optional[str]:
    """The installed PyTorch's version (None without one: the onnx backend alone)."""
    return _installed_version("torch")


def onnxruntime_version(backend: Optional[str]) -> Optional[str]:
    """The installed onnxruntime's version where ``backend`` is ``"onnx"`` (it ran the network), else None."""
    return _installed_version("onnxruntime") if backend == "onnx" else None


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


def command_words(command) -> list[str]:
    """The words of a recorded command line (a record's ``command``, :func:`command_line`) from
    its subcommand on: ``devolens -q population in --out p.csv`` gives ``["population", "in", "--out", "p.csv"]``.
    The record keeps the line as typed, with the program's own options (``-q``, ``--quiet``: none takes a value)
    before the subcommand, so a test of its first words took ``devolens -q population`` for no population run.
    Empty for what is no devolens command line."""
    import shlex

    if not isinstance(command, str):
        return []
    try:
        words = shlex.split(command)
    except ValueError:  # (an edited record: its words as spaces part them)
        words = command.split()
    if not words or words[0] != "devolens":
        return []
    return next((words[i:] for i in range(1, len(words)) if not words[i].startswith("-")), [])


def absolute_path(path: str | Path) -> str:
    """``path`` as a record names it: absolute, its ``..`` and ``.`` taken out as written (``os.path.abspath``:
    ``../rend/frames`` run from ``cwdtest/`` is ``/.../rend/frames``, not ``/.../cwdtest/../rend/frames``), links
    kept as the user named them (not resolved)."""
    return os.path.abspath(path)


@functools.lru_cache(maxsize=1)
def environment() -> dict:
    """What a record says of the machine and software that ran the command (its ``environment``): ``python`` (the
    version), ``numpy`` (the version), ``platform`` (:func:`platform.platform`) and ``cpu`` (the CPU's model name:
    Linux's ``/proc/cpuinfo``, else :func:`platform.processor`; None where neither says). Read once per process."""
    import platform

    import numpy

    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.lower().startswith("model name")), None)
    except OSError:
        pass
    return {"python": platform.python_version(), "numpy": numpy.__version__, "platform": platform.platform(),
            "cpu": cpu or platform.processor() or None}


def run_context() -> dict:
    """``{"cwd": ..., "environment": ...}``: the absolute working directory the command ran in (what the relative
    paths of its ``command`` line are relative to) and :func:`environment`, as every record gives them."""
    return {"cwd": absolute_path(os.getcwd()), "environment": dict(environment())}


def record_header(command: str, input_path: str | Path, model: str, output: str | Path | None = None) -> dict:
    """The first entries of the JSON records of the inference commands (``segment.json``, ``livedead.json``,
    population's and identify's JSON), in this order: ``command`` (:func:`command_line` of the command's name, e.g.
    ``devolens identify``), ``input`` (absolute: a pipeline may read the record from another working directory;
    :func:`absolute_path`), ``output`` (absolute; only when given) and ``model``. Each record adds its own entries
    after them (and :func:`record_text`, ``cwd`` and ``environment`` last)."""
    header = {"command": command_line(command), "input": absolute_path(input_path)}
    if output is not None:
        header["output"] = absolute_path(output)
    header["model"] = str(model)
    return header


def record_text(record: dict, default=str) -> str:
    """A JSON record as written: indented by one space, ending in a line feed; a value JSON has no type for is
    written as ``default`` makes it (``str``; None: refused, a TypeError). Unless the record holds them already (a
    record rewritten keeps its own), :func:`run_context`'s ``cwd`` (the absolute working directory: what the
    ``command`` line's relative paths are relative to) and ``environment`` (:func:`environment`) are added last."""
    import json

    record = {**record, **{k: v for k, v in run_context().items() if k not in record}}
    return json.dumps(record, indent=1, default=default, ensure_ascii=False) + "\n"


#: the bytes :func:`files_sha256` reads at a time (into one buffer)
HASH_BLOCK = 1 << 18


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in 256 KiB blocks; of a folder (an AceTree folder), the sha256 over its
    files in sorted order, each as its path relative to the folder, a NUL byte, its size, a NUL byte and its
    bytes."""
    path = Path(path)
    if path.is_file():
        return files_sha256(path, [path], named=False)
    return files_sha256(path, sorted(p for p in path.rglob("*") if p.is_file()))


def files_sha256(folder: str | Path, files: list, *, named: bool = True) -> str:
    """The sha256 over ``files`` (paths, in the order given), read in 256 KiB blocks: each as its path relative to
    ``folder``, a NUL byte, its size, a NUL byte and its bytes (``named`` False: the bytes alone)."""
    import hashlib

    folder = Path(folder)
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK)
    view = memoryview(buffer)
    for f in map(Path, files):
        if named:
            # (a name not UTF-8, read back surrogate-escaped, as its bytes on disk)
            digest.update(os.fsencode(f.relative_to(folder).as_posix()) + f"\0{f.stat().st_size}\0".encode())
        with open(f, "rb") as fh:  # into one buffer, reused: a tile store's write hashes its sources in its bounds
            while n := fh.readinto(buffer):
                digest.update(view[:n])
    return digest.hexdigest()


def input_entry(path: str | Path, files: list | None = None) -> dict:
    """What an inference record (``inputs`` of ``segment.json``, ``livedead.json``, population's and identify's
    JSON) says of one input: ``path`` (absolute: :func:`absolute_path`), ``bytes`` and ``sha256``, and
    ``sha256_of``, what the digest
    covers. A file: its bytes (``sha256sum FILE`` gives the same digest). A folder: one digest over ``files`` (the
    files the command read of it: its frames, a plate's wells; None: every file under it), in sorted order, each as
    its path relative to the folder, a NUL byte, its size, a NUL byte and its bytes (:func:`files_sha256`; for a
    folder holding nothing else, :func:`file_sha256` of the folder gives the same digest), with ``files``, how many,
    and ``bytes``, their sizes added up. Each file is read once, in 256 KiB blocks: far quicker than the inference
    that read it."""
    path = Path(path)
    entry = {"path": absolute_path(path)}
    if path.is_file():
        entry.update(bytes=path.stat().st_size, sha256=file_sha256(path), sha256_of="file bytes")
        return entry
    chosen = sorted(f for f in map(Path, path.rglob("*") if files is None else files) if f.is_file())
    entry.update(files=len(chosen), bytes=sum(f.stat().st_size for f in chosen),
                 sha256=files_sha256(path, chosen),
                 sha256_of="the files read, sorted: each its path relative to the folder, NUL, size, NUL, bytes")
    return entry


def frames_inputs(path: str | Path) -> list[dict]:
    """The ``inputs`` of a record of frames read (``segment.json``, population's JSON): one :func:`input_entry`, of
    the file (an image, a video, a TIFF stack), or of a folder's files read as frames
    (:func:`devolens.io.frames.folder_files`: its images, or its ``frames/`` subfolder's, and the files continuing a
    multi-file OME-TIFF set, which its first file reads)."""
    path = Path(path)
    if not path.is_dir():
        return [input_entry(path)]
    from devolens.io.frames import folder_continuations, folder_files

    return [input_entry(path, [*folder_files(path), *folder_continuations(path)])]


def int8_activations(network) -> Optional[int]:
    """The bits of the activations of an int8 network (``network``: a predictor's network, or a predictor, whose
    ``precision`` is ``"int8"``): 8 on CPUs with VNNI/AMX, 7 on the others (the activations on a 7-bit grid,
    ``reduce_range``: :func:`devolens.models.quantize.quantize`), as the network was built (where it ran), else as
    it would be built here; 8 for onnxruntime's int8 graph (backend ``"onnx"``: uint8 activations on every CPU). None
    where the network did not run int8."""
    if getattr(network, "precision", None) != "int8":
        return None
    if getattr(getattr(network, "network", network), "backend", None) == "onnx":
        return 8
    built = getattr(getattr(network, "_network", network), "_int8", None)
    if built is not None and hasattr(built, "reduce_range"):
        return 7 if built.reduce_range else 8
    from devolens.models.quantize import int8_fast_here

    return 8 if int8_fast_here() else 7


#: :func:`model_sha256`'s digests by the files hashed, each with its modification time and size (a rewritten file
#: is hashed again): a model is hashed once per process, however many records name it
_MODEL_SHA_CACHE: dict[tuple, str] = {}


def model_files(name_or_folder: str | Path) -> tuple[Path, list[Path]]:
    """The model folder and the files a model's results depend on, sorted by name: a shipped or exported model's
    ``card.json`` (preprocessing, int8 activation scales, the diameter bounds, post-processing) and every
    ``.safetensors`` and ``.onnx`` beside it (the weights, the size models of ``--diameter auto``, the ONNX graphs); a
    training run's ``best.json``
    and ``best.safetensors`` (its card and weights; the resume checkpoint left out); a ``.safetensors`` file given
    as the model (``segment livedead --model RUN/best.safetensors``) and the ``.json`` config beside it.

    Raises
    ------
    DevolensError
        If no such model (the zoo's message), or the folder holds none of those files.
    """
    from devolens.errors import DevolensError
    from devolens.models import zoo

    given = Path(str(name_or_folder)).expanduser()
    if given.suffix.lower() == ".safetensors" and given.is_file():  # a run's weights file, its config beside it
        files = [p for p in (given.with_suffix(".json"), given) if p.is_file()]
        return given.parent, sorted(files, key=lambda p: p.name)
    folder = zoo.model_location(name_or_folder)
    if (folder / "card.json").is_file():
        files = [folder / "card.json", *(p for p in folder.glob("*.safetensors") if p.is_file()),
                 *(p for p in folder.glob("*.onnx") if p.is_file())]
    else:
        files = [p for p in (folder / "best.json", folder / "best.safetensors") if p.is_file()]
    if not files:
        raise DevolensError("no model files here (card.json and weights, or a training run's best.json and "
                            "best.safetensors)", path=folder)
    return folder, sorted(files, key=lambda p: p.name)


def model_sha256(name_or_folder: str | Path) -> str:
    """The sha256 (64 hex digits) of the files a model's results depend on (:func:`model_files`), each as its name,
    its size and its bytes (:func:`files_sha256`): the records' ``model_sha256``, beside ``weights_sha256`` (the
    weights alone), so that a card changed between releases (int8 scales, diameter bounds, post-processing) or a
    size model shows. Cached per process by the files' paths, modification times and sizes.

    Raises
    ------
    DevolensError
        If no such model, or its files cannot be read.
    """
    from devolens.errors import DevolensError

    folder, files = model_files(name_or_folder)
    try:
        key = tuple((str(f.resolve()), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        if key not in _MODEL_SHA_CACHE:
            _MODEL_SHA_CACHE[key] = files_sha256(folder, files)
    except OSError as exc:
        raise DevolensError(f"cannot read the model's files: {exc.strerror or exc}",
                            path=getattr(exc, "filename", None) or folder) from None
    return _MODEL_SHA_CACHE[key]


#: :func:`file_fingerprint` reads this many bytes at each end of a file
FINGERPRINT_BYTES = 1 << 20


def file_fingerprint(path: str | Path) -> str:
    """A cheap fingerprint of a file: the first 16 hex digits of the sha256 of its size, its first MiB and its last
    MiB (the whole file when smaller than 2 MiB), read in two reads whatever its size: two different videos, even of
    one name, length and frame size, differ in it (an encoder's header, the index at a file's end), while hashing a
    whole movie would cost a second per GB. A curation report records it (``input_fingerprint``) so that
    ``--skip-flagged`` refuses the report of another file."""
    import hashlib

    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(f"{size}\0".encode())
    with open(path, "rb") as fh:
        if size <= 2 * FINGERPRINT_BYTES:
            digest.update(fh.read())
        else:
            digest.update(fh.read(FINGERPRINT_BYTES))
            fh.seek(size - FINGERPRINT_BYTES)
            digest.update(fh.read(FINGERPRINT_BYTES))
    return digest.hexdigest()[:16]
