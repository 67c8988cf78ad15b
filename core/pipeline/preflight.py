"""Checks that need no model, run before one loads: a mistake costs milliseconds, not a load.

`preflight` gathers every problem it finds (config, question, local video paths, URL syntax)
into one error; `sample_videos` then samples the videos with the config's sampler and limits, so
an unreadable video or an impossible frame count also fails before the model loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidtt import limits
from vidtt.config import PipelineConfig, join_problems
from vidtt.errors import ConfigError, OptionsError, VidttError
from vidtt.media.sample import label_of, sample_video
from vidtt.plugins.registry import Registry
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


def config_problems(config: PipelineConfig, registry: Registry) -> list[VidttError]:
    return [ConfigError(text) for text in config.problems(registry)]


def preflight(
    config: PipelineConfig,
    registry: Registry,
    videos: Sequence[Any] | None = None,
    question: Any = None,
    ask: bool = True,
) -> None:
    """Raise one error naming every problem found (its type: the first problem's)."""
    found = config_problems(config, registry)
    if videos is not None:
        found += video_problems(videos)
    if ask:
        found += question_problems(question)
    if found:
        raise type(found[0])(join_problems([str(e) for e in found]))


def sample_videos(settings: Settings, videos: Sequence[Any]) -> list[Clip]:
    """Sample each video with the settings' sampler, options, frame rule and limits."""
    sampler, options = settings.sampler, settings.sampler_options()
    with limits.use(settings.config.limits):
        return [
            sample_video(video, sampler, options, rule=settings.rule, number=number)
            for number, video in enumerate(videos, 1)
        ]
