"""The CLI in a shell and a batch system: out of memory, full disks, concurrent runs into one output, empty paths,
``python -m devolens``, lazy subpackages, forked workers after a model ran, a HOME that does not exist."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io import atomic
from devolens.io.atomic import EX_TEMPFAIL, StagedDir, atomic_path, cannot_write, public_path
from _cli_helpers import command, raiser  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def python(code: str, *args, env: dict | None = None, timeout: float | None = None, **kwargs):
    """Run ``code`` in a fresh interpreter with this checkout's sources first on the path."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


# 1. out of memory: one error line, exit 75 ---------------------------------------------------------------------


def test_numpy_out_of_memory_is_one_line_exit_75(command, tmp_path, capsys):
    import numpy as np

    def body(out):
        np.zeros((1 << 40, 1 << 20), dtype=np.uint8)  # numpy's _ArrayMemoryError: refused before allocating

    command["body"] = body
    code, _, err = run(["zz-test", "--out", tmp_path / "o"], capsys)
    assert code == EX_TEMPFAIL == 75
    assert err.startswith("error: out of memory") and err.count("\n") == 1 and "Traceback" not in err


def test_torch_allocation_failure_is_one_line_exit_75(command, tmp_path, capsys):
    torch = pytest.importorskip("torch")

    def body(out):
        torch.empty(1 << 62, dtype=torch.uint8)  # RuntimeError: DefaultCPUAllocator: can't allocate memory

    command["body"] = body
    code, _, err = run(["zz-test", "--out", tmp_path / "o"], capsys)
    assert code == 75 and err.startswith("error: out of memory") and err.count("\n") == 1


def test_other_runtime_errors_keep_their_traceback(command, tmp_path, capsys):
    command["body"] = raiser(RuntimeError("can't allocate a name for the frame"))  # a bug, not memory
    with pytest.raises(RuntimeError, match="a name for the frame"):
        main(["zz-test", "--out", str(tmp_path / "o")])


def test_out_of_memory_names_what_the_command_can_lower(monkeypatch, tmp_path, capsys):
    import devolens.predict.livedead as livedead

    def out_of_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(livedead, "segment_livedead_file", out_of_memory)
    well = tmp_path / "w.tif"
    well.write_bytes(b"x")
    code, _, err = run(["segment", "livedead", well, "--out", tmp_path / "ld"], capsys)
    assert code == 75
    assert err.startswith("error: out of memory: try a smaller --batch-size") and "fewer --threads" in err
    assert not (tmp_path / "ld").exists()  # what it was writing is gone
    from devolens.cli import _out_of_memory, app
    import typer

    group = typer.main.get_command(app)
    assert "fewer --workers" in _out_of_memory(MemoryError(), group, ["render", "t.csv", "--out", "r"])
    assert "train.batch_size in the recipe" in _out_of_memory(MemoryError(), group, ["train", "r.yaml", "-d", "d"])
    gpu = _out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), group,
                         ["segment", "nuclei", "x", "--out", "o", "--device", "cuda"])
    assert gpu.startswith("out of GPU memory") and "--device cpu" in gpu


# 2. full disks and misleading places --------------------------------------------------------------------------


def test_public_path_names_the_output_not_its_staging():
    assert public_path("full/.seg.partial-407-ab12cd_4/overlays/mid_overlay.png") == Path("full/seg/overlays/"
                                                                                          "mid_overlay.png")
    assert public_path("/m/seg/.partial-9-zz9y8x7w/labels/.a_labels.tmp-9-x9y8z7w6.tif") == Path(
        "/m/seg/labels/a_labels.tif")
    assert public_path("out/.partial-9-zz9y8x7w/.replaced-abcdefgh/counts.csv") == Path("out/counts.csv")
    assert public_path("plain/.hidden.partial-x/file.png") == Path("plain/.hidden.partial-x/file.png")


