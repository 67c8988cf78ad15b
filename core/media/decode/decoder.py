"""Decode chosen frames into one uint8 array, each converted and resized in one libswscale pass.

Seekable streams: seek to the keyframe before each run of targets, never twice within a GOP,
and recognise frames by their time; a seek that lands past its keyframe raises `SeekMissed` so
the caller can decode forward instead. When the media can be opened more than once, the runs
are shared out between one decoder per core, each on its own thread and container. Other
streams are decoded forward from the start.
"""

from __future__ import annotations

import bisect
import functools
import os
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from vidtt.errors import LimitError
from vidtt.limits import Limits

from .index import StreamIndex, packet_time

ROTATIONS = {90: 1, 180: 2, 270: 3}  # degrees (0 to 359): quarter turns anticlockwise
MAX_DECODE_ERRORS = 8
BIG_FRAME = 3840 * 2160 * 2  # above this many pixels, decode with slice threads only
# Decoders that honour `skip_frame` packet by packet (libdav1d, for one, reads it once when
# it opens: opened on a skipped packet, it would drop every non-reference frame after).
SKIPS_BY_PACKET = {"h264", "hevc", "mpeg1video", "mpeg2video", "mpeg4", "vp8", "vp9"}
MIN_SHARED_WORK = 16  # frames to decode below which one decoder does it all
SHARED_DECODER_BYTES = 512 * 2**20  # what the decoders beyond the first may hold together
DECODER_FRAMES = 16  # the reference and threading frames a decoder holds, at most


class Halted(Exception):
    """Another decoder of the same job failed; this one stops too."""


class SeekMissed(Exception):
    """A seek landed after the frames it was meant to reach."""


@dataclass
class Resize:
    """`size` int: shorter side; `(w, h)`: exact; `max_side`: cap on the longer side."""

    size: int | tuple[int, int] | None = None
    max_side: int | None = None

    def target(self, width: int, height: int) -> tuple[int, int]:
        """Output (width, height) for an upright frame of `width` x `height`."""
        if isinstance(self.size, tuple):
            return self.size
        scale = 1.0
        if self.size is not None:
            scale = self.size / min(width, height)
        elif self.max_side is not None and max(width, height) > self.max_side:
            scale = self.max_side / max(width, height)
        if scale == 1.0:
            return width, height
        return max(1, round(width * scale)), max(1, round(height * scale))


class Guard:
    """Enforces the limits while one video decodes: time spent, pixels and bytes."""

    def __init__(self, limits: Limits, label: str) -> None:
        self.limits, self.label = limits, label
        self.ends = time.monotonic() + limits.decode_seconds

    def check_time(self) -> None:
        if time.monotonic() > self.ends:
            raise LimitError(
                f"{self.label}: decoding took over {self.limits.decode_seconds:g} "
                "s; sample fewer frames, use the keyframe sampler, or raise "
                "vidtt.limits decode_seconds"
            )

    def check_size(self, width: int, height: int, what: str = "frames are") -> None:
        if width * height > self.limits.max_pixels:
            raise LimitError(
                f"{self.label}: {what} {width}x{height} ({width * height} "
                f"pixels), over the limit of {self.limits.max_pixels}; ask for a smaller "
                "size or raise vidtt.limits max_pixels"
            )

    def check_clip(self, count: int, width: int, height: int) -> None:
        """Refuse, before decoding, a Clip that would hold more bytes than allowed."""
        self.check_size(width, height, "the output frames would be")
        size = count * width * height * 3
        if size > self.limits.max_clip_bytes:
            raise LimitError(
                f"{self.label}: {count} frames at {width}x{height} need {size / 2**20:.0f} MiB, "
                f"over the limit of {self.limits.max_clip_bytes / 2**20:.0f} MiB; ask for "
                "fewer frames or a smaller size (max_side), or raise vidtt.limits max_clip_bytes"
            )


@dataclass
class Decoded:
    """Frames written into `array` (row k for target k); `found[k]` says which were."""

    array: Any
    found: list[bool]
    decoded: int = 0
    seeks: int = 0
    decoders: int = 1
    rotation: int = 0
    warnings: list[str] = field(default_factory=list)


