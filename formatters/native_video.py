"""`native-video`: for processors that take `videos=` and expand one video token themselves
(Qwen2/2.5/3-VL, LLaVA-NeXT-Video, LLaVA-OneVision, InternVL, SmolVLM2, Gemma 4, GLM-4V, ...).

The Clip's frames go in as one video with `do_sample_frames=False` (they are already sampled),
with the Clip's real frame indices, fps and duration as video metadata for processors that
place frames in time.

Omni processors (Qwen2.5-Omni, Qwen3-Omni) also hear each video's audio: a Clip's `audio` (set
by the pipeline when a transcript is asked) goes in as `audio=` with the audio-in-video flag, as
transformers' recipe for them does (`processor(text=..., videos=..., audio=[...],
use_audio_in_video=True)`; `load_audio_from_video=True` with `audio_from_video_indices` since
transformers 5.24), and the processor interleaves audio and video tokens by time. The template
is rendered with the video part alone: the processor writes the audio tokens inside it.
"""

from __future__ import annotations

import inspect
import typing
import warnings
from typing import Any

from vidtt.plugin_api import SAMPLE_RATE, Clip, hookimpl

from .common import ChatFormatter, Row, frames_of


class NativeVideoFormatter(ChatFormatter):
    name = "native-video"
    description = "the processor takes the frames as a video (LLaVA-NeXT-Video, Qwen2-VL, ...)"
    priority = 20

    needs = (
        ("video_processor", "the processor has no video processor (it takes no videos=)"),
        ("video_token", "the processor has no video token"),
    )

    def takes_audio(self, processor: Any) -> bool:
        return audio_in_video_keyword(processor) is not None

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
        return kwargs | audio_kwargs(processor, clips)

    def call_processor(self, processor: Any, rows: list[Row]) -> Any:
        """The processor outputs, and `use_audio_in_video=True` for generate when the videos'
        audio went in (the recipe's `generate(**inputs, use_audio_in_video=True)`)."""
        inputs = super().call_processor(processor, rows)
        if hears_audio(processor, [clip for row in rows for clip in row.videos]):
            inputs["use_audio_in_video"] = True
        return inputs


def hears_audio(processor: Any, clips: list[Clip]) -> bool:
    """Whether the clips' audio goes to the processor: some clip has audio, and the processor
    takes audio with videos."""
    return any(clip.audio is not None for clip in clips) and bool(audio_in_video_keyword(processor))


def audio_kwargs(processor: Any, clips: list[Clip]) -> dict[str, Any]:
    """The processor keywords that give an omni model the clips' audio (none when no clip has
    audio or the processor takes none). In a batch where some clips have audio, one without
    is heard as silence over its frames: the model reads every video of a batch with its audio
    or none with it. The frames' own rate goes in as `fps` when the clips share one (the
    processor places audio and frames by time from it; otherwise it assumes its default)."""
    keyword = audio_in_video_keyword(processor)
    if keyword is None or all(clip.audio is None for clip in clips):
        return {}
    audio = [audio_of(clip) for clip in clips]
    longest = getattr(processor.feature_extractor, "n_samples", None)
    if isinstance(longest, int) and any(len(samples) > longest for samples in audio):
        warnings.warn(
            f"the model hears at most {longest / SAMPLE_RATE:g} s of each video's audio (its "
            "feature extractor's window); the rest is cut: ask about a shorter range "
            "(start/end)",
            UserWarning,
            stacklevel=2,
        )
    kwargs: dict[str, Any] = {"audio": audio, "sampling_rate": SAMPLE_RATE, keyword: True}
    if keyword == "load_audio_from_video":  # video i's audio is audio[i]
        kwargs["audio_from_video_indices"] = list(range(len(clips)))
    rates = {round(clip.sampled_fps, 6) for clip in clips}
    if len(rates) == 1:
        kwargs["fps"] = rates.pop()
    return kwargs


def audio_of(clip: Clip) -> Any:
    """The clip's 16 kHz mono samples (silence over its frames when it has no audio)."""
    import numpy as np

    if clip.audio is not None:
        return np.asarray(clip.audio.samples, dtype=np.float32)
    span = clip.timestamps[-1] - clip.timestamps[0] + 1 / clip.sampled_fps if clip.timestamps else 1
    return np.zeros(max(1, round(span * SAMPLE_RATE)), dtype=np.float32)


def audio_in_video_keyword(processor: Any) -> str | None:
    """The keyword with which the processor takes each video's audio along with it:
    `load_audio_from_video` (transformers 5.24 and later, with `audio_from_video_indices`),
    `use_audio_in_video` (earlier), or None when it takes no audio with videos. Read from the
    processor: a feature extractor at 16 kHz, and a call taking `audio=` and the flag."""
    extractor = getattr(processor, "feature_extractor", None)
    if extractor is None or getattr(processor, "video_processor", None) is None:
        return None
    if getattr(extractor, "sampling_rate", SAMPLE_RATE) != SAMPLE_RATE:
        return None
    try:
        parameters = inspect.signature(type(processor).__call__).parameters
    except (TypeError, ValueError):
        return None
    if "audio" not in parameters:
        return None
    top, nested = _call_keywords(processor, parameters.get("kwargs"))
    if "load_audio_from_video" in top:
        return "load_audio_from_video"
    if "use_audio_in_video" in top | nested:
        return "use_audio_in_video"
    return None


def _call_keywords(processor: Any, kwargs: Any) -> tuple[set[str], set[str]]:
    """The keywords a processor call takes by its typed `**kwargs` (and the processor's
    `valid_processor_kwargs`): those at the top, and those within `videos_kwargs` and kin."""
    kinds = [getattr(processor, "valid_processor_kwargs", None)]
    origin = typing.get_origin(getattr(kwargs, "annotation", None))
    if getattr(origin, "_name", None) == "Unpack":  # typing's or typing_extensions'
        kinds += typing.get_args(kwargs.annotation)
    top: set[str] = set()
    nested: set[str] = set()
    for kind in kinds:
        fields = getattr(kind, "__annotations__", None)
        if not isinstance(fields, dict):
            continue
        top |= set(fields)
        for value in fields.values():
            if isinstance(getattr(value, "__annotations__", None), dict):
                nested |= set(value.__annotations__)
    return top, nested


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
