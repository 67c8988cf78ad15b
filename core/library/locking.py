"""One writer at a time on a local library: an exclusive `fcntl.flock` on a file in the
library's folder, held around each write (one video put, a removal, an index refresh), never
around a whole indexing run, so two `vidtt index` processes take turns video by video.

The kernel drops the lock when its holder dies (a kill included), so no stale lock is ever
left to clean up. Readers take no lock: Lance's versions give each search a consistent view.
A library on object storage (`s3://...`) has no file to lock: there Lance's own commit
protocol (an atomic put of each version's manifest; a conflicting commit is retried or
refused, never lost) keeps concurrent writers safe — see docs/library.md.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from vidtt.errors import LibraryError

LOCK_NAME = ".vidtt-write.lock"
WAIT_SECONDS = 600.0  # how long a writer waits for another one before giving up
POLL_SECONDS = 0.05


@contextlib.contextmanager
def write_lock(root: Path | None, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the library's write lock (`root`: its folder; None: object storage, no lock)."""
    if root is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: one writer at a time is up to the user
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        _acquire(fd, fcntl, root, wait)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, fcntl: object, root: Path, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[attr-defined]
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LibraryError(
                    f"another process has been writing to the library at {root} for "
                    f"{wait:.0f} s: wait for it to finish, or stop it"
                ) from None
            time.sleep(POLL_SECONDS)
