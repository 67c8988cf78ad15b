"""A long video's range, cut into segments and sampled, for the `segments` strategy.

The requested range is cut into segments: the `scene` sampler's shots when it is registered
(shots shorter than `min_segment` join a neighbour, shots longer than twice the segment length
are split, then at most `max_segments`), else equal fixed windows. The segment length is
`segment_seconds`, or max(`min_segment`, duration / `max_segments`): at most `max_segments`
segments, none shorter than `min_segment` seconds (a shorter video is one). Each segment's
frames are sampled through the pipeline's frame cache (equal windows: one uniform pass over a
batch of segments, its equal spacing giving each segment its frames; shots: one pass each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vidtt.errors import OptionsError
from vidtt.interfaces import Sampler, ShotFinder
from vidtt.media.decode.probe import probe as probe_video
from vidtt.media.frame_cache import FrameCache
from vidtt.media.sample import sample_video
from vidtt.pipeline.request import Request
from vidtt.pipeline.resolved import Resolved
from vidtt.types import (
    Clip,
    ImagePart,
    SegmentOptions,
    VideoPart,
    VideoSource,
)

if TYPE_CHECKING:
    from vidtt.pipeline.protocol import PipelineLike


def the_video(request: Request) -> Any:
    """The request's one video (the segments strategy answers about one at a time)."""
    if request.videos is not None:
        videos = list(request.videos)
    else:
        parts = [p for m in request.messages or [] for p in m.content]
        if any(isinstance(p, ImagePart) for p in parts):
            raise OptionsError("strategy segments takes one video and no images")
        videos = [p.video for p in parts if isinstance(p, VideoPart)]
    if len(videos) != 1:
        raise OptionsError(
            f"strategy segments takes one video, not {len(videos)}: ask about each on its own"
        )
    video = videos[0]
    if isinstance(video, Clip):  # sampled already (a command's): the segments resample it
        origin = video.origin
        if origin is None or origin.kind == "frames":
            raise OptionsError("strategy segments samples the video itself: pass a path or URL")
        return origin.value
    return video


@dataclass
class Span:
    """The range of the video the segments cover, and how it is sampled (through the
    pipeline's frame cache)."""

    video: Any
    start: float
    end: float
    sampler: Sampler
    options: dict[str, Any]  # uniform options over the pipeline's (size, max_side)
    cache: FrameCache | None = None


def span_of(pipe: PipelineLike, resolved: Resolved) -> Span:
    video = the_video(resolved.request)
    source = VideoSource.of(video)
    options = resolved.sampler_options
    uniform = pipe.registry.sampler("uniform")
    info = probe_video(source)
    if not info.duration:
        raise OptionsError(f"{source.label}: its duration is unknown: strategy segments needs it")
    start = float(options.start or 0.0)
    end = float(min(options.end, info.duration) if options.end else info.duration)
    if end <= start:
        raise OptionsError(f"{source.label}: nothing to sample between {start} and {end} s")
    keep = {k: v for k, v in options.model_dump(include={"size", "max_side"}).items() if v}
    return Span(video, start, end, uniform, keep, pipe.cache)


# -- cutting ------------------------------------------------------------------------------------
def segment_length(duration: float, options: SegmentOptions) -> float:
    """`segment_seconds`, else max(`min_segment`, duration / `max_segments`)."""
    if options.segment_seconds:
        return max(options.segment_seconds, duration / options.max_segments)
    return max(options.min_segment, duration / options.max_segments)


def windows(start: float, end: float, options: SegmentOptions) -> list[tuple[float, float]]:
    """Equal windows over [start, end), each about `segment_length` long."""
    duration = end - start
    count = max(
        1, min(options.max_segments, math.ceil(duration / segment_length(duration, options) - 1e-9))
    )
    return equal_parts(start, end, count)


def equal_parts(start: float, end: float, count: int) -> list[tuple[float, float]]:
    """[start, end) cut into `count` equal parts, the last ending exactly at `end`."""
    step = (end - start) / count
    return [
        (start + k * step, end if k == count - 1 else start + (k + 1) * step) for k in range(count)
    ]


