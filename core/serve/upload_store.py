"""The store of the videos uploaded once (`POST /v1/uploads`, `vidtt.serve.uploads`) and
named by later requests as `upload:ID` (`Uploads.source`).

Each upload is a file in a folder of the server's own (made on the first upload, removed when
the server stops). An upload is kept for `ttl` seconds after it was last named; all of them
together, those still arriving included, hold at most `max_bytes` on disk, the least recently
named going first to make room.
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
from typing import Any

from vidtt.serve.errors import APIError
from vidtt.types import VideoSource

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
