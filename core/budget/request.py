"""A visual-token budget applied to one request: probe its videos, plan the frames (and size)
with `vidtt.budget.planner`, and give the sampler options that carry the plan out."""

from __future__ import annotations

import math
from typing import Any

from vidtt.budget.counts import text_tokens
from vidtt.budget.planner import plan
from vidtt.budget.schema import Budget, BudgetPlan
from vidtt.errors import OptionsError
from vidtt.interfaces import Sampler, SamplerOptions
from vidtt.types import Message, VideoInfo, VideoPart, VideoSource

COUNT_KEYS = ("num_frames", "max_frames")


def budget_of(settings: dict[str, Any]) -> Budget | None:
    """The budget from `max_visual_tokens` / `fit` settings, or None."""
    try:
        return Budget.of(settings.get("max_visual_tokens"), settings.get("fit"))
    except ValueError as exc:
        raise OptionsError(f"visual-token budget: {exc}") from None


def output_size(info: VideoInfo, options: SamplerOptions) -> tuple[int, int]:
    """The (width, height) the sampler would give frames of `info` with `options`."""
    width, height = max(info.width, 1), max(info.height, 1)
    if isinstance(options.size, tuple):
        return options.size
    if isinstance(options.size, int):
        scale = options.size / min(width, height)
    elif options.max_side is not None:
        scale = min(1.0, options.max_side / max(width, height))
    else:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def frames_in_range(info: VideoInfo, options: SamplerOptions) -> int | None:
    """How many frames the sampler's range (and rate, if it has one) can give."""
    count = info.frame_count
    if count is None:
        return None
    duration = info.duration or 0.0
    start, end = options.start or 0.0, options.end if options.end is not None else duration
    if duration > 0:
        count = max(1, math.ceil(count * (min(end, duration) - start) / duration))
    every = getattr(options, "every", None)
    rate = getattr(options, "fps", None) or (1 / every if every else None)
    if rate and duration > 0:
        count = min(count, max(1, math.ceil((min(end, duration) - start) * rate)))
    return count


def plan_request(
    budget: Budget,
    *,
    processor: Any,
    formatter: Any,
    sampler: Sampler,
    options: SamplerOptions,
    conversation: list[Message],
    explicit: int | None,
    context: int | None,
    max_new_tokens: int,
) -> tuple[SamplerOptions, BudgetPlan | None]:
    """The sampler options that sample the conversation's videos within `budget`, and the
    plan; `explicit`: a frame count the user set (it wins when it fits)."""
    key = sampler.frames_option()
    if key is None:
        raise OptionsError(
            f"sampler {sampler.name!r} has no frame-count option, so a visual-token budget "
            "cannot choose its frames: use uniform, interval or keyframe"
        )
    videos = [p.video for m in conversation for p in m.content if isinstance(p, VideoPart)]
    if not videos:
        return options, None
    infos = [sampler.probe(VideoSource.of(v)) for v in videos]
    known = [i for i in infos if i is not None]
    counts = [c for c in (frames_in_range(i, options) for i in known) if c is not None]
    size = output_size(known[0], options) if known else None
    chosen = plan(
        processor,
        formatter,
        budget,
        video_frames=min(counts) if counts else None,
        max_frames=None,
        size=size,
        sizes=None,
        context=context,
        text_tokens=text_tokens(processor, formatter, conversation),
        max_new_tokens=max_new_tokens,
        requested_frames=explicit,
        videos=len(videos),
    )
    values = options.model_dump(exclude_none=True)
    values.update(chosen.sampler_options(key))
    if chosen.size is not None:
        values.pop("max_side", None)
    return sampler.options(**values), chosen
