"""The MPS backend: Apple silicon GPUs through torch.backends.mps."""

from __future__ import annotations

import platform
from typing import ClassVar

from vidtt.plugin_api import Backend, hookimpl

from . import probes


class MpsBackend(Backend):
    name = "mps"
    description = "Apple silicon GPUs through Metal (macOS)"
    priority: ClassVar[int] = 80

    def probe(self) -> str | None:
        if platform.system() != "Darwin":
            return f"MPS needs macOS on Apple silicon; this is {platform.system() or 'unknown'}"
        if not probes.has_module("torch"):
            return "torch is not installed"
        import torch

        if not torch.backends.mps.is_built():
            return "torch was built without MPS support"
        if not torch.backends.mps.is_available():
            return "MPS is built but not available (macOS 12.3+ on Apple silicon is needed)"
        if self.index != 0:
            return "MPS has a single device: use index 0"
        return None

    @property
    def device(self) -> str:
        return "mps"

    @property
    def supported_dtypes(self) -> list[str]:
        import torch

        if torch.backends.mps.is_macos_or_newer(14, 0):
            return ["float16", "bfloat16", "float32"]
        return ["float16", "float32"]

    def memory_info(self) -> dict[str, int] | None:
        import torch

        total = int(torch.mps.recommended_max_memory())
        return {"total": total, "free": total - int(torch.mps.driver_allocated_memory())}

    def synchronize(self) -> None:
        import torch

        torch.mps.synchronize()

    def empty_cache(self) -> None:
        import torch

        torch.mps.empty_cache()


@hookimpl
def register_backends(register) -> None:  # type: ignore[no-untyped-def]
    register(MpsBackend())
