"""Read a live source on a thread of its own into a `Ring` of its last seconds.

The reader decodes every frame (it must, to keep up) and keeps at most `buffer_fps` a second,
converted to RGB. A source that drops is reopened with backoff (0.5 s, doubling, at most 8 s)
for up to `reconnect_seconds`; its news (dropped, back, gone) waits in `news` for the watch to
report. Stream time runs on the source's clock and carries on across reconnects: the first
frame of each connection is placed at the seconds since the reader started. A file is played
at its own speed, as a camera would show it, and read as it grows.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vidtt.errors import LimitError, SourceError, VidttError
from vidtt.limits import Limits
from vidtt.media.containers import NO_NESTED_OPENS, main_video_stream
from vidtt.media.live.follow import FollowFile
from vidtt.media.live.ring import Frame, Ring
from vidtt.media.live.sources import Connection, LiveSource, describe_failure
from vidtt.types.watch import WatchOptions

FIRST_BACKOFF, MAX_BACKOFF = 0.5, 8.0
STOP_JOIN_SECONDS = 1.0
UNTIMED_SKIPPED = 10  # frames with no timestamp passed over before one with a timestamp


@dataclass
class ReaderStats:
    """What the reader did: frames decoded and kept, reconnections, damaged packets, and the
    CPU seconds its thread spent (decoding and converting)."""

    decoded: int = 0
    kept: int = 0
    reconnects: int = 0
    damaged: int = 0  # packets that did not decode
    cpu_seconds: float = 0.0


class Reader:
    """Reads `source` into `ring` until `stop()`, or until the source is gone for good."""

    def __init__(self, source: LiveSource, options: WatchOptions, limits: Limits) -> None:
        self.source, self.options, self.limits = source, options, limits
        self.ring = Ring(options.window, limits.max_clip_bytes)
        self.news: queue.Queue[str] = queue.Queue()
        self.stats = ReaderStats()
        self.started = time.monotonic()
        self.ended: str | None = None  # why the source is gone for good, once it is
        self._stop = threading.Event()
        self._ready = threading.Event()  # set once the first open succeeded or failed
        self._first_error: VidttError | None = None
        self._last_time = -math.inf
        self._lost_at: float | None = None  # when the source was lost, until a frame comes
        self._backoff = FIRST_BACKOFF
        self._refused = False  # the download rule cut the source off: not retried
        self._kept_before = 0  # frames kept before the current connection
        self._attempt_at = 0.0  # when the current connection was begun
        self._thread = threading.Thread(target=self._run, name="vidtt-live-reader", daemon=True)

    def start(self) -> Reader:
        """Start reading; return at the first frame. Raise the source's one-line `SourceError`
        if it cannot be opened or sends no frame within `open_timeout + read_timeout`."""
        self.started = time.monotonic()
        self._thread.start()
        wait = self._no_frame_limit + self.options.read_timeout + 5.0
        if not self._ready.wait(wait):
            self.stop()
            raise SourceError(f"{self.source.label} did not open within {wait:g} s")
        if self._first_error is not None:
            raise self._first_error
        return self

    def stop(self) -> None:
        """Stop reading (at the next frame, or when a stalled read times out)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(STOP_JOIN_SECONDS)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def alive(self) -> bool:
        """Whether frames may still come."""
        return self.ended is None and not self._stop.is_set()

    def release(self) -> None:
        """Stop reading and let go of the frames kept (the ring's memory): for a watch that
        has ended but is still listed."""
        self.stop()
        self.ring.clear()

    # -- the thread --------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            kept = self.stats.kept
            try:
                with self._opened() as connection:
                    if self.source.kind == "file":
                        self._ready.set()
                    self._read(connection)
                    reason = "the stream ended"
            except VidttError as exc:
                if not self._ready.is_set():  # before the first frame: the caller hears it
                    self._fail_start(exc)
                    return
                if isinstance(exc, LimitError) or self._refused:  # retrying would not help
                    self._end(str(exc))
                    return
                reason = str(exc)
            if self.stats.kept > kept:  # frames came: a new drop, retried from the start
                self._lost_at, self._backoff = None, FIRST_BACKOFF
            elif not self._ready.is_set() and self._waited_too_long():
                limit = self._no_frame_limit
                self._fail_start(
                    SourceError(f"{self.source.label} sent no frame within {limit:g} s ({reason})")
                )
                return
            if self._stop.is_set() or not self._retry(reason):
                return

    @property
    def _no_frame_limit(self) -> float:
        """Seconds a network source may go without a frame before it counts as lost."""
        return self.options.open_timeout + self.options.read_timeout

    def _waited_too_long(self) -> bool:
        return time.monotonic() - self.started + self._backoff >= self._no_frame_limit

    def _fail_start(self, error: VidttError) -> None:
        self._first_error, self.ended = error, str(error)
        self._ready.set()

    def _retry(self, reason: str) -> bool:
        """Wait before the next connection (backoff); False when the source is gone for good."""
        if self.source.kind == "file":
            idle = self.options.reconnect_seconds
            self._end(f"{reason} (the file has not grown for {idle:g} s)")
            return False
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            if self._ready.is_set():  # before the first frame, `start` is still waiting
                self.news.put(f"lost: {reason}; reconnecting")
        elif time.monotonic() - self._lost_at + self._backoff > self.options.reconnect_seconds:
            self._end(f"gone for {time.monotonic() - self._lost_at:.0f} s: {reason}")
            return False
        self._stop.wait(self._backoff)
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        return True

    def _first_frame(self) -> None:
        """The first frame of a connection: the source is there (again)."""
        if self._lost_at is not None and self._ready.is_set():
            self.stats.reconnects += 1
            self.news.put(f"back after {time.monotonic() - self._lost_at:.1f} s")
        self._ready.set()

    def _end(self, why: str) -> None:
        self.ended = why
        self.news.put(f"ended: {why}")

    def _opened(self) -> Any:
        """The connection of a new attempt (a file: followed), as a context manager with its
        `container` and `refused` (why the download rule cut it off, if it did)."""
        self._attempt_at = time.monotonic()
        if self.source.kind != "file":
            timeouts = (self.options.open_timeout, self.options.read_timeout)
            connection = Connection(self.source, self.limits, timeouts)
            try:
                return connection.open()
            except SourceError:
                self._refused = connection.refused is not None
                raise
        follow = FollowFile(self.source.target, self.options.reconnect_seconds, self._stop)
        hint = "; a file watched as it is written must be MPEG-TS, Matroska or fragmented MP4"
        return FileContainer.open(follow, self.source, self.options.open_timeout, hint)

    def _read(self, connection: Any) -> None:
        """Decode until the stream ends or fails (`SourceError`) or the reader stops."""
        import av

        stream = main_video_stream(connection.container)
        stream.codec_context.thread_count = 1  # the model keeps the other cores
        offset: float | None = None
        keep_from = -math.inf
        cpu = time.thread_time()
        watchdog = self._watchdog(connection)
        try:
            for frame in _frames(connection.container, stream, self.stats, watchdog):
                if self._stop.is_set():
                    return
                self.stats.decoded += 1
                now = max(time.monotonic() - self.started, self._last_time + 1e-3)
                if frame.time is None:  # no timestamp: the first of some RTSP streams, or
                    if offset is None and self.stats.decoded <= UNTIMED_SKIPPED:
                        continue  # a stream with none at all (then: placed when they come)
                    at = now
                else:
                    if offset is None:  # a new connection: its first timed frame is placed now
                        offset = now - frame.time
                    at = frame.time + offset
                if at <= self._last_time or at < keep_from:
                    continue
                self._keep(frame, at)
                keep_from = at + 1.0 / self.options.buffer_fps
                now_cpu = time.thread_time()
                self.stats.cpu_seconds += now_cpu - cpu
                cpu = now_cpu
        except (av.error.FFmpegError, OSError) as exc:
            watchdog(frame=False)  # the rule's refusal, when that is what cut it off
            raise SourceError(
                describe_failure(self.source, exc, self.options.read_timeout)
            ) from None
        finally:
            self.stats.cpu_seconds += time.thread_time() - cpu

    def _keep(self, frame: Any, at: float) -> None:
        """Put `frame` (at stream time `at`) in the ring, as RGB."""
        self._check_size(frame)
        if self.source.kind == "file":  # played at its own speed
            self._stop.wait(max(0.0, self.started + at - time.monotonic()))
        array = frame.to_ndarray(format="rgb24")
        self._last_time = at
        self.ring.push(Frame(at, time.monotonic(), array, self.stats.decoded - 1))
        if self.stats.kept == self._kept_before:
            self._first_frame()
        self.stats.kept += 1

    def _watchdog(self, connection: Any) -> Callable[..., None]:
        """Called at every packet: a `SourceError` when the download rule cut the source off
        (not retried), or when no frame was decoded for `open_timeout + read_timeout` seconds
        (a source that connects but sends nothing to show: a drop, retried with backoff)."""
        limit = self._no_frame_limit
        last = [self._attempt_at if self._ready.is_set() else self.started, self.stats.decoded]
        self._kept_before = self.stats.kept

        def check(frame: bool = True) -> None:
            if connection.refused:
                self._refused = True
                raise SourceError(connection.refused)
            if not frame or self.source.kind == "file":
                return
            if self.stats.decoded > last[1]:
                last[:] = [time.monotonic(), self.stats.decoded]
            elif time.monotonic() - last[0] > limit:
                raise SourceError(f"{self.source.label} sent no frame for {limit:g} s")

        return check

    def _check_size(self, frame: Any) -> None:
        if frame.width * frame.height > self.limits.max_pixels:
            raise LimitError(
                f"{self.source.label}: frames of {frame.width}x{frame.height} are over the "
                f"limit of {self.limits.max_pixels} pixels (max_pixels)"
            )


