"""Processed frames kept with the prefix cache: the image and video processors' outputs for
the last frames they were given, so that a follow-up or another question about the same
frames (whose model state the prefix cache holds) does not resize and normalize them again.

`keep_processed` wraps a processor's `image_processor` and `video_processor` in `Processed`,
which answers a call with the same frames and keywords from what it kept (least recently
used dropped first, within a byte bound) and passes everything else to the processor.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from typing import Any

KEPT = ("image_processor", "video_processor")

# Frame arrays whose digest is known (a Clip's), by id: the array (weakly) and the digest.
_named: dict[int, tuple[Any, str]] = {}


def name_frames(array: Any, digest: str) -> None:
    """Note that `array` (held unchanged, as a Clip's frames are) has `digest`, so that calls
    given it or views of it are keyed without reading its pixels."""
    key = id(array)
    known = _named.get(key)
    if known is None or known[0]() is not array:

        def forget(_: Any) -> None:
            _named.pop(key, None)

        _named[key] = (weakref.ref(array, forget), digest)


def named(array: Any) -> str | None:
    """The digest of `array`'s pixels when it is, or views, frames named by `name_frames`."""
    owner = array if array.base is None else array.base
    known = _named.get(id(owner))
    if known is None or known[0]() is not owner:
        return None
    offset = array.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
    return f"{known[1]}+{offset}{array.shape}{array.strides}{array.dtype}"


class Processed:
    """A processor answering calls it has seen from what it kept. Safe from several threads."""

    def __init__(self, inner: Any, limit: int) -> None:
        self._inner, self._limit = inner, limit
        self._kept: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance sees the processor it stands for
        return type(self._inner)

    def __reduce__(self) -> Any:  # pickled or copied, it is the processor, without what it kept
        return self._inner.__reduce__()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = call_key(args, kwargs)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return copy_of(found[0])
        out = self._inner(*args, **kwargs)
        size = size_of(out)
        with self._lock:
            if key not in self._kept and size <= self._limit:
                while self._held + size > self._limit:
                    _, (_, dropped) = self._kept.popitem(last=False)
                    self._held -= dropped
                self._kept[key], self._held = (out, size), self._held + size
        return copy_of(out)


def keep_processed(processor: Any, limit: int) -> None:
    """Answer `processor`'s image and video processor calls seen before from what was kept,
    at most `limit` bytes each."""
    for name in KEPT:
        inner = getattr(processor, name, None)
        if inner is not None and not any(type(inner) is c for c in _classes.values()):
            setattr(processor, name, standing_for(type(inner))(inner, limit))


_classes: dict[type, type] = {}


def standing_for(kind: type) -> type:
    """A `Processed` class named as the processor class `kind` (what messages show)."""
    if kind not in _classes:
        _classes[kind] = type(kind.__name__, (Processed,), {"__qualname__": kind.__qualname__})
    return _classes[kind]


def call_key(args: Any, kwargs: dict[str, Any]) -> str:
    """A digest of a call's frames (their pixels) and keywords."""
    hashed = hashlib.sha256()
    feed(hashed, args)
    feed(hashed, sorted(kwargs.items(), key=lambda item: item[0]))
    return hashed.hexdigest()


def feed(hashed: Any, value: Any) -> None:
    """Add `value` (nested lists, arrays, images, tensors, plain values) to `hashed`."""
    import numpy as np

    if isinstance(value, (list, tuple)):
        hashed.update(f"[{len(value)}".encode())
        for item in value:
            feed(hashed, item)
        hashed.update(b"]")
        return
    if hasattr(value, "detach"):  # a tensor
        value = value.detach().cpu().numpy()
    elif hasattr(value, "tobytes") and hasattr(value, "mode"):  # a PIL image
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and (name := named(value)) is not None:
        hashed.update(f"n{name}".encode())
    elif isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        hashed.update(f"a{data.shape}{data.dtype}".encode())
        hashed.update(data.data)
    else:
        hashed.update(repr(value).encode())


def size_of(out: Any) -> int:
    values = out.values() if hasattr(out, "values") else []
    return sum(int(getattr(v, "nbytes", 0)) for v in values)


def copy_of(out: Any) -> Any:
    """A new output holding the same tensors (callers may add or replace keys)."""
    return type(out)(dict(out)) if hasattr(out, "keys") else out
