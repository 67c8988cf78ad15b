"""`image-expansion`: a video becomes one image per sampled frame, in place (llava-interleave).

Each video in a message turns into as many image entries as the Clip has frames, where the video
stood, so videos, images and text keep the order the user wrote them in; the processor's own
chat template writes the prompt and the frames go to the processor as images. With
`timestamps=True` a short text before each video's frames says when they were taken.
"""

from __future__ import annotations

from typing import Any

from vidtt import Clip, hookimpl

from .common import ChatFormatter, VideoParts, common_decline, timestamps_text


class ImageExpansionFormatter(ChatFormatter):
    name = "image-expansion"
    description = "each video becomes one <image> per frame (llava-interleave and kin)"
    priority = 10

    def decline_reason(self, model_config: Any, processor: Any) -> str | None:
        if getattr(processor, "image_processor", None) is None:
            return "the processor takes no images"
        if not getattr(processor, "image_token", None):
            return "the processor has no image token"
        return common_decline(processor)

    def video_parts(
        self, images: list[Any], videos: list[Clip], options: dict[str, Any]
    ) -> VideoParts:
        def parts(clip: Clip, number: int) -> list[dict[str, Any]]:
            videos.append(clip)
            images.extend(clip.frames)
            prefix = (
                [{"type": "text", "text": timestamps_text(clip, number)}]
                if options.get("timestamps")
                else []
            )
            return prefix + [{"type": "image"} for _ in clip.frames]

        return parts

    def call_processor(
        self, processor: Any, texts: list[str], images: list[Any], videos: list[Clip]
    ) -> Any:
        return processor(text=texts, images=images or None, padding=True, return_tensors="pt")


@hookimpl
def register_formatters(register) -> None:  # type: ignore[no-untyped-def]
    register(ImageExpansionFormatter())
