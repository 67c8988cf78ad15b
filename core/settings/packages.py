"""The packages models are read with, checked before transformers first needs them.

transformers' image and video processors import torchvision whenever it is installed. A
torchvision built for another torch fails there, deep inside transformers' lazy imports, with
a traceback that ends in "Could not import module 'AutoProcessor'" or "operator
torchvision::nms does not exist". `check_torchvision` imports it first, so that the mismatch is
one line that names both versions and the exact command that installs the matching one.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import re
import sys

from vidtt.errors import ModelLoadError

MISMATCH = (
    "torchvision {torchvision} does not match torch {torch} ({reason}): install the "
    "torchvision built for this torch: {command}"
)
WHEELS = "https://download.pytorch.org/whl"


def check_torchvision() -> None:
    """Import torchvision (when installed) and turn a failure into one `ModelLoadError` line.
    A torchvision that is not installed is left to transformers, which says what it needs."""
    if sys.modules.get("torchvision") is not None:
        return
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        return
    try:
        importlib.import_module("torchvision")
    except (ImportError, RuntimeError, OSError, AttributeError) as exc:
        torch = torch_version()
        raise ModelLoadError(
            MISMATCH.format(
                torchvision=version_of("torchvision"),
                torch=torch,
                reason=said(exc),
                command=fix_command(torch),
            )
        ) from None


def fix_command(torch: str) -> str:
    """The shell command that replaces torchvision with the build made for torch `torch`
    (a version such as 2.5.1+cpu): torch stays, pinned; torchvision comes from the index the
    build's local tag names (PyPI for a plain version). The old torchvision goes first, as pip
    keeps an installed one whose version already fits."""
    found = re.fullmatch(r"(\d+(?:\.\d+)*)(?:\+([A-Za-z0-9.]+))?", torch.strip())
    if not found:
        return "pip uninstall -y torchvision && pip install torch torchvision"
    release, build = found.groups()
    index = f" --index-url {WHEELS}/{build}" if build else ""
    return f"pip uninstall -y torchvision && pip install torch=={release} torchvision{index}"


def torch_version() -> str:
    """torch's own version, which names its build (2.5.1+cpu), where torch imports."""
    with contextlib.suppress(Exception):  # a broken torch: what its metadata says
        importlib.import_module("torch")
    return version_of("torch")


def said(exc: BaseException) -> str:
    """The first line of an error, or its type when it says nothing."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def version_of(package: str) -> str:
    """The installed version of `package` (its module's own when already imported, which
    carries the build, such as +cpu)."""
    module = sys.modules.get(package)
    found = getattr(module, "__version__", None) if module is not None else None
    if found:
        return str(found)
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(unknown version)"
