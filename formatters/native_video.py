"""`native-video`: for processors that take `videos=` and expand one video token themselves
(LLaVA-NeXT-Video, LLaVA-OneVision, Qwen2-VL and Qwen2.5-VL, ...).

The Clip's frames go in as one video with `do_sample_frames=False` (they are already sampled),
with the Clip's real frame indices, fps and duration as video metadata for processors that
place frames in time.
"""

from __future__ import annotations

from typing import Any

from vidtt import Clip, hookimpl

from .common import ChatFormatter


class NativeVideoFormatter(ChatFormatter):
    name = "native-video"
    description = "the processor takes the frames as a video (LLaVA-NeXT-Video, Qwen2-VL, ...)"
    priority = 20

    needs = (
        ("video_processor", "the processor has no video processor (it takes no videos=)"),
        ("video_token", "the processor has no video token"),
    )

    def expand(self, clip: Clip, images: list[Any]) -> list[dict[str, Any]]:
        return [{"type": "video"}]

    def call_processor(
        self, processor: Any, texts: list[str], images: list[Any], videos: list[Clip]
    ) -> Any:
        kwargs: dict[str, Any] = {}
        if videos:
            kwargs["videos"] = [clip.frames for clip in videos]
            kwargs["do_sample_frames"] = False
            if _takes_metadata(processor):
                kwargs["video_metadata"] = [video_metadata(clip) for clip in videos]
        return processor(
            text=texts, images=images or None, padding=True, return_tensors="pt", **kwargs
        )


def video_metadata(clip: Clip) -> Any:
    """transformers' VideoMetadata for a Clip: the real indices, fps and duration."""
    from transformers.video_utils import VideoMetadata

    width, height = clip.frames[0].size
    return VideoMetadata(
        total_num_frames=clip.info.frame_count or len(clip),
        fps=clip.info.fps or clip.sampled_fps,
        width=width,
        height=height,
        duration=clip.info.duration,
        video_backend="vidtt",
        frames_indices=list(clip.indices),
    )


def _takes_metadata(processor: Any) -> bool:
    """Whether the video processor accepts `video_metadata` (recent transformers)."""
    kwargs = getattr(processor.video_processor, "valid_kwargs", None)
    return "video_metadata" in getattr(kwargs, "__annotations__", {})


@hookimpl
def register_formatters(register) -> None:  # type: ignore[no-untyped-def]
    register(NativeVideoFormatter())
