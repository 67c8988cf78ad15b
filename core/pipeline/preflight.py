"""Checks that need no model, run before one loads: a mistake costs milliseconds, not a load.

`question_problems` and `video_problems` list the problems of a question and of videos (local
paths, URL syntax); `sample_videos` then samples the videos with the config's sampler and limits,
so an unreadable video or an impossible frame count also fails before the model loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidtt.errors import OptionsError, VidttError
from vidtt.media.sample import label_of, media_context, sample_video
from vidtt.settings.resolve import Settings
from vidtt.types import Clip, VideoSource


def question_problems(question: Any) -> list[VidttError]:
    if not isinstance(question, str) or not question.strip():
        return [OptionsError("the question is empty: ask something about the video")]
    return []


def video_problems(videos: Sequence[Any]) -> list[VidttError]:
    """A problem per local video that is missing or unreadable, or URL that is malformed."""
    found: list[VidttError] = []
    if not videos:
        found.append(OptionsError("no video given: pass a path or an http(s) URL"))
    for number, video in enumerate(videos, 1):
        try:
            source = VideoSource.of(video)
            if source.kind == "path":
                source.checked_path()
            elif source.kind == "url":
                from vidtt.media.fetch import check_url_syntax

                check_url_syntax(source.value)
        except VidttError as exc:
            found.append(type(exc)(f"video {number} ({label_of(video)}): {exc}"))
    return found


def sample_videos(settings: Settings, videos: Sequence[Any]) -> list[Clip]:
    """Sample each video with the settings' sampler, options, frame rule and limits."""
    sampler, options = settings.sampler, settings.sampler_options()
    with media_context(settings.config.limits):
        return [
            sample_video(video, sampler, options, rule=settings.rule, number=number)
            for number, video in enumerate(videos, 1)
        ]


def check_context_early(
    settings: Settings, processor: Any, clips: list[Clip], question: str, timestamps: bool
) -> None:
    """Before the model loads: refuse, with the numbers and the options that fit, a prompt of
    `clips` and `question` that the model's context cannot hold (what the engine would say
    after loading). Reads only the checkpoint's config; anything it cannot tell is left to
    the engine's own check."""
    from vidtt.budget.explain import model_config_of
    from vidtt.engine.generate import check_prompt_size, context_of
    from vidtt.plugins.choose import choose_formatter
    from vidtt.types import Message, TextPart, VideoPart

    config = settings.config
    model_config = model_config_of(config)
    limit = context_of(model_config)
    if limit is None:
        return
    formatter = choose_formatter(
        settings.registry, config.formatter, model_config, processor, config.model
    )
    parts: list[Any] = [VideoPart(video=clip) for clip in clips]
    conversation = [Message(role="user", content=[*parts, TextPart(text=question)])]
    try:
        inputs = formatter.build_inputs([conversation], processor, timestamps=timestamps)
    except Exception:  # the pipeline's own path says what the processor refused
        return
    frames = sum(len(clip) for clip in clips)
    new = config.generation.max_new_tokens
    check_prompt_size(processor, inputs, new, frames, limit)
