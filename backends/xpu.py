"""The XPU backend: Intel GPUs through torch.xpu."""

from __future__ import annotations

from typing import ClassVar

from vidtt.plugin_api import hookimpl

from . import probes
from .torch_device import TorchDeviceBackend


class XpuBackend(TorchDeviceBackend):
    name = "xpu"
    description = "Intel GPUs through torch.xpu"
    priority: ClassVar[int] = 90
    visible_devices_env = "ZE_AFFINITY_MASK"

    def probe(self) -> str | None:
        if not probes.has_module("torch"):
            return "torch is not installed"
        build = probes.torch_build()
        if build["cuda"] or build["hip"]:
            return f"torch {build['version']} is a CUDA/ROCm build, not an XPU build"
        import torch

        if not hasattr(torch, "xpu") or not torch.xpu._is_compiled():
            return f"torch {build['version']} was built without XPU support"
        return self.count_reason()

    @property
    def supported_dtypes(self) -> list[str]:
        return ["bfloat16", "float16", "float32"]


@hookimpl
def register_backends(register) -> None:  # type: ignore[no-untyped-def]
    register(XpuBackend())
