"""Watch a live source: every `every` seconds, ask about the frames of the last `window`.

    for event in pipe.watch("rtsp://cam.local/stream", "Is anyone at the door?", every=5):
        print(event.text())

The source is read on its own thread into a ring buffer (`vidtt.media.live`); the model runs on
the caller's thread. A tick that comes while the model still answers an earlier one is skipped,
never queued: the next answer says how many were (`skipped`), so answers stay current however
slow the model. The window's frames are sampled as a video's are (the pipeline's sampler and
options: uniform by default, `scene`, `dedupe`), then asked as one video.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from vidtt import limits
from vidtt.errors import OptionsError
from vidtt.media.live.reader import Reader
from vidtt.media.live.ring import Frame
from vidtt.media.live.sources import live_source
from vidtt.pipeline.request import Request, parse_request
from vidtt.types import VideoPart, VideoSource
from vidtt.types.watch import WatchEvent, WatchOptions
from vidtt.validation import describe

if TYPE_CHECKING:
    from vidtt.pipeline.core import Pipeline, Prepared
    from vidtt.types import Answer

NOT_WATCH_SETTINGS = ("video", "videos", "messages", "question", "transcript", "strategy")
PLACEHOLDER = "window.mp4"  # the video a watch's settings are checked with (never opened)


def split_settings(
    settings: dict[str, Any], base: WatchOptions | None = None
) -> tuple[WatchOptions, dict[str, Any]]:
    """The watch's own options over `base` (a config's `watch`; checked: a one-line
    `OptionsError` naming each bad one) and the rest, a request's settings (sampler, its
    options, generation...)."""
    own = {k: v for k, v in settings.items() if k in WatchOptions.model_fields}
    given = base.model_dump(exclude_unset=True) if base is not None else {}
    try:
        options = WatchOptions.model_validate({**given, **own})
    except ValidationError as exc:
        raise OptionsError(f"watch options: {describe(exc)}") from None
    return options, {k: v for k, v in settings.items() if k not in own}


def open_reader(source: str, options: WatchOptions, local: bool = True) -> Reader:
    """A started `Reader` of `source` (checked against the limits in force); `local` False
    refuses files, devices and UDP ports (a server that allows no local paths)."""
    checked = live_source(source, limits.current(), options.transport)
    if checked.local and not local:
        raise OptionsError(
            f"{checked.label} is on this machine (a file, a camera or a UDP port): this server "
            "allows network sources only (start it with --allow-local-paths)"
        )
    return Reader(checked, options, limits.current()).start()


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Watch:
    """The ticks of one watch; iterate over it for its events (it stops its reader when the
    iteration ends, however it ends)."""

    def __init__(
        self,
        pipe: Pipeline,
        reader: Reader,
        question: str,
        options: WatchOptions,
        answer: Callable[[Prepared], Answer] | None = None,
        **request: Any,
    ) -> None:
        """`request`: a request's settings (sampler, sampler_options, generation...);
        `answer` generates one prepared tick (default `pipe.answer`; a server passes its
        batcher, so that watches and requests share the model in turn)."""
        if not question or not question.strip():
            raise OptionsError("the question is empty: say what to look for")
        self.pipe, self.reader, self.options = pipe, reader, options
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
        self._news = 0
        self.answered = 0

    def __iter__(self) -> Iterator[WatchEvent]:
        try:
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
                if not self.options.filters() or event.matched:
                    yield event
                    self.answered += 1
                    if self.options.max_events and self.answered >= self.options.max_events:
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
        prepared = self.pipe.prepare(self.within(request, len(frames)))
        clip = next(
            p.video for m in prepared.conversation for p in m.content if isinstance(p, VideoPart)
        )
        clip.timestamps = [frames[i].time - frames[0].time for i in clip.indices]
        times = [round(frames[i].time, 3) for i in clip.indices]
        clip.indices = [frames[i].number for i in clip.indices]
        clip.source = self.reader.source.label
        text = self.generate(prepared).text
        return WatchEvent(
            number=tick,
            wall_time=now_text(),
            start=round(frames[0].time, 3),
            end=round(frames[-1].time, 3),
            frame_times=times,
            answer=text,
            matched=self.options.matches(text) if self.options.filters() else None,
            latency=round(time.monotonic() - frames[-1].arrival, 3),
            skipped=skipped,
        )

    def within(self, request: Request, count: int) -> Request:
        """`request`, asking for at most the `count` frames the window holds (a window not yet
        full, or a slow source, has fewer than the sampler's count)."""
        sampler, options = self.pipe.sampler_for(request)
        key = sampler.frames_option()
        wanted = getattr(options, key, None) if key else None
        if not isinstance(wanted, int) or wanted <= count:
            return request
        fewer = {**request.sampler_options, key: count}
        return request.model_copy(update={"sampler_options": fewer})
