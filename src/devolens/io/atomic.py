"""Atomic file output: write to a temporary file beside the target, then rename; folders of
outputs are built in a hidden sibling folder and moved in place on success (:class:`StagedDir`).

An interrupted run (Ctrl-C, crash, error) never leaves a half-written output file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from devolens.errors import DevolensError


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Parameters
    ----------
    path : str or Path
        Final destination. Its parent folder is created when missing.
    suffix : str, optional
        Suffix of the temporary file (defaults to the destination's, so writers that
        infer the format from the extension keep working).

    Examples
    --------
    >>> with atomic_path("out.csv") as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.tmp-", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files: give the output the usual permissions (umask applies)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv(df, path: str | Path, **kwargs) -> Path:
    """Write a DataFrame to CSV atomically (``index=False`` unless given)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(path)


def write_columns_csv(columns: dict, path: str | Path) -> Path:
    """Write columns (name -> sequence or 1-D array, equal lengths) to a CSV file, atomically,
    without pandas: floats as Python writes them (``repr``, as pandas' ``to_csv`` does), the
    rest with ``str``. For the streaming commands, which never need to import pandas."""
    import csv

    names = list(columns)
    cells = []
    for name in names:
        values = columns[name]
        values = values.tolist() if hasattr(values, "tolist") else list(values)
        cells.append([repr(v) if isinstance(v, float) else v for v in values])
    lengths = {len(c) for c in cells}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {dict(zip(names, map(len, cells)))}")
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(names)
            writer.writerows(zip(*cells))
    return Path(path)


class StagedDir:
    """Build outputs in a hidden sibling folder (``tmp``); move them onto ``dest`` only on success
    (:meth:`commit`; entries already in ``dest`` with the same names are replaced), or drop them
    (:meth:`abort`)."""

    def __init__(self, dest: Path):
        self.dest = Path(dest)
        if self.dest.exists() and not self.dest.is_dir():
            raise DevolensError("output exists and is not a folder", path=self.dest)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.partial-", dir=self.dest.parent))

    def commit(self) -> None:
        self.dest.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.tmp.iterdir()):
            target = self.dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(entry, target)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