def from_shots(
    shots: list[tuple[float, float]], start: float, end: float, options: SegmentOptions
) -> list[tuple[float, float]]:
    """Shots as segments: long ones split into windows, short ones joined to the shorter
    neighbour, then joined until at most `max_segments` are left."""
    length = segment_length(end - start, options)
    pieces: list[tuple[float, float]] = []
    for a, b in shots:
        a, b = max(a, start), min(b, end)
        if b <= a:
            continue
        parts = max(1, math.floor((b - a) / length)) if b - a > 2 * length else 1
        pieces += equal_parts(a, b, parts)
    if not pieces:
        return windows(start, end, options)
    pieces[0] = (start, pieces[0][1])
    pieces[-1] = (pieces[-1][0], end)
    pieces = [(a, b) for (a, _), (b, _) in zip(pieces, [*pieces[1:], (end, end)])]  # no gaps
    least = min(options.min_segment, length)
    while len(pieces) > 1:
        k = min(range(len(pieces)), key=lambda n: pieces[n][1] - pieces[n][0])
        if len(pieces) <= options.max_segments and pieces[k][1] - pieces[k][0] >= least:
            break
        left = pieces[k - 1][1] - pieces[k - 1][0] if k > 0 else math.inf
        right = pieces[k + 1][1] - pieces[k + 1][0] if k + 1 < len(pieces) else math.inf
        j = k - 1 if left <= right else k
        pieces = [*pieces[:j], (pieces[j][0], pieces[j + 1][1]), *pieces[j + 2 :]]
    return pieces


def cut(
    pipe: PipelineLike, span: Span, options: SegmentOptions
) -> tuple[list[tuple[float, float]], str]:
    """The segments of the span and how they were cut (`shots` or `windows`)."""
    source = VideoSource.of(span.video)
    if options.shots and "scene" in pipe.registry.names("samplers"):
        scene = pipe.registry.sampler("scene")
        if isinstance(scene, ShotFinder):
            shots = scene.shot_times(source, start=span.start, end=span.end)
            if len(shots) > 1:
                return from_shots(shots, span.start, span.end, options), "shots"
    return windows(span.start, span.end, options), "windows"


def sample_segments(
    span: Span, ranges: list[tuple[float, float]], frames: int, how: str
) -> list[Clip]:
    """`frames` frames of each range: equal windows in one uniform pass over them all (the
    uniform spacing puts `frames` in each), shots (or a pass that did not) one pass each."""
    if how == "windows" and len(ranges) > 1:
        options = span.sampler.options(
            **span.options, num_frames=frames * len(ranges), start=ranges[0][0], end=ranges[-1][1]
        )
        clip = sample_video(span.video, span.sampler, options, rule=RULE, cache=span.cache)
        parts = [part(clip, k * frames, (k + 1) * frames) for k in range(len(ranges))]
        if len(clip) == frames * len(ranges) and all(
            all(a - 1e-6 <= t < b + 1e-6 for t in p.timestamps) for p, (a, b) in zip(parts, ranges)
        ):
            return parts
    return [sample_range(span, a, b, frames) for a, b in ranges]


RULE = "segments strategy"  # the frame rule a segment's clip names


def sample_range(span: Span, start: float, end: float, frames: int) -> Clip:
    options = span.sampler.options(**span.options, num_frames=frames, start=start, end=end)
    try:
        return sample_video(span.video, span.sampler, options, rule=RULE, cache=span.cache)
    except OptionsError:  # fewer frames in a short segment than asked for: all it has
        options = span.sampler.options(**span.options, start=start, end=end)
        return sample_video(span.video, span.sampler, options, rule=RULE, cache=span.cache)


def part(clip: Clip, a: int, b: int) -> Clip:
    """Frames a..b of a clip as a Clip of their own."""
    piece = Clip(
        array=clip.array[a:b],
        indices=clip.indices[a:b],
        timestamps=clip.timestamps[a:b],
        info=clip.info,
        sampler=clip.sampler,
        source=clip.source,
        warnings=list(clip.warnings),
        metadata=dict(clip.metadata),
    )
    piece.origin = clip.origin
    return piece
