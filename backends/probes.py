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


@functools.lru_cache(maxsize=1)
def nvml() -> Any | None:
    """The NVML library, initialised, or None where there is no NVIDIA driver."""
    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    return lib if lib.nvmlInit_v2() == 0 else None


def nvml_device_count() -> int | None:
    lib = nvml()
    if lib is None:
        return None
    count = ctypes.c_uint(0)
    return count.value if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) == 0 else None


def nvml_capability(index: int) -> tuple[int, int] | None:
    lib = nvml()
    if lib is None:
        return None
    handle = ctypes.c_void_p()
    major, minor = ctypes.c_int(), ctypes.c_int()
    if lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
        return None
    if (
        lib.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor))
        != 0
    ):
        return None
    return major.value, minor.value
