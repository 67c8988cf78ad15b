"""The library routes of `vidtt serve --library NAME|PATH` (the library opened once, at start):

- `POST /v1/library/search`: `{"query": TEXT, "limit": 10, "path": GLOB}` → `{"object":
  "list", "data": [hits]}`, each hit as `Hit.as_dict()` with `thumbnail_url` in place of the
  thumbnail's path on the server; run in the worker pool, never on the event loop;
- `GET /v1/library/thumbnails/{video_id}/{name}`: a thumbnail JPEG, only from the library's
  own `thumbnails/<video_id>/` folder (anything else 404).

Both need the API key. Without `--library` both answer 404 `library_not_configured`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request as HTTPRequest
from starlette.responses import FileResponse

from vidtt.errors import VidttError
from vidtt.serve.admission import admit, check_key, deadline_of, run_timed
from vidtt.serve.errors import APIError, from_vidtt

if TYPE_CHECKING:
    from vidtt.serve.server import Server

VIDEO_ID = re.compile(r"[0-9a-f]{24}")
THUMBNAIL = re.compile(r"[0-9]{9}\.jpg")
MAX_QUERY = 2000  # characters
MAX_LIMIT = 100
MAX_BODY = 64 << 10  # bytes


def add_routes(app: FastAPI, server: Server) -> None:
    """`POST /v1/library/search` and `GET /v1/library/thumbnails/{video_id}/{name}`."""

    @app.post("/v1/library/search")
    async def search(request: HTTPRequest) -> dict[str, Any]:
        check_key(server, request)
        library = library_of(server)
        query, limit, glob = parse(await request.body())
        release = admit(server)
        try:
            hits = await run_timed(server, find, deadline_of(server), library, query, limit, glob)
        except VidttError as exc:
            raise from_vidtt(exc) from None
        finally:
            release()
        return {"object": "list", "data": hits}

    @app.get("/v1/library/thumbnails/{video_id}/{name}")
    async def thumbnail(video_id: str, name: str, request: HTTPRequest) -> FileResponse:
        check_key(server, request)
        path = thumbnail_path(library_of(server), video_id, name)
        return FileResponse(path, media_type="image/jpeg")


def library_of(server: Server) -> Any:
    """The server's library, or 404 when it was started without one."""
    library = server.settings.library
    if library is None:
        raise APIError(
            "this server has no library: start it with vidtt serve --library NAME|PATH",
            404,
            "not_found",
            code="library_not_configured",
        )
    return library


def parse(body: bytes) -> tuple[str, int, str | None]:
    """The request's query, limit and path glob; a 400 naming the field that is wrong."""
    if len(body) > MAX_BODY:
        raise APIError(f"the request body is over {MAX_BODY >> 10} KiB", 413)
    try:
        request = json.loads(body or b"null")
    except ValueError:
        raise APIError('the request body is not JSON: send {"query": TEXT}') from None
    if not isinstance(request, dict):
        raise APIError('the request body must be a JSON object: {"query": TEXT}')
    query = request.get("query")
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
        raise APIError(f"query must be text of 1 to {MAX_QUERY} characters", param="query")
    limit = request.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise APIError(f"limit must be a whole number from 1 to {MAX_LIMIT}", param="limit")
    glob = request.get("path")
    if glob is not None and (not isinstance(glob, str) or not glob or len(glob) > MAX_QUERY):
        raise APIError("path must be a glob on the videos' paths, e.g. /videos/*", param="path")
    return query, limit, glob


def find(library: Any, query: str, limit: int, glob: str | None) -> list[dict[str, Any]]:
    """The hits for `query` (its vector by the library's embedder), as the answer lists them."""
    from vidtt.library.asking import search

    hits = search(library, query, limit, path_glob=glob)
    return [answer(hit.as_dict()) for hit in hits]


def answer(hit: dict[str, Any]) -> dict[str, Any]:
    """A hit with `thumbnail_url` (a path on this server, or None) for its thumbnail's path."""
    stored = hit.pop("thumbnail", None)
    name = Path(stored).name if stored else ""
    video = str(hit.get("video_id", ""))
    ok = THUMBNAIL.fullmatch(name) and VIDEO_ID.fullmatch(video)
    hit["thumbnail_url"] = f"/v1/library/thumbnails/{video}/{name}" if ok else None
    return hit


def thumbnail_path(library: Any, video_id: str, name: str) -> Path:
    """The thumbnail's file inside the library's `thumbnails/` folder, or 404 (a name or id of
    another form, a library on object storage, a file missing or resolving elsewhere)."""
    folder = library.location.folder
    if folder is not None and VIDEO_ID.fullmatch(video_id) and THUMBNAIL.fullmatch(name):
        root = os.path.realpath(Path(folder) / "thumbnails")
        path = os.path.realpath(os.path.join(root, video_id, name))
        if os.path.dirname(path) == os.path.join(root, video_id) and os.path.isfile(path):
            return Path(path)
    raise APIError(f"no thumbnail {video_id[:40]}/{name[:40]}", 404, "not_found", code="not_found")
