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

The folder is not trusted past its own root (docs/security.md, The on-disk cache): nothing
inside it is followed (a kind's folder that is a link is skipped; an entry that is a link, a
FIFO, a device or a socket is a miss, removed, never opened to read), every read is bounded by
the entry's size and the limit, and a folder that cannot be used (no permission, not a folder,
a full disk) makes reads misses and writes no-ops, with one `CacheWarning` per store.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import re
import stat
import threading
import time
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidtt import envs
from vidtt.errors import OptionsError, VidttError
from vidtt.types import Clip, VideoInfo

DEFAULT_MAX_BYTES = envs.DEFAULT_CACHE_MAX_BYTES
KINDS = ("frames", "notes")  # the kinds vidtt writes; a caller may use others
FORMAT = 1  # bumped when an entry's layout changes: older entries are then never read
RESCAN_SECONDS = 30.0  # how long a process trusts its own count of the folder's bytes
STALE_TEMP_SECONDS = 3600.0  # a temporary file this old was left by a writer that died

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,127})\.(json|npz)$")
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of waiting for a writer
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NONBLOCK | _CLOEXEC
_FILE = os.O_RDONLY | getattr(os, "O_BINARY", 0) | _NOFOLLOW | _NONBLOCK | _CLOEXEC
_CHUNK = 1 << 20


class CacheError(VidttError):
    """The cache folder cannot be used (not a folder, not readable, cannot be made)."""


class CacheWarning(UserWarning):
    """The cache is not used for something (once per store and topic), or an entry was odd."""


class _NotAFile(Exception):
    """An entry's name is taken by something other than a regular file (what, in words)."""


def cache_dir() -> Path:
    """`$VIDTT_CACHE_DIR`, else `$XDG_CACHE_HOME/vidtt`, else `~/.cache/vidtt` (the old
    `$VIDTT_CACHE` too, with a warning: `vidtt.envs.cache_dir`)."""
    return envs.cache_dir()


def parse_size(text: str) -> int:
    """Bytes from `2147483648`, `2G`, `500M`, `1.5GiB`, `64k` (units of 1024)."""
    return envs.parse_size(text, "VIDTT_CACHE_MAX_BYTES")


def max_bytes_setting() -> int:
    """The size limit: `$VIDTT_CACHE_MAX_BYTES` (bytes, or `2G`, `500M`), else 2 GiB."""
    return int(envs.get("VIDTT_CACHE_MAX_BYTES"))


