"""`vidtt serve`: an OpenAI-compatible HTTP server over a `Pipeline` (FastAPI + uvicorn).

    app = vidtt.serve.app.create_app(pipeline, ServeSettings(api_key="..."))

The app is assembled here from one module a route family, as vLLM's entrypoints are, each
adding its routes (`add_routes(app, server)`) and admitting each request through
`vidtt.serve.admission` (the API key, the queue: at most `max_queue` requests at once, the next
503 with Retry-After; the body's size and time limits):

- `vidtt.serve.chat`: `POST /v1/chat/completions` (plain, batched with its company into
  `Pipeline.answer_each`; `stream: true`: `vidtt.serve.chat_streams`), its media prepared in
  a worker pool (`vidtt.serve.preparing`), never on the event loop;
- `vidtt.serve.frames`: `POST /v1/frames`, the page's preview of a request's frames;
- `vidtt.serve.uploads`: `/v1/uploads`, a video uploaded once and named by later requests as
  `upload:ID`;
- `vidtt.serve.watches`: `/v1/watches`, live sources asked a question every few seconds, their
  events sent as server-sent events (at most `max_watches` at once);
- `vidtt.serve.operator`: `GET /v1/models`, `/health` (alive), `/ready` (200 once started, 503
  once draining), `/metrics` (Prometheus; `vidtt.serve.metrics`);
- `vidtt.serve.library`: `POST /v1/library/search` and its thumbnails (`--library`);
- `vidtt.serve.ui`: the page at / and `GET /v1/ui/config`.

A client that goes away stops its generation at the next token; a request over
`request_timeout` gets 504 and is stopped the same way; every mistake is an OpenAI error
object with a 4xx status (the handlers here). With `log_format="json"`, JSON log lines
(`vidtt.serve.logs`). The state behind the routes is `vidtt.serve.server.Server`. FastAPI and
uvicorn are imported only by `vidtt.serve` (the `serve` extra), never by `import vidtt`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse

from vidtt.serve import chat, frames, library, operator, ui, uploads, watches
from vidtt.serve.errors import APIError
from vidtt.serve.logs import use_json_logs
from vidtt.serve.metrics import Metrics, RequestMetrics
from vidtt.serve.server import Server, ServeSettings

if TYPE_CHECKING:
    from vidtt.pipeline.protocol import PipelineLike

log = logging.getLogger("vidtt.serve")
ROUTES = (chat, operator, watches, frames, uploads, library, ui)  # each: `add_routes`


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def create_app(pipeline: PipelineLike, settings: ServeSettings | None = None) -> FastAPI:
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
    access_log = server.settings.log_format == "json"
    app.add_middleware(RequestMetrics, metrics=server.metrics, access_log=access_log)
    add_error_handlers(app, server.metrics)
    for family in ROUTES:
        family.add_routes(app, server)
    return app


def add_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    """Every error, ours or FastAPI's, answered as an OpenAI error object (and counted)."""

    def answer(error: APIError) -> JSONResponse:
        metrics.error(error)
        return error_response(error)

    @app.exception_handler(APIError)
    async def api_error(request: HTTPRequest, exc: APIError) -> JSONResponse:
        return answer(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: HTTPRequest, exc: HTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        message = (
            f"no route {request.method} {request.url.path}"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return answer(APIError(message, exc.status_code, kind, code=kind))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: HTTPRequest, exc: RequestValidationError) -> JSONResponse:
        return answer(APIError("invalid request"))

    @app.exception_handler(Exception)
    async def unexpected(request: HTTPRequest, exc: Exception) -> JSONResponse:
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return answer(APIError("internal server error", 500, "server_error"))


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) is this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def open_to_all(host: str, api_key: str | None) -> str | None:
    """The warning for a server that others can reach and use without a key, or None."""
    if api_key or is_loopback(host):
        return None
    return (
        f"listening on {host} without an API key: anyone who can reach this port can use the "
        "model and its media access; set --api-key (or VIDTT_API_KEY), or listen on 127.0.0.1"
    )


def serve(
    pipeline: PipelineLike,
    settings: ServeSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Run the server until SIGINT or SIGTERM, which let in-flight requests finish (for at
    most the request timeout) before it exits. Listening beyond this machine without an API
    key is allowed, with a warning on stderr. With `settings.log_format` "json", every log
    line is a JSON object (`vidtt.serve.logs`), the access lines vidtt's own."""
    import uvicorn
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # /metrics without a `_created` series beside each metric
    logs: dict[str, Any] = {}
    if settings.log_format == "json":
        logs["log_config"] = use_json_logs(log_level, access_log)
    warning = open_to_all(host, settings.api_key)
    if warning and logs:
        log.warning(warning)
    elif warning:
        print(f"vidtt: warning: {warning}", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        create_app(pipeline, settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log and not logs,  # (JSON: the app writes them, with durations)
        **logs,
        timeout_graceful_shutdown=int(settings.request_timeout) + 1,
        h11_max_incomplete_event_size=64 << 10,
    )
    uvicorn_server(config).run()


def uvicorn_server(config: Any) -> Any:
    """A uvicorn server for `config` (whose app is `create_app`'s) that, when it shuts down,
    answers `/ready` with 503 and stops the watches first: their event streams end (`event:
    end`) instead of holding the graceful shutdown open until its timeout."""
    import uvicorn

    class Uvicorn(uvicorn.Server):  # type: ignore[misc]
        async def shutdown(self, sockets: Any = None) -> None:
            config.app.state.vidtt.drain()
            await config.app.state.vidtt.watches.close()
            await super().shutdown(sockets)

    return Uvicorn(config)
