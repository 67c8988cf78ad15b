"""What a video holds, read from its container and packet index without decoding a frame: the
stream to sample, its info (frame count, size, duration), and a warning when it is cut short."""

from __future__ import annotations

from typing import Any

from vidtt.limits import current as current_limits
from vidtt.media.containers import main_video_stream
from vidtt.types import VideoInfo, VideoSource

from .decoder import Guard
from .index import StreamIndex
from .kept_indexes import scanned
from .opening import open_media

__all__ = ["frames_info", "main_video_stream", "probe", "rotated", "shortfall", "video_info"]


def probe(source: VideoSource) -> VideoInfo:
    """The video's info, from its container and packet index (no frame is decoded)."""
    if source.kind == "frames":
        return frames_info(source)
    guard = Guard(current_limits(), source.label)
    with open_media(source) as media, media.container() as container:
        stream = main_video_stream(container)
        guard.check_size(stream.codec_context.width, stream.codec_context.height)
        return video_info(container, stream, scanned(container, stream, source, guard))


def frames_info(source: VideoSource) -> VideoInfo:
    import numpy as np

    frames = source.value
    first = np.asarray(frames[0])
    height, width = first.shape[:2] if first.ndim >= 2 else (0, 0)
    fps = source.fps or 1.0
    return VideoInfo(
        duration=len(frames) / fps, fps=fps, frame_count=len(frames), width=width, height=height
    )


def shortfall(container: Any, stream: Any, index: StreamIndex) -> list[str]:
    """A warning when the frames cover clearly less time than the headers declare."""
    covered = index.duration()
    if stream.duration and stream.time_base:
        declared = float(stream.duration * stream.time_base)
    elif container.duration:  # some demuxers count it from 0, some from the start time:
        declared = container.duration / 1_000_000  # compare the frames' end with the smaller
        covered += max(float(index.start * index.time_base), 0.0)
    else:
        return []
    if covered < declared * 0.9 - 2 * index.frame_duration():
        return [
            f"the frames cover {covered:.2f} s of the {declared:.2f} s the file declares: "
            "it is probably cut short or damaged"
        ]
    return []


def video_info(container: Any, stream: Any, index: StreamIndex) -> VideoInfo:
    context = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    if not fps and index.frame_duration() > 0:
        fps = 1.0 / index.frame_duration()
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    return VideoInfo(
        duration=index.duration() or None,
        fps=fps,
        frame_count=len(index),
        frame_count_exact=index.complete,
        width=context.width,
        height=context.height,
        codec=context.name,
        container=container.format.name,
        start_time=start,
        keyframe_count=len(index.keyframes) if index.match == "pts" else None,
    )


def rotated(info: VideoInfo, rotation: int) -> VideoInfo:
    """`info` for frames turned upright by `rotation` degrees."""
    quarter = rotation % 180 != 0
    width, height = (info.height, info.width) if quarter else (info.width, info.height)
    return info.model_copy(update={"rotation": rotation, "width": width, "height": height})