class Converter:
    """Writes decoded frames, upright and at the output size, into rows of one array.

    The output size follows from the stream's coded size (turned upright): frames whose size
    changes mid-stream are scaled to it too. The Clip's bytes are checked before decoding."""

    def __init__(self, count: int, coded: tuple[int, int], resize: Resize, guard: Guard):
        self.count, self.coded, self.resize = count, coded, resize
        guard.check_clip(count, *resize.target(*coded))  # same area whichever way up
        self.array: Any = None
        self.lock = threading.Lock()
        self.local = threading.local()  # a libswscale context per decoding thread

    def put(self, row: int, frame: Any) -> int:
        """Convert `frame` into row `row`; return its rotation in degrees (0 to 359)."""
        import numpy as np

        rotation = round(getattr(frame, "rotation", 0) or 0) % 360
        turns = ROTATIONS.get(rotation, 0)
        upright = self.coded if turns % 2 == 0 else self.coded[::-1]
        target = self.resize.target(*upright)
        width, height = target if turns % 2 == 0 else target[::-1]
        rgb = self._rgb(frame, width, height)
        if turns:
            rgb = np.rot90(rgb, turns)
        with self.lock:
            if self.array is None:
                self.array = np.empty((self.count, *rgb.shape), dtype=np.uint8)
        self.array[row] = rgb
        return rotation

    def _rgb(self, frame: Any, width: int, height: int) -> Any:
        """`frame` as RGB at `width` x `height`: a view of one libswscale pass's output. One
        scaler per thread serves its frames (its setup is kept) and runs on that thread, as
        the decoders' threads keep the other cores busy."""
        scaler = getattr(self.local, "scaler", None)
        if scaler is None:
            from av.video.reformatter import VideoReformatter

            scaler = self.local.scaler = VideoReformatter()
        scaled = (width, height) != (frame.width, frame.height)
        converted = scaler.reformat(
            frame,
            width=width,
            height=height,
            format="rgb24",
            interpolation="AREA" if scaled else None,
            threads=1,
        )
        return converted.to_ndarray()


Opener = Callable[[], AbstractContextManager[Any]]
Runs = Callable[
    ["DecodePass", list[list[int]]], None
]  # decodes runs of targets, each from its start


