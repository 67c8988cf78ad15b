"""The CUDA backend (NVIDIA, and AMD through ROCm builds of torch).

The probe reads torch's version file and asks NVML for the device count: it neither imports
torch nor creates a CUDA context.
"""

from __future__ import annotations

from typing import ClassVar

from vidtt.plugin_api import Backend, hookimpl

from . import probes


class CudaBackend(Backend):
    name = "cuda"
    description = "NVIDIA (or ROCm) GPUs through torch.cuda"
    priority: ClassVar[int] = 100
    visible_devices_env = "CUDA_VISIBLE_DEVICES"

    def probe(self) -> str | None:
        if not probes.has_module("torch"):
            return "torch is not installed"
        build = probes.torch_build()
        if not build["cuda"] and not build["hip"]:
            return f"torch {build['version']} was built without CUDA (a CPU-only build)"
        count = self.device_count()
        if count == 0:
            visible = probes.visible_devices(self.visible_devices_env)
            hint = (
                f" ({self.visible_devices_env}={','.join(visible)!r})"
                if visible is not None
                else ""
            )
            return f"no CUDA device visible{hint}"
        if self.index >= count:
            return f"device index {self.index} is out of range: {count} CUDA device(s) visible"
        return None

    def physical_devices(self) -> list[int | None] | None:
        """The NVML index of each visible CUDA device, or None without NVML."""
        lib = probes.nvml()
        if lib is None:
            return None
        return probes.physical_devices(probes.visible_devices(self.visible_devices_env), lib)

    def device_count(self) -> int:
        devices = self.physical_devices()
        if devices is None:
            if probes.torch_build()["hip"]:
                import torch

                return int(torch.cuda.device_count())
            return 0
        return len(devices)

    def device_name(self) -> str:
        import torch

        return str(torch.cuda.get_device_name(self.index))

    def capability(self) -> tuple[int, int]:
        devices = self.physical_devices() or []
        lib = probes.nvml()
        physical = devices[self.index] if self.index < len(devices) else None
        found = lib.capability(physical) if lib is not None and physical is not None else None
        if found is None:
            import torch

            found = tuple(torch.cuda.get_device_capability(self.index))  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    @property
    def supported_dtypes(self) -> list[str]:
        if self.capability() >= (8, 0):
            return ["bfloat16", "float16", "float32"]
        return ["float16", "float32"]

    def memory_info(self) -> dict[str, int] | None:
        import torch

        free, total = torch.cuda.mem_get_info(self.index)
        return {"total": int(total), "free": int(free)}

    def reset_peak_memory(self) -> None:
        import torch

        torch.cuda.reset_peak_memory_stats(self.index)

    def peak_memory(self) -> int | None:
        import torch

        return int(torch.cuda.max_memory_allocated(self.index))

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize(self.index)

    def empty_cache(self) -> None:
        import torch

        torch.cuda.empty_cache()


@hookimpl
def register_backends(register) -> None:  # type: ignore[no-untyped-def]
    register(CudaBackend())
