"""A video's moments as `vidtt index` makes them.

A video is sampled by the `interval` sampler, one frame every `every` seconds, a `CHUNK` of
the video at a time, so memory holds one chunk's frames whatever the video's length. Each
frame is a `frame` moment from its time to the next frame's, with its embedding and a JPEG
thumbnail in the library's `thumbnails/` folder (local libraries). As `IndexWork` asks: each
shot the `scene` sampler finds is a `shot` moment, its vector the mean of the frames' over it;
each line the transcriber hears is a `transcript` moment, searchable by its words; the notes
pipeline's model describes the video segment by segment, as `vidtt summarize` does (the notes
kept in the same note store), and each note is a `note` moment, searchable by its words and
their vector. Shots and notes take the thumbnail of the frame nearest their middle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidtt.errors import OptionsError, VidttError
from vidtt.library.records import Moment, Video

if TYPE_CHECKING:
    from vidtt.library.indexing import Tools

CHUNK = 120.0  # seconds of video sampled at a time
THUMB_SIDE = 320  # pixels: the longer side of frames embedded and kept as thumbnails


def moments_of(library: Any, video: Video, tools: Tools) -> Iterator[Moment]:
    """The video's frame moments as they are sampled, then its shots, transcript lines and
    notes (as `tools` asks)."""
    shots = Shots(shot_times(video)) if tools.work.shots else None
    frames = Frames()
    for moment in frame_moments(library, video, tools):
        frames.add(moment)
        if shots is not None:
            shots.add(moment)
        yield moment
    if shots is not None:
        yield from shots.moments(frames)
    if tools.hearing is not None:
        yield from transcript_moments(video, tools)
    if tools.work.notes is not None:
        yield from note_moments(video, tools, frames)


@dataclass
class Frames:
    """The thumbnails of a video's frame moments by time (what shots and notes show)."""

    times: list[float] = field(default_factory=list)
    thumbnails: list[str | None] = field(default_factory=list)

    def add(self, moment: Moment) -> None:
        self.times.append(moment.start)
        self.thumbnails.append(moment.thumbnail)

    def nearest(self, seconds: float) -> str | None:
        """The thumbnail of the frame nearest `seconds` (None: no frame); the times come in
        order, so a bisection finds it."""
        import bisect

        after = bisect.bisect_left(self.times, seconds)
        near = [k for k in (after - 1, after) if 0 <= k < len(self.times)]
        if not near:
            return None
        return self.thumbnails[min(near, key=lambda k: abs(self.times[k] - seconds))]


def shot_times(video: Video) -> list[tuple[float, float]]:
    """The (start, end) of every shot of the video, by the `scene` sampler; `OptionsError`
    when no installed sampler named `scene` finds shots."""
    from vidtt.interfaces import ShotFinder
    from vidtt.plugins import registry
    from vidtt.types import VideoSource

    scene = registry.sampler("scene")
    if not isinstance(scene, ShotFinder):
        raise OptionsError("the sampler named 'scene' finds no shots here: index without shots")
    return scene.shot_times(VideoSource.of(video.path))


class Shots:
    """A video's shots, each gathering the vectors of the frame moments that overlap it,
    weighed by how long they overlap."""

    def __init__(self, times: list[tuple[float, float]]) -> None:
        self.times = sorted((a, b) for a, b in times if b > a)
        self.starts = [a for a, _ in self.times]
        self.sums: list[Any] = [None] * len(self.times)

    def add(self, frame: Moment) -> None:
        import bisect

        if frame.vector is None:
            return
        k = max(0, bisect.bisect_right(self.starts, frame.start) - 1)
        while k < len(self.times) and self.times[k][0] <= max(frame.start, frame.end - 1e-9):
            start, end = self.times[k]
            if end > frame.start:  # weighed by the seconds the frame stands for in the shot
                weight = max(min(end, frame.end) - max(start, frame.start), 1e-3)
                vector = frame.vector.astype("float64") * weight
                total = self.sums[k]
                self.sums[k] = vector if total is None else total + vector
            k += 1

    def moments(self, frames: Frames) -> Iterator[Moment]:
        """A `shot` moment a shot that a frame overlaps: the mean of their vectors, made unit."""
        import numpy as np

        for (start, end), total in zip(self.times, self.sums):
            if total is None or not np.linalg.norm(total):
                continue
            vector = (total / np.linalg.norm(total)).astype("float32")
            yield Moment("shot", start, end, "", vector, frames.nearest((start + end) / 2))