def test_full_disk_inside_a_staged_folder_names_the_output_file(command, tmp_path, capsys):
    out = tmp_path / "seg"

    def body(out):
        with atomic.staged_folder(out) as stage:
            (stage.tmp / "labels").mkdir()
            with atomic_path(stage.tmp / "labels" / "a.tif") as tmp:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    command["body"] = body
    code, _, err = run(["zz-test", "--out", out], capsys)
    assert code == 75
    assert err == f"error: {out / 'labels' / 'a.tif'}: cannot write output: No space left on device\n"
    assert sorted(os.listdir(tmp_path)) == []  # no staging folder, no lock file


def test_raw_full_disk_error_in_staging_names_the_output(command, tmp_path, capsys):
    out = tmp_path / "seg"
    staged = tmp_path / ".seg.partial-407-ab12cd34" / "overlays" / "mid.png"
    command["body"] = raiser(OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(staged)))
    code, _, err = run(["zz-test", "--out", out], capsys)
    assert (code, err) == (75, f"error: {out}: cannot write output: {os.strerror(errno.EDQUOT)}\n")
    # outside any given output: named by the place it stands for
    code, _, err = run(["zz-test", "--out", tmp_path / "elsewhere" / "x"], capsys)
    assert (code, err) == (75, f"error: {tmp_path / 'seg' / 'overlays' / 'mid.png'}: {os.strerror(errno.EDQUOT)}\n")


