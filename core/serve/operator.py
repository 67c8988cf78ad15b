"""The operator routes of `vidtt serve`: what is served and how the server is doing.

- `GET /v1/models` and `GET /v1/models/{id}`: the model served (with the API key);
- `GET /health`: alive, with its counters; `GET /ready`: 200 once started, 503 while starting
  or draining; `GET /metrics`: Prometheus' text format (`vidtt.serve.metrics`); like
  `/health`, neither needs the API key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response

from vidtt.serve.admission import check_key
from vidtt.serve.errors import APIError

if TYPE_CHECKING:
    from vidtt.serve.server import Server


def add_routes(app: FastAPI, server: Server) -> None:
    """`GET /v1/models`, `GET /v1/models/{id}`, `GET /health`, `/ready` and `/metrics`."""

    @app.get("/v1/models")
    async def models(request: HTTPRequest) -> dict[str, Any]:
        check_key(server, request)
        return {"object": "list", "data": [model_card(server)]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str, request: HTTPRequest) -> dict[str, Any]:
        check_key(server, request)
        if name not in server.names:
            raise APIError(f"the model {name!r} does not exist here", 404, code="model_not_found")
        return model_card(server)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return health_of(server)

    @app.get("/ready")
    async def ready() -> JSONResponse:
        status, body = server.readiness()
        return JSONResponse(body, status_code=status)

    @app.get("/metrics")
    async def metrics() -> Response:
        body, kind = server.metrics.render()
        return Response(body, media_type=kind)


def model_card(server: Server) -> dict[str, Any]:
    return {"id": server.name, "object": "model", "created": server.started, "owned_by": "vidtt"}


def health_of(server: Server) -> dict[str, Any]:
    """`GET /health`'s body: the model and where it runs, the limits and the counters."""
    engine, batcher, settings = server.pipeline.engine, server.batcher, server.settings
    return {
        "status": "ok",
        "model": server.name,
        "backend": engine.backend,
        "device": str(engine.model.device),
        "max_queue": settings.max_queue,
        "max_batch_size": settings.max_batch_size,
        "waiting": len(batcher.jobs) if batcher else 0,
        "batches": batcher.batches if batcher else 0,
        "watches": server.watches.running(),
        **server.stats.__dict__,
    }
