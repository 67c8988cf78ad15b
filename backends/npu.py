"""The NPU backend: Huawei Ascend through the torch_npu extension."""

from __future__ import annotations

from typing import ClassVar

from vidtt.plugin_api import hookimpl

from . import probes
from .torch_device import TorchDeviceBackend


class NpuBackend(TorchDeviceBackend):
    name = "npu"
    description = "Huawei Ascend NPUs through torch_npu"
    priority: ClassVar[int] = 85
    visible_devices_env = "ASCEND_RT_VISIBLE_DEVICES"

    def probe(self) -> str | None:
        if not probes.has_module("torch_npu"):
            return "torch_npu is not installed (pip install torch-npu, with the CANN toolkit)"
        try:
            import torch_npu  # noqa: F401
        except Exception as exc:  # a broken CANN setup raises many kinds of errors
            return f"torch_npu failed to import: {type(exc).__name__}: {exc}"
        return self.count_reason()

    @property
    def supported_dtypes(self) -> list[str]:
        check = getattr(self.module(), "is_bf16_supported", None)
        if check is not None and check():
            return ["bfloat16", "float16", "float32"]
        return ["float16", "float32"]


@hookimpl
def register_backends(register) -> None:  # type: ignore[no-untyped-def]
    register(NpuBackend())
