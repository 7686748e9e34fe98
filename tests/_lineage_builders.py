"""Builders of tiny lineage tables for the lineage tests (EPIC CD CSV, AceTree zip)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from devolens.io.tables import EPIC_COLUMNS


def write_cd(path: Path, rows: list[tuple]) -> Path:
    """rows: (cell, time, z, x, y, size, blot)."""
    lines = [",".join(EPIC_COLUMNS)]
    for cell, t, z, x, y, size, blot in rows:
        lines.append(f"{cell}:{t},{cell},{t},100,-2000,-50,{blot},100,{z},{x},{y},{size},12345")
    path.write_text("\n".join(lines) + "\n")
    return path


def nuclei_line(i, status, x, y, z, d, name):
    # index, status, pred, succ1, succ2, x, y, z, diameter, name, weight, ... (21 fields, trailing ", ")
    return f"{i}, {status}, -1, -1, -1, {x}, {y}, {z}, {d}, {name}, 1500, 0, 0, 0, {name}, 0, 0, 0, 0, 0, "


def acetree_files(frames: dict[int, list[tuple]]) -> dict[str, str]:
    """frames: time -> [(status, x, y, z, d, name)]."""
    out = {}
    for t, rows in frames.items():
        out[f"nuclei/t{t:03d}-nuclei"] = "\n".join(
            nuclei_line(i + 1, *r) for i, r in enumerate(rows)
        ) + "\n"
    return out


def write_acetree_zip(path: Path, frames: dict[int, list[tuple]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in acetree_files(frames).items():
            zf.writestr(name, text)
    return path


SMALL_FRAMES = {
    1: [(1, 10, 20, 5.0, 12, "ABa"), (0, 99, 99, 9.0, 5, ""), (1, 30, 40, 6.5, 14, "P1")],
    2: [(1, 11, 21, 5.0, 12, "ABal"), (1, 12, 22, 5.5, 12, "ABar"), (0, 1, 1, 1, 1, "junk"),
        (1, 31, 41, 6.0, 13, "EMS"), (1, 50, 50, 3.0, 10, "Nuc7")],
}


def run_cli(argv, capsys):
    """``devolens ARGV`` in this process: (exit code, stdout, stderr)."""
    from devolens.cli import main

    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def growth_rows(n_times: int = 40, base: int = 20) -> list[tuple]:
    """CD rows (cell, time, z, x, y, size, blot): ``base + t`` named cells at time t, each at its own place."""
    rows = []
    for t in range(1, n_times + 1):
        for k in range(base + t):
            rows.append((f"AB{'ap'[k % 2]}{'lr'[(k // 2) % 2]}{'dv' * (k // 4)}", t, 1.0 + k % 7, 10 + k, 20 + t, 10, 0))
    return rows


def lineage_rows(counts: dict[str, list[int]], start: int = 1) -> list[tuple]:
    """CD rows (cell, time, z, x, y, size, blot) with ``counts[founder][i]`` named cells of that founder (``AB``,
    ``MS``, ``C``...) at time ``start + i``, each at its own place."""
    rows = []
    n_times = max(len(c) for c in counts.values())
    for i in range(n_times):
        t = start + i
        for f, (founder, per_time) in enumerate(counts.items()):
            for k in range(per_time[i] if i < len(per_time) else 0):
                name = f"{founder}{'ap'[k % 2]}{'lr'[(k // 2) % 2]}{'dv' * (k // 4)}"
                rows.append((name, t, 1.0 + k % 7, 10 + k, 20 + 100 * f, 10, 0))
    return rows


def cliff_cd(path: Path, cliff_after: int | None = 12, n_times: int = 20) -> Path:
    """An EPIC CD table whose count grows 3 a time point; after ``cliff_after`` it falls to 2 cells."""
    rows = []
    for t in range(1, n_times + 1):
        n = t * 3 if cliff_after is None or t <= cliff_after else 2
        for k in range(n):
            rows.append((f"AB{'ap'[k % 2]}{'lr'[(k // 2) % 2]}{'dv' * (k // 4)}", t, 1.0, k, k, 10, 0))
    return write_cd(path, rows)
