"""Open any `VideoSource` as a PyAV container holding a video: the opening itself (`Media`,
`FileView`, the protocol whitelist) is `vidtt.media.containers`; the checks that the container
holds a video (not an image, not audio alone) are added here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vidtt.errors import DecodeError
from vidtt.media.containers import NO_NESTED_OPENS, FileView, Media
from vidtt.media.containers import open_media as open_source_media
from vidtt.types import VideoSource

__all__ = ["NO_NESTED_OPENS", "FileView", "Media", "open_container", "open_media"]

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


@contextmanager
def open_media(source: VideoSource) -> Iterator[Media]:
    """The media of `source` (a file, bytes, a download), released afterwards; every
    container opened over it is checked to hold a video."""
    with open_source_media(source, check=_check_is_video) as media:
        yield media


@contextmanager
def open_container(source: VideoSource) -> Iterator[Any]:
    """Yield an open PyAV input container for `source`; close everything afterwards."""
    with open_media(source) as media, media.container() as container:
        yield container


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
