"""Open any `VideoSource` as a PyAV container, with clear errors and nothing left on disk.

What the video samplers and the audio reader share: a source's bytes opened once (`Media`),
fresh containers over them (`Media.container`), each over its own `FileView` when the bytes are
seekable, and FFmpeg kept from opening anything the media names (`NO_NESTED_OPENS`). Checks
of what the container holds (a video stream, an audio stream) are the caller's: `open_media`
takes one as `check`.
"""

from __future__ import annotations

import errno
import io
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from vidtt.errors import DecodeError, SourceError
from vidtt.media.fetch import download
from vidtt.types import VideoSource

# Every source reaches FFmpeg as a Python file object, never as a name FFmpeg could read as a
# protocol ("concat:", "subfile,", "data:", ...); with no protocol allowed, a playlist (HLS,
# ffconcat, DASH) cannot make the demuxer open other files or URLs either.
NO_NESTED_OPENS = {"protocol_whitelist": "none"}

Check = Callable[[Any, VideoSource], None]  # raises when a container is not what is wanted


class Media:
    """A source's bytes, opened once; `container()` opens them as a fresh PyAV container
    (and runs `check` on it, when given).

    Over a seekable source each container reads through its own `FileView`, so several
    containers may decode the same media at once, on different threads."""

    def __init__(self, file: Any, source: VideoSource, check: Check | None = None) -> None:
        self.file, self.source, self.check = file, source, check
        self.start = file.tell() if seekable(file) else None
        self.lock = threading.Lock()

    @property
    def seekable(self) -> bool:
        """Whether containers may be opened on this media more than once (and seek)."""
        return self.start is not None

    @property
    def reopen(self) -> Callable[[], AbstractContextManager[Any]] | None:
        """`container`, when containers may be open on this media at the same time (it is
        seekable); else None."""
        return self.container if self.start is not None else None

    @contextmanager
    def container(self) -> Iterator[Any]:
        """A new container over the media from its start; closed afterwards."""
        file = self.file if self.start is None else FileView(self.file, self.lock, self.start)
        container = open_av(file, self.source)
        try:
            if self.check is not None:
                self.check(container, self.source)
            yield container
        finally:
            container.close()


class FileView:
    """A read position of its own over a seekable file that other views share: each read
    seeks the file first, under a lock the views hold in common. Offsets count from `start`."""

    def __init__(self, file: Any, lock: threading.Lock, start: int) -> None:
        self.file, self.lock, self.start = file, lock, start
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        with self.lock:
            self.file.seek(self.start + self.position)
            data: bytes = self.file.read(size)
        self.position += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            with self.lock:
                self.file.seek(0, os.SEEK_END)
                offset += self.file.tell() - self.start
        elif whence == os.SEEK_CUR:
            offset += self.position
        if offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self.position = offset
        return offset

    def tell(self) -> int:
        return self.position

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


@contextmanager
def open_media(source: VideoSource, check: Check | None = None) -> Iterator[Media]:
    """The media of `source` (a file, bytes, a download), released afterwards; `check` runs
    on every container opened over it."""
    with _media(source) as file:
        yield Media(file, source, check)


def seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def open_av(file: Any, source: VideoSource) -> Any:
    """A PyAV input container over `file`; every failure a one-line `VidttError`."""
    import av

    try:
        return av.open(file, mode="r", metadata_errors="ignore", container_options=NO_NESTED_OPENS)
    except av.error.FileNotFoundError:
        raise SourceError(f"video not found: {source.label}") from None
    except av.error.PermissionError:  # the demuxer refused to open what the file names
        raise DecodeError(
            f"{source.label} refers to other files or URLs (a playlist or concat list): "
            "vidtt opens only self-contained media"
        ) from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if is_web_page(file):
            raise DecodeError(
                f"{source.label} is a web page (HTML), not a video: give the video file itself "
                "(for a page that shows a video, a direct link to the video file)"
            ) from None
        raise DecodeError(
            f"{source.label} is not a readable video (corrupt, truncated or not media): "
            f"{ffmpeg_reason(exc)}"
        ) from None


def is_web_page(file: Any) -> bool:
    """Whether a seekable file that FFmpeg could not open starts like an HTML document."""
    try:
        file.seek(0)
        head = file.read(512)
    except (AttributeError, OSError, ValueError):
        return False
    if not isinstance(head, bytes):
        return False
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def ffmpeg_reason(exc: Exception) -> str:
    """What FFmpeg said went wrong, in a few words."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


@contextmanager
def _media(source: VideoSource) -> Iterator[Any]:
    if source.kind == "path":
        with open(source.checked_path(), "rb") as file:
            yield file
    elif source.kind == "bytes":
        if not source.value:
            raise DecodeError("the video bytes are empty")
        yield io.BytesIO(source.value)
    elif source.kind == "file":
        yield source.value
    elif source.kind == "url":
        with download(source.value) as spool:
            yield spool
    else:
        raise SourceError(f"{source.label} holds decoded frames; nothing to open")


IMAGE_CODECS = {"mjpeg", "png", "bmp", "gif", "webp", "tiff", "jpeg2000"}


def main_video_stream(container: Any) -> Any:
    """The video stream to sample: not a cover picture or thumbnail, the default one first."""
    import av

    flags = av.stream.Disposition
    pictures = flags.attached_pic | flags.timed_thumbnails | flags.still_image
    streams = [s for s in container.streams.video if not s.disposition & pictures]
    if not streams:
        raise DecodeError(
            "the file's only video stream is a cover picture or thumbnail: pass it as an image"
        )

    def rank(stream: Any) -> tuple[bool, bool, float, int]:
        context = stream.codec_context
        return (
            bool(stream.disposition & flags.default),
            context.name not in IMAGE_CODECS,
            float(stream.average_rate or 0) > 1,
            context.width * context.height,
        )

    return max(streams, key=rank)
