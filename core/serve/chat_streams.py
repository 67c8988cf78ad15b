"""Streamed chat completions of `vidtt serve` (`stream: true`), as server-sent events: the
role, each piece, then the end (or an error), then `[DONE]`. Streams generate one at a time on
the engine, each read by a `Pump`; however a stream ends (its client gone, its time up),
generation stops and the request leaves the queue. A request of strategy segments streams its
progress while its notes are made (`stream_long`), then its answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request as HTTPRequest
from starlette.responses import Response

from vidtt.errors import VidttError
from vidtt.serve.admission import run_timed, timeout
from vidtt.serve.errors import APIError, from_vidtt
from vidtt.serve.metrics import arrival, first_token_of
from vidtt.serve.preparing import prepare
from vidtt.serve.protocol import ChatRequest
from vidtt.serve.responses import Chunks
from vidtt.serve.streams import ClosingStream, Progress, Pump, sse

if TYPE_CHECKING:
    from vidtt.engine.streaming import AnswerStream
    from vidtt.pipeline.prepared import Prepared
    from vidtt.serve.server import Server

log = logging.getLogger("vidtt.serve")
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = "data: [DONE]\n\n"
Report = tuple[int, int, float]  # segments done, segments in all, seconds so far


async def stream(
    server: Server,
    chat: ChatRequest,
    prepared: Prepared,
    deadline: float,
    release: Callable[[], None],
    request: HTTPRequest,
) -> Response:
    """The stream of a prepared request; `release` counts it out once it ends."""
    answers = await run_timed(server, open_stream, deadline, server, prepared)
    reader = pump(server, answers, arrival(request))
    chunks = Chunks.new(server.name, chat.include_usage)

    def closed() -> None:
        reader.stop()
        release()

    return ClosingStream(
        events(server, reader, chunks, deadline, release),
        on_close=closed,
        media_type="text/event-stream",
        headers=HEADERS,
    )


async def stream_long(
    server: Server,
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
    future = loop.run_in_executor(server.pool, prepare, server, chat, progress)
    future.add_done_callback(lambda f: f.cancelled() or f.exception())  # always retrieved
    first = await next_report(progress, future, deadline)
    if first is None:
        if not future.done():
            progress.stop()
            raise timeout(server)
        return await stream(server, chat, future.result(), deadline, release, request)
    pumps: list[Pump] = []

    def closed() -> None:
        progress.stop()
        for reader in pumps:
            reader.stop()
        if future.done():
            release()
        else:  # counted out once the worker has stopped (at its next batch)
            future.add_done_callback(lambda _: release())

    long = LongStream(server, progress, future, deadline, arrival(request))
    chunks = Chunks.new(server.name, chat.include_usage)
    return ClosingStream(
        long.events(first, chunks, pumps, closed),
        on_close=closed,
        media_type="text/event-stream",
        headers=HEADERS,
    )


class LongStream:
    """The events of a streamed request of strategy segments, while and after its worker
    makes the notes (`future`, reporting to `progress`)."""

    def __init__(
        self,
        server: Server,
        progress: Progress,
        future: asyncio.Future[Any],
        deadline: float,
        arrived: float,
    ) -> None:
        self.server, self.progress, self.future = server, progress, future
        self.deadline, self.arrived = deadline, arrived  # (arrived: time.perf_counter)
        self.late = False  # its time ran out while the notes were made

    async def events(
        self, first: Report, chunks: Chunks, pumps: list[Pump], closed: Callable[[], None]
    ) -> AsyncIterator[str]:
        """The role, the progress chunks while the notes are made, then the answer's events
        (as `events`); however it ends, the notes and generation stop."""
        finished = False
        try:
            yield sse(chunks.first())
            yield sse(chunks.progress(*first))
            async for event in self.reports(chunks):
                yield event
            if self.late:
                finished = True
                return
            answers = await self.answers()
            if isinstance(answers, str):  # the error event
                yield answers
                yield DONE
                finished = True
                return
            reader = pump(self.server, answers, self.arrived)
            pumps.append(reader)
            async for event in answer_events(self.server, reader, chunks, self.deadline):
                yield event
            finished = True
        finally:
            if not finished and not any(p.done for p in pumps):
                self.server.stats.cancelled += 1
            closed()

    async def reports(self, chunks: Chunks) -> AsyncIterator[str]:
        """A progress chunk for each report until the worker ends (or the time is up: then
        the error, and `[DONE]`, and `late` is set: nothing follows)."""
        progress, future = self.progress, self.future
        while not future.done():
            report = await next_report(progress, future, self.deadline)
            if report is not None:
                yield sse(chunks.progress(*report))
            elif not future.done():
                yield error_event(self.server, late(self.server))
                yield DONE
                self.late = True
                return
        while not progress.queue.empty():  # reported before the worker ended
            yield sse(chunks.progress(*progress.queue.get_nowait()))

    async def answers(self) -> AnswerStream | str:
        """The answer's stream once the notes are made, or the error event saying why not."""
        try:
            prepared = self.future.result()
            answers: AnswerStream = await run_timed(
                self.server, open_stream, self.deadline, self.server, prepared
            )
            return answers
        except APIError as exc:
            return error_event(self.server, exc)
        except Exception as exc:
            return error_event(self.server, stream_error(self.server, exc))


