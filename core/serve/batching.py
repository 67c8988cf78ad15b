"""Batching for `vidtt serve`: non-streaming requests wait briefly for company and are
generated together (`Pipeline.answer_each`), one batch at a time, in a thread of their own; a
request whose client went away stops at its next token (its stop event). An `Observer` (the
server's metrics) hears of the batches and the answers."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from vidtt.errors import VidttError
from vidtt.pipeline.batching import batches
from vidtt.types import Answer


@dataclass
class Waiting:
    """A prepared request waiting for its batch, and the future its answer is set on."""

    prepared: Any
    future: asyncio.Future[Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    queued: float = field(default_factory=time.perf_counter)  # when it began to wait
    ended: float | None = None  # when its batch's generation ended (time.perf_counter)


class Observer(Protocol):
    """What hears of the batcher's work (`vidtt.serve.metrics.Metrics`)."""

    def batch(self, waited: list[float]) -> None: ...

    def answered(self, answer: Answer, stopped: bool = False) -> None: ...


class Batcher:
    """Collects prepared non-streaming requests and generates them in batches, one batch at a
    time, in a thread of its own."""

    def __init__(
        self, pipeline: Any, max_batch: int, max_wait: float, observer: Observer | None = None
    ) -> None:
        self.pipeline, self.max_batch, self.max_wait = pipeline, max_batch, max_wait
        self.observer = observer
        self.jobs: collections.deque[Waiting] = collections.deque()
        self.wake = asyncio.Event()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="vidtt-generate")
        self.batches = 0
        self.running = 0  # rows of the batch generating now

    def submit(self, prepared: Any) -> Waiting:
        job = Waiting(prepared, asyncio.get_running_loop().create_future())
        self.jobs.append(job)
        self.wake.set()
        return job

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.jobs:
                self.wake.clear()
                await self.wake.wait()
            ends = loop.time() + self.max_wait
            while len(self.jobs) < self.max_batch and (left := ends - loop.time()) > 0:
                self.wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), left)
            batch = self.take()
            if batch:
                await self.generate(batch)

    def take(self) -> list[Waiting]:
        """Up to `max_batch` live jobs that can be generated together: the oldest job's group
        (`vidtt.pipeline.batching.batches`, in arrival order)."""
        live = [job for job in self.jobs if not job.cancel.is_set()]
        if not live:
            self.jobs.clear()
            return []
        first = set(batches([job.prepared for job in live], self.max_batch, by_length=False)[0])
        self.jobs = collections.deque(job for n, job in enumerate(live) if n not in first)
        return [live[n] for n in sorted(first)]

    async def generate(self, batch: list[Waiting]) -> None:
        loop = asyncio.get_running_loop()
        self.batches += 1
        self.running = len(batch)
        if self.observer is not None:
            started = time.perf_counter()
            self.observer.batch([started - job.queued for job in batch])
        try:
            results = await loop.run_in_executor(self.executor, self._answer, batch)
        except BaseException as exc:  # never lose a job: each learns what happened
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self.running = 0
        ended = time.perf_counter()
        for job, result in zip(batch, results):
            job.ended = ended
            if self.observer is not None and isinstance(result, Answer):
                self.observer.answered(result, stopped=job.cancel.is_set())
            if not job.future.done():
                job.future.set_result(result)

    def _answer(self, batch: list[Waiting]) -> list[Answer | VidttError]:
        result: list[Answer | VidttError] = self.pipeline.answer_each(
            [job.prepared for job in batch], stops=[job.cancel for job in batch]
        )
        return result

    def close(self) -> None:
        for job in self.jobs:
            job.cancel.set()
            if not job.future.done():
                job.future.cancel()
        self.executor.shutdown(wait=True)