def _frames(container: Any, stream: Any, stats: ReaderStats, check: Callable[[], None]) -> Any:
    """The stream's frames; a packet that does not decode (lost or damaged on the way) is
    counted in `stats.damaged` and passed over, as a player would. `check` runs at every
    packet of every stream (a source that sends only other streams is still checked)."""
    import av

    for packet in container.demux():
        check()
        if packet.stream_index != stream.index:
            continue
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            stats.damaged += 1


class FileContainer:
    """A container and the file under it (followed as it grows, or read as it is), closed
    together: the connection `Reader._read` reads for a file source."""

    refused: str | None = None

    def __init__(self, container: Any, file: Any) -> None:
        self.container, self.file = container, file

    @classmethod
    def open(cls, file: Any, source: Any, open_timeout: float, hint: str = "") -> FileContainer:
        """`file` opened as a container; what fails is a one-line `SourceError` (+ `hint`)."""
        import av

        try:
            container = av.open(
                file, mode="r", metadata_errors="ignore", container_options=NO_NESTED_OPENS
            )
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            file.close()
            raise SourceError(describe_failure(source, exc, open_timeout) + hint) from None
        return cls(container, file)

    def __enter__(self) -> FileContainer:
        return self

    def __exit__(self, *_: Any) -> None:
        self.container.close()
        self.file.close()
