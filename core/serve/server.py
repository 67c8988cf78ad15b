"""The state behind `vidtt serve`'s routes (`Server`): admission (the API key, the queue, the
body limit), media prepared in a worker pool, non-streaming requests batched, streams generated
one at a time, each stopped when its client goes away or its time is up; a streamed request
of strategy segments streams its progress while its notes are made; watches of live sources
(`vidtt.serve.watches`) answered by the same batcher; the metrics (`vidtt.serve.metrics`) and
readiness (ready once started, draining once shutdown began)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response

from vidtt.errors import OptionsError, UnknownNameError, VidttError
from vidtt.pipeline.resolved import strategy_of
from vidtt.pipeline.speech import interruptible
from vidtt.serve.batching import Batcher
from vidtt.serve.errors import APIError, from_vidtt
from vidtt.serve.metrics import Metrics, arrival, first_token_of
from vidtt.serve.protocol import ChatRequest, ServeLimits, build_request, param_of, parse_chat
from vidtt.serve.responses import Chunks, completion
from vidtt.serve.streams import (
    ClosingStream,
    Progress,
    Pump,
    Stopped,
    Stopper,
    sse,
    wait_disconnect,
)
from vidtt.serve.uploads import Uploads
from vidtt.serve.watches import Watches

log = logging.getLogger("vidtt.serve")
DRAIN_BYTES = 16 << 20  # an oversized body is read (and dropped) up to this much before 413


@dataclass
class ServeSettings:
    """How the server admits, batches and limits requests."""

    served_model_name: str = ""  # default: the pipeline's model
    api_key: str | None = None
    max_batch_size: int = 8
    max_wait: float = 0.01  # seconds a batch waits for more requests
    max_queue: int = 64  # requests in the server at once (sampling, waiting, generating)
    request_timeout: float = 600.0
    body_timeout: float = 30.0  # seconds a request body may send nothing before it is cut off
    workers: int = 4  # threads reading and sampling media
    max_body_bytes: int = 64 << 20
    retry_after: int = 1
    timestamps: bool = False  # say when each frame was taken, unless a request says otherwise
    ui: bool = True  # the page at / (vidtt.serve.ui)
    log_format: str = "text"  # "json": one JSON object a log line
    limits: ServeLimits = field(default_factory=ServeLimits)
    max_watches: int = 4  # watches of live sources running at once; 0: no watches
    max_upload_bytes: int = 1 << 30  # all the uploads (POST /v1/uploads) together; 0: none
    upload_ttl: float = 3600.0  # seconds an upload is kept after a request last named it


@dataclass
class Stats:
    """The counters `GET /health` reports."""

    in_flight: int = 0
    answered: int = 0
    failed: int = 0
    refused: int = 0  # 503: the queue was full
    cancelled: int = 0  # the client went away
    timed_out: int = 0


class Server:
    """The state behind the routes: pipeline, pools, batcher, counters."""

    def __init__(self, pipeline: Any, settings: ServeSettings) -> None:
        self.uploads = Uploads(settings.max_upload_bytes, settings.upload_ttl)
        limits = dataclasses.replace(settings.limits, uploads=self.uploads)
        self.pipeline, self.settings = pipeline, dataclasses.replace(settings, limits=limits)
        self.name = settings.served_model_name or pipeline.config.model
        self.names = {self.name, pipeline.config.model}
        self.started = int(time.time())
        self.stats = Stats()
        self.pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="vidtt-media")
        self.batcher: Batcher | None = None
        self.task: asyncio.Task[None] | None = None
        self.watches = Watches(
            pipeline,
            settings.max_watches,
            settings.limits.allowed_local_media_path,
            settings.limits.max_frames,
            settings.timestamps,
        )
        self.state = "starting"  # then "ready", then "draining" once shutdown began
        self.pumps: weakref.WeakSet[Pump] = weakref.WeakSet()  # the streams' readers
        self.metrics = Metrics(self)
        self.watches.observer = self.metrics

    async def start(self) -> None:
        s = self.settings
        self.batcher = Batcher(self.pipeline, s.max_batch_size, s.max_wait, self.metrics)
        self.task = asyncio.create_task(self.batcher.run(), name="vidtt-batcher")
        self.watches.start(self.batcher)
        if self.state == "starting":
            self.state = "ready"

    def drain(self) -> None:
        """Shutdown began: `GET /ready` answers 503 from now on."""
        self.state = "draining"

    async def stop(self) -> None:
        self.drain()
        await self.watches.close()  # first: their generations are cancelled, not waited for
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.batcher is not None:
            await asyncio.to_thread(self.batcher.close)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.uploads.close()

    # -- admission -----------------------------------------------------------------------------
    def check_key(self, request: HTTPRequest) -> None:
        key = self.settings.api_key
        if not key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise APIError(
                "missing API key: send it as 'Authorization: Bearer KEY'",
                status=401,
                code="invalid_api_key",
            )
        if not hmac.compare_digest(given.strip().encode(), key.encode()):
            raise APIError("incorrect API key", status=401, code="invalid_api_key")

    def admit(self) -> Callable[[], None]:
        """Count a request in, or refuse it with 503; returns the (idempotent) release."""
        if self.stats.in_flight >= self.settings.max_queue:
            self.stats.refused += 1
            raise APIError(
                f"the server is busy ({self.settings.max_queue} requests in progress): "
                "try again shortly",
                status=503,
                type="server_busy",
                code="queue_full",
                headers={"Retry-After": str(self.settings.retry_after)},
            )
        self.stats.in_flight += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.stats.in_flight -= 1

        return release

    async def read_body(
        self,
        request: HTTPRequest,
        sink: Callable[[bytes], Any],
        limit: int | None = None,
        deadline: float | None = None,
    ) -> int:
        """Hand the body to `sink` chunk by chunk; its size. Over `limit` (default
        `max_body_bytes`) it is 413, once the client has sent on (up to DRAIN_BYTES) to see it.
        A body that stalls for `body_timeout` seconds, or is not all there by `deadline`
        (time.monotonic; default: the request timeout from now), is 408."""
        limit = limit or self.settings.max_body_bytes
        if deadline is None:
            deadline = time.monotonic() + self.settings.request_timeout
        declared = request.headers.get("content-length", "")
        seen = 0
        over = declared.isdigit() and int(declared) > limit
        chunks = request.stream().__aiter__()
        while (chunk := await self.next_chunk(chunks, deadline)) is not None:
            seen += len(chunk)
            if over or seen > limit:
                over = True
                if seen > limit + DRAIN_BYTES:
                    break
                continue  # read on (and drop) so the client gets to see the 413
            sink(chunk)
        if over:
            raise APIError(
                f"the request body is larger than this server's limit of {limit} bytes; send "
                "large videos by URL",
                status=413,
                code="request_too_large",
            )
        return seen

    async def next_chunk(self, chunks: AsyncIterator[bytes], deadline: float) -> bytes | None:
        """The body's next chunk (None at its end), or a 408 when it does not come in time."""
        left = deadline - time.monotonic()
        stall = self.settings.body_timeout
        try:
            return await asyncio.wait_for(chunks.__anext__(), max(0.0, min(stall, left)))
        except StopAsyncIteration:
            return None
        except asyncio.TimeoutError:
            self.stats.timed_out += 1
            limit = self.settings.request_timeout
            said = (
                f"nothing came for {stall:g} s"
                if stall < left
                else f"it was not all there within this server's {limit:g} s limit"
            )
            raise APIError(
                f"the request body stalled ({said}): send it again, whole",
                status=408,
                type="timeout",
                code="body_timeout",
            ) from None

    async def read_json(self, request: HTTPRequest, deadline: float | None = None) -> Any:
        body = bytearray()
        await self.read_body(request, body.extend, deadline=deadline)
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:  # ValueError: also a number of >4300 digits
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "it cannot be read"
            raise APIError(f"the request body is not valid JSON: {reason}") from None

    # -- chat completions ----------------------------------------------------------------------
    async def chat(self, request: HTTPRequest) -> Response:
        self.check_key(request)
        release = self.admit()
        handed_off = False
        try:
            deadline = time.monotonic() + self.settings.request_timeout
            body = await self.read_json(request, deadline)
            chat = parse_chat(body, self.settings.limits)
            if chat.model is not None and chat.model not in self.names:
                raise APIError(
                    f"the model {chat.model!r} does not exist here; this server serves "
                    f"{self.name!r}",
                    status=404,
                    param="model",
                    code="model_not_found",
                )
            if chat.stream and self.is_long(chat):
                response = await self.stream_long(chat, deadline, release, request)
                handed_off = True
                return response
            prepared = await self.prepare_timed(chat, deadline)
            if chat.stream:
                response = await self.stream(chat, prepared, deadline, release, request)
                handed_off = True
                return response
            return await self.complete(prepared, deadline, request)
        finally:
            if not handed_off:
                release()

    async def prepare_timed(self, chat: ChatRequest, deadline: float) -> Any:
        """`prepare` in a worker, within the deadline; however it ends (504, the client gone),
        the worker stops at its next note or window of audio transcribed."""
        stopper = Stopper(deadline)
        try:
            return await self.run_timed(self.prepare, deadline, chat, stopper)
        except Stopped:  # its deadline passed in the worker first
            raise self.timeout() from None
        finally:
            stopper.stop()

    def prepare(self, chat: ChatRequest, progress: Stopper | None = None) -> Any:
        """In a worker: load the media, sample the videos, count the frames (`progress` hears
        the segment notes made, under strategy segments, and stops the notes and the
        transcription once stopped or late: `Stopper`)."""
        heard = {"progress": progress} if progress is not None else {}
        try:
            with interruptible(progress.check if progress is not None else None):
                prepared = self.pipeline.prepare(
                    build_request(chat, self.settings.limits), self.settings.timestamps, **heard
                )
        except Stopped:
            if progress is not None:
                progress.check()  # this request's own stop: nobody waits for it
            raise APIError(  # it waited on work (a transcript) that another request stopped
                "the request shared work with a request that was stopped: try again",
                503,
                "server_busy",
                code="shared_work_stopped",
                headers={"Retry-After": "1"},
            ) from None
        except OptionsError as exc:
            error = from_vidtt(exc)
            error.param = param_of(str(exc), chat.params)
            raise error from None
        except UnknownNameError as exc:
            error = from_vidtt(exc)
            installed = self.pipeline.registry.names("samplers")
            if chat.sampler is not None and chat.sampler not in installed:
                error.param = "sampler"
            raise error from None
        except VidttError as exc:
            raise from_vidtt(exc) from None
        self.metrics.sampled(prepared)
        frames = prepared.frames()
        limit = self.settings.limits.max_frames
        if frames > limit:
            raise APIError(
                f"the request's videos gave {frames} frames, over this server's limit of "
                f"{limit} per request: ask for fewer (num_frames, fps) or a shorter span "
                "(start, end)",
                param="messages",
                code="too_many_frames",
            )
        return prepared

    async def run_timed(self, work: Callable[..., Any], deadline: float, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.pool, work, *args)
        try:
            return await asyncio.wait_for(future, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise self.timeout() from None

    def timeout(self) -> APIError:
        self.stats.timed_out += 1
        return APIError(
            f"the request took longer than this server's {self.settings.request_timeout:g} s limit",
            status=504,
            type="timeout",
            code="timeout",
        )

    async def complete(self, prepared: Any, deadline: float, request: HTTPRequest) -> Response:
        assert self.batcher is not None
        job = self.batcher.submit(prepared)
        gone = asyncio.create_task(wait_disconnect(request))
        try:
            left = max(0.0, deadline - time.monotonic())
            await asyncio.wait({job.future, gone}, timeout=left, return_when="FIRST_COMPLETED")
            if not job.future.done():
                job.cancel.set()
                if gone.done():
                    self.stats.cancelled += 1
                    return Response(status_code=499)  # nobody is listening
                raise self.timeout()
        finally:
            gone.cancel()
        result = job.future.result()
        if isinstance(result, VidttError):
            self.stats.failed += 1
            raise from_vidtt(result)
        self.stats.answered += 1
        first = first_token_of(result, job.ended or time.perf_counter())
        if first is not None:
            self.metrics.first_token(arrival(request), first)
        return JSONResponse(completion(self.name, result))

    # -- streams -------------------------------------------------------------------------------
    async def stream(
        self,
        chat: ChatRequest,
        prepared: Any,
        deadline: float,
        release: Callable[[], None],
        request: HTTPRequest,
    ) -> Response:
        answers = await self.run_timed(self.open_stream, deadline, prepared)
        pump = self.pump(answers, arrival(request))
        chunks = Chunks.new(self.name, chat.include_usage)

        def closed() -> None:
            pump.stop()
            release()

        return ClosingStream(
            self.events(pump, chunks, deadline, release),
            on_close=closed,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def is_long(self, chat: ChatRequest) -> bool:
        """Whether the request is answered by strategy segments (decided as every entry point
        decides it: `vidtt.pipeline.resolved.strategy_of`)."""
        return strategy_of(self.pipeline.config, chat.extra.get("strategy")) == "segments"

    async def stream_long(
        self,
        chat: ChatRequest,
        deadline: float,
        release: Callable[[], None],
        request: HTTPRequest,
    ) -> Response:
        """A streamed request of strategy segments: prepared in a worker that reports its notes
        (`Progress`); until its first report (the segments are cut) it fails as any request
        does (4xx), then the stream opens with progress chunks, and the answer follows. A
        client that goes away stops the notes at the next batch."""
        loop = asyncio.get_running_loop()
        progress = Progress(loop)
        future = loop.run_in_executor(self.pool, self.prepare, chat, progress)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # always retrieved
        first = await next_report(progress, future, deadline)
        if first is None:
            if not future.done():
                progress.stop()
                raise self.timeout()
            return await self.stream(chat, future.result(), deadline, release, request)
        chunks = Chunks.new(self.name, chat.include_usage)
        pumps: list[Pump] = []

        def closed() -> None:
            progress.stop()
            for pump in pumps:
                pump.stop()
            if future.done():
                release()
            else:  # counted out once the worker has stopped (at its next batch)
                future.add_done_callback(lambda _: release())

        return ClosingStream(
            self.long_events(
                progress, future, first, chunks, deadline, pumps, closed, arrival(request)
            ),
            on_close=closed,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def long_events(
        self,
        progress: Progress,
        future: asyncio.Future[Any],
        first: tuple[int, int, float],
        chunks: Chunks,
        deadline: float,
        pumps: list[Pump],
        closed: Callable[[], None],
        arrived: float,
    ) -> AsyncIterator[str]:
        """The role, the progress chunks while the notes are made, then the answer's events
        (as `events`); however it ends, the notes and generation stop. `arrived`: when the
        request came (time.perf_counter)."""
        finished = False
        try:
            yield sse(chunks.first())
            yield sse(chunks.progress(*first))
            while not future.done():
                report = await next_report(progress, future, deadline)
                if report is not None:
                    yield sse(chunks.progress(*report))
                elif not future.done():
                    yield self.error_event(self.late())
                    yield "data: [DONE]\n\n"
                    finished = True
                    return
            while not progress.queue.empty():  # reported before the worker ended
                yield sse(chunks.progress(*progress.queue.get_nowait()))
            try:
                prepared = future.result()
                answers = await self.run_timed(self.open_stream, deadline, prepared)
            except APIError as exc:
                yield self.error_event(exc)
                yield "data: [DONE]\n\n"
                finished = True
                return
            except Exception as exc:
                yield self.error_event(self.stream_error(exc))
                yield "data: [DONE]\n\n"
                finished = True
                return
            pump = self.pump(answers, arrived)
            pumps.append(pump)
            async for event in self.answer_events(pump, chunks, deadline):
                yield event
            finished = True
        finally:
            if not finished and not any(p.done for p in pumps):
                self.stats.cancelled += 1
            closed()

    async def events(
        self, pump: Pump, chunks: Chunks, deadline: float, release: Callable[[], None]
    ) -> AsyncIterator[str]:
        """A stream's server-sent events: the role, each piece, then the end (or an error),
        then `[DONE]`; however it ends, generation stops and the request is counted out."""
        finished = False
        try:
            yield sse(chunks.first())
            async for event in self.answer_events(pump, chunks, deadline):
                yield event
            finished = True
        finally:
            if not finished and not pump.done:
                self.stats.cancelled += 1
            pump.stop()
            release()

    async def answer_events(
        self, pump: Pump, chunks: Chunks, deadline: float
    ) -> AsyncIterator[str]:
        """The answer's events once `pump` starts: each piece, then the end (or an error),
        then `[DONE]`."""
        pump.start()
        last = False
        while not last:
            sent, last = await self.next_events(pump, chunks, deadline)
            for event in sent:
                yield event
        yield "data: [DONE]\n\n"

    async def next_events(
        self, pump: Pump, chunks: Chunks, deadline: float
    ) -> tuple[list[str], bool]:
        """The events for what the stream gives next, and whether they are its last."""
        left = deadline - time.monotonic()
        try:
            kind, value = await asyncio.wait_for(pump.queue.get(), max(0.0, left))
        except asyncio.TimeoutError:
            return [self.error_event(self.late())], True
        if kind == "piece":
            return [sse(chunks.piece(value))], False
        if kind == "error":
            return [self.error_event(self.stream_error(value))], True
        self.stats.answered += 1
        return [sse(data) for data in chunks.last(value)], True

    def pump(self, answers: Any, arrived: float) -> Pump:
        """The reader of a stream's answer (for a request that came at `arrived`), whose
        answer is counted in the metrics (its first token too) before the client sees its end."""

        def ended(answer: Any, first: float | None, stopped: bool) -> None:
            self.metrics.answered(answer, stopped)
            at = first if first is not None else first_token_of(answer, time.perf_counter())
            if at is not None:
                self.metrics.first_token(arrived, at)

        pump = Pump(answers, asyncio.get_running_loop(), ended)
        self.pumps.add(pump)
        return pump

    def streams_running(self) -> int:
        return sum(pump.running for pump in list(self.pumps))

    def error_event(self, error: APIError) -> str:
        """The event of an error inside a stream (counted as an error answer)."""
        self.metrics.error(error)
        return sse(error.body())

    def late(self) -> APIError:
        """What a stream whose time ran out says (counted as timed out)."""
        self.timeout()
        return APIError(
            "the answer took longer than the server's limit",
            status=504,
            type="timeout",
            code="timeout",
        )

    def stream_error(self, exc: BaseException) -> APIError:
        """What a stream that failed while generating says (a server error is logged)."""
        self.stats.failed += 1
        if isinstance(exc, VidttError):
            return from_vidtt(exc)
        log.error("stream failed", exc_info=exc)
        return APIError("generation failed", 500, "server_error")

    def open_stream(self, prepared: Any) -> Any:
        try:
            return self.pipeline.stream(prepared)
        except VidttError as exc:
            raise from_vidtt(exc) from None

    # -- the rest --------------------------------------------------------------------------------
    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [self.model_card()]}

    def model_card(self) -> dict[str, Any]:
        return {"id": self.name, "object": "model", "created": self.started, "owned_by": "vidtt"}

    def is_ready(self) -> bool:
        """Started (its batcher running) and not draining."""
        running = self.task is not None and not self.task.done()
        return self.state == "ready" and running

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """`GET /ready`'s status and body."""
        if self.is_ready():
            return 200, {"status": "ready", "model": self.name, "in_flight": self.stats.in_flight}
        status = self.state if self.state != "ready" else "stopped"  # (the batcher ended)
        return 503, {"status": status}

    def health(self) -> dict[str, Any]:
        engine = self.pipeline.engine
        return {
            "status": "ok",
            "model": self.name,
            "backend": engine.backend,
            "device": str(engine.model.device),
            "max_queue": self.settings.max_queue,
            "max_batch_size": self.settings.max_batch_size,
            "waiting": len(self.batcher.jobs) if self.batcher else 0,
            "batches": self.batcher.batches if self.batcher else 0,
            "watches": self.watches.running(),
            **self.stats.__dict__,
        }


async def next_report(
    progress: Progress, future: asyncio.Future[Any], deadline: float
) -> tuple[int, int, float] | None:
    """The worker's next progress report, or None when it finished (or the deadline passed)
    before reporting again."""
    get = asyncio.ensure_future(progress.queue.get())
    try:
        left = max(0.0, deadline - time.monotonic())
        await asyncio.wait({future, get}, timeout=left, return_when="FIRST_COMPLETED")
    finally:
        if not get.done():
            get.cancel()
    return get.result() if get.done() and not get.cancelled() else None
