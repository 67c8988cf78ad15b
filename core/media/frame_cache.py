"""A bounded cache of sampled Clips, so a video asked about several times is decoded once.

Keyed by the source's identity (a file's path, size and modification time; a URL; a hash of
bytes) and the sampler with its options. Frame arrays given directly are not cached. Two
threads asking for the same key at once share one decode.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from vidtt.types import VideoSource

DEFAULT_BYTES = 1 << 30
V = TypeVar("V")  # what is cached: Clips unless told


def source_key(source: VideoSource) -> tuple[Any, ...] | None:
    """What identifies the video's content, or None when it cannot be told cheaply."""
    if source.kind == "path":
        path = os.path.expanduser(source.value)
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return ("path", os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if source.kind == "url":
        return ("url", source.value)
    if source.kind == "bytes":
        return ("bytes", hashlib.sha256(bytes(source.value)).hexdigest())
    return None


def _nbytes(clip: Any) -> int:
    return int(clip.nbytes)


class FrameCache(Generic[V]):
    """Least-recently-used Clips up to `max_bytes` of frames; 0 turns caching off. `size`
    measures what is kept (a Clip's frame bytes unless told: the cache holds other values,
    transcripts say, as well)."""

    def __init__(
        self, max_bytes: int = DEFAULT_BYTES, size: Callable[[V], int] | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self._size: Callable[[V], int] = size or _nbytes
        self._clips: OrderedDict[Any, V] = OrderedDict()
        self._pending: dict[Any, Future[V]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Any, make: Callable[[], V]) -> V:
        """The cached value for `key`, or `make()`'s (stored when it fits)."""
        if key is None or self.max_bytes <= 0:
            return make()
        with self._lock:
            if key in self._clips:
                self._clips.move_to_end(key)
                self.hits += 1
                return self._clips[key]
            waiting = self._pending.get(key)
            if waiting is None:
                self.misses += 1
                self._pending[key] = Future()
        if waiting is not None:
            self.hits += 1
            return waiting.result()
        return self._make(key, make)

    def _make(self, key: Any, make: Callable[[], V]) -> V:
        future = self._pending[key]
        try:
            clip = make()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self._store(key, clip)
        future.set_result(clip)
        return clip

    def _store(self, key: Any, clip: V) -> None:
        size = self._size(clip)
        if size > self.max_bytes:
            return
        self._clips[key] = clip
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._clips.popitem(last=False)
            self._bytes -= self._size(old)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._clips)

    def clear(self) -> None:
        with self._lock:
            self._clips.clear()
            self._bytes = 0
