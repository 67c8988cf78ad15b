"""Frame indexes kept per file, so a video sampled again (other frames, another sampler, a
probe then a sample) has its packets read once per process.

A file is known by its real path, inode, size and modification time (and the stream's
number): a file changed or replaced is scanned again. Other sources (URLs, bytes) are scanned
each time.
At most `MAX_FRAMES` frames' worth of indexes are kept, the least recently used dropped first.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

from vidtt.types import VideoSource

from .index import StreamIndex, scan

MAX_FRAMES = 1_000_000  # about 40 MB of indexes: 9 hours of video at 30 frames a second
_kept: OrderedDict[tuple[Any, ...], StreamIndex] = OrderedDict()
_lock = threading.Lock()


def _key(source: VideoSource, stream: Any) -> tuple[Any, ...] | None:
    if source.kind != "path":
        return None
    try:
        path = os.path.realpath(os.path.expanduser(str(source.value)))
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return (path, stat.st_ino, stat.st_size, stat.st_mtime_ns, stream.index)


def scanned(container: Any, stream: Any, source: VideoSource, guard: Any = None) -> StreamIndex:
    """`scan`'s index of `stream`, read once per file version."""
    key = _key(source, stream)
    if key is not None:
        with _lock:
            index = _kept.get(key)
            if index is not None:
                _kept.move_to_end(key)
                return index
    index = scan(container, stream, source.label, guard)
    if key is not None and len(index) <= MAX_FRAMES:
        with _lock:
            _kept[key] = index
            while sum(len(kept) for kept in _kept.values()) > MAX_FRAMES:
                _kept.popitem(last=False)
    return index


def forget(path: str | None = None) -> None:
    """Drop every kept index, or those of the file at `path` (a video done with)."""
    with _lock:
        if path is None:
            _kept.clear()
            return
        real = os.path.realpath(os.path.expanduser(path))
        for key in [key for key in _kept if key[0] == real]:
            del _kept[key]
