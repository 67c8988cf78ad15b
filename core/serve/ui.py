"""The page at / of `vidtt serve`: plain HTML, CSS and JS shipped with the package (no CDN, no
build step), read with `importlib.resources`, and what it builds its form from.

- `GET /` is the page (it needs no API key; the API calls it makes do);
- `GET /ui/{name}` is one of its few static files, by exact name (nothing else is reachable);
- every answer carries a strict Content-Security-Policy (no inline scripts or styles, nothing
  loaded from elsewhere) and an ETag, so an unchanged file is answered 304;
- `GET /v1/ui/config`, behind the API key: the model, limits, samplers and defaults (the page
  previews frames with `POST /v1/frames`, `vidtt.serve.frames`).

Without `ServeSettings.ui` (`vidtt serve --no-ui`) the page and its files do not exist (its
config route still does).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response

from vidtt.serve.admission import check_key
from vidtt.serve.errors import APIError
from vidtt.serve.frames import MAX_THUMB, MIN_THUMB, THUMB_SIZE

if TYPE_CHECKING:
    from vidtt.pipeline.protocol import PipelineLike
    from vidtt.serve.server import Server

# The files served, by name, and their content types.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# What the page may do: its own scripts and styles, thumbnails as data: and blob: URLs, fetches
# to this server, a library's videos played from it; nothing inline, nothing from elsewhere,
# never framed.
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self'",
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


def add_routes(app: FastAPI, server: Server) -> None:
    """`GET /v1/ui/config`; with `ServeSettings.ui`, `GET /` (the page) and `GET /ui/{name}`
    (its files) too."""

    @app.get("/v1/ui/config")
    async def ui_config(request: HTTPRequest) -> JSONResponse:
        check_key(server, request)  # a 401 (code invalid_api_key) tells the page a key is needed
        return JSONResponse(config_of(server))

    if server.settings.ui:
        add_page(app)


def add_page(app: FastAPI) -> None:
    """`GET /` (the page) and `GET /ui/{name}` (its files)."""
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


# -- GET /v1/ui/config ----------------------------------------------------------------------------
def config_of(server: Server) -> dict[str, Any]:
    """What the page builds its form from: the model, the limits, samplers and defaults."""
    pipeline, settings = server.pipeline, server.settings
    registry = pipeline.registry
    samplers = registry.names("samplers")
    limits = settings.limits
    return {
        "object": "ui.config",
        "model": server.name,
        "api_key_required": bool(settings.api_key),
        "max_body_bytes": settings.max_body_bytes,
        "max_upload_bytes": server.uploads.largest(settings.max_body_bytes),
        "upload_ttl": server.uploads.ttl,
        "local_media": limits.allowed_local_media_path is not None,
        "samplers": samplers,
        "sampler_fields": {
            name: list(registry.sampler(name).options_model.model_fields) for name in samplers
        },
        "defaults": defaults_of(server),
        "limits": {
            "max_videos": limits.max_videos,
            "max_images": limits.max_images,
            "max_frames": limits.max_frames,
            "request_timeout": settings.request_timeout,
        },
        "thumb_size": {"default": THUMB_SIZE, "min": MIN_THUMB, "max": MAX_THUMB},
        **transcription_of(pipeline),
        "context": pipeline.engine.context_size(),
        "watches": settings.max_watches > 0,
        "library": settings.library is not None,  # the page's search box (GET /v1/library)
    }


def defaults_of(server: Server) -> dict[str, Any]:
    """The settings a request gets for each field it leaves out."""
    pipeline = server.pipeline
    config, generation = pipeline.config, pipeline.generation_options({})
    return {
        "sampler": pipeline.sampler.name,
        "sampler_options": pipeline.sampler_options.model_dump(exclude_none=True),
        "frames_rule": pipeline.frames_rule,
        "max_new_tokens": generation.max_new_tokens,
        "generation": generation.model_dump(exclude_none=True),
        "timestamps": server.settings.timestamps,
        "transcript": config.transcript,
        "max_transcript_tokens": config.max_transcript_tokens,
        "max_visual_tokens": config.max_visual_tokens,
        "fit": config.fit,
        "strategy": config.strategy,
    }


def transcription_of(pipeline: PipelineLike) -> dict[str, Any]:
    """Whether `transcript: on` can give a transcript here, and by which transcriber (None:
    the model hears the audio itself)."""
    if pipeline.formatter.takes_audio(pipeline.processor):
        return {"transcript_available": True, "transcriber": None}
    name = pipeline.config.transcriber
    installed = name in pipeline.registry.names("transcribers")
    return {"transcript_available": installed, "transcriber": name if installed else None}
