"""The on-disk cache: files by kind ("notes", "frames", ...) and content key, under one folder.

Shared by every vidtt process on the machine, so a video sampled (or described) once is not
decoded (or described) again by the next command. Safe for concurrent writers and readers in
several processes: a value is written to a temporary file in the same folder, synced, and
renamed over its entry (`os.replace`, atomic), so a reader sees the whole old file, the whole
new one or none. A torn or corrupt entry (a crash before the sync, a disk error, a file edited
by hand) reads as missing and is removed. Nothing is ever unpickled: JSON, and NumPy arrays read
with `allow_pickle=False`, so a cache file from elsewhere cannot run code.

The folder has a size limit (`VIDTT_CACHE_MAX_BYTES`, default 2 GiB): after each write the
least recently used entries (by modification time, which a read touches) are removed, oldest
first, until the entries fit. An entry larger than the limit is not stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidtt.errors import OptionsError, VidttError
from vidtt.types import Clip, VideoInfo

DEFAULT_MAX_BYTES = 2 << 30
KINDS = ("frames", "notes")  # the kinds vidtt writes; a caller may use others
FORMAT = 1  # bumped when an entry's layout changes: older entries are then never read
RESCAN_SECONDS = 30.0  # how long a process trusts its own count of the folder's bytes
STALE_TEMP_SECONDS = 3600.0  # a temporary file this old was left by a writer that died

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,127})\.(json|npz)$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class CacheError(VidttError):
    """The cache folder cannot be used (not a folder, not readable, cannot be made)."""


def cache_dir() -> Path:
    """`$VIDTT_CACHE_DIR`, else `$XDG_CACHE_HOME/vidtt`, else `~/.cache/vidtt`."""
    given = os.environ.get("VIDTT_CACHE_DIR")
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "vidtt"
    return Path.home() / ".cache" / "vidtt"


def parse_size(text: str) -> int:
    """Bytes from `2147483648`, `2G`, `500M`, `1.5GiB`, `64k` (units of 1024)."""
    found = _SIZE.match(str(text))
    if not found:
        raise OptionsError(
            f"VIDTT_CACHE_MAX_BYTES must be bytes or a size such as 2G or 500M, not {text!r}"
        )
    number, unit = found.group(1), found.group(2).lower()
    return int(float(number) * _UNITS[unit])


def max_bytes_setting() -> int:
    """The size limit: `$VIDTT_CACHE_MAX_BYTES` (bytes, or `2G`, `500M`), else 2 GiB."""
    given = os.environ.get("VIDTT_CACHE_MAX_BYTES", "").strip()
    return parse_size(given) if given else DEFAULT_MAX_BYTES


def content_key(*parts: Any) -> str:
    """A stable sha256 hex of JSON-able parts (mappings' keys sorted; tuples as lists)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class _Entry:
    path: Path
    kind: str
    size: int
    used: float  # mtime: the last write or read


class Store:
    """Files on disk under `root`, by kind ("notes", "frames", ...) and key; a size limit with
    least-recently-used eviction; safe for concurrent writers and readers in several processes
    (write to a temp file, fsync, os.replace; readers never see half a file; a torn or corrupt
    entry reads as missing and is removed)."""

    def __init__(self, root: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root).expanduser() if root is not None else cache_dir()
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._bytes: int | None = None  # this process's count of the entries' bytes
        self._counted_at = 0.0

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r}, max_bytes={self.max_bytes})"

    # -- JSON ---------------------------------------------------------------------------------
    def get_json(self, kind: str, key: str) -> Any | None:
        """The value stored under `kind` and `key`, or None (touches its access time)."""
        path = self._path(kind, key, "json")
        data = self._read(path)
        if data is None:
            return None
        try:
            entry = json.loads(data.decode())
            if not (isinstance(entry, dict) and entry.get("format") == FORMAT and "value" in entry):
                raise ValueError("not an entry")
            if entry.get("sha256") != _digest(_dump(entry["value"])):
                raise ValueError("damaged")
        except (ValueError, TypeError):
            self._discard(path, data)
            return None
        return entry["value"]

    def put_json(self, kind: str, key: str, value: Any) -> None:
        """Store `value` (JSON-able) under `kind` and `key`, then evict down to the limit."""
        path = self._path(kind, key, "json")
        text = _dump(value)
        entry = f'{{"format": {FORMAT}, "sha256": "{_digest(text)}", "value": {text}}}'
        self._write(path, entry.encode())

    # -- Clips --------------------------------------------------------------------------------
    def get_clip(self, key: str) -> Clip | None:
        """The Clip stored under `key` (kind "frames"), or None (touches its access time)."""
        path = self._path("frames", key, "npz")
        data = self._read(path)
        if data is None:
            return None
        try:
            return _clip_from(data)
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            EOFError,
            OSError,
            zipfile.BadZipFile,
        ):
            self._discard(path, data)
            return None

    def put_clip(self, key: str, clip: Clip) -> None:
        """Store `clip` under `key` (kind "frames"): its frames, indices, timestamps, info,
        sampler, source label, warnings, metadata and shots, as one .npz file holding the frame
        array and the rest as JSON. `ValueError` when its metadata is not JSON-able."""
        self._write(self._path("frames", key, "npz"), _clip_bytes(clip))

    # -- the folder ---------------------------------------------------------------------------
    def usage(self) -> dict[str, tuple[int, int]]:
        """kind -> (entries, bytes), for the kinds with entries."""
        found: dict[str, tuple[int, int]] = {}
        for entry in self._entries():
            count, size = found.get(entry.kind, (0, 0))
            found[entry.kind] = (count + 1, size + entry.size)
        return dict(sorted(found.items()))

    def clear(self, kind: str | None = None) -> int:
        """Remove every entry (of `kind`, if given); the number removed."""
        if kind is not None:
            _check_name("kind", kind)
        removed = 0
        for entry in self._entries(kind):
            if _unlink(entry.path):
                removed += 1
        with self._lock:
            self._bytes = None
        return removed

    def evict(self) -> None:
        """Remove the least recently used entries, oldest first, until they fit the limit."""
        entries = sorted(self._entries(tidy=True), key=lambda e: (e.used, e.path.name))
        total = sum(e.size for e in entries)
        for entry in entries:
            if total <= self.max_bytes:
                break
            _unlink(entry.path)
            total -= entry.size
        with self._lock:
            self._bytes, self._counted_at = total, time.monotonic()

    def check(self) -> None:
        """`CacheError` when the folder cannot be read, or does not exist and cannot be made."""
        root = self.root
        if root.exists():
            if not root.is_dir():
                raise CacheError(f"the cache folder {root} is not a folder")
            if not os.access(root, os.R_OK | os.X_OK):
                raise CacheError(f"cannot read the cache folder {root}: permission denied")
            return
        parent = root.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise CacheError(f"cannot make the cache folder {root}: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CacheError(f"cannot make the cache folder {root}: {parent} is not writable")

    # -- inside -------------------------------------------------------------------------------
    def _path(self, kind: str, key: str, suffix: str) -> Path:
        _check_name("kind", kind)
        _check_name("key", key)
        return self.root / kind / f"{key}.{suffix}"

    def _read(self, path: Path) -> bytes | None:
        """The file's bytes, its access time touched; None when it is missing or unreadable."""
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError:
            return None
        with contextlib.suppress(OSError):  # evicted meanwhile, or a read-only cache
            os.utime(path)
        return data

    def _discard(self, path: Path, data: bytes) -> None:
        """Remove a corrupt entry, unless another process has just replaced it."""
        try:
            if path.read_bytes() == data:
                path.unlink()
        except OSError:
            pass

    def _write(self, path: Path, data: bytes) -> None:
        """`data` as the whole of `path`, atomically; then the folder evicted to the limit."""
        if len(data) > self.max_bytes:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            with open(temp, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            _unlink(temp)
            raise
        _sync_folder(path.parent)
        self._after_write(len(data))

    def _after_write(self, size: int) -> None:
        """Evict when this process's count says the limit is passed, or the count is old
        (other processes write too)."""
        with self._lock:
            fresh = self._bytes is not None and time.monotonic() - self._counted_at < RESCAN_SECONDS
            if fresh:
                assert self._bytes is not None
                self._bytes += size
                if self._bytes <= self.max_bytes:
                    return
        self.evict()

    def _entries(self, kind: str | None = None, tidy: bool = False) -> list[_Entry]:
        """The entries on disk (of `kind`); `tidy` also removes temporary files left by
        writers that died."""
        try:
            folders = [self.root / kind] if kind else sorted(self.root.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CacheError(
                f"cannot read the cache folder {self.root}: {exc.strerror or exc}"
            ) from None
        found: list[_Entry] = []
        now = time.time()
        for folder in folders:
            if not _NAME.match(folder.name):
                continue
            try:
                names = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise CacheError(f"cannot read {folder}: {exc.strerror or exc}") from None
            for name in names:
                path = folder / name
                if not _ENTRY.match(name):
                    if tidy and name.startswith(".") and name.endswith(".tmp"):
                        _remove_stale(path, now)
                    continue
                try:
                    stat = path.stat()
                except OSError:
                    continue
                found.append(_Entry(path, folder.name, stat.st_size, stat.st_mtime))
        return found


_stores: dict[tuple[Path, int], Store] = {}
_stores_lock = threading.Lock()


def default_store() -> Store:
    """This process's store at `cache_dir()`, with the `VIDTT_CACHE_MAX_BYTES` limit (one per
    folder and limit, so changing either gets a store of its own)."""
    root, limit = cache_dir(), max_bytes_setting()
    with _stores_lock:
        store = _stores.get((root, limit))
        if store is None:
            store = _stores[(root, limit)] = Store(root, limit)
        return store


def known_kinds(store: Store) -> list[str]:
    """The kinds vidtt writes and any others found in the store."""
    return sorted({*KINDS, *store.usage()})


# -- a Clip as one .npz: the frames, and the rest as JSON ---------------------------------------
def _clip_bytes(clip: Clip) -> bytes:
    import numpy as np

    notes = {
        "format": FORMAT,
        "indices": [int(i) for i in clip.indices],
        "timestamps": [float(t) for t in clip.timestamps],
        "info": clip.info.model_dump(mode="json"),
        "sampler": clip.sampler,
        "source": clip.source,
        "warnings": list(clip.warnings),
        "metadata": clip.metadata,
        "shots": [shot.model_dump(mode="json") for shot in clip.shots],
    }
    try:
        text = json.dumps(notes, ensure_ascii=False)
    except TypeError as exc:
        raise ValueError(f"the clip's metadata cannot be stored: {exc}") from None
    buffer = io.BytesIO()
    np.savez(buffer, frames=clip.array, notes=np.frombuffer(text.encode(), dtype=np.uint8))
    return buffer.getvalue()


def _clip_from(data: bytes) -> Clip:
    import numpy as np

    from vidtt.types.shots import Shot

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        frames = npz["frames"]
        notes = json.loads(npz["notes"].tobytes().decode())
    if not isinstance(notes, dict) or notes.get("format") != FORMAT:
        raise ValueError("not a clip entry of this version")
    clip = Clip(
        array=frames,
        indices=notes["indices"],
        timestamps=notes["timestamps"],
        info=VideoInfo.model_validate(notes["info"]),
        sampler=notes["sampler"],
        source=notes["source"],
        warnings=notes["warnings"],
        metadata=notes["metadata"],
    )
    clip.shots = [Shot.model_validate(shot) for shot in notes["shots"]]
    return clip


def _dump(value: Any) -> str:
    """A JSON value as the store writes it (the same text again once read back)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise OptionsError(
            f"a cache {what} is letters, digits, '_' and '-' (at most 128), not {name!r}"
        )


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:
        return False
    return True


def _remove_stale(path: Path, now: float) -> None:
    try:
        if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
            path.unlink()
    except OSError:
        pass


def _sync_folder(folder: Path) -> None:
    """The rename itself made durable (POSIX; elsewhere a no-op)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
