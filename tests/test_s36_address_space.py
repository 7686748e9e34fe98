"""Under an address-space limit (``ulimit -v``, a cluster job's ``h_vmem``) PyTorch's import fails to map its
libraries: a traceback (ImportError "failed to map segment from shared object", or a SystemError over it) became the
advice to lower --batch-size, which cannot help. It is one ``error: out of memory`` line naming the limit, exit 75."""

from __future__ import annotations

import resource
import subprocess
import sys

import click
import numpy as np
import pytest
import tifffile

from devolens import cli

MAPPING = "libtorch_cuda.so: failed to map segment from shared object"


def _failing_command(exc: BaseException):
    @click.command()
    def boom():
        raise exc

    return boom


def _run_with(monkeypatch, exc, limit):
    monkeypatch.setattr(cli.typer.main, "get_command", lambda app: _failing_command(exc))
    monkeypatch.setattr(cli, "_address_space_limit", lambda: limit)
    return cli._run([])


def test_a_library_that_cannot_be_mapped_is_the_address_space_limit(monkeypatch, capsys):
    assert _run_with(monkeypatch, ImportError(MAPPING), 3 << 30) == cli.EX_TEMPFAIL
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory: this process's address space is limited to 3.0 GB (ulimit -v")
    assert "--batch-size" not in err and "Traceback" not in err


def test_the_failure_is_found_under_the_error_raised_over_it(monkeypatch, capsys):
    try:
        try:
            raise ImportError(MAPPING)
        except ImportError:
            raise SystemError("<function _find_and_load> returned NULL without setting an exception")
    except SystemError as exc:
        outer = exc
    assert _run_with(monkeypatch, outer, None) == cli.EX_TEMPFAIL
    assert "address space is limited (ulimit -v" in capsys.readouterr().err


def test_without_a_limit_an_out_of_memory_names_the_options(monkeypatch, capsys):
    assert _run_with(monkeypatch, MemoryError(), None) == cli.EX_TEMPFAIL
    err = capsys.readouterr().err
    assert "out of memory: try" in err and "address space" not in err


def test_another_import_error_is_not_memory(monkeypatch):
    with pytest.raises(ImportError):
        _run_with(monkeypatch, ImportError("No module named 'nothing_here'"), None)


@pytest.mark.slow
def test_segment_under_a_small_address_space_limit_says_so(tmp_path):
    """A real run under ``ulimit -v`` 2.5 GB: it fits (a build of PyTorch that maps less) or ends with the one line."""
    tifffile.imwrite(tmp_path / "f.tif", (np.random.default_rng(0).random((96, 96)) * 200).astype(np.uint8))

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (5 << 29, resource.getrlimit(resource.RLIMIT_AS)[1]))

    out = subprocess.run([sys.executable, "-m", "devolens", "segment", "nuclei", str(tmp_path / "f.tif"), "--out",
                          str(tmp_path / "o")], capture_output=True, text=True, preexec_fn=limit)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    if out.returncode != 0:
        assert out.returncode == 75 and "address space is limited to 2.5 GB" in out.stderr, out.stderr[-2000:]
        assert not (tmp_path / "o").exists()


def test_under_a_limit_without_pytorch_loaded_the_options_are_named(monkeypatch, capsys):
    """An image too large for the limit in a command that never loaded PyTorch: lowering its options is the fix."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert _run_with(monkeypatch, MemoryError(), 3 << 30) == cli.EX_TEMPFAIL
    err = capsys.readouterr().err
    assert "out of memory: try" in err and "PyTorch" not in err


def test_under_a_limit_with_pytorch_loaded_the_limit_is_named(monkeypatch, capsys):
    import torch  # noqa: F401

    assert _run_with(monkeypatch, MemoryError(), 3 << 30) == cli.EX_TEMPFAIL
    assert "address space is limited to 3.0 GB" in capsys.readouterr().err
