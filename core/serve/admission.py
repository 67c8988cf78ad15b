"""What every route of `vidtt serve` goes through before its own work: the API key
(`check_key`), a slot in the queue (`admit`: at most `max_queue` requests at once, the next
503), the body read within its limits (`read_body`, `read_json`: 413 over the size limit, 408
when it stalls or comes too late) and the request's time limit for work in the pool
(`run_timed`, 504 past it: `timeout`)."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request as HTTPRequest

from vidtt.serve.errors import APIError

if TYPE_CHECKING:
    from vidtt.serve.server import Server

DRAIN_BYTES = 16 << 20  # an oversized body is read (and dropped) up to this much before 413


def check_key(server: Server, request: HTTPRequest) -> None:
    """Refuse (401) a request without the server's API key, where it has one."""
    key = server.settings.api_key
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


def admit(server: Server) -> Callable[[], None]:
    """Count a request in, or refuse it with 503; returns the (idempotent) release."""
    settings, stats = server.settings, server.stats
    if stats.in_flight >= settings.max_queue:
        stats.refused += 1
        raise APIError(
            f"the server is busy ({settings.max_queue} requests in progress): try again shortly",
            status=503,
            type="server_busy",
            code="queue_full",
            headers={"Retry-After": str(settings.retry_after)},
        )
    stats.in_flight += 1
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            stats.in_flight -= 1

    return release


def deadline_of(server: Server) -> float:
    """When a request that comes now runs out of time (time.monotonic)."""
    return time.monotonic() + server.settings.request_timeout


async def read_body(
    server: Server,
    request: HTTPRequest,
    sink: Callable[[bytes], Any],
    limit: int | None = None,
    deadline: float | None = None,
) -> int:
    """Hand the body to `sink` chunk by chunk; its size. Over `limit` (default
    `max_body_bytes`) it is 413, once the client has sent on (up to DRAIN_BYTES) to see it.
    A body that stalls for `body_timeout` seconds, or is not all there by `deadline`
    (time.monotonic; default: the request timeout from now), is 408."""
    limit = limit or server.settings.max_body_bytes
    if deadline is None:
        deadline = deadline_of(server)
    declared = request.headers.get("content-length", "")
    seen = 0
    over = declared.isdigit() and int(declared) > limit
    chunks = request.stream().__aiter__()
    while (chunk := await next_chunk(server, chunks, deadline)) is not None:
        seen += len(chunk)
        if over or seen > limit:
            over = True
            if seen > limit + DRAIN_BYTES:
                break
            continue  # read on (and drop) so the client gets to see the 413
        sink(chunk)
    if over:
        raise APIError(
            f"the request body is larger than this server's limit of {limit} bytes; send "
            "large videos by URL",
            status=413,
            code="request_too_large",
        )
    return seen


async def next_chunk(server: Server, chunks: AsyncIterator[bytes], deadline: float) -> bytes | None:
    """The body's next chunk (None at its end), or a 408 when it does not come in time."""
    left = deadline - time.monotonic()
    stall = server.settings.body_timeout
    try:
        return await asyncio.wait_for(chunks.__anext__(), max(0.0, min(stall, left)))
    except StopAsyncIteration:
        return None
    except asyncio.TimeoutError:
        server.stats.timed_out += 1
        limit = server.settings.request_timeout
        said = (
            f"nothing came for {stall:g} s"
            if stall < left
            else f"it was not all there within this server's {limit:g} s limit"
        )
        raise APIError(
            f"the request body stalled ({said}): send it again, whole",
            status=408,
            type="timeout",
            code="body_timeout",
        ) from None


async def read_json(server: Server, request: HTTPRequest, deadline: float | None = None) -> Any:
    """The body read (as `read_body`) and parsed as JSON, or a 400 saying why it is not."""
    body = bytearray()
    await read_body(server, request, body.extend, deadline=deadline)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError: also a number of >4300 digits
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "it cannot be read"
        raise APIError(f"the request body is not valid JSON: {reason}") from None


async def run_timed(server: Server, work: Callable[..., Any], deadline: float, *args: Any) -> Any:
    """`work(*args)` in the server's pool, or a 504 once `deadline` passed."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(server.pool, work, *args)
    try:
        return await asyncio.wait_for(future, max(0.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        raise timeout(server) from None


def timeout(server: Server) -> APIError:
    """The 504 of a request past its time limit (counted as timed out)."""
    server.stats.timed_out += 1
    return APIError(
        f"the request took longer than this server's {server.settings.request_timeout:g} s limit",
        status=504,
        type="timeout",
        code="timeout",
    )


def check_model(server: Server, model: str | None) -> None:
    """Refuse (404) a request that names a model this server does not serve."""
    if model is not None and model not in server.names:
        raise APIError(
            f"the model {model!r} does not exist here; this server serves {server.name!r}",
            status=404,
            param="model",
            code="model_not_found",
        )
