"""A file still being written, read as it grows: at its end a read waits for more, until the
file has not grown for `idle` seconds (then it ends) or the watch stops."""

from __future__ import annotations

import io
import threading
import time

POLL_SECONDS = 0.05


class FollowFile(io.RawIOBase):
    """Reads `path` from its start; at its end, waits (polling) for the writer to add more."""

    def __init__(self, path: str, idle: float, stop: threading.Event) -> None:
        self._file = open(path, "rb")
        self.name, self.idle, self.stop = path, idle, stop
        self.waited = 0.0  # seconds the last read waited for the file to grow

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False  # read forward, as a stream: the end is not there yet

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        started = time.monotonic()
        while True:
            got = self._file.readinto(buffer)
            if got:
                self.waited = time.monotonic() - started
                return got
            if self.stop.is_set() or time.monotonic() - started >= self.idle:
                return 0
            time.sleep(POLL_SECONDS)

    def close(self) -> None:
        self._file.close()
        super().close()
