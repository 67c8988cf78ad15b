"""`vidtt serve`: an OpenAI-compatible HTTP server over a `Pipeline` (FastAPI + uvicorn).

    app = vidtt.server.create_app(pipeline, ServeSettings(api_key="..."))

- `POST /v1/chat/completions` (plain and `stream: true`), `GET /v1/models`, `GET /health`;
- media are read and sampled in a worker pool (`Pipeline.prepare`), never on the event loop;
- concurrent non-streaming requests are batched into `Pipeline.answer_each` (at most
  `max_batch_size` a batch, waiting at most `max_wait` seconds for company); streams generate
  one at a time on the same engine;
- a client that goes away stops its generation (its row of a batch, or its stream) at the next
  token; a request over `request_timeout` gets 504 and is stopped the same way;
- at most `max_queue` requests at once; the next gets 503 with Retry-After;
- every mistake is an OpenAI error object with a 4xx status (see `serve_api`).

FastAPI and uvicorn are imported only here (the `serve` extra), never by `import vidtt`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response

from vidtt.errors import VidttError
from vidtt.serve.batching import Batcher
from vidtt.serve.protocol import (
    APIError,
    ChatRequest,
    ServeLimits,
    build_request,
    from_vidtt,
    parse_chat,
)
from vidtt.serve.streams import ClosingStream, Pump, sse, wait_disconnect
from vidtt.types import Answer, VideoPart

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
    workers: int = 4  # threads reading and sampling media
    max_body_bytes: int = 64 << 20
    retry_after: int = 1
    timestamps: bool = False  # say when each frame was taken, unless a request says otherwise
    limits: ServeLimits = field(default_factory=ServeLimits)


# -- the app --------------------------------------------------------------------------------
@dataclass
class Stats:
    in_flight: int = 0
    answered: int = 0
    failed: int = 0
    refused: int = 0  # 503: the queue was full
    cancelled: int = 0  # the client went away
    timed_out: int = 0


class Server:
    """The state behind the routes: pipeline, pools, batcher, counters."""

    def __init__(self, pipeline: Any, settings: ServeSettings) -> None:
        self.pipeline, self.settings = pipeline, settings
        self.name = settings.served_model_name or pipeline.config.model
        self.names = {self.name, pipeline.config.model}
        self.started = int(time.time())
        self.stats = Stats()
        self.pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="vidtt-media")
        self.batcher: Batcher | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.batcher = Batcher(self.pipeline, self.settings.max_batch_size, self.settings.max_wait)
        self.task = asyncio.create_task(self.batcher.run(), name="vidtt-batcher")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.batcher is not None:
            await asyncio.to_thread(self.batcher.close)
        self.pool.shutdown(wait=False, cancel_futures=True)

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

    async def read_json(self, request: HTTPRequest) -> Any:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        too_big = APIError(
            f"the request body is larger than this server's limit of {limit} bytes; send "
            "large videos by URL",
            status=413,
            code="request_too_large",
        )
        body = bytearray()
        seen = 0
        over = declared.isdigit() and int(declared) > limit
        async for chunk in request.stream():
            seen += len(chunk)
            if over or seen > limit:
                over = True
                if seen > limit + DRAIN_BYTES:
                    break
                continue  # read on (and drop) so the client gets to see the 413
            body += chunk
        if over:
            raise too_big
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "it cannot be read"
            raise APIError(f"the request body is not valid JSON: {reason}") from None

    # -- chat completions ----------------------------------------------------------------------
    async def chat(self, request: HTTPRequest) -> Response:
        self.check_key(request)
        release = self.admit()
        handed_off = False
        try:
            deadline = time.monotonic() + self.settings.request_timeout
            body = await self.read_json(request)
            chat = parse_chat(body, self.settings.limits)
            if chat.model is not None and chat.model not in self.names:
                raise APIError(
                    f"the model {chat.model!r} does not exist here; this server serves "
                    f"{self.name!r}",
                    status=404,
                    param="model",
                    code="model_not_found",
                )
            prepared = await self.run_timed(self.prepare, deadline, chat)
            if chat.stream:
                response = await self.stream(chat, prepared, deadline, release, request)
                handed_off = True
                return response
            return await self.complete(prepared, deadline, request)
        finally:
            if not handed_off:
                release()

    def prepare(self, chat: ChatRequest) -> Any:
        """In a worker: load the media, sample the videos, count the frames."""
        try:
            prepared = self.pipeline.prepare(
                build_request(chat, self.settings.limits), self.settings.timestamps
            )
        except VidttError as exc:
            raise from_vidtt(exc) from None
        frames = sum(
            len(p.video)
            for m in prepared.conversation
            for p in m.content
            if isinstance(p, VideoPart)
        )
        limit = self.settings.limits.max_frames
        if frames > limit:
            raise APIError(
                f"the request's videos gave {frames} frames, over this server's limit of "
                f"{limit} per request: ask for fewer (num_frames, fps) or a shorter span "
                "(start, end)",
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
        return JSONResponse(self.completion(result))

    def completion(self, answer: Answer) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.text},
                    "logprobs": None,
                    "finish_reason": answer.finish_reason,
                }
            ],
            "usage": usage(answer),
            "system_fingerprint": None,
            "vidtt": details(answer),
        }

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
        pump = Pump(answers, asyncio.get_running_loop())
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            data = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.name,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
                **({"usage": None} if chat.include_usage else {}),
                **extra,
            }
            return sse(data)

        async def events() -> AsyncIterator[str]:
            finished = False
            try:
                yield chunk({"role": "assistant", "content": ""})
                pump.start()
                while True:
                    left = deadline - time.monotonic()
                    try:
                        kind, value = await asyncio.wait_for(pump.queue.get(), max(0.0, left))
                    except asyncio.TimeoutError:
                        self.timeout()
                        error = APIError(
                            "the answer took longer than the server's limit",
                            status=504,
                            type="timeout",
                            code="timeout",
                        )
                        yield sse(error.body())
                        break
                    if kind == "piece":
                        yield chunk({"content": value})
                    elif kind == "error":
                        self.stats.failed += 1
                        error = (
                            from_vidtt(value)
                            if isinstance(value, VidttError)
                            else APIError("generation failed", 500, "server_error")
                        )
                        if not isinstance(value, VidttError):
                            log.error("stream failed", exc_info=value)
                        yield sse(error.body())
                        break
                    else:
                        answer: Answer = value
                        self.stats.answered += 1
                        yield chunk(
                            {}, answer.finish_reason, usage=usage(answer), vidtt=details(answer)
                        )
                        if chat.include_usage:
                            yield sse(
                                {
                                    "id": ident,
                                    "object": "chat.completion.chunk",
                                    "created": created,
                                    "model": self.name,
                                    "system_fingerprint": None,
                                    "choices": [],
                                    "usage": usage(answer),
                                }
                            )
                        break
                yield "data: [DONE]\n\n"
                finished = True
            finally:
                if not finished and not pump.done:
                    self.stats.cancelled += 1
                pump.stop()
                release()

        def closed() -> None:
            pump.stop()
            release()

        return ClosingStream(
            events(),
            on_close=closed,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

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
            **self.stats.__dict__,
        }


def usage(answer: Answer) -> dict[str, Any]:
    u = answer.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.generated_tokens,
        "total_tokens": u.prompt_tokens + u.generated_tokens,
        "visual_tokens": u.visual_tokens,
    }


def details(answer: Answer) -> dict[str, Any]:
    """What vidtt adds to a response: the frames each video gave, and the timings."""
    return {
        "videos": [v.model_dump() for v in answer.videos],
        "timings": answer.timings.model_dump(),
        "formatter": answer.formatter,
    }


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def create_app(pipeline: Any, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving `pipeline` (its model, sampler and generation defaults)."""
    server = Server(pipeline, settings or ServeSettings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(title="vidtt", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.vidtt = server

    @app.exception_handler(APIError)
    async def api_error(request: HTTPRequest, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: HTTPRequest, exc: HTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        message = (
            f"no route {request.method} {request.url.path}"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return error_response(APIError(message, exc.status_code, kind, code=kind))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: HTTPRequest, exc: RequestValidationError) -> JSONResponse:
        return error_response(APIError("invalid request"))

    @app.exception_handler(Exception)
    async def unexpected(request: HTTPRequest, exc: Exception) -> JSONResponse:
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(APIError("internal server error", 500, "server_error"))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: HTTPRequest) -> Response:
        try:
            return await server.chat(request)
        except APIError:
            raise
        except VidttError as exc:
            raise from_vidtt(exc) from None

    @app.get("/v1/models")
    async def models(request: HTTPRequest) -> dict[str, Any]:
        server.check_key(request)
        return server.models()

    @app.get("/v1/models/{name:path}")
    async def model(name: str, request: HTTPRequest) -> dict[str, Any]:
        server.check_key(request)
        if name not in server.names:
            raise APIError(f"the model {name!r} does not exist here", 404, code="model_not_found")
        return server.model_card()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return server.health()

    return app


def serve(
    pipeline: Any,
    settings: ServeSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Run the server until SIGINT or SIGTERM, which let in-flight requests finish (for at
    most the request timeout) before it exits."""
    import uvicorn

    config = uvicorn.Config(
        create_app(pipeline, settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=int(settings.request_timeout) + 1,
        h11_max_incomplete_event_size=64 << 10,
    )
    uvicorn.Server(config).run()
