"""Cheap, cached availability probes that never initialise a device."""

from __future__ import annotations

import ast
import ctypes
import functools
import importlib.util
import os
import re
from pathlib import Path
from typing import Any


@functools.cache
def has_module(name: str) -> bool:
    """Whether `name` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@functools.cache
def torch_build() -> dict[str, str | None]:
    """`cuda`, `hip` and `version` of the installed torch, read from its version file."""
    spec = importlib.util.find_spec("torch") if has_module("torch") else None
    build: dict[str, str | None] = {"version": None, "cuda": None, "hip": None}
    if spec is None or not spec.submodule_search_locations:
        return build
    text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    for name, value in re.findall(r"^(\w+)\s*(?::[^=]*)?=\s*(.+)$", text, re.M):
        key = "version" if name == "__version__" else name
        if key in build:
            try:
                build[key] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                build[key] = None
    return build


def visible_devices(env: str | None) -> list[str] | None:
    """The device list an environment variable limits to, or None when it is unset."""
    if env is None or env not in os.environ:
        return None
    return [d.strip() for d in os.environ[env].split(",") if d.strip()]


class Nvml:
    """The few NVML calls vidtt needs (over ctypes). Indices here are physical: NVML ignores
    CUDA_VISIBLE_DEVICES, so callers map CUDA's logical indices with `physical_devices`."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib

    def count(self) -> int | None:
        count = ctypes.c_uint(0)
        return count.value if self.lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) == 0 else None

    def _handle(self, index: int) -> Any | None:
        handle = ctypes.c_void_p()
        if self.lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
            return None
        return handle

    def uuid(self, index: int) -> str | None:
        handle = self._handle(index)
        buffer = ctypes.create_string_buffer(96)
        if handle is None or self.lib.nvmlDeviceGetUUID(handle, buffer, 96) != 0:
            return None
        return buffer.value.decode("ascii", "replace")

    def capability(self, index: int) -> tuple[int, int] | None:
        handle = self._handle(index)
        major, minor = ctypes.c_int(), ctypes.c_int()
        if handle is None or (
            self.lib.nvmlDeviceGetCudaComputeCapability(
                handle, ctypes.byref(major), ctypes.byref(minor)
            )
            != 0
        ):
            return None
        return major.value, minor.value


@functools.lru_cache(maxsize=1)
def nvml() -> Nvml | None:
    """NVML, initialised, or None where there is no NVIDIA driver."""
    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    return Nvml(lib) if lib.nvmlInit_v2() == 0 else None


def physical_devices(visible: list[str] | None, nvml: Any) -> list[int | None]:
    """The physical NVML index of each logical CUDA device, as CUDA reads CUDA_VISIBLE_DEVICES:
    indices or (prefixes of) GPU UUIDs, in order, up to the first invalid, negative or repeated
    entry (so `-1` hides every device). A MIG device counts, with no physical index (None)."""
    count = nvml.count() or 0
    if visible is None:
        return list(range(count))
    uuids = [nvml.uuid(i) or "" for i in range(count)]
    found: list[int | None] = []
    for item in visible:
        index: int | None
        if item.upper().startswith("MIG-"):
            found.append(None)
            continue
        if item.upper().startswith("GPU-"):
            matches = [i for i, uuid in enumerate(uuids) if uuid.upper().startswith(item.upper())]
            index = matches[0] if len(matches) == 1 else None
        else:
            try:
                index = int(item)
            except ValueError:
                index = None
        if index is None or not 0 <= index < count or index in found:
            break
        found.append(index)
    return found
