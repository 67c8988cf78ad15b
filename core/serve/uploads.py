"""The upload routes of `vidtt serve`: a video uploaded once and named by later requests as
`upload:ID`, so that a client asking several questions of one file (the page, changing its
sampling) sends it once, as raw bytes, instead of a base64 `data:` URL in every request (the
uploads kept: `vidtt.serve.upload_store`).

- `POST /v1/uploads`: the video's bytes as the body (at most the body limit, arriving within
  the request timeout, never stalling for the body timeout); checked to be a video (not a
  still image) before it is kept; answers its card (`id`, `url`, `bytes`, `expires_at`, `video`);
- `GET` and `DELETE /v1/uploads/{id}`; every route needs the API key.

A body refused (too large, not a video, stalled, its client gone) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse

from vidtt.errors import VidttError
from vidtt.serve.admission import admit, check_key, deadline_of, read_body, run_timed
from vidtt.serve.errors import APIError, from_vidtt
from vidtt.types import VideoSource

if TYPE_CHECKING:
    from vidtt.serve.server import Server


def add_routes(app: FastAPI, server: Server) -> None:
    """`POST /v1/uploads`, `GET` and `DELETE /v1/uploads/{id}`."""
    uploads = server.uploads

    @app.post("/v1/uploads", status_code=201)
    async def create_upload(request: HTTPRequest) -> JSONResponse:
        check_key(server, request)
        if not uploads.on:
            raise APIError(
                "uploads are off on this server (--max-uploads-mb 0): send the video as an "
                "http(s) or data: URL",
                404,
                code="uploads_off",
            )
        check_type(request.headers.get("content-type", ""))
        release = admit(server)
        try:
            card = await receive(server, request)
        finally:
            release()
        return JSONResponse(card, status_code=201)

    @app.get("/v1/uploads/{upload_id}")
    async def get_upload(upload_id: str, request: HTTPRequest) -> dict[str, Any]:
        check_key(server, request)
        return uploads.get(upload_id).card(uploads.ttl)

    @app.delete("/v1/uploads/{upload_id}")
    async def delete_upload(upload_id: str, request: HTTPRequest) -> dict[str, Any]:
        check_key(server, request)
        return uploads.delete(upload_id)


def check_type(content_type: str) -> None:
    """Refuse a body that is a form or JSON: an upload is the video's bytes themselves."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not kind.startswith("video/") and kind != "application/octet-stream":
        raise APIError(
            f"an upload's body is the video file itself (Content-Type video/* or "
            f"application/octet-stream), not {kind[:60]!r}: for example curl --data-binary "
            "@clip.mp4 -H 'Content-Type: video/mp4'",
            param="Content-Type",
        )


async def receive(server: Server, request: HTTPRequest) -> dict[str, Any]:
    """Write the body to a new upload's file, check that it is a video (in the pool), keep it;
    on any failure the file is removed."""
    uploads = server.uploads
    deadline = deadline_of(server)
    name, path = uploads.new_path()
    kept, size = False, 0

    def write(chunk: bytes) -> None:
        nonlocal size
        uploads.reserve(len(chunk))
        size += len(chunk)
        file.write(chunk)

    try:
        with open(path, "xb") as file:
            largest = uploads.largest(server.settings.max_body_bytes)
            await read_body(server, request, write, largest, deadline)
        if size == 0:
            raise APIError("the upload is empty: send the video's bytes as the request body")
        try:
            video = await run_timed(server, describe, deadline, path, "the upload")
        except VidttError as exc:
            raise from_vidtt(exc) from None
        card = uploads.add(name, path, size, video).card(uploads.ttl)
        kept = True
        return card
    finally:
        if not kept:
            uploads.release(size)
            with contextlib.suppress(OSError):
                path.unlink()


def describe(path: Path, label: str) -> dict[str, Any]:
    """What the upload holds, from its container (no frame decoded); a `VidttError` when it
    is not a video vidtt can read, checked as sampling checks it (a still image, audio alone)."""
    from vidtt.media.containers import main_video_stream
    from vidtt.media.decode.opening import open_container

    source = VideoSource("path", str(path), label)
    with open_container(source) as container:
        stream = main_video_stream(container)
        context = stream.codec_context
        if stream.duration and stream.time_base:
            duration: float | None = float(stream.duration * stream.time_base)
        else:
            duration = container.duration / 1_000_000 if container.duration else None
        return {
            "width": context.width,
            "height": context.height,
            "codec": context.name,
            "container": container.format.name,
            "duration": round(duration, 3) if duration else None,
        }
