"""Open any `VideoSource` as a PyAV container, with clear errors and nothing left on disk."""

from __future__ import annotations

import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vidtt import DecodeError, SourceError, VideoSource

IMAGE_FORMATS = (
    "image2",
    "png_pipe",
    "jpeg_pipe",
    "webp_pipe",
    "bmp_pipe",
    "gif",
    "tiff_pipe",
    "gif_pipe",
    "webp",
)
CHUNK = 1 << 20


@dataclass(frozen=True)
class UrlLimits:
    """Bounds on fetching a video from a URL."""

    max_bytes: int = 2 << 30
    timeout: float = 10.0  # seconds, for connecting and for each read
    deadline: float = 300.0  # seconds for the whole download
    spool_bytes: int = 64 << 20  # kept in memory below this, in an unlinked temp file above


@contextmanager
def open_container(source: VideoSource, limits: UrlLimits | None = None) -> Iterator[Any]:
    """Yield an open PyAV input container for `source`; close everything afterwards."""
    import av

    with _media(source, limits or UrlLimits()) as media:
        try:
            container = av.open(media, mode="r", metadata_errors="ignore")
        except av.error.FileNotFoundError:
            raise SourceError(f"video not found: {source.label}") from None
        except av.error.PermissionError:
            raise SourceError(f"permission denied reading {source.label}") from None
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise DecodeError(
                f"{source.label} is not a readable video (corrupt, truncated or not media): "
                f"{_ffmpeg_reason(exc)}"
            ) from None
        try:
            _check_is_video(container, source)
            yield container
        finally:
            container.close()


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _check_is_video(container: Any, source: VideoSource) -> None:
    names = set(container.format.name.split(","))
    if names & set(IMAGE_FORMATS):
        raise DecodeError(f"{source.label} is an image, not a video: pass it as an image part")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise DecodeError(
            f"{source.label} has no video stream (found: {', '.join(kinds)}); "
            "pass a file with video in it"
        )


@contextmanager
def _media(source: VideoSource, limits: UrlLimits) -> Iterator[Any]:
    if source.kind == "path":
        yield _checked_path(source.value)
    elif source.kind == "bytes":
        if not source.value:
            raise DecodeError("the video bytes are empty")
        import io

        yield io.BytesIO(source.value)
    elif source.kind == "file":
        yield source.value
    elif source.kind == "url":
        with _download(source.value, limits) as spool:
            yield spool
    else:
        raise SourceError(f"{source.label} holds decoded frames; nothing to open")


def _checked_path(value: str) -> str:
    path = Path(value).expanduser()
    try:
        if path.is_dir():
            raise SourceError(f"{value} is a directory: pass a video file inside it")
        size = path.stat().st_size
    except FileNotFoundError:
        raise SourceError(f"video not found: {value} (check the path)") from None
    except OSError as exc:  # e.g. a symlink loop, a too-long name
        raise SourceError(f"cannot read {value}: {exc.strerror or exc}") from None
    if size == 0:
        raise DecodeError(f"{value} is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise SourceError(f"permission denied reading {value}")
    return str(path)


@contextmanager
def _download(url: str, limits: UrlLimits) -> Iterator[IO[bytes]]:
    """Fetch `url` into a spooled temporary file (memory first, an unlinked file after)."""
    spool = tempfile.SpooledTemporaryFile(max_size=limits.spool_bytes)
    try:
        _fetch_into(url, spool, limits)
        spool.seek(0)
        yield spool
    finally:
        spool.close()


def _fetch_into(url: str, out: IO[bytes], limits: UrlLimits) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "vidtt"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=limits.timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise SourceError(_too_big(url, limits, int(declared)))
            received = 0
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > limits.max_bytes:
                    raise SourceError(_too_big(url, limits, received))
                if time.monotonic() - started > limits.deadline:
                    raise SourceError(
                        f"downloading {url} took over {limits.deadline:g} s; "
                        "download it yourself and pass the file"
                    )
                out.write(chunk)
    except SourceError:
        raise
    except urllib.error.HTTPError as exc:
        raise SourceError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(exc, TimeoutError) or "timed out" in str(reason):
            reason = f"no answer within {limits.timeout:g} s"
        raise SourceError(f"cannot fetch {url}: {reason}") from None
    if received == 0:
        raise DecodeError(f"{url} returned no data")


def _too_big(url: str, limits: UrlLimits, size: int) -> str:
    return (
        f"{url} is larger than the {limits.max_bytes} byte limit ({size} bytes seen); "
        "download it yourself or raise the limit"
    )
