"""Streaming for `vidtt serve`: server-sent events fed from an `AnswerStream` read in a thread
of its own, and a response that stops generation however it ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request as HTTPRequest
from starlette.responses import StreamingResponse


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def wait_disconnect(request: HTTPRequest) -> None:
    """Return once the client has gone away (the body was read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


Ended = Callable[[Any, "float | None", bool], None]  # (answer, first piece's time, stopped)


class Pump:
    """Reads an `AnswerStream` in a thread of its own and hands its pieces to the event loop;
    `stop` ends generation at the next token (without waiting). `ended` hears of the answer
    (also one cut short), in the pump's thread, before the loop does."""

    def __init__(
        self, answers: Any, loop: asyncio.AbstractEventLoop, ended: Ended | None = None
    ) -> None:
        self.answers, self.loop, self.ended = answers, loop, ended
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.stopped = threading.Event()
        self.done = False
        self.first: float | None = None  # when the first piece came (time.perf_counter)
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether its stream is generating (or waiting for the engine)."""
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._read, name="vidtt-stream-pump", daemon=True)
        self.thread.start()

    def _post(self, kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))

    def _read(self) -> None:
        try:
            for piece in self.answers:
                if self.first is None:
                    self.first = time.perf_counter()
                if self.stopped.is_set():
                    break
                self._post("piece", piece)
            else:
                self.done = True
                self._heard(stopped=False)
                self._post("answer", self.answers.answer)
        except BaseException as exc:
            self._post("error", exc)
        finally:
            self.answers.close()
            if not self.done:
                self._heard(stopped=True)

    def _heard(self, stopped: bool) -> None:
        answer = getattr(self.answers, "answer", None)
        if self.ended is not None and answer is not None:
            self.ended(answer, self.first, stopped)

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self.thread is None:  # never started: nothing generates
            return
        threading.Thread(target=self.answers.close, name="vidtt-stream-close", daemon=True).start()


class Stopped(Exception):
    """Raised in a worker, at its next batch of segment notes or window of audio transcribed,
    when its client went away or its time ran out."""


class Stopper:
    """Stops a worker's preparation: called as a progress callback, (done, total), or through
    `check`, it raises `Stopped` once `stop` was called or `deadline` (time.monotonic) passed,
    so a request answered 504 (or whose client went away) takes no more of the media workers."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.stopped = threading.Event()

    def check(self) -> None:
        if self.stopped.is_set():
            raise Stopped("the request was stopped")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Stopped("the request's time ran out")

    def __call__(self, done: int, total: int) -> None:
        self.check()

    def stop(self) -> None:
        self.stopped.set()


class Progress(Stopper):
    """A request's progress, (done, total) heard in the worker that prepares it, handed to the
    event loop as (done, total, seconds): the first, then at most one every `every` seconds,
    and the last (done == total). Once `stop` is called, the next call raises `Stopped`, which
    ends the preparation at the next batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float = 0.5) -> None:
        super().__init__()
        self.loop, self.every = loop, every
        self.queue: asyncio.Queue[tuple[int, int, float]] = asyncio.Queue()
        self.started = time.monotonic()
        self.last: float | None = None

    def __call__(self, done: int, total: int) -> None:
        self.check()
        now = time.monotonic()
        if self.last is not None and done < total and now - self.last < self.every:
            return
        self.last = now
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (done, total, now - self.started))


class ClosingStream(StreamingResponse):
    """A StreamingResponse that runs `on_close` however it ends (even never started)."""

    def __init__(self, content: Any, on_close: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()
