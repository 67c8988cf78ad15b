"""`vidtt serve`: an OpenAI-compatible HTTP server over a `Pipeline` (FastAPI + uvicorn).

    app = vidtt.serve.app.create_app(pipeline, ServeSettings(api_key="..."))

- `POST /v1/chat/completions` (plain and `stream: true`), `GET /v1/models`, `GET /health`
  (alive), `GET /ready` (200 once started, 503 once draining), `GET /metrics` (Prometheus;
  `vidtt.serve.metrics`); with `log_format="json"`, JSON log lines (`vidtt.serve.logs`);
- media are read and sampled in a worker pool (`Pipeline.prepare`), never on the event loop;
- concurrent non-streaming requests are batched into `Pipeline.answer_each` (at most
  `max_batch_size` a batch, waiting at most `max_wait` seconds for company); streams generate
  one at a time on the same engine;
- a client that goes away stops its generation (its row of a batch, or its stream) at the next
  token; a request over `request_timeout` gets 504 and is stopped the same way;
- at most `max_queue` requests at once; the next gets 503 with Retry-After;
- `/v1/uploads`: a video uploaded once and named by later requests as `upload:ID`
  (`vidtt.serve.uploads`);
- `/v1/watches`: live sources asked a question every few seconds, their events sent as
  server-sent events (`vidtt.serve.watches`; at most `max_watches` at once);
- every mistake is an OpenAI error object with a 4xx status (see `serve_api`).

Here the FastAPI app (`create_app`: routes, error handlers) and `serve`; the state behind the
routes is `vidtt.serve.server.Server`, the response bodies are in `vidtt.serve.responses`.
FastAPI and uvicorn are imported only by `vidtt.serve` (the `serve` extra), never by
`import vidtt`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response, StreamingResponse

from vidtt.errors import VidttError
from vidtt.serve.errors import APIError, from_vidtt
from vidtt.serve.logs import use_json_logs
from vidtt.serve.metrics import Metrics, RequestMetrics
from vidtt.serve.preview import add_preview_routes
from vidtt.serve.server import Server, ServeSettings
from vidtt.serve.ui import add_ui_routes
from vidtt.serve.uploads import add_upload_routes
from vidtt.serve.watches import last_event_id

log = logging.getLogger("vidtt.serve")


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
    access_log = server.settings.log_format == "json"
    app.add_middleware(RequestMetrics, metrics=server.metrics, access_log=access_log)
    add_error_handlers(app, server.metrics)
    add_routes(app, server)
    add_operator_routes(app, server)
    add_watch_routes(app, server)
    add_preview_routes(app, server)
    add_upload_routes(app, server)
    if server.settings.ui:
        add_ui_routes(app, server)
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


def add_routes(app: FastAPI, server: Server) -> None:
    """`POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{id}`, `GET /health`."""

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


def add_operator_routes(app: FastAPI, server: Server) -> None:
    """`GET /ready` (200 ready, 503 starting or draining) and `GET /metrics` (Prometheus' text
    format); like `/health`, neither needs the API key."""

    @app.get("/ready")
    async def ready() -> JSONResponse:
        status, body = server.readiness()
        return JSONResponse(body, status_code=status)

    @app.get("/metrics")
    async def metrics() -> Response:
        body, kind = server.metrics.render()
        return Response(body, media_type=kind)


def add_watch_routes(app: FastAPI, server: Server) -> None:
    """`POST /v1/watches`, `GET /v1/watches`, `GET` and `DELETE /v1/watches/{id}`, and
    `GET /v1/watches/{id}/events` (server-sent events); each needs the API key."""
    watches = server.watches

    @app.post("/v1/watches", status_code=201)
    async def create_watch(request: HTTPRequest) -> JSONResponse:
        server.check_key(request)
        on = watches.max_watches > 0  # (where watches are off, the body is not read)
        body = await server.read_json(request) if on else None
        return JSONResponse(await watches.create(body), status_code=201)

    @app.get("/v1/watches")
    async def list_watches(request: HTTPRequest) -> dict[str, Any]:
        server.check_key(request)
        return watches.list()

    @app.get("/v1/watches/{watch_id}")
    async def get_watch(watch_id: str, request: HTTPRequest) -> dict[str, Any]:
        server.check_key(request)
        return watches.get(watch_id).card()

    @app.delete("/v1/watches/{watch_id}")
    async def delete_watch(watch_id: str, request: HTTPRequest) -> dict[str, Any]:
        server.check_key(request)
        return await watches.delete(watch_id)

    @app.get("/v1/watches/{watch_id}/events")
    async def watch_events(watch_id: str, request: HTTPRequest) -> Response:
        server.check_key(request)
        live = watches.get(watch_id)
        after = last_event_id(
            request.headers.get("last-event-id"), request.query_params.get("after")
        )
        return StreamingResponse(
            live.events(after, watches.keep_alive),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


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
    pipeline: Any,
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
