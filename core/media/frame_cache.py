"""A bounded cache of sampled Clips, so a video asked about several times is decoded once.

Keyed by the source's identity (a file's path, size and modification time; a URL; a hash of
bytes) and the sampler with its options. Frame arrays given directly are not cached. Two
threads asking for the same key at once share one decode. With a `store` (`vidtt.media.store`)
the cache has a second level on disk, shared by processes: a Clip missing from memory is read
from there, and a Clip sampled is written there too, so a second process decodes nothing. A
store that cannot be used is a miss on every read and a no-op on every write (it warns once):
sampling goes on without it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from vidtt.errors import VidttError
from vidtt.types import Clip, VideoSource
from vidtt.version import __version__

if TYPE_CHECKING:
    from vidtt.media.store import Store

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


def _disk_key(key: Any) -> str | None:
    """The store's key for a memory key (a source key with the sampler and its options), and
    vidtt's version (another may sample differently)."""
    from vidtt.media.store import content_key

    try:
        return content_key("frames", __version__, key)
    except (TypeError, ValueError):  # a key that is not JSON-able is kept in memory only
        return None


def _nbytes(clip: Any) -> int:
    return int(clip.nbytes)


class FrameCache(Generic[V]):
    """Least-recently-used Clips up to `max_bytes` of frames; 0 turns caching off. `size`
    measures what is kept (a Clip's frame bytes unless told: the cache holds other values,
    transcripts say, as well). With a `store`, Clips missed in memory are looked for on disk,
    and Clips made are stored there (its own limit applies); other values are not."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_BYTES,
        size: Callable[[V], int] | None = None,
        *,
        store: Store | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.store = store
        self.disk_hits = 0
        self._warned = False
        self._size: Callable[[V], int] = size or _nbytes
        self._clips: OrderedDict[Any, V] = OrderedDict()
        self._pending: dict[Any, Future[V]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Any, make: Callable[[], V]) -> V:
        """The cached value for `key`, or `make()`'s (stored when it fits)."""
        if key is None or (self.max_bytes <= 0 and self.store is None):
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
            clip = self._make_or_read(key, make)
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

    def _make_or_read(self, key: Any, make: Callable[[], V]) -> V:
        """The store's Clip for `key`, or `make()`'s (then stored on disk, when a Clip)."""
        if self.store is None:
            return make()
        disk_key = _disk_key(key)
        if disk_key is not None:
            found = self.store.get_clip(disk_key)
            if found is not None:
                with self._lock:
                    self.disk_hits += 1
                return found  # type: ignore[return-value]
        made = make()
        if disk_key is not None and isinstance(made, Clip):
            try:
                self.store.put_clip(disk_key, made)
            except (OSError, VidttError, ValueError) as exc:  # metadata that is not JSON-able
                self._warn(exc)
        return made

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"frames not kept in the cache ({self.store}): {exc}", stacklevel=4)

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
