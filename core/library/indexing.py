"""`vidtt index`'s work: videos found, planned against the library (new, changed, removed),
then each one's frames sampled, embedded and written as moments.

A video is sampled by the `interval` sampler, one frame every `every` seconds, a `CHUNK` of
the video at a time, so memory holds one chunk's frames whatever the video's length. Each
frame is a `frame` moment from its time to the next frame's, with its embedding and a JPEG
thumbnail in the library's `thumbnails/` folder (local libraries). A video is written
whole or not at all (`Library.put_video`): Ctrl-C or a crash loses only the video being
indexed, which the next run indexes again.

Optionally (`IndexWork`): with `shots`, each shot the `scene` sampler finds is a `shot`
moment, its vector the mean of the frames' over it; with a transcriber, each line said is a
`transcript` moment, searchable by its words; with `notes` (a pipeline's config), the model
describes the video segment by segment, as `vidtt summarize` does (the notes kept in the same
note store), and each note is a `note` moment, searchable by its words and their vector.
Shots and notes take the thumbnail of the frame nearest their middle.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidtt.errors import OptionsError, VidttError
from vidtt.library.records import Moment, Plan, Video, is_url
from vidtt.progress import Counter, TerminalBar

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".ts", ".mpg", ".mpeg"}
CHUNK = 120.0  # seconds of video sampled at a time
THUMB_SIDE = 320  # pixels: the longer side of frames embedded and kept as thumbnails
NOTES_RECIPE = {  # the settings of a notes pipeline that change what its notes say
    "model",
    "revision",
    "dtype",
    "sampler",
    "sampler_options",
    "formatter",
    "max_visual_tokens",
    "generation",
    "transcript",
    "transcriber",
    "transcriber_options",
    "segment_options",
}


@dataclass
class Indexed:
    """What a run did: videos indexed, left as they were, removed, failed (with why)."""

    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    moments: int = 0
    failed: list[str] = field(default_factory=list)


def find_videos(sources: Iterable[str]) -> tuple[list[str], list[str]]:
    """The videos `sources` name (files, http(s) URLs, folders searched recursively, globs,
    JSONL lists of `{"video": ...}` lines) and the folders given, whose missing videos count
    as removed.
    A source that names nothing is one error listing every such source."""
    found: list[str] = []
    folders: list[str] = []
    missing: list[str] = []
    for source in sources:
        path = Path(source).expanduser()
        if is_url(source):
            found.append(source)
        elif path.is_dir():
            folders.append(str(path.resolve()))
            found += sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.is_file() and path.suffix.lower() == ".jsonl":
            found += _listed(path)
        elif path.is_file():
            found.append(str(path))
        elif matches := sorted(glob.glob(str(path), recursive=True)):
            found += [m for m in matches if Path(m).is_file()]
        else:
            missing.append(source)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        )
        raise OptionsError(f"no video found at {shown}: give video files, folders or globs")
    return list(dict.fromkeys(found)), folders


def _listed(path: Path) -> list[str]:
    """The videos of a JSONL list: `{"video": PATH}` a line (relative to the list's folder)."""
    videos = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            video = row["video"] if isinstance(row, dict) else row
        except (json.JSONDecodeError, KeyError, TypeError):
            raise OptionsError(f'{path} line {number}: expected {{"video": "PATH"}}') from None
        videos.append(
            str(video) if is_url(str(video)) else str((path.parent / str(video)).resolve())
        )
    return videos


def plan_videos(library: Any, files: list[str], folders: list[str], work: IndexWork) -> Plan:
    """What indexing `files` with `work` means for `library` (missing ones under `folders`
    removed; one indexed by another recipe changed)."""
    videos = []
    for name in files:
        try:
            videos.append(Video.of(name))
        except OSError as exc:
            raise OptionsError(f"cannot read {name}: {exc.strerror or exc}") from None
    return library.plan(videos, within=folders or None, recipe=work.recipe())


@dataclass(frozen=True)
class IndexWork:
    """What indexing a video does, by plugin names and option values: picklable, so every
    process that indexes (this one, Ray workers) loads the same tools from it (`load`)."""

    embedder: str = "clip"
    embedder_options: dict[str, Any] = field(default_factory=dict)
    every: float = 2.0  # seconds between frame moments
    transcriber: str | None = None  # heard too when set
    transcriber_options: dict[str, Any] = field(default_factory=dict)
    shots: bool = False  # each shot a moment too
    notes: Any = None  # a `PipelineConfig` whose model writes segment notes; None: no notes

    def recipe(self) -> str:
        """What this work writes into a video's moments, as 16 hex digits: a video indexed by
        another recipe is indexed again (the embedder is the library's own, so not in it)."""
        import hashlib
        import json

        notes = None
        if self.notes is not None:
            notes = self.notes.model_dump(mode="json", include=NOTES_RECIPE)
        made = {
            "every": self.every,
            "shots": self.shots,
            "transcriber": self.transcriber,
            "heard": self.transcriber_options if self.transcriber else None,
            "notes": notes,
        }
        text = json.dumps(made, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def on_cpu(self) -> IndexWork:
        """This work with its embedder on the CPU (where a Ray driver only asks the
        embedder's vector size and signature, and its actors embed)."""
        import dataclasses

        return dataclasses.replace(
            self, embedder_options={**self.embedder_options, "device": "cpu"}
        )

    def load(self) -> Tools:
        """The plugins and options this work uses, loaded (once per process; the notes'
        model when first used)."""
        from vidtt.plugins import registry

        embedder = registry.embedder(self.embedder)
        hearing = None
        if self.transcriber is not None:
            transcriber = registry.transcriber(self.transcriber)
            hearing = (transcriber, transcriber.options(**self.transcriber_options))
        return Tools(self, embedder, embedder.options(**self.embedder_options), hearing)


@dataclass
class Tools:
    """An `IndexWork` loaded: its embedder and options, and what hears (None: nothing)."""

    work: IndexWork
    embedder: Any
    options: Any
    hearing: tuple[Any, Any] | None = None
    pipe: Any = None  # the pipeline whose model writes segment notes, once loaded

    def notes_pipeline(self) -> Any:
        """The pipeline whose model writes the notes, loaded on first use (None: no notes)."""
        if self.pipe is None and self.work.notes is not None:
            from vidtt.pipeline.core import Pipeline

            self.pipe = Pipeline(self.work.notes)
        return self.pipe

    def signature(self) -> str:
        return str(self.embedder.signature(self.options))

    def dimension(self) -> int:
        return int(self.embedder.dimension(self.options))


def index_videos(library: Any, plan: Plan, tools: Tools, progress: bool = True) -> Indexed:
    """Remove what `plan` says is gone, then index each video left to index."""
    done = Indexed(unchanged=len(plan.unchanged))
    done.removed = library.remove([video.video_id for video in plan.removed])
    bar = Counter(TerminalBar("vidtt index", "video", shown=progress), len(plan.to_index))
    try:
        for video in plan.to_index:
            indexed_into(done, video, lambda video=video: index_one(library, video, tools))
            bar.update()
    finally:
        bar.close()
    return done


def indexed_into(done: Indexed, video: Video, index: Any) -> None:
    """Count one video's indexing (`index()`, its moments) into `done`: a failure is kept with
    its reason, never raised."""
    try:
        done.moments += index()
        done.indexed += 1
    except (VidttError, OSError, ValueError) as exc:
        done.failed.append(f"{video.path}: {str(exc).splitlines()[0]}")


def index_one(library: Any, video: Video, tools: Tools) -> int:
    """Sample, embed and write one video's moments; how many were written."""
    from vidtt.media.decode.probe import probe
    from vidtt.media.fetch import downloads_reused
    from vidtt.types import VideoSource

    with downloads_reused():  # a URL's video is fetched once, whatever reads it
        info = probe(VideoSource.of(video.path))
        video = Video(video.path, video.size, video.mtime_ns, info.duration or 0.0)
        moments = moments_of(library, video, tools)
        return int(library.put_video(video, moments, recipe=tools.work.recipe()))


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
        """The thumbnail of the frame nearest `seconds` (None: no frame)."""
        if not self.times:
            return None
        k = min(range(len(self.times)), key=lambda i: abs(self.times[i] - seconds))
        return self.thumbnails[k]


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
