"""Watch a live source: every `every` seconds, ask about the frames of the last `window`.

    for event in pipe.watch("rtsp://cam.local/stream", "Is anyone at the door?", every=5):
        print(event.text())

The source is read on its own thread into a ring buffer (`vidtt.media.live`); the model runs on
the caller's thread. A tick that comes while the model still answers an earlier one is skipped,
never queued: the next answer says how many were (`skipped`), so answers stay current however
slow the model. The window's frames are sampled as a video's are (the pipeline's sampler and
options: uniform by default, `scene`, `dedupe`), then asked as one video.

A file is read as it grows (MPEG-TS, Matroska, fragmented MP4), except a finished plain MP4 or
MOV (its index is written last, so it cannot be read as it grows): that is played once at its
own speed, and the watch ends at its end (`FileReader`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import queue
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from vidtt import limits
from vidtt.errors import OptionsError, SourceError
from vidtt.media.live.reader import FileContainer, Reader
from vidtt.media.live.ring import Frame
from vidtt.media.live.sources import live_source
from vidtt.pipeline.request import parse_request
from vidtt.types import Span, VideoPart, VideoSource
from vidtt.types.watch import WatchEvent, WatchOptions
from vidtt.validation import describe

if TYPE_CHECKING:
    from vidtt.interfaces import SamplerOptions
    from vidtt.pipeline.prepared import Prepared
    from vidtt.pipeline.protocol import PipelineLike
    from vidtt.types import Answer

NOT_WATCH_SETTINGS = ("video", "videos", "messages", "question", "transcript", "strategy")
PLACEHOLDER = "window.mp4"  # the video a watch's settings are checked with (never opened)
BMFF = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin", b"uuid"}
PLAYED = "the file was played to its end"


def split_watch_fields(
    fields: dict[str, Any], base: WatchOptions | None = None
) -> tuple[WatchOptions, dict[str, Any]]:
    """The watch's own options over `base` (a config's `watch`; checked: a one-line
    `OptionsError` naming each bad one) and the rest, a request's fields (sampler, its
    options, generation...)."""
    own = {k: v for k, v in fields.items() if k in WatchOptions.model_fields}
    given = base.model_dump(exclude_unset=True) if base is not None else {}
    try:
        options = WatchOptions.model_validate({**given, **own})
    except ValidationError as exc:
        raise OptionsError(f"watch options: {describe(exc)}") from None
    return options, {k: v for k, v in fields.items() if k not in own}


def open_reader(source: str, options: WatchOptions, local: bool = True) -> Reader:
    """A started `Reader` of `source` (checked against the limits in force); `local` False
    refuses files, devices and UDP ports (a server that allows no local paths)."""
    checked = live_source(source, limits.current(), options.transport)
    if checked.local and not local:
        raise OptionsError(
            f"{checked.label} is on this machine (a file, a camera or a UDP port): this server "
            "allows network sources only (start it with --allow-local-paths)"
        )
    if checked.kind == "file" and finished_mp4(checked.target, checked.label):
        reader: Reader = FileReader(checked, options, limits.current()).start()
        reader.news.put(
            "a finished MP4 file: played once at its own speed; the watch ends at its end"
        )
        return reader
    return Reader(checked, options, limits.current()).start()


def finished_mp4(path: str, label: str) -> bool:
    """Whether `path` is a finished plain MP4 or MOV (its index, `moov`, is there and it has
    no fragments); False for any other file (read as it grows). A plain MP4 still being
    written (no index yet) cannot be watched: a one-line `SourceError` says what to record."""
    boxes = top_boxes(path)
    if boxes is None or b"moof" in boxes or b"mvex" in boxes:
        return False
    if b"moov" not in boxes:
        raise SourceError(
            f"{label} is an MP4 without its index yet (a plain MP4 writes it last, so it can be "
            "watched only once finished): to watch a recording as it is written, record "
            "MPEG-TS, Matroska or fragmented MP4 (ffmpeg -movflags frag_keyframe+empty_moov)"
        )
    return True


def top_boxes(path: str, most: int = 100_000) -> set[bytes] | None:
    """The types of an ISO media file's top-level boxes (and of the boxes in `moov`); None
    when the file is not one."""
    found: set[bytes] = set()
    with open(path, "rb") as file:
        end, at, inside = os.fstat(file.fileno()).st_size, 0, None  # inside: moov's end
        for _ in range(most):
            file.seek(at)
            head = file.read(16)
            if len(head) < 8:
                break
            size, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if at == 0 and kind not in BMFF:
                return None
            if size == 1 and len(head) == 16:
                size = int.from_bytes(head[8:16], "big")
            elif size == 0:
                size = end - at
            if size < 8:
                break
            if kind == b"moov" and kind not in found:
                inside, at = at + size, at + 8  # its children, then on after it
            else:
                at += size
            found.add(kind)
            if inside is not None and at >= inside:
                at, inside = inside, None
    return found


class FileReader(Reader):
    """A finished plain MP4 or MOV: opened as a file (it needs seeking), played once at its own
    speed from when the watch begins (`begin`: not while the model loads); its end ends the
    watch (said as `PLAYED`)."""

    def start(self) -> FileReader:
        """Check that the file opens (a one-line `SourceError` if not); playing waits for
        `begin`."""
        with self._opened():
            pass
        return self

    def begin(self) -> None:
        """Play the file from its start, now."""
        if not self.stopped and not self._thread.is_alive():
            Reader.start(self)

    def _opened(self) -> Any:
        file = open(self.source.target, "rb")
        return FileContainer.open(file, self.source, self.options.open_timeout)

    def _end(self, why: str) -> None:
        if why.startswith("the stream ended"):
            why = PLAYED
        super()._end(why.split(" (the file has not grown", 1)[0])


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Watch:
    """The ticks of one watch; iterate over it for its events (it stops its reader when the
    iteration ends, however it ends)."""

    def __init__(
        self,
        pipe: PipelineLike,
        reader: Reader,
        question: str,
        options: WatchOptions,
        answer: Callable[[Prepared], Answer] | None = None,
        every_answer: bool = False,
        **request: Any,
    ) -> None:
        """`request`: a request's settings (sampler, sampler_options, generation...);
        `answer` generates one prepared tick (default `pipe.answer`; a server passes its
        batcher, so that watches and requests share the model in turn). With `when` or
        `yes_no`, only the answers that match are given, unless `every_answer` (each then says
        whether it did: `matched`; only matches count towards `max_events`)."""
        if not question or not question.strip():
            raise OptionsError("the question is empty: say what to look for")
        self.pipe, self.reader, self.options = pipe, reader, options
        self.every_answer = every_answer
        self.generate = answer or (lambda prepared: pipe.answer([prepared])[0])
        self.question = options.question(question)
        refused = [k for k in NOT_WATCH_SETTINGS if k in request]
        if refused:
            raise OptionsError(
                f"{refused[0]} is not a watch setting: a watch asks its question about the "
                "frames of each window (no transcript, no segments)"
            )
        fields = {**request, "videos": [PLACEHOLDER], "question": self.question}
        self.template = parse_request(  # sampler, sampler_options, generation, timestamps...
            {**fields, "transcript": "off", "strategy": "direct"}, "the watch settings"
        )
        self.resolved = pipe.resolve(self.template)  # once: each tick reads it
        self._news = 0
        self.answered = 0
        self._held_from: float | None = None  # where the current run of matches began

    def __iter__(self) -> Iterator[WatchEvent]:
        try:
            begin = getattr(self.reader, "begin", None)  # a finished file plays from now
            if callable(begin):
                begin()
            yield from self._events()
        finally:
            self.reader.stop()

    def _events(self) -> Iterator[WatchEvent]:
        every, started = self.options.every, time.monotonic()  # ticks count from here
        ends = started + self.options.duration if self.options.duration else math.inf
        tick, skipped = 1, 0
        while True:
            due = started + tick * every
            if due > ends:
                return
            yield from self._news_until(min(due, ends))
            if not self.reader.alive():
                yield from self._news_until(time.monotonic())
                return
            frames = self.reader.ring.window(self.options.window)
            if frames:
                event = self.ask(tick, frames, skipped)
                missed = math.floor((time.monotonic() - started) / every) + 1
                skipped, tick = max(0, missed - tick - 1), max(missed, tick + 1)
                counts = not self.options.filters() or bool(event.matched)
                if counts or self.every_answer:
                    yield event
                self.answered += counts
                if counts and self.options.max_events and self.answered >= self.options.max_events:
                    return
            else:
                tick += 1

    def _news_until(self, moment: float) -> Iterator[WatchEvent]:
        """The source's news until `moment` (monotonic), each as it comes."""
        while True:
            left = moment - time.monotonic()
            try:
                message = self.reader.news.get(timeout=max(0.0, left)) if left > 0 else None
            except queue.Empty:
                message = None
            if message is None:
                try:
                    message = self.reader.news.get_nowait()
                except queue.Empty:
                    return
            self._news += 1
            yield WatchEvent(
                kind="source", number=self._news, wall_time=now_text(), message=message
            )
            if not self.reader.alive() and self.reader.news.empty():
                return

    def ask(self, tick: int, frames: list[Frame], skipped: int) -> WatchEvent:
        """The answer about `frames` (one tick's window), sampled as a video's are."""
        span = frames[-1].time - frames[0].time
        fps = (len(frames) - 1) / span if len(frames) > 1 and span > 0 else 1.0
        source = VideoSource.from_frames([f.array for f in frames], fps)
        request = self.template.model_copy(update={"videos": [source]})
        resolved = dataclasses.replace(
            self.resolved, request=request, sampler_options=self.within(len(frames))
        )
        prepared = self.pipe.prepare(resolved)
        clip = next(
            p.video for m in prepared.conversation for p in m.content if isinstance(p, VideoPart)
        )
        clip.timestamps = [frames[i].time - frames[0].time for i in clip.indices]
        times = [round(frames[i].time, 3) for i in clip.indices]
        clip.indices = [frames[i].number for i in clip.indices]
        clip.source = self.reader.source.label
        text = self.generate(prepared).text
        start, end = round(frames[0].time, 3), round(frames[-1].time, 3)
        matched = self.options.matches(text) if self.options.filters() else None
        return WatchEvent(
            number=tick,
            wall_time=now_text(),
            start=start,
            end=end,
            frame_times=times,
            answer=text,
            matched=matched,
            held=self.holding(matched, start, end, text),
            latency=round(time.monotonic() - frames[-1].arrival, 3),
            skipped=skipped,
        )

    def holding(self, matched: bool | None, start: float, end: float, text: str) -> Span | None:
        """On a match, where the condition has held: since the first window of this run of
        matches (consecutive ticks that matched) to this window's end; None otherwise."""
        if not matched:
            self._held_from = None
            return None
        if self._held_from is None:
            self._held_from = start
        return Span(start=self._held_from, end=max(end, self._held_from), text=text)

    def within(self, count: int) -> SamplerOptions:
        """The resolved sampler options, asking for at most the `count` frames the window
        holds (a window not yet full, or a slow source, has fewer than the sampler's count)."""
        options = self.resolved.sampler_options
        key = self.resolved.sampler.frames_option()
        wanted = getattr(options, key, None) if key else None
        if not isinstance(wanted, int) or wanted <= count:
            return options
        return options.model_copy(update={str(key): count})