def note_moments(video: Video, tools: Tools, frames: Frames) -> list[Moment]:
    """The video's segment notes (made by the pipeline's model, or found in its note store),
    a `note` moment each, its words embedded."""
    from vidtt.pipeline.notes import timeline

    pipe = tools.notes_pipeline()
    notes = [n for n in timeline(pipe, {"videos": [video.path]}).notes if n.note.strip()]
    if not notes:
        return []
    vectors = tools.embedder.embed_texts([" ".join(n.note.split()) for n in notes], tools.options)
    return [
        Moment("note", n.start, n.end, n.note.strip(), v, frames.nearest((n.start + n.end) / 2))
        for n, v in zip(notes, vectors)
    ]


def transcript_moments(video: Video, tools: Tools) -> list[Moment]:
    """What is said in the video, a `transcript` moment a line, its words embedded; none for a
    video without audio."""
    from vidtt.errors import NoAudioError
    from vidtt.types import VideoSource

    assert tools.hearing is not None
    transcriber, heard = tools.hearing
    try:
        transcript = transcriber.transcribe(VideoSource.of(video.path), heard)
    except NoAudioError:
        return []
    lines = [segment for segment in transcript.segments if segment.text.strip()]
    if not lines:
        return []
    vectors = tools.embedder.embed_texts([line.text.strip() for line in lines], tools.options)
    return [
        Moment("transcript", line.start, max(line.end, line.start), line.text.strip(), vector)
        for line, vector in zip(lines, vectors)
    ]


def frame_moments(library: Any, video: Video, tools: Tools) -> Iterator[Moment]:
    """The video's frame moments, a chunk at a time: each frame from its time to the next's."""
    from vidtt.plugins import registry
    from vidtt.types import VideoSource

    sampler = registry.sampler("interval")
    every = tools.work.every
    thumbs = _thumbnail_folder(library, video)
    duration = video.duration or 0.0
    start = 0.0
    while start < duration:
        end = min(start + CHUNK, duration)
        chosen = sampler.options(
            every=every, start=start, end=end, max_side=THUMB_SIDE, min_frames=1
        )
        try:
            clip = sampler.sample(VideoSource.of(video.path), chosen)
        except VidttError:
            if start == 0.0:
                raise  # a video that cannot be read at all fails as a whole
            break  # past the last frame (a duration the container overstated)
        vectors = tools.embedder.embed_frames(clip.array, tools.options)
        times = [*clip.timestamps, end]
        for k, frame in enumerate(clip.array):
            stop = min(times[k + 1], times[k] + every) if times[k + 1] > times[k] else times[k]
            yield Moment(
                kind="frame",
                start=times[k],
                end=max(stop, times[k]),
                vector=vectors[k],
                thumbnail=_thumbnail(thumbs, times[k], frame),
            )
        start = end


def _thumbnail_folder(library: Any, video: Video) -> Path | None:
    """Where a local library keeps this video's thumbnails (None for object storage)."""
    root = Path(str(library.uri))
    if "://" in str(library.uri) or not root.is_dir():
        return None
    folder = root / "thumbnails" / video.video_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _thumbnail(folder: Path | None, seconds: float, frame: Any) -> str | None:
    """A JPEG of `frame` in `folder`, named by its time in milliseconds; its path."""
    if folder is None:
        return None
    from PIL import Image

    path = folder / f"{round(seconds * 1000):09d}.jpg"
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    Image.fromarray(frame).save(temporary, format="JPEG", quality=80)
    os.replace(temporary, path)
    return str(path)
