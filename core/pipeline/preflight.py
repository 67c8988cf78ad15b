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
