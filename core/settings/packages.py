"""The packages models are read with, checked before transformers first needs them.

transformers' image and video processors import torchvision whenever it is installed. A
torchvision built for another torch fails there, deep inside transformers' lazy imports, with
a traceback that ends in "Could not import module 'AutoProcessor'" or "operator
torchvision::nms does not exist". `check_torchvision` imports it first, so that the mismatch is
one line that names both versions and what to do.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from vidtt.errors import ModelLoadError

MISMATCH = (
    "torchvision {torchvision} does not match torch {torch} ({reason}): install the "
    "torchvision built for your torch (pip install torch torchvision together, from the same "
    "index)"
)


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
        raise ModelLoadError(
            MISMATCH.format(
                torchvision=version_of("torchvision"), torch=version_of("torch"), reason=said(exc)
            )
        ) from None


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
