"""Helpers for tests, benchmarks and `vidtt demo`: synthetic videos (and tiny models).

Nothing here is imported by `import vidtt`; the video helpers need only PyAV and numpy.
"""

from .models import make_tiny_llava as make_tiny_llava
from .videos import (
    frame_pattern,
    make_audio,
    make_audio_only,
    make_scenes_video,
    make_square_video,
    make_video,
    read_frame_number,
)

__all__ = [
    "frame_pattern",
    "make_audio",
    "make_audio_only",
    "make_scenes_video",
    "make_square_video",
    "make_video",
    "read_frame_number",
]
