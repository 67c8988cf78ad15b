"""The watches of one `vidtt serve` (`Watches`): created from a route's body (checked as a
`Watch` checks it, its source opened in a thread under the server's limits: private hosts
refused unless they allow them; files, cameras and UDP ports only where the server allows
local media), listed, stopped, and all stopped at shutdown."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from vidtt import limits
from vidtt.errors import VidttError
from vidtt.pipeline.watch import Watch, open_reader, split_watch_fields
from vidtt.serve.errors import APIError, from_vidtt
from vidtt.serve.live_watch import (
    KEEP_ALIVE,
    KEEP_FINISHED,
    SHUTDOWN,
    LiveWatch,
    Observer,
    Unheard,
)
from vidtt.serve.media import local_path
from vidtt.serve.protocol import param_of
from vidtt.types.watch import WatchOptions
from vidtt.urls import printable, redact

if TYPE_CHECKING:
    from vidtt.media.live.reader import Reader
    from vidtt.pipeline.protocol import PipelineLike
    from vidtt.serve.batching import Batcher


class Watches:
    """The server's watches: created, listed, streamed and stopped by the routes."""

    def __init__(
        self,
        pipeline: PipelineLike,
        max_watches: int,
        folder: Path | None,
        max_frames: int,
        timestamps: bool = False,
    ) -> None:
        self.pipeline, self.max_watches, self.folder = pipeline, max_watches, folder
        self.max_frames, self.timestamps = max_frames, timestamps
        self.keep_alive = KEEP_ALIVE
        self.watches: dict[str, LiveWatch] = {}
        self.opening = 0  # sources being opened: their slots are taken
        self.loop: asyncio.AbstractEventLoop | None = None
        self.batcher: Batcher | None = None
        self.closed = False
        self.observer: Observer = Unheard()  # hears of each tick's sampling and each event

    def start(self, batcher: Batcher) -> None:
        self.loop, self.batcher, self.closed = asyncio.get_running_loop(), batcher, False

    async def close(self) -> None:
        """Stop every running watch (at shutdown; idempotent)."""
        self.closed = True
        running = [w for w in self.watches.values() if w.status == "running"]
        await asyncio.gather(*(w.stop(SHUTDOWN) for w in running))

    def running(self) -> int:
        return sum(w.status == "running" for w in self.watches.values())

    def get(self, watch_id: str) -> LiveWatch:
        found = self.watches.get(watch_id)
        if found is None:
            raise APIError(
                f"no watch {printable(repr(watch_id[:80]))} here",
                404,
                "not_found",
                code="not_found",
            )
        return found

    def list(self) -> dict[str, Any]:
        self.prune()
        return {"object": "list", "data": [w.card() for w in self.watches.values()]}

    async def delete(self, watch_id: str) -> dict[str, Any]:
        found = self.get(watch_id)
        if found.status == "running":
            await found.stop("stopped by request")
        return {"id": found.id, "object": "watch.deleted", "deleted": True}

    # -- creating ----------------------------------------------------------------------------
    async def create(self, body: Any) -> dict[str, Any]:
        """Check the body, open its source in a thread (under the server's limits), start it."""
        if self.max_watches <= 0:
            raise APIError(
                "watches are off on this server (it was started with --max-watches 0)",
                403,
                "permission_error",
                code="watches_disabled",
            )
        source, question, settings = watch_fields(body)
        options, request = self.check(question, settings)
        self.check_room()
        self.opening += 1
        try:
            reader = await asyncio.to_thread(self.open, source, options)
        finally:
            self.opening -= 1
        if self.closed:  # the server began shutting down while the source opened
            await asyncio.to_thread(reader.stop)
            raise APIError(SHUTDOWN, 503, "server_busy", code="shutting_down")
        try:
            live = self.begin(reader, question, options, request)
        except BaseException:
            free = getattr(reader, "release", None)
            (free if callable(free) else reader.stop)()
            raise
        return live.card()

    def check(self, question: str, settings: dict[str, Any]) -> tuple[WatchOptions, dict[str, Any]]:
        """The watch's options and request settings, checked as `Watch` checks them (and the
        sampler and generation options as a tick would), or a 400 naming the field."""
        if self.timestamps and "timestamps" not in settings:
            settings = {**settings, "timestamps": True}
        try:
            options, request = split_watch_fields(settings, self.pipeline.config.watch)
            probe = Watch(self.pipeline, cast("Reader", None), question, options, **request)
            self.pipeline.sampler_for(probe.template)
            self.pipeline.generation_options(probe.template.generation)
        except VidttError as exc:  # options, or a sampler that is not installed
            error = from_vidtt(exc)
            error.param = param_of(str(exc), {k: k for k in settings})
            raise error from None
        return options, request

    def check_room(self) -> None:
        """Refuse a watch beyond `max_watches` running (429), or one while shutting down."""
        if self.closed:
            raise APIError(SHUTDOWN, 503, "server_busy", code="shutting_down")
        if self.running() + self.opening >= self.max_watches:
            raise APIError(
                f"this server runs at most {self.max_watches} watches at once: stop one "
                "(DELETE /v1/watches/ID) or try again later",
                429,
                "rate_limit_error",
                code="too_many_watches",
                headers={"Retry-After": "5"},
            )

    def open(self, source: str, options: WatchOptions) -> Reader:
        """In a thread: the started reader of `source`, checked against the server's limits and
        its local-media rule; a 400 with the one-line reason when it cannot be opened."""
        target = self.local_target(source)
        try:
            with limits.use(getattr(self.pipeline.config, "limits", None)):
                return open_reader(target, options, local=self.folder is not None)
        except VidttError as exc:
            error = from_vidtt(exc)
            error.param = "source"
            raise error from None

    def local_target(self, source: str) -> str:
        """What to open for `source`: a file's real path inside the allowed folder; cameras
        and UDP ports only where local media are allowed; network sources as they are."""
        scheme = source.split("://", 1)[0].lower() if "://" in source else ""
        device = scheme in ("udp", "v4l2") or (not scheme and source.startswith("/dev/video"))
        if not device and scheme:
            return source
        if self.folder is None:
            where = "a camera or a UDP port" if device else "a file"
            raise APIError(
                f"source: {printable(redact(source))} is on this machine ({where}): this server "
                "watches network sources only (start it with --allowed-local-media-path DIR)",
                param="source",
                code="local_path_not_allowed",
            )
        return source if device else local_path(source, "source", self.folder)

    def begin(
        self, reader: Reader, question: str, options: WatchOptions, request: dict[str, Any]
    ) -> LiveWatch:
        """Register and start the watch of an opened reader."""
        assert self.loop is not None and self.batcher is not None
        watch_id, observer = f"watch-{secrets.token_hex(12)}", self.observer
        live = LiveWatch(watch_id, reader, question, options, self.loop, observer)
        batcher, limit = self.batcher, self.max_frames

        def answer(prepared: Any) -> Any:
            observer.sampled(prepared)  # the tick's window was sampled
            return live.generate(batcher, prepared, limit)

        live.watch = Watch(self.pipeline, reader, question, options, answer=answer, **request)
        self.watches[live.id] = live
        self.prune()
        live.thread.start()
        return live

    def prune(self) -> None:
        """Forget the oldest finished watches beyond `KEEP_FINISHED`."""
        finished = [k for k, w in self.watches.items() if w.status != "running"]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.watches[key]


def watch_fields(body: Any) -> tuple[str, str, dict[str, Any]]:
    """The source, the question and the other settings of `POST /v1/watches`."""
    if not isinstance(body, dict):
        raise APIError("the request body must be a JSON object with a source and a question")
    settings = {str(k): v for k, v in body.items() if k not in ("source", "question")}
    source, question = body.get("source"), body.get("question")
    if not isinstance(source, str) or not source.strip():
        raise APIError(
            "source must be a string: rtsp://, rtsps://, http(s)://, udp://HOST:PORT, "
            "/dev/videoN or a file in the allowed media folder",
            param="source",
        )
    if not isinstance(question, str) or not question.strip():
        raise APIError("question must be a non-empty string: what to ask", param="question")
    return source, question, settings
