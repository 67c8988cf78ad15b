"""The watch routes of `vidtt serve`: a live source asked a question every few seconds, its
events sent as server-sent events (the watches themselves: `vidtt.serve.watch_registry`).

    POST /v1/watches {"source": "rtsp://cam/stream", "question": "Anyone there?", "every": 5}
    GET  /v1/watches/{id}/events      id: 3 / event: answer / data: {WatchEvent}

Also `GET /v1/watches`, `GET` and `DELETE /v1/watches/{id}`; each needs the API key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response, StreamingResponse

from vidtt.serve.admission import check_key, read_json
from vidtt.serve.errors import APIError
from vidtt.urls import printable

if TYPE_CHECKING:
    from vidtt.serve.server import Server


def add_routes(app: FastAPI, server: Server) -> None:
    """`POST /v1/watches`, `GET /v1/watches`, `GET` and `DELETE /v1/watches/{id}`, and
    `GET /v1/watches/{id}/events` (server-sent events)."""
    watches = server.watches

    @app.post("/v1/watches", status_code=201)
    async def create_watch(request: HTTPRequest) -> JSONResponse:
        check_key(server, request)
        on = watches.max_watches > 0  # (where watches are off, the body is not read)
        body = await read_json(server, request) if on else None
        return JSONResponse(await watches.create(body), status_code=201)

    @app.get("/v1/watches")
    async def list_watches(request: HTTPRequest) -> dict[str, Any]:
        check_key(server, request)
        return watches.list()

    @app.get("/v1/watches/{watch_id}")
    async def get_watch(watch_id: str, request: HTTPRequest) -> dict[str, Any]:
        check_key(server, request)
        return watches.get(watch_id).card()

    @app.delete("/v1/watches/{watch_id}")
    async def delete_watch(watch_id: str, request: HTTPRequest) -> dict[str, Any]:
        check_key(server, request)
        return await watches.delete(watch_id)

    @app.get("/v1/watches/{watch_id}/events")
    async def watch_events(watch_id: str, request: HTTPRequest) -> Response:
        check_key(server, request)
        live = watches.get(watch_id)
        after = last_event_id(
            request.headers.get("last-event-id"), request.query_params.get("after")
        )
        return StreamingResponse(
            live.events(after, watches.keep_alive),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


def last_event_id(header: str | None, after: str | None) -> int:
    """Where a subscriber's stream starts: after the `Last-Event-ID` header, else `?after=N`
    (default 0: every kept event)."""
    given = header if header is not None else after
    if given is None or not given.strip():
        return 0
    try:
        number = int(given.strip())
    except ValueError:
        number = -1
    if number < 0:
        raise APIError(
            f"after (or Last-Event-ID) must be an event id, 0 or more, not "
            f"{printable(repr(given[:40]))}",
            param="after",
        )
    return number
