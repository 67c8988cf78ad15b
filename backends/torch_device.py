"""Shared shape of backends whose device module is `torch.<name>` (xpu, npu)."""

from __future__ import annotations

from typing import Any

from vidtt.plugin_api import Backend


class TorchDeviceBackend(Backend):
    """A backend driven through `torch.<name>`: counts, names, memory and sync come from it."""

    def module(self) -> Any:
        import torch

        return getattr(torch, self.name)

    def count_reason(self) -> str | None:
        """The reason when no device (or not the asked index) is visible."""
        count = self.device_count()
        if count == 0:
            return f"no {self.name.upper()} device visible"
        if self.index >= count:
            return (
                f"device index {self.index} is out of range: {count} "
                f"{self.name.upper()} device(s) visible"
            )
        return None

    def device_count(self) -> int:
        return int(self.module().device_count())

    def device_name(self) -> str:
        return str(self.module().get_device_name(self.index))

    def memory_info(self) -> dict[str, int] | None:
        mem_get_info = getattr(self.module(), "mem_get_info", None)
        if mem_get_info is None:
            return None
        free, total = mem_get_info(self.index)
        return {"total": int(total), "free": int(free)}

    def reset_peak_memory(self) -> None:
        reset = getattr(self.module(), "reset_peak_memory_stats", None)
        if reset is not None:
            reset(self.index)

    def peak_memory(self) -> int | None:
        peak = getattr(self.module(), "max_memory_allocated", None)
        return None if peak is None else int(peak(self.index))

    def synchronize(self) -> None:
        self.module().synchronize(self.index)

    def empty_cache(self) -> None:
        self.module().empty_cache()