def test_full_disk_without_a_file_name_names_the_output(command, tmp_path, capsys):
    # what `segment livedead` gave: a write() to an open file, whose error carries no file name
    command["body"] = raiser(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    code, _, err = run(["zz-test", "--out", tmp_path / "ld"], capsys)
    assert (code, err) == (75, f"error: {tmp_path / 'ld'}: cannot write output: No space left on device\n")


def test_a_parent_that_is_a_file_is_said_so(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile" / "t.csv", tmp_path / "afile" / "sub" / "t.csv"):
        code, _, err = run(["simulate", "embryo", "--seed", "1", "--out", out], capsys)
        assert (code, err) == (2, f"error: {out}: cannot write output: {tmp_path / 'afile'} is a file, not a "
                                  "folder\n")
    with pytest.raises(DevolensError, match="afile is a file, not a folder"):
        StagedDir(tmp_path / "afile" / "seg")
    # the other reasons stay as the system gives them
    assert str(cannot_write(OSError(errno.EEXIST, "File exists"), tmp_path / "new" / "x")).endswith("File exists")


# 3. two runs writing one output: the second is refused at once --------------------------------------------------

HOLD = """
import sys
from pathlib import Path
from devolens.io.atomic import StagedDir
stage = StagedDir(Path(sys.argv[1]))
print("held", flush=True)
sys.stdin.readline()
stage.abort()
"""


def test_a_second_run_into_the_same_output_is_refused(tmp_path, capsys):
    dest = tmp_path / "out"
    (tmp_path / "x").mkdir()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(dest)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(DevolensError, match=rf"another devolens run is writing here \(pid {holder.pid}\)"):
            StagedDir(dest)
        # through another path to the same folder, and from the command line
        with pytest.raises(DevolensError, match="another devolens run is writing here"):
            StagedDir(tmp_path / "x" / ".." / "out")
        well = tmp_path / "w.tif"
        well.write_bytes(b"x")
        code, _, err = run(["segment", "livedead", well, "--out", dest], capsys)
        assert (code, err) == (2, f"error: {dest}: another devolens run is writing here (pid {holder.pid})\n")
    finally:
        holder.communicate("\n")
    assert holder.returncode == 0
    assert not (tmp_path / ".out.lock").exists()  # the holder removed its lock file as it let go
    stage = StagedDir(dest)  # free again
    (stage.tmp / "a.txt").write_text("a")
    stage.commit()
    assert sorted(os.listdir(tmp_path)) == ["out", "w.tif", "x"]
    StagedDir(dest).abort()  # committed and aborted runs let go


def test_a_killed_run_leaves_no_lock_and_its_leftovers_still_go(tmp_path):
    """SIGKILL: the lock dies with the process; the next run removes the staging folder it left."""
    dest = tmp_path / "out"
    script = HOLD.replace('print("held", flush=True)\nsys.stdin.readline()',
                          "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    res = python(script, dest)
    assert res.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert ".out.lock" in left and any(n.startswith(".out.partial-") for n in left)
    stage = StagedDir(dest)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")] == [stage.tmp.name]
    stage.commit()
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_a_forked_worker_does_not_keep_the_lock(tmp_path):
    """A worker forked during a run (render's pool) that outlives its killed parent holds no lock."""
    dest = tmp_path / "out"
    script = HOLD.replace('print("held", flush=True)\nsys.stdin.readline()', (
        "import os, signal, time\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    null = os.open(os.devnull, os.O_RDWR); os.dup2(null, 1); os.dup2(null, 2)  # the test reads to EOF\n"
        "    time.sleep(600); os._exit(0)\n"
        "print(child, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)"))
    res = python(script, dest)
    child = int(res.stdout.split()[0])
    try:
        assert res.returncode == -signal.SIGKILL
        os.kill(child, 0)  # still alive
        StagedDir(dest).abort()
    finally:
        os.kill(child, signal.SIGKILL)


def test_the_lock_goes_inside_a_folder_whose_parent_refuses_files(tmp_path, monkeypatch):
    dest = tmp_path / "mine"
    dest.mkdir()
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if Path(path) == tmp_path / ".mine.lock":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    stage = StagedDir(dest)
    assert (dest / ".devolens.lock").read_text() == f"{os.getpid()}\n{socket.gethostname()}\n"
    with pytest.raises(DevolensError, match="another devolens run is writing here"):
        StagedDir(dest)
    stage.abort()
    assert os.listdir(dest) == []


# 4. empty paths -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, name", [
    (["segment", "nuclei", "x.png", "--out", ""], "--out"),
    (["segment", "nuclei", "x.png", "--out="], "--out"),
    (["segment", "nuclei", "x.png", "-o", ""], "-o"),
    (["segment", "nuclei", "", "--out", "o"], "INPUT"),
    (["segment", "nuclei", "x.png", "--out", "o", "--skip-flagged", ""], "--skip-flagged"),
    (["tile", "", "--out", "t.h5"], "IMAGES"),
    (["lineage", "populations", "t.csv", "--plot", "", "--out", "p.csv"], "--plot"),
])
def test_an_empty_path_is_refused(tmp_path, monkeypatch, capsys, argv, name):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2 and err.startswith(f"error: {name} is empty") and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_empty_values_of_other_options_are_left_to_the_command(tmp_path, capsys):
    code, _, err = run(["segment", "nuclei", "x.png", "--out", "o", "--diameter", ""], capsys)
    assert code == 2 and "is empty" not in err
    code, out, _ = run(["segment", "nuclei", "--out", "", "--help"], capsys)
    assert code == 0 and "Usage" in out


# 5. python -m devolens, devolens.models after import devolens ----------------------------------------------------


def test_python_m_devolens_runs_the_command(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-m", "devolens", "--version"], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("devolens "), res.stderr
    res = subprocess.run([sys.executable, "-m", "devolens", "segment", "nuclei", "x.png", "--out", ""], env=env,
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.startswith("error: --out is empty")


def test_subpackages_load_on_first_use_without_torch_at_import():
    res = python("import sys, devolens\n"
                 "assert 'torch' not in sys.modules and 'numpy' not in sys.modules\n"
                 "print(callable(devolens.models.load), 'nuclei' in devolens.models.available())\n"
                 "print(devolens.lineage.__name__, devolens.io.__name__, 'models' in dir(devolens))\n"
                 "try:\n    devolens.no_such_thing\nexcept AttributeError as e:\n    print(e)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["True True", "devolens.lineage devolens.io True",
                                       "module 'devolens' has no attribute 'no_such_thing'"]


# 6. forked workers after a model ran -------------------------------------------------------------------------

FORK = """
import multiprocessing as mp
import numpy as np
import devolens.models
m = devolens.models.load("nuclei")
rng = np.random.default_rng(0)
images = [(rng.random((128, 160)) * 200).astype(np.uint8) for _ in range(3)]
m.predict(images[0])  # the parent's OpenMP pool runs

def count(image):
    import torch
    return m.predict(image).count, torch.get_num_threads()

with mp.get_context("fork").Pool(2) as pool:
    print(pool.map(count, images), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "register_at_fork") or sys.platform != "linux", reason="fork: Linux")
def test_fork_pool_after_a_prediction_does_not_hang():
    """'Load once, fork workers': a child using PyTorch's OpenMP pool hung for ever (the timeout turns a hang into
    a failure rather than a stuck suite; the run takes seconds)."""
    pytest.importorskip("torch")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", FORK], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the pool's workers too
        proc.communicate()
        pytest.fail("a forked worker hung")
    assert proc.returncode == 0, err
    assert out.strip().endswith(", 1)]")  # one thread per worker


FORK_SIZING = """
import os, numpy as np
import devolens.models
m = devolens.models.load("nuclei")
img = (np.random.default_rng(0).random((256, 256)) * 200).astype(np.uint8)
m.predict(img)  # the parent's OpenMP pool runs
pid = os.fork()
if pid == 0:  # the magnification estimate's encoder features: torch ops before any network
    m.estimate_diameter([img])
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status), flush=True)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="fork: Linux")
def test_a_forked_child_estimating_the_magnification_does_not_hang():
    """The size model's features ran torch ops (moving the encoder to channels-last) before the child was put
    in one thread: a forked child hung there."""
    pytest.importorskip("torch")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", FORK_SIZING], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("a forked child hung in the magnification estimate")
    assert proc.returncode == 0, err
    assert out.strip() == "child 0"


