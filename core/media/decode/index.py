"""A frame index built from packet headers: presentation times and keyframes, no decoding.

Frame `i` is the i-th frame a full sequential decode displays. Reading packets is far cheaper
than decoding them. Packets the container marks as discarded (MP4 edit lists) are not frames.

The index also says how frames can be reached:
- `seek`: times are unique and come from the container's index, so the decoder can seek to
  the keyframe before a frame and recognise the frame by its time (MP4, MKV, WebM, AVI...).
- `forward`: decode from the start without seeking (MPEG-TS/PS, raw streams, files without
  keyframe flags). Frames are recognised by their time when times are unique, else by their
  position in the decoder's output (duplicate, missing or restarting timestamps).
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from vidtt.errors import DecodeError, OptionsError

# Containers whose seeking is by byte position and lands unpredictably; decoded forward.
FORWARD_FORMATS = {"mpegts", "mpeg", "mpegvideo", "h264", "hevc", "m4v", "vc1", "dirac"}
# A step back in time of more than this many frames is a restart (joined files), not reordering.
MAX_REORDER = 16


@dataclass
class StreamIndex:
    pts: list[int]  # one time per frame, in display order, never decreasing
    keyframes: list[int]  # sorted indices of frames a decoder can start from
    time_base: Fraction
    mode: Literal["seek", "forward"] = "seek"
    match: Literal["pts", "order"] = "pts"
    complete: bool = True
    warnings: list[str] = field(default_factory=list)
    # forward streams: sorted indices of keyframes after which no frame refers to an earlier
    # one (H.264 IDR frames), so a forward decode may skip, undecoded, the packets before them
    entries: list[int] = field(default_factory=list)
    # how long one frame lasts when the times cannot tell (a single frame): from the stream's
    # frame rate, 0 when unknown
    default_frame_duration: float = 0.0

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def start(self) -> int:
        return self.pts[0]

    def seconds(self, pts: int) -> float:
        """Seconds from the first frame."""
        return float((pts - self.start) * self.time_base)

    def time_of(self, frame: int) -> float:
        return self.seconds(self.pts[frame])

    def to_pts(self, seconds: float) -> float:
        return self.start + seconds / self.time_base

    def keyframe_for(self, frame: int) -> int:
        """The index of the last keyframe at or before `frame` (0 if none is)."""
        at = bisect.bisect_right(self.keyframes, frame) - 1
        return self.keyframes[at] if at >= 0 else 0

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
            return self.default_frame_duration
        return float((self.pts[-1] - self.pts[0]) * self.time_base) / (len(self.pts) - 1)

    def duration(self) -> float:
        """From the first frame's start to the last frame's end."""
        return self.seconds(self.pts[-1]) + self.frame_duration()


@dataclass
class _Packets:
    """What the scan keeps of each frame's packet, in decoding order."""

    pts: list[int | None] = field(default_factory=list)
    dts: list[int | None] = field(default_factory=list)
    key: list[bool] = field(default_factory=list)
    clean: list[bool] = field(default_factory=list)  # an entry point (see `StreamIndex`)
    cut: bool = False  # the stream's first packet (discarded ones too) is not a keyframe

    def drop(self, keep: list[bool]) -> None:
        """Keep only the packets whose `keep` is true."""
        for name in ("pts", "dts", "key", "clean"):
            setattr(self, name, [v for v, k in zip(getattr(self, name), keep) if k])


def packet_time(packet: Any) -> int | None:
    """A packet's presentation time, or its decoding time when it has none."""
    return packet.pts if packet.pts is not None else packet.dts


def scan(container: Any, stream: Any, label: str, guard: Any = None) -> StreamIndex:
    """Read every packet header of `stream` (no decoding); `guard` bounds the time."""
    packets, warnings = _read_packets(container, stream, guard)
    if not packets.key:
        raise DecodeError(f"{label} has a video stream but no frames could be read from it")
    lead_in = _drop_lead_in(packets)
    time_base = stream.time_base or Fraction(1, 1000)
    times = packets.pts
    if any(t is None for t in times):
        times = packets.dts if all(t is not None for t in packets.dts) else []
    if len(times) > 1 and len(set(times)) == 1:  # one time for every frame tells nothing
        times = []
    if not times:  # no usable timestamps at all: count frames at the stream's rate
        rate = stream.average_rate or stream.guessed_rate or 25
        time_base = Fraction(1, 1) / Fraction(rate)
        times = list(range(len(packets.key)))
    decoding_order = _times_in_decoding_order(container, stream, times)
    if not decoding_order and _seekable(container, stream, packets):
        index = _seek_index(packets, time_base)
    else:
        from_pts = times is packets.pts and not decoding_order
        index = _forward_index(times, packets, time_base, from_pts)
    index.complete = not warnings
    index.warnings = warnings + lead_in
    rate = stream.average_rate or stream.guessed_rate
    index.default_frame_duration = float(1 / rate) if rate and rate > 0 else 0.0
    return index


