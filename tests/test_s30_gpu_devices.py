"""GPUs other than recent data-centre cards, without one: PyTorch's CUDA queries are replaced by those of a V100, a
GTX 1080, a T4... so that what a user of such a card sees (an error in words, the CPU with a note, fp32 instead of
emulated bf16) is checked on any machine. The real GPU runs are tests/test_gpu.py."""

from __future__ import annotations

import sys

import pytest
import torch

from devolens.errors import DevolensError
from devolens.predict import devices

#: the architectures of PyTorch 2.14.1+cu130 on x86_64 (nothing older than a T4)
CU130_ARCHS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


@pytest.fixture
def gpu(monkeypatch):
    """``gpu(capability, name, archs=CU130_ARCHS, count=1)``: PyTorch sees ``count`` such GPUs, built for CUDA 13.0
    and ``archs``."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def setup(capability=(9, 0), name="NVIDIA H100 80GB HBM3", archs=CU130_ARCHS, count=1):
        monkeypatch.setattr(torch.version, "cuda", "13.0")
        monkeypatch.setattr(torch.version, "hip", None, raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        if callable(archs):
            monkeypatch.setattr(torch.cuda, "get_arch_list", archs)
        else:
            monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(archs))

    return setup


# ----------------------------------------------------------------------------- 1. GPUs this build has no kernels for


@pytest.mark.parametrize("capability, name", [((7, 0), "Tesla V100-SXM2-16GB"), ((6, 1), "NVIDIA GeForce GTX 1080")])
def test_an_old_gpu_is_refused_in_words_or_left_for_the_cpu(gpu, capability, name):
    gpu(capability, name)
    for asked in ("cuda", "cuda:0"):
        with pytest.raises(DevolensError) as err:
            devices.resolve_device(asked, "--device")
        message = str(err.value)
        assert message.startswith(f"--device '{asked}': the GPU {name} (CUDA capability {capability[0]}."
                                  f"{capability[1]}) is not supported")
        assert "CUDA 13.0" in message and "7.5, 8.0" in message
        assert "--index-url https://download.pytorch.org/whl/cu126" in message and message.endswith("or use 'cpu'")
    with pytest.warns(devices.DeviceWarning) as said:  # (a library user's warning; the CLI's note: below)
        assert devices.resolve_device("auto") == "cpu"
    text = str(said[0].message)
    assert len(said) == 1 and "\n" not in text
    assert name in text and "the networks run on the CPU" in text and "cu126" in text


def test_the_cli_says_the_cpu_was_chosen_over_an_old_gpu_once(gpu, tmp_path, capsys):
    """evaluate resolves --device auto twice (the option, then the evaluation): one note: line."""
    from devolens.cli import main

    gpu((6, 1), "NVIDIA GeForce GTX 1080")
    assert main(["evaluate", str(tmp_path / "nowhere"), "--data", str(tmp_path), "--device", "auto"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2 and err[0].startswith("note: the GPU NVIDIA GeForce GTX 1080 (CUDA capability 6.1) is not "
                                               "supported") and "the networks run on the CPU" in err[0]
    assert err[1].startswith("error: ")


@pytest.mark.parametrize("capability, archs", [
    ((7, 5), CU130_ARCHS), ((8, 9), CU130_ARCHS), ((9, 0), CU130_ARCHS), ((12, 1), CU130_ARCHS),
    ((9, 0), ["sm_80", "compute_80"]),  # PTX: compiled for a newer GPU as it loads
    ((9, 0), ["sm_90a"]), ((9, 0), ["compute_90a"]),
    ((7, 0), []),  # a build that does not list its architectures: not judged
    ((7, 0), lambda: (_ for _ in ()).throw(RuntimeError("no arch flags"))),
])
def test_gpus_the_build_runs_are_taken(gpu, capability, archs, capsys):
    gpu(capability, archs=archs)
    assert devices.resolve_device("cuda") == "cuda" and devices.resolve_device("auto") == "cuda"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("capability, archs", [((7, 5), ["sm_80", "compute_80"]), ((9, 1), ["sm_90a"]),
                                                ((10, 0), ["sm_90a", "compute_90a"])])
def test_binaries_of_another_minor_or_later_ptx_do_not_run(gpu, capability, archs):
    gpu(capability, archs=archs)
    with pytest.raises(DevolensError, match="is not supported by this PyTorch"):
        devices.resolve_device("cuda")


def test_each_capability_built_for_is_named_once(gpu):
    gpu((7, 5), "Tesla T4", archs=["sm_80", "sm_86", "compute_86", "sm_90a", "compute_90a"])
    with pytest.raises(DevolensError, match=r"GPUs of capability 8\.0, 8\.6\+, 9\.0\)"):
        devices.resolve_device("cuda")


def test_a_gpu_newer_than_the_build_points_to_a_newer_build(gpu):
    gpu((13, 0), "NVIDIA Future", archs=["sm_75", "sm_80", "sm_90"])
    with pytest.raises(DevolensError, match=r"pytorch.org/get-started") as err:
        devices.resolve_device("cuda:0")
    assert "cu126" not in str(err.value)


# ----------------------------------------------------------------------------- 2. no GPU seen: which of the reasons


def test_no_gpu_says_whether_the_build_or_the_machine_lacks_it(gpu, monkeypatch):
    gpu(count=0)
    with pytest.raises(DevolensError) as err:
        devices.resolve_device("cuda", "--device")
    message = str(err.value)
    assert "sees no CUDA GPU" in message and "built for CUDA 13.0" in message and "driver is too old" in message
    assert "CPU-only" not in message and "CUDA_VISIBLE_DEVICES" not in message
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DevolensError, match=r"or CUDA_VISIBLE_DEVICES='' hides it \(README, 'On a GPU'\); use 'auto' "
                                            r"or 'cpu'"):
        devices.resolve_device("cuda:1")
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(DevolensError) as err:
        devices.resolve_device("cuda")
    assert "sees no CUDA GPU: this PyTorch is a CPU-only build" in str(err.value)
    assert "--index-url https://download.pytorch.org/whl/cu126" in str(err.value)
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(DevolensError, match=r"macOS has none \(Apple GPUs, MPS, are not supported\)"):
        devices.resolve_device("cuda")
    assert devices.resolve_device("auto") == "cpu"


# ----------------------------------------------------------------------------- 3. bf16 where a GPU has it natively


@pytest.mark.parametrize("capability, native", [((7, 5), False), ((7, 0), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_only_on_gpus_with_native_bf16(gpu, capability, native):
    from devolens.models.quantize import resolve_precision

    gpu(capability, "Tesla T4" if capability == (7, 5) else "some GPU", archs=["sm_70", "sm_75", "sm_80", "sm_90"])
    assert devices.native_bf16("cuda") is native and devices.native_bf16("cuda:1") is native
    net = torch.nn.Conv2d(1, 1, 3)

    def resolve(precision, fast=True, device="cuda"):
        return resolve_precision(net, precision, None, fast=fast, device=device, multiple=32)

    assert resolve("auto", fast=False) == "fp32" and resolve("fp32") == "fp32"
    assert resolve("auto") == ("bf16" if native else "fp32")  # (fast: what the predictors ask for on a CPU only)
    if native:
        assert resolve("bf16", device="cuda:0") == "bf16"
    else:
        with pytest.raises(DevolensError, match=r"precision 'bf16' is not available on the GPU .* \(CUDA capability "
                                                r"7\.\d\): it needs capability 8\.0 \(Ampere\) or newer.*use fp32"):
            resolve("bf16")


def test_native_bf16_on_the_cpu_is_the_cpus_own_check(monkeypatch):
    from devolens.models import quantize

    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: False)
    assert devices.native_bf16("cpu") is False
    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: True)
    assert devices.native_bf16("cpu") is True


# ----------------------------------------------------------------------------- 5. CUDA_VISIBLE_DEVICES, 6. mps and gpu


def test_visible_devices_are_said_to_renumber(gpu, monkeypatch):
    gpu(count=1)
    with pytest.raises(DevolensError, match=r"sees 1 CUDA GPU\(s\), numbered from 0$"):
        devices.resolve_device("cuda:1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(DevolensError, match=r"numbered from 0 \(CUDA_VISIBLE_DEVICES=3 renumbers them from 0\)$"):
        devices.resolve_device("cuda:1", "--device")


def test_apple_gpus_are_said_not_to_be_used():
    with pytest.raises(DevolensError, match=r"got 'MPS'; Apple GPUs \(MPS\) are not supported: on a Mac the networks "
                                            r"run on the CPU"):
        devices.device_name("MPS", "--device")
    with pytest.raises(DevolensError, match=r"got 'gpu'; for an NVIDIA GPU give cuda"):
        devices.device_name("gpu", "--device")
    with pytest.raises(DevolensError, match=r"cuda or cuda:N \(the GPU numbered N\), got 'tpu'$"):
        devices.device_name("tpu")


def test_the_cli_refuses_an_old_gpu_in_one_line(gpu, tmp_path, capsys):
    import numpy as np

    from devolens.cli import main
    from devolens.io.images import write_png

    img = tmp_path / "a.png"
    write_png((np.random.default_rng(0).random((40, 60)) * 255).astype(np.uint8), img)
    gpu((6, 1), "NVIDIA GeForce GTX 1080")
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "c"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "GTX 1080 (CUDA capability 6.1)" in err
    assert not (tmp_path / "c").exists()


# ----------------------------------------------------------------------------- 7. out of GPU memory


def test_out_of_gpu_memory_advice_leaves_out_the_host_options():
    import typer

    from devolens.cli import _is_out_of_memory, _out_of_memory, app

    group = typer.main.get_command(app)
    args = ["segment", "nuclei", "x", "--out", "o", "--device", "cuda"]
    host = _out_of_memory(MemoryError(), group, args)
    assert "fewer --threads" in host and "a smaller --batch-size" in host
    cublas = RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")
    assert _is_out_of_memory(cublas)
    assert not _is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm`"))
    for exc in (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), cublas):
        advice = _out_of_memory(exc, group, args)
        assert advice.startswith("out of GPU memory: try a smaller --batch-size") and "--device cpu" in advice
        assert "--threads" not in advice and "--workers" not in advice
