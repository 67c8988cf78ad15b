"""One way to sample a video, for every entry point: a Clip that records why it has its frames."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vidtt import limits
from vidtt.errors import VidttError
from vidtt.interfaces import Sampler, SamplerOptions
from vidtt.limits import Limits
from vidtt.media.fetch import downloads_reused
from vidtt.media.frame_cache import FrameCache, source_key
from vidtt.types import Clip, VideoSource
from vidtt.urls import redact


@contextmanager
def media_context(given: Limits | None = None) -> Iterator[Limits]:
    """What every strategy samples inside, entered once per request: the `given` limits (a
    config's, over those in force) and download reuse (a URL probed, scanned for shots,
    sampled in batches and refined is fetched once)."""
    with limits.use(given) as chosen, downloads_reused():
        yield chosen


def sample_video(
    video: Any,
    sampler: Sampler,
    options: SamplerOptions,
    *,
    rule: str = "",
    number: int = 1,
    cache: FrameCache | None = None,
    budget: dict[str, Any] | None = None,
) -> Clip:
    """`video` sampled into a Clip whose metadata names the frame `rule` (and the `budget`
    plan, if any); a Clip passes through. With a `cache`, a video is decoded once per sampler
    setting while it stays cached. Errors name the video by its `number` and label."""
    if isinstance(video, Clip):
        return video
    try:
        source = VideoSource.of(video)
        key = source_key(source)
        if key is not None:
            key = (*key, sampler.name, options.model_dump_json())
        store = cache if cache is not None else _NO_CACHE
        made = store.get(key, lambda: sampler.sample(source, options))
    except VidttError as exc:
        raise type(exc)(f"video {number} ({label_of(video)}): {exc}") from None
    clip = copy.copy(made)  # its own notes; the frames stay shared
    clip.origin = source if source.kind != "frames" else None
    clip.metadata = {**made.metadata, "frames_rule": rule}
    if budget is not None:
        clip.metadata["budget"] = budget
    return clip


def label_of(video: Any) -> str:
    """How an error names a video: its label, path, or type."""
    label = getattr(video, "label", None)
    if label:
        return str(label)
    return redact(str(video)) if isinstance(video, (str, Path)) else type(video).__name__


_NO_CACHE: FrameCache[Clip] = FrameCache(max_bytes=0)