def content_key(*parts: Any) -> str:
    """A stable sha256 hex of JSON-able parts (mappings' keys sorted; tuples as lists)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class _Entry:
    kind: str
    name: str
    size: int  # 0 when not a regular file
    used: float  # mtime: the last write or read
    regular: bool


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
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r}, max_bytes={self.max_bytes})"

    # -- JSON ---------------------------------------------------------------------------------
    def get_json(self, kind: str, key: str) -> Any | None:
        """The value stored under `kind` and `key`, or None (touches its access time)."""
        name = _entry_name(kind, key, "json")
        data = self._read(kind, name)
        if data is None:
            return None
        try:
            entry = json.loads(data.decode())
            if not (isinstance(entry, dict) and entry.get("format") == FORMAT and "value" in entry):
                raise ValueError("not an entry")
            if entry.get("sha256") != _digest(_dump(entry["value"])):
                raise ValueError("damaged")
        except RecursionError:
            self._odd(kind, name, "is nested too deeply: read as missing, removed")
        except (ValueError, TypeError):
            pass
        else:
            return entry["value"]
        self._discard(kind, name, data)
        return None

    def put_json(self, kind: str, key: str, value: Any) -> None:
        """Store `value` (JSON-able) under `kind` and `key`, then evict down to the limit."""
        name = _entry_name(kind, key, "json")
        text = _dump(value)
        entry = f'{{"format": {FORMAT}, "sha256": "{_digest(text)}", "value": {text}}}'
        self._write(kind, name, entry.encode())

    # -- Clips --------------------------------------------------------------------------------
    def get_clip(self, key: str) -> Clip | None:
        """The Clip stored under `key` (kind "frames"), or None (touches its access time)."""
        name = _entry_name("frames", key, "npz")
        data = self._read("frames", name)
        if data is None:
            return None
        try:
            return _clip_from(data)
        except RecursionError:
            self._odd("frames", name, "is nested too deeply: read as missing, removed")
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            EOFError,
            OSError,
            zipfile.BadZipFile,
        ):
            pass
        self._discard("frames", name, data)
        return None

    def put_clip(self, key: str, clip: Clip) -> None:
        """Store `clip` under `key` (kind "frames"): its frames, indices, timestamps, info,
        sampler, source label, warnings, metadata and shots, as one .npz file holding the frame
        array and the rest as JSON. `ValueError` when its metadata is not JSON-able."""
        self._write("frames", _entry_name("frames", key, "npz"), _clip_bytes(clip))

    # -- the folder ---------------------------------------------------------------------------
    def usage(self) -> dict[str, tuple[int, int]]:
        """kind -> (entries, bytes), for the kinds with entries (regular files only)."""
        found: dict[str, tuple[int, int]] = {}
        for entry in self._entries():
            if entry.regular:
                count, size = found.get(entry.kind, (0, 0))
                found[entry.kind] = (count + 1, size + entry.size)
        return dict(sorted(found.items()))

    def clear(self, kind: str | None = None) -> int:
        """Remove every entry (of `kind`, if given), and anything else under an entry's name (a
        link, a FIFO: removed, never followed nor opened); the number removed."""
        if kind is not None:
            _check_name("kind", kind)
        removed = sum(self._remove(entry) for entry in self._entries(kind))
        with self._lock:
            self._bytes = None
        return removed

    def evict(self) -> None:
        """Remove the least recently used entries, oldest first, until they fit the limit
        (and anything under an entry's name that is not a regular file)."""
        entries = []
        for entry in self._entries(tidy=True):
            if entry.regular:
                entries.append(entry)
            else:
                self._remove(entry)
        entries.sort(key=lambda e: (e.used, e.name))
        total = sum(e.size for e in entries)
        for entry in entries:
            if total <= self.max_bytes:
                break
            self._remove(entry)
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
    @contextlib.contextmanager
    def _folder(self, kind: str, make: bool = False) -> Iterator[int]:
        """The kind's folder, open: the root is followed (where it lives is the user's
        choice), nothing inside it is (a link there is `NotADirectoryError`)."""
        if make:
            self.root.mkdir(parents=True, exist_ok=True)
        root = os.open(self.root, _DIRECTORY)
        try:
            if make:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(kind, dir_fd=root)
            folder = _open_folder(root, kind, self.root / kind)
        finally:
            os.close(root)
        try:
            yield folder
        finally:
            os.close(folder)

    def _read(self, kind: str, name: str) -> bytes | None:
        """The entry's bytes, its access time touched; None when it is missing, larger than
        the limit, not a regular file (then removed), or the folder cannot be read."""
        try:
            with self._folder(kind) as folder:
                try:
                    return _read_file(folder, name, self.max_bytes)
                except _NotAFile as odd:
                    try:
                        os.unlink(name, dir_fd=folder)  # a link goes, not what it points at
                    except OSError:  # a folder
                        self._odd(kind, name, f"is {odd}, not a file: read as missing")
                    else:
                        self._odd(kind, name, f"is {odd}, not a file: read as missing, removed")
                    return None
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._unusable(kind, exc)
            return None

    def _discard(self, kind: str, name: str, data: bytes) -> None:
        """Remove a corrupt entry, unless another process has just replaced it."""
        try:
            with self._folder(kind) as folder:
                if _read_file(folder, name, len(data)) == data:
                    os.unlink(name, dir_fd=folder)
        except (OSError, _NotAFile):
            pass

    def _write(self, kind: str, name: str, data: bytes) -> None:
        """`data` as the whole of the entry, atomically; then the folder evicted to the limit.
        A folder that cannot be written (permission, not a folder, a full disk) is a no-op."""
        if len(data) > self.max_bytes:
            return
        try:
            with self._folder(kind, make=True) as folder:
                _write_in(folder, name, data)
            self._after_write(len(data))
        except (OSError, CacheError) as exc:
            self._unusable(kind, exc)

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

    def _remove(self, entry: _Entry) -> bool:
        """Unlink the entry's name in its kind's folder (a link goes, never what it points at)."""
        try:
            with self._folder(entry.kind) as folder:
                os.unlink(entry.name, dir_fd=folder)
        except OSError:
            return False
        return True

    def _entries(self, kind: str | None = None, tidy: bool = False) -> list[_Entry]:
        """The entries on disk (of `kind`): what has an entry's name in a kind's folder, other
        than a folder; a kind's "folder" that is a link or a file is skipped. `tidy` also
        removes temporary files left by writers that died."""
        try:
            root = os.open(self.root, _DIRECTORY)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CacheError(f"cannot read the cache folder {self.root}: {_why(exc)}") from None
        try:
            kinds = [kind] if kind else sorted(os.listdir(root))
            found: list[_Entry] = []
            for name in kinds:
                if _NAME.match(name):
                    found.extend(self._kind_entries(root, name, tidy))
            return found
        except OSError as exc:
            raise CacheError(f"cannot read the cache folder {self.root}: {_why(exc)}") from None
        finally:
            os.close(root)

    def _kind_entries(self, root: int, kind: str, tidy: bool) -> list[_Entry]:
        try:
            folder = _open_folder(root, kind, self.root / kind)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise CacheError(f"cannot read {self.root / kind}: {_why(exc)}") from None
        try:
            return _scan(folder, kind, tidy)
        except OSError as exc:
            raise CacheError(f"cannot read {self.root / kind}: {_why(exc)}") from None
        finally:
            os.close(folder)

    # -- warnings, once each per store ----------------------------------------------------------
    def _unusable(self, kind: str, exc: Exception) -> None:
        why = _why(exc) if isinstance(exc, OSError) else str(exc)
        message = f"{kind} not kept in the cache ({self.root}): {why}; vidtt goes on without it"
        self._warn_once("unusable", message)

    def _odd(self, kind: str, name: str, what: str) -> None:
        self._warn_once("odd", f"the cache entry {self.root / kind / name} {what}")

    def _warn_once(self, topic: str, message: str) -> None:
        with self._lock:
            if topic in self._warned:
                return
            self._warned.add(topic)
        warnings.warn(message, CacheWarning, stacklevel=4)


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

    _check_npz(data)
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


def _check_npz(data: bytes) -> None:
    """`ValueError` unless `data` is an uncompressed zip of arrays each within its own bytes,
    as `_clip_bytes` writes: so nothing is inflated or allocated past the file's size."""
    import numpy as np

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
                raise ValueError("not a clip entry: a compressed or oversized member")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"not a clip entry: .npy version {version}")
                if math.prod(shape) * dtype.itemsize > info.file_size - member.tell():
                    raise ValueError("not a clip entry: an array larger than its bytes")


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