async def events(
    server: Server, reader: Pump, chunks: Chunks, deadline: float, release: Callable[[], None]
) -> AsyncIterator[str]:
    """A stream's server-sent events: the role, each piece, then the end (or an error),
    then `[DONE]`; however it ends, generation stops and the request is counted out."""
    finished = False
    try:
        yield sse(chunks.first())
        async for event in answer_events(server, reader, chunks, deadline):
            yield event
        finished = True
    finally:
        if not finished and not reader.done:
            server.stats.cancelled += 1
        reader.stop()
        release()


async def answer_events(
    server: Server, reader: Pump, chunks: Chunks, deadline: float
) -> AsyncIterator[str]:
    """The answer's events once `reader` starts: each piece, then the end (or an error),
    then `[DONE]`."""
    reader.start()
    last = False
    while not last:
        sent, last = await next_events(server, reader, chunks, deadline)
        for event in sent:
            yield event
    yield DONE


async def next_events(
    server: Server, reader: Pump, chunks: Chunks, deadline: float
) -> tuple[list[str], bool]:
    """The events for what the stream gives next, and whether they are its last."""
    left = deadline - time.monotonic()
    try:
        kind, value = await asyncio.wait_for(reader.queue.get(), max(0.0, left))
    except asyncio.TimeoutError:
        return [error_event(server, late(server))], True
    if kind == "piece":
        return [sse(chunks.piece(value))], False
    if kind == "error":
        return [error_event(server, stream_error(server, value))], True
    server.stats.answered += 1
    return [sse(data) for data in chunks.last(value)], True


def pump(server: Server, answers: Any, arrived: float) -> Pump:
    """The reader of a stream's answer (for a request that came at `arrived`), whose
    answer is counted in the metrics (its first token too) before the client sees its end."""

    def ended(answer: Any, first: float | None, stopped: bool) -> None:
        server.metrics.answered(answer, stopped)
        at = first if first is not None else first_token_of(answer, time.perf_counter())
        if at is not None:
            server.metrics.first_token(arrived, at)

    reader = Pump(answers, asyncio.get_running_loop(), ended)
    server.pumps.add(reader)
    return reader


def open_stream(server: Server, prepared: Prepared) -> AnswerStream:
    """In a worker: the pipeline's stream of the answer (not yet generating)."""
    try:
        return server.pipeline.stream(prepared)
    except VidttError as exc:
        raise from_vidtt(exc) from None


def error_event(server: Server, error: APIError) -> str:
    """The event of an error inside a stream (counted as an error answer)."""
    server.metrics.error(error)
    return sse(error.body())


def late(server: Server) -> APIError:
    """What a stream whose time ran out says (counted as timed out)."""
    timeout(server)
    return APIError(
        "the answer took longer than the server's limit",
        status=504,
        type="timeout",
        code="timeout",
    )


def stream_error(server: Server, exc: BaseException) -> APIError:
    """What a stream that failed while generating says (a server error is logged)."""
    server.stats.failed += 1
    if isinstance(exc, VidttError):
        return from_vidtt(exc)
    log.error("stream failed", exc_info=exc)
    return APIError("generation failed", 500, "server_error")


async def next_report(
    progress: Progress, future: asyncio.Future[Any], deadline: float
) -> Report | None:
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
