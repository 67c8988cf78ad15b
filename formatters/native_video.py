"""`native-video`: for processors that take `videos=` and expand one video token themselves
(Qwen2/2.5/3-VL, LLaVA-NeXT-Video, LLaVA-OneVision, InternVL, SmolVLM2, Gemma 4, GLM-4V, ...).

The Clip's frames go in as one video with `do_sample_frames=False` (they are already sampled),
with the Clip's real frame indices, fps and duration as video metadata for processors that
place frames in time.
"""

from __future__ import annotations

from typing import Any

from vidtt.plugin_api import Clip, hookimpl

from .common import ChatFormatter, Row, frames_of


class NativeVideoFormatter(ChatFormatter):
    name = "native-video"
    description = "the processor takes the frames as a video (LLaVA-NeXT-Video, Qwen2-VL, ...)"
    priority = 20

    needs = (
        ("video_processor", "the processor has no video processor (it takes no videos=)"),
        ("video_token", "the processor has no video token"),
    )

    def expand(self, clip: Clip, row: Row) -> list[dict[str, Any]]:
        row.videos.append(clip)
        return [{"type": "video"}]

    def processor_kwargs(self, processor: Any, rows: list[Row]) -> dict[str, Any]:
        clips = [clip for row in rows for clip in row.videos]
        if not clips:
            return {}
        kwargs: dict[str, Any] = {
            "videos": [[frames_of(clip) for clip in row.videos] for row in rows],
            "do_sample_frames": False,
        }
        if _takes_metadata(processor):
            kwargs["video_metadata"] = [video_metadata(clip) for clip in clips]
        return kwargs


def video_metadata(clip: Clip) -> Any:
    """transformers' VideoMetadata for a Clip: the real indices, fps and duration."""
    from transformers.video_utils import VideoMetadata

    return VideoMetadata(
        total_num_frames=clip.info.frame_count or len(clip),
        fps=clip.info.fps or clip.sampled_fps,
        width=clip.width,
        height=clip.height,
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
