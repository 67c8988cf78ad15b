"""The state behind `vidtt serve`'s routes (`Server`): its settings, the pipeline, the worker
pool that reads and samples media, the batcher, the streams' readers, the watches and uploads,
the counters and the metrics; started and stopped with the app, ready once started and draining
once shutdown began. The routes live in one module a family (`vidtt.serve.chat`,
`vidtt.serve.frames`, `vidtt.serve.uploads`, `vidtt.serve.watches`, `vidtt.serve.operator`,
`vidtt.serve.ui`), each through `vidtt.serve.admission` first."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vidtt.serve.batching import Batcher
from vidtt.serve.metrics import Gauges, Metrics, model_info, prefix_reader
from vidtt.serve.protocol import ServeLimits
from vidtt.serve.streams import Pump
from vidtt.serve.upload_store import Uploads
from vidtt.serve.watch_registry import Watches

if TYPE_CHECKING:
    from vidtt.pipeline.protocol import PipelineLike


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
    library: Any = None  # the opened `vidtt.library.Library` (`--library`) searched; None: none


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

    def __init__(self, pipeline: PipelineLike, settings: ServeSettings) -> None:
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
        engine = pipeline.engine
        self.metrics = Metrics(model_info(self.name, engine), self.gauges, prefix_reader(engine))
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

    def streams_running(self) -> int:
        return sum(pump.running for pump in list(self.pumps))

    def gauges(self) -> Gauges:
        """What the server holds now, for the metrics' gauges."""
        batcher = self.batcher
        uploads, upload_bytes = self.uploads.usage()
        return Gauges(
            queue_depth=self.stats.in_flight,
            waiting=len(batcher.jobs) if batcher else 0,
            running=(batcher.running if batcher else 0) + self.streams_running(),
            watches=self.watches.running(),
            uploads=uploads,
            upload_bytes=upload_bytes,
            max_queue=self.settings.max_queue,
            ready=int(self.is_ready()),
            cancelled=self.stats.cancelled,
        )
