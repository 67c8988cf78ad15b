"""What a video holds (frame count, size, duration), read from its index without decoding:
for planning how many frames to sample."""

from __future__ import annotations

from vidtt.plugin_api import VideoInfo, VideoSource, current_limits

from .decode import Guard
from .index import scan
from .sources import open_media


def probe(source: VideoSource) -> VideoInfo:
    """The video's info, from its container and packet index (no frame is decoded)."""
    from .base import main_video_stream, video_info

    if source.kind == "frames":
        return frames_info(source)
    guard = Guard(current_limits(), source.label)
    with open_media(source) as media, media.container() as container:
        stream = main_video_stream(container)
        guard.check_size(stream.codec_context.width, stream.codec_context.height)
        return video_info(container, stream, scan(container, stream, source.label, guard))


def frames_info(source: VideoSource) -> VideoInfo:
    import numpy as np

    frames = source.value
    first = np.asarray(frames[0])
    height, width = first.shape[:2] if first.ndim >= 2 else (0, 0)
    fps = source.fps or 1.0
    return VideoInfo(
        duration=len(frames) / fps, fps=fps, frame_count=len(frames), width=width, height=height
    )