def decode_frames(
    container: Any,
    stream: Any,
    index: StreamIndex,
    targets: list[int],
    converter: Converter,
    keyframes_only: bool,
    guard: Guard,
    reopen: Opener | None = None,
    codec_options: dict[str, str] | None = None,
    split: bool = False,
) -> Decoded:
    """Decode the frames `targets` (sorted, unique frame indices) into one array. `reopen`
    opens another container on the same media, for more decoders to share the work;
    `codec_options` go to every decoder; `split` makes a run of each start's targets (so
    decoders can share the runs of a stretch decoded whole)."""
    result = Decoded(None, [False] * len(targets))
    job = DecodePass(
        container, stream, index, targets, converter, guard, result, reopen, codec_options
    )
    if index.mode == "forward" and index.match == "order":
        _set_threads(stream, usable_cores(), codec_options)
        _decode_forward_by_order(job)
    else:
        seeking = index.mode == "seek"
        starts = index.keyframes if seeking else sorted({0, *index.entries})
        groups = by_start(starts, targets) if split else runs(starts, targets)
        shares = share(groups, starts, _decoders(job, len(groups)))
        threads = max(1, usable_cores() // len(shares))  # decoder threads for each share
        _set_threads(stream, threads, codec_options)
        result.decoders = len(shares)
        decode: Runs = (
            functools.partial(_decode_seeking, keyframes_only=keyframes_only)
            if seeking
            else _decode_forward_by_time
        )
        if len(shares) == 1:
            decode(job, groups)
        else:
            _decode_shared(job, shares, decode, threads)
    result.array = converter.array
    return result


def _set_threads(stream: Any, count: int, options: dict[str, str] | None = None) -> None:
    """`count` decoder threads (one per usable core: FFmpeg's automatic count adds one more,
    which only contends with the caller's own work); slice threads alone for huge frames,
    as frame threads would each hold whole frames. `options` go to the decoder."""
    context = stream.codec_context
    if options:
        context.options = {**context.options, **options}
    stream.thread_type = "SLICE" if _big(stream) else "AUTO"
    context.thread_count = count


def _big(stream: Any) -> bool:
    return bool(stream.codec_context.width * stream.codec_context.height > BIG_FRAME)


def _decoders(job: DecodePass, groups: int) -> int:
    """How many decoders may share `groups` runs: one per usable core, when the media can be
    opened again and frames are not huge (each decoder holds its own reference frames)."""
    if job.reopen is None or groups < 2 or _big(job.stream):
        return 1
    context = job.stream.codec_context
    return min(usable_cores(), groups, memory_cap(context.width, context.height))


def memory_cap(width: int, height: int) -> int:
    """How many decoders of `width` x `height` frames fit the memory allowed (at least one):
    a decoder holds up to `DECODER_FRAMES` frames of 1.5 bytes a pixel (YUV 4:2:0)."""
    each = DECODER_FRAMES * max(1, width * height) * 3 // 2
    return 1 + SHARED_DECODER_BYTES // each


def share(groups: list[list[int]], starts: list[int], decoders: int) -> list[list[list[int]]]:
    """`groups` (runs of targets) in at most `decoders` consecutive shares of about equal
    work: the frames from each run's start (`starts`, as for `runs`) to its last target."""
    costs = [group[-1] - start_for(starts, group[0]) + 1 for group in groups]
    total = sum(costs)
    if decoders < 2 or total < MIN_SHARED_WORK:
        return [groups]
    shares: list[list[list[int]]] = [[] for _ in range(decoders)]
    done = 0
    for group, cost in zip(groups, costs):
        shares[min(decoders - 1, int(decoders * (done + cost / 2) / total))].append(group)
        done += cost
    return [s for s in shares if s]


def usable_cores() -> int:
    """The CPU cores this process may run on (at most FFmpeg's limit of 16 automatic
    threads)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 16))


@dataclass
class DecodePass:
    """One decoding pass: where from, which frames, and where they go."""

    container: Any
    stream: Any
    index: StreamIndex
    targets: list[int]
    converter: Converter
    guard: Guard
    result: Decoded
    reopen: Opener | None = None
    codec_options: dict[str, str] | None = None
    halt: threading.Event = field(default_factory=threading.Event)


def runs(starts: list[int], targets: list[int]) -> list[list[int]]:
    """Targets grouped so that each group is decoded from one start (`starts`: sorted frame
    indices a decoder can start from): a target joins the group before it when its start is
    at or before that group's last target."""
    groups: list[list[int]] = []
    for target in targets:
        if groups and start_for(starts, target) <= groups[-1][-1]:
            groups[-1].append(target)
        else:
            groups.append([target])
    return groups


def by_start(starts: list[int], targets: list[int]) -> list[list[int]]:
    """Targets grouped by the start they are decoded from (`starts` as for `runs`)."""
    groups: list[list[int]] = []
    last = None
    for target in targets:
        start = start_for(starts, target)
        if start != last:
            groups.append([])
            last = start
        groups[-1].append(target)
    return groups


def start_for(starts: list[int], frame: int) -> int:
    """The last of `starts` at or before `frame` (0 if none is)."""
    at = bisect.bisect_right(starts, frame) - 1
    return starts[at] if at >= 0 else 0


def _decode_shared(
    job: DecodePass, shares: list[list[list[int]]], decode: Runs, threads: int
) -> None:
    """Each share of runs decoded by its own decoder and container: the first on this
    thread (whose decoder is set up), the others on threads of their own, with `threads`
    decoder threads each. The first failure stops them all."""
    with ThreadPoolExecutor(len(shares) - 1, thread_name_prefix="vidtt-decode") as pool:
        others = [pool.submit(_decode_share, job, s, decode, threads) for s in shares[1:]]
        try:
            decode(job, shares[0])
            for other in others:
                _merge(job.result, other.result())
        finally:
            job.halt.set()  # after a failure, the decoders still running stop at their next packet


def _decode_share(job: DecodePass, groups: list[list[int]], decode: Runs, threads: int) -> Decoded:
    assert job.reopen is not None
    with job.reopen() as container:
        stream = container.streams[job.stream.index]
        _set_threads(stream, threads, job.codec_options)
        result = Decoded(None, job.result.found)  # rows are shared; counts are merged
        decode(replace(job, container=container, stream=stream, result=result), groups)
        return result


def _merge(result: Decoded, part: Decoded) -> None:
    result.decoded += part.decoded
    result.seeks += part.seeks
    result.rotation = result.rotation or part.rotation
    result.warnings += [w for w in part.warnings if w not in result.warnings]


def _decode_seeking(job: DecodePass, groups: list[list[int]], keyframes_only: bool) -> None:
    index = job.index
    if keyframes_only:
        job.stream.codec_context.skip_frame = "NONKEY"
    row_of = {index.pts[t]: k for k, t in enumerate(job.targets)}
    for group in groups:
        start = index.pts[index.keyframe_for(group[0])]
        job.container.seek(start, stream=job.stream, backward=True)
        job.result.seeks += 1
        wanted = {index.pts[t] for t in group}
        frames = _frames(job, wanted, skip=not keyframes_only)

        def landed(position: int, frame: Any, start: int = start) -> Any:
            pts = frame.pts if frame.pts is not None else frame.dts
            if position == 0 and pts is not None and pts > start:
                raise SeekMissed(f"a seek landed at {pts}, after its keyframe {start}")
            return pts

        if _collect(job, frames, wanted, row_of, landed):
            # frames a decoder started at this keyframe cannot give: decode forward
            raise SeekMissed(f"{len(wanted)} frame(s) did not decode after a seek")


def _decode_forward_by_order(job: DecodePass) -> None:
    """Frames recognised by their position in the decoder's output: one decode from the
    start. Forward decodes decode every frame type (the keyframe sampler's too): frame 0
    counts as a keyframe of a forward stream whether or not it is one."""
    index, targets = job.index, job.targets
    row_of = {t: k for k, t in enumerate(targets)}
    wanted = set(row_of)
    frames = _frames(job, None, skip=False)
    _collect(job, frames, wanted, row_of, lambda position, _: position)
    _report_missing(job.result, index, sorted(row_of[w] for w in wanted), targets)


def _decode_forward_by_time(job: DecodePass, groups: list[list[int]]) -> None:
    """Frames recognised by their time, decoded forward. Before each group of targets, the
    packets before its entry point (`StreamIndex.entries`) are read but not decoded."""
    index, context = job.index, job.stream.codec_context
    row_of = {index.pts[t]: k for k, t in enumerate(job.targets)}
    starts = sorted({0, *index.entries})
    missing: set[int] = set()
    for number, group in enumerate(groups):
        entry = start_for(starts, group[0])
        if number:
            context.flush_buffers()  # the last group drained the decoder
        wanted = {index.pts[t] for t in group}
        start = index.pts[entry] if entry else None
        frames = _frames(job, wanted, skip=True, start=start)  # frame 0 may not be a keyframe
        missing |= _collect(job, frames, wanted, row_of, lambda _, frame: frame.pts)
    _report_missing(job.result, index, sorted(row_of[w] for w in missing), job.targets)


def _collect(
    job: DecodePass,
    frames: Generator[Any, None, None],
    wanted: set[int],
    row_of: dict[int, int],
    key_of: Callable[[int, Any], Any],
) -> set[int]:
    """Keep the frames whose key (`key_of(position, frame)`) is wanted, removing each from
    `wanted`; stop decoding once none is left. Returns what is still wanted."""
    for position, frame in enumerate(frames):
        key = key_of(position, frame)
        if key in wanted:
            wanted.discard(key)
            _keep(job.result, job.converter, row_of[key], frame)
            if not wanted:
                frames.close()
                break
    return wanted


def _keep(result: Decoded, converter: Converter, row: int, frame: Any) -> None:
    result.rotation = converter.put(row, frame) or result.rotation
    result.found[row] = True


def _report_missing(
    result: Decoded, index: StreamIndex, rows: list[int], targets: list[int]
) -> None:
    if rows:
        times = ", ".join(f"{index.time_of(targets[r]):.3f}" for r in rows[:5])
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        result.warnings.append(f"{len(rows)} asked frame(s) did not decode (at {times} s{more})")


def _frames(
    job: DecodePass, wanted: set[int] | None, skip: bool, start: int | None = None
) -> Generator[Any, None, None]:
    """Decoded frames from the current position, or from the keyframe packet whose time is
    `start` (the packets before it are not decoded); once every packet of `wanted` was sent
    the decoder is drained (nothing decoded past the last one needed). With `skip` and
    `wanted`, frames that nothing refers to are skipped unless wanted. Bad packets are
    skipped with a warning; the guard checks time and frame size at every packet."""
    import av

    container, stream, result, guard = job.container, job.stream, job.result, job.guard
    context = stream.codec_context
    unsent = set(wanted) if wanted is not None else None
    skip = skip and context.name in SKIPS_BY_PACKET
    errors = 0
    for packet in container.demux(stream):
        guard.check_time()
        if job.halt.is_set():
            raise Halted("another decoder of these frames failed")
        if packet.size == 0 and packet.pts is None and packet.dts is None:
            continue
        stamp = packet_time(packet)
        if start is not None:
            if not (packet.is_keyframe and stamp == start):
                _check_not_wanted(stamp, wanted, start)
                continue
            start = None
        if skip and wanted is not None:
            context.skip_frame = "DEFAULT" if stamp in wanted else "NONREF"
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            errors += 1
            if errors == 1:
                result.warnings.append(f"damaged data skipped: {exc}")
            if errors >= MAX_DECODE_ERRORS:
                result.warnings.append("too much damaged data; decoding stopped early")
                return
            continue
        for frame in frames:
            result.decoded += 1
            guard.check_size(frame.width, frame.height)
            yield frame
        if unsent is not None:
            unsent.discard(stamp)
            if not unsent:
                break
    if start is not None:
        raise SeekMissed(f"the stream ended before its keyframe at {start}")
    try:
        flushed = context.decode(None)
    except av.error.FFmpegError:
        return
    for frame in flushed:
        result.decoded += 1
        yield frame


def _check_not_wanted(stamp: int | None, wanted: set[int] | None, start: int) -> None:
    """A packet skipped on the way to keyframe `start` must not hold a wanted frame."""
    if wanted is not None and stamp in wanted:
        raise SeekMissed(f"a wanted frame ({stamp}) comes before its keyframe at {start}")
