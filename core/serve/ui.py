"""The page at / of `vidtt serve`: plain HTML, CSS and JS shipped with the package (no CDN, no
build step), read with `importlib.resources`.

- `GET /` is the page (it needs no API key; the API calls it makes do);
- `GET /ui/{name}` is one of its few static files, by exact name (nothing else is reachable);
- every answer carries a strict Content-Security-Policy (no inline scripts or styles, nothing
  loaded from elsewhere) and an ETag, so an unchanged file is answered 304.

Without `ServeSettings.ui` (`vidtt serve --no-ui`) none of these routes exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from starlette.requests import Request as HTTPRequest
from starlette.responses import Response

from vidtt.serve.errors import APIError

# The files served, by name, and their content types.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# What the page may do: its own scripts and styles, thumbnails as data: URLs, fetches to this
# server; nothing inline, nothing from elsewhere, never framed.
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidated each time (ETag): a new version shows at once
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


def load_files() -> dict[str, StaticFile]:
    """The page's files, read once from the package."""
    folder = resources.files("vidtt.serve.static")
    files = {}
    for name, media_type in FILES.items():
        body = folder.joinpath(name).read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        files[name] = StaticFile(body, media_type, etag)
    return files


def answer(file: StaticFile, request: HTTPRequest) -> Response:
    """The file, or 304 when the client already has this version."""
    headers = {**HEADERS, "ETag": file.etag}
    seen = request.headers.get("if-none-match", "")
    if file.etag in [tag.strip().removeprefix("W/") for tag in seen.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=file.media_type, headers=headers)


def add_ui_routes(app: Any, server: Any) -> None:
    """Add `GET /` (the page) and `GET /ui/{name}` (its files) to `app`."""
    files = load_files()

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page(request: HTTPRequest) -> Response:
        return answer(files["index.html"], request)

    @app.api_route("/ui/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static(name: str, request: HTTPRequest) -> Response:
        file = files.get(name)
        if file is None:
            raise APIError(f"no file {name[:60]!r} here", 404, "not_found", code="not_found")
        return answer(file, request)
