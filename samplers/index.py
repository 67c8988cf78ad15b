"""A frame index built from packet headers: presentation timestamps and keyframes, no decoding.

Frame `i` is the frame with the i-th smallest presentation timestamp, which is the i-th frame a
full sequential decode yields. Reading packets is far cheaper than decoding them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from vidtt import DecodeError, OptionsError


@dataclass
class StreamIndex:
    pts: list[int]  # one per frame, sorted: presentation order
    keyframes: list[int]  # sorted pts of keyframes
    time_base: Fraction
    complete: bool = True
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def start(self) -> int:
        return self.pts[0]

    def seconds(self, pts: int) -> float:
        """Seconds from the first frame."""
        return float((pts - self.start) * self.time_base)

    def to_pts(self, seconds: float) -> float:
        return self.start + seconds / self.time_base

    def keyframe_for(self, pts: int) -> int:
        """The last keyframe at or before `pts` (the first keyframe if none is)."""
        at = bisect.bisect_right(self.keyframes, pts) - 1
        return self.keyframes[max(at, 0)]

    def index_at(self, seconds: float) -> int:
        """The frame on screen at `seconds`: the last one starting at or before it."""
        return max(bisect.bisect_right(self.pts, self.to_pts(seconds) + 1e-9) - 1, 0)

    def span(self, start: float | None, end: float | None, label: str) -> range:
        """Frame indices whose time lies in [start, end)."""
        first = 0 if start is None else bisect.bisect_left(self.pts, self.to_pts(start) - 1e-9)
        stop = len(self.pts) if end is None else bisect.bisect_left(self.pts, self.to_pts(end))
        if stop <= first:
            raise OptionsError(
                f"no frames of {label} lie between start={start} and end={end} s "
                f"(the video lasts {self.duration():.3f} s)"
            )
        return range(first, stop)

    def frame_duration(self) -> float:
        if len(self.pts) < 2:
            return 0.0
        return float((self.pts[-1] - self.pts[0]) * self.time_base) / (len(self.pts) - 1)

    def duration(self) -> float:
        """From the first frame's start to the last frame's end."""
        return self.seconds(self.pts[-1]) + self.frame_duration()


def packet_time(packet: Any) -> int | None:
    """A packet's presentation time, or its decoding time when it has none (the frame key)."""
    return packet.pts if packet.pts is not None else packet.dts


def scan(container: Any, stream: Any, label: str, guard: Any = None) -> StreamIndex:
    """Read every packet header of `stream` (no decoding); `guard` bounds the time."""
    import av

    pts: list[int] = []
    keys: list[int] = []
    index = StreamIndex(pts, keys, stream.time_base or Fraction(1, 1000))
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            index.complete = False
            index.warnings.append(f"reading stopped after {len(pts)} frames: {exc}")
            break
        if guard is not None and len(pts) % 1024 == 1023:
            guard.check_time()
        stamp = packet_time(packet)
        if stamp is None or packet.size == 0:
            continue
        pts.append(stamp)
        if packet.is_keyframe:
            keys.append(stamp)
    if not pts:
        raise DecodeError(f"{label} has a video stream but no frames could be read from it")
    pts.sort()
    keys.sort()
    if not keys or keys[0] > pts[0]:
        keys.insert(0, pts[0])  # decoding from the very start is always possible
    return index
