"""What a library holds and answers: a video file as indexed, its moments, a plan, a hit.

Plain dataclasses (NumPy only in type hints), so `vidtt index` and `vidtt search` can build and
read them without the storage engine imported.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

KINDS = ("shot", "note", "transcript", "frame")


def video_id(path: str) -> str:
    """A stable id for a video: 24 hex digits of the SHA-256 of its resolved path (a URL's
    text as given), so the same file reached by two spellings is one video."""
    return hashlib.sha256(resolved(path).encode("utf-8")).hexdigest()[:24]


def is_url(source: str) -> bool:
    """Whether `source` is an http(s) URL (a video indexed by its address, never stat'ed)."""
    from vidtt.urls import URL_SCHEMES

    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.lower() in URL_SCHEMES


def resolved(path: str) -> str:
    """A local path made absolute, links followed; a URL (`scheme://...`) left as it is."""
    text = os.fspath(path)
    if "://" in text:
        return text
    return str(Path(text).expanduser().resolve())


@dataclass(frozen=True)
class Video:
    """A video as the library knows it: where, how big, when last modified, how long.

    `size` and `mtime_ns` (`os.stat`'s `st_size`, `st_mtime_ns`) say whether the file changed
    since it was indexed; `duration` (seconds, None when not known yet) is for filters."""

    path: str
    size: int
    mtime_ns: int
    duration: float | None = None

    @property
    def video_id(self) -> str:
        return video_id(self.path)

    @classmethod
    def of(cls, source: str | os.PathLike[str]) -> Video:
        """The video at a path (`from_path`) or an http(s) URL: a URL's size and time are not
        known without fetching it, so they are 0, and it is indexed once, by its address."""
        text = os.fspath(source)
        if is_url(text):
            return cls(text, 0, 0)
        return cls.from_path(text)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], duration: float | None = None) -> Video:
        """The video at `path` as it is on disk now (resolved, stat'ed)."""
        full = resolved(os.fspath(path))
        info = os.stat(full)
        return cls(full, info.st_size, info.st_mtime_ns, duration)


@dataclass(frozen=True)
class Moment:
    """A span of a video the library can find: a shot, a segment note, a transcript line or a
    sampled frame, with its text (may be empty, for a frame) and its embedding (float32, the
    library's dimension; None: found by text only)."""

    kind: str
    start: float
    end: float
    text: str = ""
    vector: np.ndarray | None = None
    thumbnail: str | None = None


@dataclass(frozen=True)
class Plan:
    """What indexing has to do for the videos given, against what the library holds:
    `new` (never indexed), `changed` (size or modification time differ, or its last indexing
    did not finish), `unchanged`, and `removed` (indexed, not among those given: the stored
    record, to pass to `Library.remove` by `video_id`)."""

    new: list[Video] = field(default_factory=list)
    changed: list[Video] = field(default_factory=list)
    unchanged: list[Video] = field(default_factory=list)
    removed: list[Video] = field(default_factory=list)

    @property
    def to_index(self) -> list[Video]:
        """The videos to index now: new ones, then changed ones."""
        return [*self.new, *self.changed]


@dataclass(frozen=True)
class Hit:
    """One moment a search found, best first: where (video, start, end, in seconds), what
    (kind, text, thumbnail), and how well (`score`, the fused one; the moment's 1-based rank
    in the full-text and in the vector results, None where it was not among them)."""

    video_id: str
    path: str
    kind: str
    start: float
    end: float
    text: str
    thumbnail: str | None
    score: float
    text_rank: int | None = None
    vector_rank: int | None = None

    def as_dict(self) -> dict[str, object]:
        """The hit as JSON-ready fields."""
        return {
            "video_id": self.video_id,
            "path": self.path,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "thumbnail": self.thumbnail,
            "score": self.score,
            "text_rank": self.text_rank,
            "vector_rank": self.vector_rank,
        }