@pytest.mark.skipif(not hasattr(os, "register_at_fork") or sys.platform != "linux", reason="fork: Linux")
def test_a_fork_without_a_loaded_model_keeps_its_threads():
    """Importing devolens (the trainer, the CLI) does not cut a user's own forked workers to one thread."""
    code = ("import multiprocessing as mp, torch\n"
            "torch.set_num_threads(2)\n"
            "import devolens.models, devolens.train.trainer\n"
            "def n(_):\n    return torch.get_num_threads()\n"
            "with mp.get_context('fork').Pool(1) as pool:\n    print(pool.map(n, [0]))\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)},
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[2]"


# 7. a HOME that does not exist -------------------------------------------------------------------------------


def test_plots_do_not_make_a_missing_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    code = ("import os, devolens.viz\n"
            "import matplotlib; matplotlib.use('Agg')\n"
            "import matplotlib.pyplot as plt\n"
            "plt.plot([1, 2]); plt.savefig(os.environ['PNG'])\n"
            "print(os.environ.get('MPLCONFIGDIR', '-'))")
    home = tmp_path / "x" / "deep"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "HOME": str(home), "PNG": str(tmp_path / "a.png"), "PYTHONPATH": str(SRC)})
    assert res.returncode == 0, res.stderr
    assert "devolens-matplotlib-" in res.stdout and not (tmp_path / "x").exists()
    # an XDG config folder that does not exist: not made either
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg" / "deep"),
                              "PNG": str(tmp_path / "b.png"), "PYTHONPATH": str(SRC)})
    assert "devolens-matplotlib-" in res.stdout and not (tmp_path / "cfg").exists()
    # an existing HOME without .config: matplotlib's usual folders, made there
    (tmp_path / "h").mkdir()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "HOME": str(tmp_path / "h"), "PNG": str(tmp_path / "c.png"),
                              "PYTHONPATH": str(SRC)})
    assert res.stdout.strip() == "-"


# 8. the README says how to cap threads and what exit 75 means ----------------------------------------------------


def test_readme_documents_threads_and_exit_codes():
    text = " ".join((ROOT / "README.md").read_text().split())
    assert "OMP_NUM_THREADS" in text and "taskset" in text
    assert "Exit code 75" in text and "another devolens run is writing here" in text and "python -m devolens" in text
