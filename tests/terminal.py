"""A command run at a terminal (a pseudo-terminal), for tests of interactive use."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from typing import Any


class Terminal:
    """`command` started with a pty as its stdin, stdout and stderr; `seen` holds its output."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.primary, secondary = pty.openpty()
        self.process = subprocess.Popen(
            command, stdin=secondary, stdout=secondary, stderr=secondary, env=env
        )
        os.close(secondary)
        self.seen = b""

    def read_until(self, marker: bytes, times: int = 1, timeout: float = 120) -> None:
        """Read until `marker` was seen `times` times in all (fails after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while self.seen.count(marker) < times:
            left = deadline - time.monotonic()
            if left <= 0 or not self.read(left):
                break
        assert self.seen.count(marker) >= times, self.seen[-500:]

    def read(self, timeout: float = 60) -> bytes:
        """What the command printed next (b"" once it closed the terminal); fails when it
        prints nothing for `timeout` seconds."""
        ready, _, _ = select.select([self.primary], [], [], timeout)
        assert ready, f"nothing printed for {timeout:g} s: {self.seen[-500:]!r}"
        try:
            chunk = os.read(self.primary, 4096)
        except OSError:
            return b""
        self.seen += chunk
        return chunk

    def write(self, data: bytes) -> None:
        os.write(self.primary, data)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_: Any) -> None:
        """Kill the command if it still runs, read what is left, close the terminal."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        while self.read():
            pass
        os.close(self.primary)