def _entry_name(kind: str, key: str, suffix: str) -> str:
    _check_name("kind", kind)
    _check_name("key", key)
    return f"{key}.{suffix}"


def _what(mode: int) -> str:
    """What a file is, in words (for a file that is not a regular file)."""
    kinds = (
        (stat.S_ISLNK, "a symbolic link (never followed inside the cache)"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    )
    return next((words for test, words in kinds if test(mode)), "not a regular file")


def _why(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    return f"{exc.filename}: {what}" if exc.filename else what


def _open_folder(parent: int, name: str, path: Path) -> int:
    """The folder `name` in `parent`, opened; a link to one, or anything else, is
    `NotADirectoryError` (checked, then opened with O_NOFOLLOW: no window to swap it)."""
    mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    if not stat.S_ISDIR(mode):
        raise NotADirectoryError(errno.ENOTDIR, f"{_what(mode)}, not a folder", str(path))
    return os.open(name, _DIRECTORY | _NOFOLLOW, dir_fd=parent)


def _read_file(folder: int, name: str, cap: int) -> bytes | None:
    """The bytes of the regular file `name` in `folder`, its access time touched; None when it
    is larger than `cap` or changes while read. Anything else (a link, a FIFO, a device, a
    socket, a folder) is `_NotAFile`, and is never read: looked at first, then opened without
    following a link or waiting for a writer, and looked at again on the descriptor."""
    mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
    if not stat.S_ISREG(mode):
        raise _NotAFile(_what(mode))
    fd = os.open(name, _FILE, dir_fd=folder)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _NotAFile(_what(info.st_mode))
        if info.st_size > cap:
            return None
        data = _read_up_to(fd, info.st_size + 1)  # one more: a file that grew is not trusted
        if len(data) != info.st_size:
            return None
        with contextlib.suppress(OSError, NotImplementedError):  # a read-only cache
            os.utime(fd)
        return data
    finally:
        os.close(fd)


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks, got = [], 0
    while got < limit:
        chunk = os.read(fd, min(_CHUNK, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:_CHUNK]) :]


def _write_in(folder: int, name: str, data: bytes) -> None:
    """`data` as the whole of `name` in `folder`: a new temporary file, synced, renamed over
    it (whatever had the name, a link included, is replaced, never written through)."""
    temp = f".{name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | _NOFOLLOW
    fd = os.open(temp, flags | _CLOEXEC, 0o666, dir_fd=folder)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=folder)
        raise
    with contextlib.suppress(OSError):  # the rename itself made durable
        os.fsync(folder)


def _scan(folder: int, kind: str, tidy: bool) -> list[_Entry]:
    """What has an entry's name in `folder` (folders aside), looked at without following."""
    found: list[_Entry] = []
    now = time.time()
    for name in os.listdir(folder):
        if not _ENTRY.match(name):
            if tidy and name.startswith(".") and name.endswith(".tmp"):
                _remove_stale(folder, name, now)
            continue
        try:
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode):
            continue
        regular = stat.S_ISREG(info.st_mode)
        found.append(_Entry(kind, name, info.st_size if regular else 0, info.st_mtime, regular))
    return found


def _remove_stale(folder: int, name: str, now: float) -> None:
    try:
        if now - os.stat(name, dir_fd=folder, follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS:
            os.unlink(name, dir_fd=folder)
    except OSError:
        pass
