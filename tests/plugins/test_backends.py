"""Backends: the CPU for real, accelerators with their probes replaced, and selection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vidtt
from vidtt import BackendUnavailableError, DtypeError, registry, select_backend
from vidtt.backends import probes
from vidtt.backends.cuda import CudaBackend


@pytest.fixture(autouse=True)
def fresh_probes(monkeypatch: pytest.MonkeyPatch):
    """Every test sees backends that probe again, without VIDTT_BACKEND set."""
    monkeypatch.delenv("VIDTT_BACKEND", raising=False)
    for entry in registry.entries("backends"):
        entry.obj.reset()
    yield
    for entry in registry.entries("backends"):
        entry.obj.reset()


UUIDS = ["GPU-aaaa-0000", "GPU-bbbb-1111", "GPU-cccc-2222", "GPU-ccdd-3333"]


class FakeLib:
    """A fake libnvidia-ml: the C functions vidtt calls, filling ctypes out-arguments."""

    def __init__(self, capabilities: list[tuple[int, int]]) -> None:
        self.capabilities = capabilities

    def nvmlDeviceGetCount_v2(self, count) -> int:
        count._obj.value = len(self.capabilities)
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, index: int, handle) -> int:
        if not 0 <= index < len(self.capabilities):
            return 2  # NVML_ERROR_INVALID_ARGUMENT
        handle._obj.value = 1000 + index
        return 0

    def nvmlDeviceGetUUID(self, handle, buffer, size: int) -> int:
        buffer.value = UUIDS[handle.value - 1000].encode()
        return 0

    def nvmlDeviceGetCudaComputeCapability(self, handle, major, minor) -> int:
        major._obj.value, minor._obj.value = self.capabilities[handle.value - 1000]
        return 0


def fake_gpus(monkeypatch: pytest.MonkeyPatch, *capabilities: tuple[int, int]) -> None:
    monkeypatch.setattr(probes, "nvml", lambda: probes.Nvml(FakeLib(list(capabilities))))
    monkeypatch.setattr(
        probes, "torch_build", lambda: {"version": "x", "cuda": "12.4", "hip": None}
    )
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch):
    fake_gpus(monkeypatch, (9, 0), (9, 0))


def test_cpu_backend_for_real() -> None:
    cpu = registry.backend("cpu")
    assert cpu.is_available() and cpu.why_unavailable() is None
    assert cpu.device == "cpu" and cpu.device_count() == 1
    assert cpu.check_dtype("auto") == "float32" and cpu.check_dtype("bfloat16") == "bfloat16"
    memory = cpu.memory_info()
    assert memory and memory["total"] > memory["free"] > 0
    cpu.synchronize()
    cpu.empty_cache()


def test_auto_is_the_cpu_here(monkeypatch) -> None:
    monkeypatch.setattr(probes, "nvml", lambda: None)
    assert select_backend().name == "cpu" and select_backend("auto").name == "cpu"


CUDA_BUILD = {"version": "2.9.0+cu128", "cuda": "12.8", "hip": None}
CPU_BUILD = {"version": "2.9.0+cpu", "cuda": None, "hip": None}


def no_cuda_reason(build: dict) -> str:
    """What the CUDA backend truthfully says on a machine without GPUs for this torch build."""
    if build["cuda"] or build["hip"]:
        return "no CUDA device visible"
    return f"torch {build['version']} was built without CUDA (a CPU-only build)"


@pytest.fixture(params=[CUDA_BUILD, CPU_BUILD], ids=["cuda-build", "cpu-build"])
def no_gpus(request, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A machine without NVIDIA GPUs, with a CUDA build of torch or a CPU-only one."""
    monkeypatch.setattr(probes, "nvml", lambda: None)
    monkeypatch.setattr(probes, "torch_build", lambda: dict(request.param))
    return dict(request.param)


def test_reasons_on_a_machine_without_accelerators(no_gpus, monkeypatch) -> None:
    monkeypatch.setattr(probes, "has_module", lambda name: name != "torch_npu")
    assert registry.backend("cuda").why_unavailable().startswith(no_cuda_reason(no_gpus))
    assert "torch_npu is not installed" in registry.backend("npu").why_unavailable()
    if sys.platform != "darwin":
        assert "needs macOS" in registry.backend("mps").why_unavailable()
    assert registry.backend("xpu").why_unavailable()


def test_cpu_only_torch_build(monkeypatch) -> None:
    monkeypatch.setattr(probes, "torch_build", lambda: dict(CPU_BUILD))
    assert registry.backend("cuda").why_unavailable() == (
        "torch 2.9.0+cpu was built without CUDA (a CPU-only build)"
    )


def test_the_torch_build_is_read_from_its_version_file() -> None:
    import torch

    build = probes.torch_build.__wrapped__()  # type: ignore[attr-defined]
    assert build == {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "hip": torch.version.hip,
    }


def test_explicit_unavailable_backend_is_an_error_with_the_reason(no_gpus, monkeypatch) -> None:
    with pytest.raises(BackendUnavailableError) as error:
        select_backend("cuda")
    assert f"backend 'cuda' is unavailable: {no_cuda_reason(no_gpus)}" in str(error.value)
    monkeypatch.setenv("VIDTT_BACKEND", "npu")
    with pytest.raises(BackendUnavailableError, match="'npu' is unavailable"):
        select_backend()
    with pytest.raises(vidtt.UnknownNameError, match="known backends: cpu"):
        select_backend("tpu")


