"""The video library: per video its moments (shots, segment notes, transcript lines, sampled
frames) with text and an embedding, kept in LanceDB and searched by text and vector at once.
See docs/library.md. Importing this package imports neither lancedb, pyarrow nor NumPy."""

from vidtt.library.location import libraries_dir, locate
from vidtt.library.records import KINDS, Hit, Moment, Plan, Video, video_id
from vidtt.library.store import Library

__all__ = [
    "KINDS",
    "Hit",
    "Library",
    "Moment",
    "Plan",
    "Video",
    "libraries_dir",
    "locate",
    "video_id",
]
