"""Open any `VideoSource` as a PyAV container, with clear errors and nothing left on disk."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from vidtt.plugin_api import DecodeError, SourceError, VideoSource, download

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
ANIMATIONS = {"gif", "gif_pipe"}  # images, unless they hold more than one frame


# Every source reaches FFmpeg as a Python file object, never as a name FFmpeg could read as a
# protocol ("concat:", "subfile,", "data:", ...); with no protocol allowed, a playlist (HLS,
# ffconcat, DASH) cannot make the demuxer open other files or URLs either.
NO_NESTED_OPENS = {"protocol_whitelist": "none"}


class Media:
    """A source's bytes, opened once; `container()` opens them as a fresh PyAV container.

    Over a seekable source each container reads through its own `FileView`, so several
    containers may decode the same media at once, on different threads."""

    def __init__(self, file: Any, source: VideoSource) -> None:
        self.file, self.source = file, source
        self.start = file.tell() if _seekable(file) else None
        self.lock = threading.Lock()

    @property
    def reopen(self) -> Callable[[], AbstractContextManager[Any]] | None:
        """`container`, when containers may be open on this media at the same time (it is
        seekable); else None."""
        return self.container if self.start is not None else None

    @contextmanager
    def container(self) -> Iterator[Any]:
        """A new container over the media from its start; closed afterwards."""
        file = self.file if self.start is None else FileView(self.file, self.lock, self.start)
        container = _open_av(file, self.source)
        try:
            _check_is_video(container, self.source)
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
def open_media(source: VideoSource) -> Iterator[Media]:
    """The media of `source` (a file, bytes, a download), released afterwards."""
    with _media(source) as file:
        yield Media(file, source)


@contextmanager
def open_container(source: VideoSource) -> Iterator[Any]:
    """Yield an open PyAV input container for `source`; close everything afterwards."""
    with open_media(source) as media, media.container() as container:
        yield container


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _open_av(file: Any, source: VideoSource) -> Any:
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
        if _is_web_page(file):
            raise DecodeError(
                f"{source.label} is a web page (HTML), not a video: give the video file itself "
                "(for a page that shows a video, a direct link to the video file)"
            ) from None
        raise DecodeError(
            f"{source.label} is not a readable video (corrupt, truncated or not media): "
            f"{_ffmpeg_reason(exc)}"
        ) from None


def _is_web_page(file: Any) -> bool:
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


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _check_is_video(container: Any, source: VideoSource) -> None:
    names = set(container.format.name.split(","))
    if names & set(IMAGE_FORMATS) and not _animated(container, names):
        raise DecodeError(f"{source.label} is an image, not a video: pass it as an image part")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise DecodeError(
            f"{source.label} has no video stream (found: {', '.join(kinds)}); "
            "pass a file with video in it"
        )


def _animated(container: Any, names: set[str]) -> bool:
    """An animated GIF (more frames than one, or a count the header does not give)."""
    if not names & ANIMATIONS or not container.streams.video:
        return False
    return container.streams.video[0].frames != 1


@contextmanager
def _media(source: VideoSource) -> Iterator[Any]:
    if source.kind == "path":
        with open(source.checked_path(), "rb") as file:
            yield file
    elif source.kind == "bytes":
        if not source.value:
            raise DecodeError("the video bytes are empty")
        import io

        yield io.BytesIO(source.value)
    elif source.kind == "file":
        yield source.value
    elif source.kind == "url":
        with download(source.value) as spool:
            yield spool
    else:
        raise SourceError(f"{source.label} holds decoded frames; nothing to open")
