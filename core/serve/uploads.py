"""Videos uploaded once (`POST /v1/uploads`) and named by later requests as `upload:ID`, so
that a client asking several questions of one file (the page, changing its sampling) sends
it once, as raw bytes, instead of a base64 `data:` URL in every request.

- `POST /v1/uploads`: the video's bytes as the body (at most the body limit, arriving within
  the request timeout, never stalling for the body timeout); checked to be a video (not a
  still image) before it is kept; answers its card (`id`, `url`, `bytes`, `expires_at`, `video`);
- `GET` and `DELETE /v1/uploads/{id}`; every route needs the API key.

Each upload is a file in a folder of the server's own (made on the first upload, removed when
the server stops). An upload is kept for `ttl` seconds after it was last named; all of them
together, those still arriving included, hold at most `max_bytes` on disk, the least recently
named going first to make room. A body refused (too large, not a video, stalled, its client
gone) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse

from vidtt.errors import VidttError
from vidtt.serve.errors import APIError, from_vidtt
from vidtt.types import VideoSource

if TYPE_CHECKING:
    from vidtt.serve.server import Server

UPLOAD_URL = re.compile(r"^upload:(?P<id>[A-Za-z0-9_-]{1,64})$")  # what requests name


@dataclass
class Upload:
    """One upload kept: its file, size, and what its container says of the video."""

    id: str
    path: Path
    bytes: int
    created: float
    used: float  # when a request last named it (time.time)
    video: dict[str, Any]

    def card(self, ttl: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "upload",
            "url": f"upload:{self.id}",
            "bytes": self.bytes,
            "created_at": int(self.created),
            "expires_at": int(self.used + ttl),
            "video": self.video,
        }


class Uploads:
    """The uploads of one server; safe to use from several threads."""

    def __init__(self, max_bytes: int, ttl: float) -> None:
        self.max_bytes, self.ttl = max_bytes, ttl
        self.items: dict[str, Upload] = {}
        self.arriving = 0  # bytes written of uploads not yet kept
        self.folder: Path | None = None
        self.lock = threading.Lock()

    @property
    def on(self) -> bool:
        return self.max_bytes > 0

    def largest(self, max_body: int) -> int | None:
        """The largest upload taken under a body limit of `max_body` (None: uploads are off)."""
        return min(max_body, self.max_bytes) if self.on else None

    def new_path(self) -> tuple[str, Path]:
        """A fresh id and the path its bytes are written to (not yet an upload)."""
        with self.lock:
            if self.folder is None:
                self.folder = Path(tempfile.mkdtemp(prefix="vidtt-uploads-"))
            folder = self.folder
        name = f"upload-{secrets.token_hex(12)}"
        return name, folder / name

    def reserve(self, size: int) -> None:
        """Room for `size` more bytes of an upload on its way, made by dropping the least
        recently named uploads; 503 while uploads still arriving hold the rest."""
        with self.lock:
            self._expire(time.time())
            if self.held() + self.arriving + size > self.max_bytes:
                for old in sorted(self.items.values(), key=lambda u: u.used):
                    self._drop(old.id)
                    if self.held() + self.arriving + size <= self.max_bytes:
                        break
            if self.held() + self.arriving + size > self.max_bytes:
                raise APIError(
                    "the server's room for uploads (--max-uploads-mb) is held by uploads still "
                    "arriving: try again shortly",
                    503,
                    "server_busy",
                    code="uploads_busy",
                    headers={"Retry-After": "1"},
                )
            self.arriving += size

    def release(self, size: int) -> None:
        """Give back the room of an upload on its way that was not kept."""
        with self.lock:
            self.arriving -= size

    def add(self, name: str, path: Path, size: int, video: dict[str, Any]) -> Upload:
        """Keep the file written at `path` (`size` bytes, reserved as they came)."""
        now = time.time()
        upload = Upload(name, path, size, now, now, video)
        with self.lock:
            self.arriving -= size
            self.items[name] = upload
        return upload

    def source(self, url: str, param: str) -> VideoSource:
        """The video the upload `url` (`upload:ID`) names, labelled by its URL; its clock
        starts again."""
        match = UPLOAD_URL.match(url)
        now = time.time()
        with self.lock:
            self._expire(now)
            upload = self.items.get(match["id"]) if match else None
            if upload is not None:
                upload.used = now
                return VideoSource("path", str(upload.path), url)
        raise APIError(
            f"{param}: no upload {url[:80]!r} on this server (uploads are kept "
            f"{lifetime(self.ttl)} after their last use, and not across restarts); "
            "upload the video again with POST /v1/uploads",
            param=param,
            code="upload_not_found",
        )

    def get(self, name: str) -> Upload:
        with self.lock:
            self._expire(time.time())
            upload = self.items.get(name)
        if upload is None:
            raise APIError(f"no upload {name[:80]!r} on this server", 404, code="not_found")
        return upload

    def delete(self, name: str) -> dict[str, Any]:
        upload = self.get(name)
        with self.lock:
            self._drop(upload.id)
        return {"id": upload.id, "object": "upload.deleted", "deleted": True}

    def held(self) -> int:
        return sum(u.bytes for u in self.items.values())

    def usage(self) -> tuple[int, int]:
        """The uploads kept, and the bytes they hold."""
        with self.lock:
            return len(self.items), self.held()

    def close(self) -> None:
        """Remove every upload and the folder (the server stops)."""
        with self.lock:
            self.items.clear()
            folder, self.folder = self.folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _expire(self, now: float) -> None:
        for upload in [u for u in self.items.values() if now - u.used > self.ttl]:
            self._drop(upload.id)

    def _drop(self, name: str) -> None:
        upload = self.items.pop(name, None)
        if upload is not None:
            with contextlib.suppress(OSError):
                upload.path.unlink()


def lifetime(seconds: float) -> str:
    """`seconds` in words: "1 hour", "90 minutes", "30 s"."""
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours > 1 else ''}"
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} s"


# -- the routes ---------------------------------------------------------------------------------
def add_upload_routes(app: FastAPI, server: Server) -> None:
    """`POST /v1/uploads`, `GET` and `DELETE /v1/uploads/{id}`."""
    uploads = server.uploads

    @app.post("/v1/uploads", status_code=201)
    async def create_upload(request: HTTPRequest) -> JSONResponse:
        server.check_key(request)
        if not uploads.on:
            raise APIError(
                "uploads are off on this server (--max-uploads-mb 0): send the video as an "
                "http(s) or data: URL",
                404,
                code="uploads_off",
            )
        check_type(request.headers.get("content-type", ""))
        release = server.admit()
        try:
            card = await receive(server, request)
        finally:
            release()
        return JSONResponse(card, status_code=201)

    @app.get("/v1/uploads/{upload_id}")
    async def get_upload(upload_id: str, request: HTTPRequest) -> dict[str, Any]:
        server.check_key(request)
        return uploads.get(upload_id).card(uploads.ttl)

    @app.delete("/v1/uploads/{upload_id}")
    async def delete_upload(upload_id: str, request: HTTPRequest) -> dict[str, Any]:
        server.check_key(request)
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
    deadline = time.monotonic() + server.settings.request_timeout
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
            await server.read_body(request, write, largest, deadline)
        if size == 0:
            raise APIError("the upload is empty: send the video's bytes as the request body")
        try:
            video = await server.run_timed(describe, deadline, path, "the upload")
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
