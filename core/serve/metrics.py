"""Prometheus metrics of `vidtt serve` (`GET /metrics`), kept in a registry of each app's own
(`Metrics.registry`, never the global one), named `vidtt_*`; their buckets follow vLLM's.

Counters and histograms are bumped where things happen (a request ends, a batch starts, an
answer is made, media are sampled); the gauges (queue depth, running, waiting, watches) are read
from the server only when scraped (`Gauges`, from the callable the server hands over), and so
are the prefix cache's (`PrefixCacheState`, from the engine; absent when it has none). A pure
ASGI middleware (`RequestMetrics`) counts every request by route template and status, times it
to its last byte, and writes the access lines of `--log-format json`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from vidtt.serve.logs import access_line
from vidtt.types import Answer, Usage
from vidtt.types.watch import WatchEvent
from vidtt.version import __version__

if TYPE_CHECKING:
    from vidtt.engine.prefix import PrefixStats
    from vidtt.pipeline.prepared import Prepared
    from vidtt.serve.errors import APIError

ARRIVED = "vidtt.arrived"  # the scope key: when the request came (time.perf_counter)
UNMATCHED = "unmatched"  # the route of a request no route matched (404)
REQUEST_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0),
    *(30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0),
)
TTFT_BUCKETS = (  # vLLM's time_to_first_token_seconds
    *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0),
    *(7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
)
TPOT_BUCKETS = (  # vLLM's time_per_output_token_seconds
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0),
    *(7.5, 10.0, 20.0, 40.0, 80.0),
)
SAMPLING_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0),
    *(160.0, 320.0, 640.0),
)
BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256)
TOKEN_BUCKETS = tuple(m * 10**e for e in range(6) for m in (1, 2, 5))  # vLLM's 1-2-5 steps


@dataclass
class Gauges:
    """What the server holds when scraped."""

    queue_depth: int  # requests in the server
    waiting: int  # prepared requests (and watch ticks) waiting for their batch
    running: int  # rows of the running batch, and open streams
    watches: int  # watches running
    uploads: int  # uploads kept
    upload_bytes: int  # the bytes they hold
    max_queue: int
    ready: int  # 1 while GET /ready answers 200
    cancelled: int  # requests whose client went away


def model_info(name: str, engine: Any) -> dict[str, str]:
    """What `vidtt_model_info` says of the model served as `name` by `engine`."""
    return {
        "model": name,
        "backend": str(getattr(engine, "backend", "")),
        "dtype": str(getattr(engine, "dtype", "")),
        "device": str(getattr(getattr(engine, "model", None), "device", "")),
        "version": __version__,
    }


class Metrics:
    """The server's metrics (see the module's doc and docs/serve.md, Operating the server):
    `info` names the model (`model_info`), `gauges` is called at each scrape."""

    def __init__(
        self,
        info: dict[str, str],
        gauges: Callable[[], Gauges],
        prefix: Callable[[], PrefixStats | None] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.add_request_metrics(self.registry)
        self.add_token_metrics(self.registry)
        self.add_media_metrics(self.registry)
        self.registry.register(ServerState(gauges))  # read when scraped
        if prefix is not None:
            self.registry.register(PrefixCacheState(prefix))
        Info("vidtt_model", "The model served", registry=self.registry).info(info)

    def add_request_metrics(self, registry: CollectorRegistry) -> None:
        """Requests by route and status, their durations, first and later tokens, batches."""
        self.requests = Counter(
            "vidtt_requests", "HTTP requests answered, by route template and status",
            ["route", "status"], registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "vidtt_request_duration_seconds", "From a request's arrival to its response's last "
            "byte (a stream's end), by route template", ["route"], registry=registry,
            buckets=REQUEST_BUCKETS,
        )  # fmt: skip
        self.ttft = Histogram(
            "vidtt_time_to_first_token_seconds", "From a chat request's arrival to its first "
            "generated token (streamed or not)", registry=registry, buckets=TTFT_BUCKETS,
        )  # fmt: skip
        self.tpot = Histogram(
            "vidtt_time_per_output_token_seconds", "Seconds per generated token after the "
            "first, per answer", registry=registry, buckets=TPOT_BUCKETS,
        )  # fmt: skip
        self.batch_size = Histogram(
            "vidtt_batch_size", "Requests (rows) generated together, per batch of the batcher",
            registry=registry, buckets=BATCH_BUCKETS,
        )  # fmt: skip
        self.queue_time = Histogram(
            "vidtt_request_queue_seconds", "Seconds a prepared request (or watch tick) waited "
            "for its batch to start", registry=registry, buckets=TTFT_BUCKETS,
        )  # fmt: skip

    def add_token_metrics(self, registry: CollectorRegistry) -> None:
        """The tokens of the prompts and answers, and how the answers ended."""
        self.prompt_tokens = Counter(
            "vidtt_prompt_tokens", "Prompt tokens of the answers generated (visual included)",
            registry=registry,
        )  # fmt: skip
        self.visual_tokens = Counter(
            "vidtt_visual_tokens", "Prompt tokens that stand for images and video frames",
            registry=registry,
        )  # fmt: skip
        self.generation_tokens = Counter(
            "vidtt_generation_tokens", "Tokens generated", registry=registry
        )
        self.cached_tokens = Counter(
            "vidtt_prompt_tokens_cached", "Prompt tokens whose model state came from the "
            "prefix cache (0 while it is off)", registry=registry,
        )  # fmt: skip
        self.request_prompt = Histogram(
            "vidtt_request_prompt_tokens", "Prompt tokens of each answer (visual included)",
            registry=registry, buckets=TOKEN_BUCKETS,
        )  # fmt: skip
        self.request_generation = Histogram(
            "vidtt_request_generation_tokens", "Tokens generated for each answer",
            registry=registry, buckets=TOKEN_BUCKETS,
        )  # fmt: skip
        self.finished = Counter(
            "vidtt_request_success", "Answers generated to their end, by finish reason",
            ["finished_reason"], registry=registry,
        )  # fmt: skip

    def add_media_metrics(self, registry: CollectorRegistry) -> None:
        """Frames sampled and how long it took, the watches' events, the error answers."""
        self.frames = Counter(
            "vidtt_frames_sampled", "Video frames sampled (requests and watch ticks)",
            registry=registry,
        )  # fmt: skip
        self.sampling = Histogram(
            "vidtt_sampling_duration_seconds", "Seconds spent reading and sampling a request's "
            "media (a watch tick's too)", registry=registry, buckets=SAMPLING_BUCKETS,
        )  # fmt: skip
        self.watch_events = Counter(
            "vidtt_watch_events", "Events of the watches, by kind (answer; source: lost, back or "
            "ended)",
            ["kind"], registry=registry,
        )  # fmt: skip
        self.watch_latency = Histogram(
            "vidtt_watch_latency_seconds", "From the last frame of a watch tick's window "
            "reaching the server to the tick's answer", registry=registry, buckets=TTFT_BUCKETS,
        )  # fmt: skip
        self.watch_skipped = Counter(
            "vidtt_watch_ticks_skipped", "Watch ticks passed over while the model was busy",
            registry=registry,
        )  # fmt: skip
        self.errors = Counter(
            "vidtt_errors", "Error answers, by class (the OpenAI error's code, else its type) "
            "and HTTP status (5xx: the server's fault); errors inside a stream included",
            ["class", "status"], registry=registry,
        )  # fmt: skip

    # -- what happens ----------------------------------------------------------------------
    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.duration.labels(route).observe(seconds)

    def error(self, error: APIError) -> None:
        self.errors.labels(error.code or error.type, str(error.status)).inc()

    def sampled(self, prepared: Prepared) -> None:
        """A request's (or watch tick's) media were sampled: its frames and seconds, and the
        tokens and frames already spent on it (strategy segments: its notes)."""
        self.frames.inc(prepared.frames() + prepared.spent_frames)
        self.sampling.observe(prepared.sampling)
        self.count(prepared.spent)

    def count(self, usage: Usage) -> None:
        self.prompt_tokens.inc(usage.prompt_tokens)
        self.visual_tokens.inc(usage.visual_tokens)
        self.generation_tokens.inc(usage.generated_tokens)
        self.cached_tokens.inc(usage.cached_tokens)

    def watched(self, event: WatchEvent) -> None:
        """A watch told of something: an answer (its latency, the ticks skipped) or news of
        its source."""
        self.watch_events.labels(event.kind).inc()
        if event.latency is not None:
            self.watch_latency.observe(event.latency)
        self.watch_skipped.inc(event.skipped)

    def batch(self, waited: list[float]) -> None:
        """A batch starts: its size, and how long each of its rows waited for it."""
        self.batch_size.observe(len(waited))
        for seconds in waited:
            self.queue_time.observe(seconds)

    def answered(self, answer: Answer, stopped: bool = False) -> None:
        """An answer was generated (`stopped`: cut short because its client went away)."""
        usage = answer.usage
        self.count(usage)
        self.request_prompt.observe(usage.prompt_tokens)
        self.request_generation.observe(usage.generated_tokens)
        if usage.generated_tokens > 1:
            self.tpot.observe(answer.timings.decode / (usage.generated_tokens - 1))
        if not stopped:
            self.finished.labels(answer.finish_reason).inc()

    def first_token(self, arrived: float, at: float) -> None:
        """A chat request that came at `arrived` had its first token at `at` (perf_counter)."""
        self.ttft.observe(max(0.0, at - arrived))

    def render(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ServerState:
    """A collector of what the server holds now: its queue, batch, streams and watches."""

    def __init__(self, gauges: Callable[[], Gauges]) -> None:
        self.gauges = gauges

    def describe(self) -> list[Any]:
        return []  # (collected fresh each scrape; nothing to check against other names)

    def collect(self) -> Iterator[Any]:
        now = self.gauges()
        gauges = {
            "vidtt_queue_depth": (
                "Requests in the server (sampling, waiting or generating); once it reaches "
                "vidtt_max_queue the next get 503",
                now.queue_depth,
            ),
            "vidtt_requests_waiting": (
                "Prepared requests (and watch ticks) waiting for their batch",
                now.waiting,
            ),
            "vidtt_requests_running": (
                "Requests generating: rows of the running batch, and open streams (a stream "
                "may wait for the engine while a batch runs)",
                now.running,
            ),
            "vidtt_watches_running": ("Watches of live sources running", now.watches),
            "vidtt_uploads": ("Uploads kept (POST /v1/uploads)", now.uploads),
            "vidtt_upload_bytes": ("Bytes the uploads kept hold; at most --max-uploads-mb",
                                   now.upload_bytes),
            "vidtt_max_queue": ("Requests the server takes at once (--max-queue)",
                                now.max_queue),
            "vidtt_ready": ("1 while GET /ready answers 200, else 0", now.ready),
        }  # fmt: skip
        for name, (doc, value) in gauges.items():
            yield GaugeMetricFamily(name, doc, value=value)
        yield CounterMetricFamily(
            "vidtt_requests_cancelled",
            "Requests whose client went away before their answer was done",
            value=now.cancelled,
        )


def prefix_reader(engine: Any) -> Callable[[], PrefixStats | None] | None:
    """What reads `engine`'s prefix cache stats when scraped (None: an engine without one)."""
    if getattr(engine, "prefix_cache", None) is None:
        return None
    reader: Callable[[], PrefixStats | None] = engine.prefix_stats
    return reader


class PrefixCacheState:
    """A collector of the engine's prefix cache: hits, misses and evictions so far, and what it
    holds now (docs/guide.md, Asking again: the prefix cache)."""

    def __init__(self, stats: Callable[[], PrefixStats | None]) -> None:
        self.stats = stats

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        now = self.stats()
        if now is None:
            return
        counters = {
            "vidtt_prefix_cache_hits": ("Prompts that continued from kept model state (or "
                                        "from a start computed for their batch)", now.hits),
            "vidtt_prefix_cache_misses": ("Prompts that found no kept start to continue from",
                                          now.misses),
            "vidtt_prefix_cache_evictions": ("Entries dropped for room (least recently used "
                                             "first)", now.evictions),
        }  # fmt: skip
        for name, (doc, value) in counters.items():
            yield CounterMetricFamily(name, doc, value=value)
        gauges = {
            "vidtt_prefix_cache_bytes": ("Bytes the prefix cache holds", now.bytes),
            "vidtt_prefix_cache_blocks": ("Blocks (16 tokens of model state) the prefix cache "
                                           "holds", now.blocks),
            "vidtt_prefix_cache_limit_bytes": ("The prefix cache's bound (--prefix-cache-mb)",
                                               now.limit),
        }  # fmt: skip
        for name, (doc, value) in gauges.items():
            yield GaugeMetricFamily(name, doc, value=value)


def arrival(request: Any) -> float:
    """When `request` came (as `RequestMetrics` noted; else now), in time.perf_counter."""
    arrived = request.scope.get(ARRIVED)
    return float(arrived) if arrived is not None else time.perf_counter()


def first_token_of(answer: Answer, ended: float) -> float | None:
    """When an answer whose generation ended at `ended` had its first token (None: none)."""
    if answer.usage.generated_tokens == 0:
        return None
    return ended - answer.timings.decode


def route_of(scope: Any) -> str:
    """The route template a request matched (`/v1/watches/{watch_id}`), never its raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMetrics:
    """ASGI middleware: each HTTP request counted by route and status and timed to its last
    byte; with `access_log`, an access line for it (logger `vidtt.serve.access`)."""

    def __init__(self, app: Any, metrics: Metrics, access_log: bool = False) -> None:
        self.app, self.metrics, self.access_log = app, metrics, access_log
        self.log = logging.getLogger("vidtt.serve.access")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = scope[ARRIVED] = time.perf_counter()
        status = 0

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            status = status or 500  # no response sent: an unexpected error (answered 500)
            self.metrics.request(route_of(scope), status, seconds)
            if self.access_log and self.log.isEnabledFor(logging.INFO):
                message, fields = access_line(scope, status, seconds)
                self.log.info(message, extra={"fields": fields})