def _read_packets(container: Any, stream: Any, guard: Any) -> tuple[_Packets, list[str]]:
    import av

    packets = _Packets()
    warnings: list[str] = []
    annex_b = _annex_b_h264(stream)
    demuxed = container.demux(stream)
    first = True
    while True:
        try:
            packet = next(demuxed)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            warnings.append(f"reading stopped after {len(packets.key)} frames: {exc}")
            break
        if guard is not None and len(packets.key) % 256 == 255:
            guard.check_time()
        if packet.size == 0:
            continue
        if first:
            packets.cut, first = not packet.is_keyframe, False
        if packet.is_discard:
            continue
        packets.pts.append(packet.pts)
        packets.dts.append(packet.dts)
        packets.key.append(packet.is_keyframe)
        packets.clean.append(annex_b and packet.is_keyframe and is_idr(bytes(packet)))
    return packets, warnings


def _drop_lead_in(packets: _Packets) -> list[str]:
    """A stream cut in the middle of a group of pictures (a recording or capture started
    late) begins with frames that refer to pictures before the cut: decoders drop them (or
    show garbage). They are not frames of the video: the packets before the first keyframe,
    and the frames shown before it. Returns a note of how many were left out."""
    if not packets.cut or packets.key[0] or not any(packets.key):
        return []
    first = packets.key.index(True)
    start = packets.pts[first]
    keep = [
        n >= first and (start is None or pts is None or pts >= start)
        for n, pts in enumerate(packets.pts)
    ]
    packets.drop(keep)
    dropped = len(keep) - len(packets.key)
    return [
        f"the stream starts {dropped} frame(s) before its first keyframe (cut mid-way?): "
        "they cannot be decoded and are not counted"
    ]


def _annex_b_h264(stream: Any) -> bool:
    """Whether the stream is H.264 whose packets are NAL units after start codes (MPEG-TS,
    raw streams) rather than length-prefixed (MP4, MKV: their extradata starts with 1)."""
    context = stream.codec_context
    extradata = context.extradata or b""
    return context.name == "h264" and extradata[:1] != b"\x01"


def is_idr(data: bytes) -> bool:
    """Whether Annex B H.264 data holds an IDR slice (NAL unit type 5)."""
    at = data.find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        if data[at + 3] & 0x1F == 5:
            return True
        at = data.find(b"\x00\x00\x01", at + 3)
    return False


def _times_in_decoding_order(container: Any, stream: Any, times: list[Any]) -> bool:
    """Whether the times count packets in decoding order, not frames in display order: AVI
    gives each packet the next time, so with reordered frames (B-frames) the decoder shows
    them in another order than their times say. Such frames are recognised by position."""
    if "avi" not in container.format.name.split(",") or not stream.codec_context.has_b_frames:
        return False
    return all(a < b for a, b in itertools.pairwise(times))


def _seekable(container: Any, stream: Any, packets: _Packets) -> bool:
    """Whether frames can be reached by seeking and recognised by their time."""
    if FORWARD_FORMATS & set(container.format.name.split(",")):
        return False
    pts = packets.pts
    if not packets.key[0] or any(t is None for t in pts) or len(set(pts)) != len(pts):
        return False
    return len(stream.index_entries) > 0


def _seek_index(packets: _Packets, time_base: Fraction) -> StreamIndex:
    pts: list[int] = sorted(t for t in packets.pts if t is not None)
    order = {t: i for i, t in enumerate(pts)}
    keys = [order[t] for t, key in zip(packets.pts, packets.key) if key and t is not None]
    keyframes = sorted(keys)
    return StreamIndex(pts, keyframes, time_base, "seek", "pts")


def _forward_index(
    times: list[Any], packets: _Packets, time_base: Fraction, from_pts: bool
) -> StreamIndex:
    """Display-order times for a stream decoded from its start.

    Within a run of packets the times are sorted (decoders reorder B-frames); a big step back
    starts a new run (joined files), laid after the previous one so time never goes back."""
    segments = _segments(times)
    timeline: list[int] = []
    for segment in segments:
        segment.sort()
        if timeline:
            step = max(timeline[-1] - timeline[-2], 1) if len(timeline) > 1 else 1
            shift = timeline[-1] + step - segment[0]
            segment = [t + shift for t in segment]
        timeline.extend(segment)
    unique = len(set(timeline)) == len(timeline)
    match: Literal["pts", "order"] = (
        "pts" if from_pts and len(segments) == 1 and unique else "order"
    )
    keyframes, entries = [0], []
    if match == "pts":
        order = {t: i for i, t in enumerate(timeline)}
        keyframes = sorted({0} | {order[t] for t, k in zip(times, packets.key) if k})
        entries = sorted(order[t] for t, clean in zip(times, packets.clean) if clean)
    index = StreamIndex(timeline, keyframes, time_base, "forward", match)
    index.entries = entries
    return index


def _segments(times: list[int]) -> list[list[int]]:
    # the usual frame step: between neighbouring times in display order (steps between
    # packets in decoding order are multiples of it when B-frames are reordered)
    steps = sorted(b - a for a, b in itertools.pairwise(sorted(set(times))))
    step = steps[len(steps) // 2] if steps else 1
    segments: list[list[int]] = [[]]
    highest = None
    for t in times:
        if highest is not None and t < highest - MAX_REORDER * step:
            segments.append([])
            highest = None
        segments[-1].append(t)
        highest = t if highest is None else max(highest, t)
    return segments