def test_auto_prefers_an_available_accelerator(two_gpus) -> None:
    backend = select_backend()
    assert backend.name == "cuda" and backend.device == "cuda:0"
    assert backend.device_count() == 2
    assert backend.check_dtype("auto") == "bfloat16"


def test_device_index_is_honoured(two_gpus) -> None:
    assert select_backend("cuda:1").device == "cuda:1"
    with pytest.raises(BackendUnavailableError, match="index 5 is out of range: 2"):
        select_backend("cuda:5")
    with pytest.raises(vidtt.OptionsError, match="NAME:INDEX"):
        select_backend("cuda:x")


def test_visible_devices_variable_limits_the_count(two_gpus, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    reason = registry.backend("cuda").why_unavailable()
    assert reason == "no CUDA device visible (CUDA_VISIBLE_DEVICES='')"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert CudaBackend().device_count() == 1


def test_dtype_support_follows_the_device(two_gpus, monkeypatch) -> None:
    monkeypatch.setattr(CudaBackend, "capability", lambda self: (7, 5))
    cuda = select_backend("cuda")
    assert cuda.supported_dtypes == ["float16", "float32"]
    with pytest.raises(
        DtypeError,
        match="'bfloat16' is not supported on backend 'cuda'; use one of float16, float32",
    ):
        cuda.check_dtype("bfloat16")


def test_env_variable_selects_a_backend(two_gpus, monkeypatch) -> None:
    monkeypatch.setenv("VIDTT_BACKEND", "cpu")
    assert select_backend().name == "cpu"
    assert select_backend("auto").name == "cpu"
    assert select_backend("cuda").name == "cuda"  # an explicit name beats the variable


class Quantum(vidtt.Backend):
    name = "quantum"
    priority = 1000

    def probe(self):
        return None


class Flaky(vidtt.Backend):
    name = "flaky"
    priority = 2000

    def probe(self):
        raise RuntimeError("driver exploded")


def test_third_party_backend_wins_auto_by_priority() -> None:
    with registry.temporary(Quantum(), Flaky()):
        assert select_backend().name == "quantum"
        flaky = registry.backend("flaky")
        assert "availability check failed: RuntimeError: driver exploded" in flaky.why_unavailable()
    assert select_backend().name != "quantum"


def test_backends_command_json() -> None:
    """What `vidtt backends` says is what the backends say here, whatever this machine and
    its torch build are (a CPU-only build, a CUDA build without GPUs, or GPUs)."""
    vidtt_cmd = str(Path(sys.executable).with_name("vidtt"))
    env = {k: v for k, v in os.environ.items() if k != "VIDTT_BACKEND"}
    out = subprocess.run(
        [vidtt_cmd, "backends", "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert set(rows) >= {"cpu", "cuda", "xpu", "mps", "npu"}
    for row in rows.values():
        assert {"name", "available", "reason", "priority", "selected"} <= set(row)
    assert rows["cpu"]["available"] and rows["cpu"]["reason"] is None
    cuda = CudaBackend()
    assert rows["cuda"]["available"] == cuda.is_available()
    assert rows["cuda"]["reason"] == cuda.why_unavailable()
    if not cuda.is_available():
        assert rows["cuda"]["reason"].startswith(no_cuda_reason(probes.torch_build()))
    assert [name for name, row in rows.items() if row["selected"]] == [select_backend().name]
    assert rows["cuda"]["priority"] > rows["cpu"]["priority"]
    table = subprocess.run([vidtt_cmd, "backends"], capture_output=True, text=True, env=env)
    assert f"* {select_backend().name}" in table.stdout
    assert (rows["cuda"]["reason"] or "cuda") in table.stdout


@pytest.mark.parametrize(
    "visible,count,first",
    [
        (None, 4, (6, 0)),
        ("2,3", 2, (8, 6)),
        ("3", 1, (9, 0)),
        ("GPU-cccc", 1, (8, 6)),  # a UUID prefix names one card
        ("GPU-bbbb-1111,0", 2, (7, 0)),
        ("1,-1,2", 1, (7, 0)),  # CUDA stops at the first invalid entry
        ("-1", 0, None),  # no device at all, not one
        ("GPU-cc", 0, None),  # an ambiguous prefix is invalid
        ("0,0", 1, (6, 0)),  # a repeated device is invalid
        ("7", 0, None),
        ("", 0, None),
    ],
)
def test_nvml_is_asked_about_physical_devices(monkeypatch, visible, count, first) -> None:
    fake_gpus(monkeypatch, (6, 0), (7, 0), (8, 6), (9, 0))
    if visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    cuda = CudaBackend()
    assert cuda.device_count() == count
    if first is None:
        assert cuda.why_unavailable().startswith("no CUDA device visible")
    else:
        assert cuda.is_available() and cuda.capability() == first
        dtypes = cuda.supported_dtypes
        assert dtypes[0] == ("bfloat16" if first >= (8, 0) else "float16")
