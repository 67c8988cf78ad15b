"""The CPU backend: always available, the fallback of `auto`."""

from __future__ import annotations

import os
import platform
from typing import ClassVar

from vidtt.plugin_api import Backend, hookimpl


class CpuBackend(Backend):
    name = "cpu"
    description = "the host CPU (always available)"
    priority: ClassVar[int] = 0

    def probe(self) -> str | None:
        return None

    @property
    def device(self) -> str:
        return "cpu"

    def device_name(self) -> str:
        return platform.processor() or platform.machine() or "cpu"

    @property
    def supported_dtypes(self) -> list[str]:
        return ["float32", "bfloat16", "float16"]

    def memory_info(self) -> dict[str, int] | None:
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            return {
                "total": page * os.sysconf("SC_PHYS_PAGES"),
                "free": page * os.sysconf("SC_AVPHYS_PAGES"),
            }
        except (ValueError, OSError, AttributeError):
            return None

    def reset_peak_memory(self) -> None:
        """Linux: the process's peak resident size starts again from its current size."""
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
        except OSError:  # not Linux, or not allowed: the peak since the process started
            pass

    def peak_memory(self) -> int | None:
        """The process's peak resident size (VmHWM; host memory is the CPU's device memory)."""
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return None


@hookimpl
def register_backends(register) -> None:  # type: ignore[no-untyped-def]
    register(CpuBackend())
