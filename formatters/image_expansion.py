"""`image-expansion`: a video becomes one image per sampled frame, in place (llava-interleave).

Each video in a message turns into as many image entries as the Clip has frames, where the video
stood, so videos, images and text keep the order the user wrote them in; the processor's own
chat template writes the prompt and the frames go to the processor as images. With
`timestamps=True` a short text before each video's frames says when they were taken.
"""

from __future__ import annotations

from typing import Any

from vidtt.plugin_api import Clip, hookimpl

from .common import ChatFormatter, Row, frames_of


class ImageExpansionFormatter(ChatFormatter):
    name = "image-expansion"
    description = "each video becomes one <image> per frame (llava-interleave and kin)"
    priority = 10

    needs = (
        ("image_processor", "the processor takes no images"),
        ("image_token", "the processor has no image token"),
    )

    def expand(self, clip: Clip, row: Row) -> list[dict[str, Any]]:
        row.images.extend(frames_of(clip))  # one HxWx3 array a frame: no PIL images made
        return [{"type": "image"} for _ in range(len(clip))]


@hookimpl
def register_formatters(register) -> None:  # type: ignore[no-untyped-def]
    register(ImageExpansionFormatter())
