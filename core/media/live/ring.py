"""The last seconds of a live source's frames: a ring buffer whose memory does not grow."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Frame:
    """A decoded frame: its stream `time` (seconds), when it reached vidtt (`arrival`,
    `time.monotonic()`), its RGB `array` and its `number` (frames decoded before it)."""

    time: float
    arrival: float
    array: Any
    number: int


class Ring:
    """The frames of the last `seconds` of stream time, and at most `max_bytes` of them (the
    oldest go first)."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds, self.max_bytes = seconds, max_bytes
        self._frames: deque[Frame] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def push(self, frame: Frame) -> None:
        with self._lock:
            self._frames.append(frame)
            self._bytes += frame.array.nbytes
            oldest = frame.time - self.seconds
            while self._frames and (
                self._frames[0].time < oldest
                or (self._bytes > self.max_bytes and len(self._frames) > 1)
            ):
                self._bytes -= self._frames.popleft().array.nbytes

    def window(self, seconds: float | None = None) -> list[Frame]:
        """The frames of the last `seconds` (default: all) before the newest frame."""
        with self._lock:
            if not self._frames:
                return []
            oldest = self._frames[-1].time - (self.seconds if seconds is None else seconds)
            return [f for f in self._frames if f.time >= oldest]

    def clear(self) -> None:
        """Let go of every frame (a watch that ended keeps no memory)."""
        with self._lock:
            self._frames.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._frames)
