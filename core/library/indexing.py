"""`vidtt index`'s work: videos found, planned against the library (new, changed, removed),
then each one's frames sampled, embedded and written as moments.

A video is sampled by the `interval` sampler, one frame every `every` seconds, a `CHUNK` of
the video at a time, so memory holds one chunk's frames whatever the video's length. Each
frame is a `frame` moment from its time to the next frame's, with its embedding and a JPEG
thumbnail in the library's `thumbnails/` folder (local libraries). A video is written
whole or not at all (`Library.put_video`): Ctrl-C or a crash loses only the video being
indexed, which the next run indexes again. With a transcriber, each line said is a
`transcript` moment too, searchable by its words.
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
from vidtt.library.records import Moment, Plan, Video
from vidtt.progress import Counter, TerminalBar

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".ts", ".mpg", ".mpeg"}
CHUNK = 120.0  # seconds of video sampled at a time
THUMB_SIDE = 320  # pixels: the longer side of frames embedded and kept as thumbnails


@dataclass
class Indexed:
    """What a run did: videos indexed, left as they were, removed, failed (with why)."""

    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    moments: int = 0
    failed: list[str] = field(default_factory=list)


def find_videos(sources: Iterable[str]) -> tuple[list[str], list[str]]:
    """The video files `sources` name (files, folders searched recursively, globs, JSONL lists
    of `{"video": ...}` lines) and the folders given, whose missing videos count as removed.
    A source that names nothing is one error listing every such source."""
    found: list[str] = []
    folders: list[str] = []
    missing: list[str] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
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
        videos.append(str((path.parent / str(video)).resolve()))
    return videos


def plan_videos(library: Any, files: list[str], folders: list[str]) -> Plan:
    """What indexing `files` means for `library` (missing ones under `folders` removed)."""
    videos = []
    for name in files:
        try:
            videos.append(Video.from_path(name))
        except OSError as exc:
            raise OptionsError(f"cannot read {name}: {exc.strerror or exc}") from None
    return library.plan(videos, within=folders or None)


@dataclass(frozen=True)
class IndexWork:
    """What indexing a video does, by plugin names and option values: picklable, so every
    process that indexes (this one, Ray workers) loads the same tools from it (`load`)."""

    embedder: str = "clip"
    embedder_options: dict[str, Any] = field(default_factory=dict)
    every: float = 2.0  # seconds between frame moments
    transcriber: str | None = None  # heard too when set
    transcriber_options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Tools:
        """The plugins and options this work uses, loaded (once per process)."""
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
    """Sample, embed and write one video's frame (and transcript) moments; how many were
    written."""
    import itertools

    from vidtt.media.decode.probe import probe
    from vidtt.types import VideoSource

    info = probe(VideoSource.of(video.path))
    duration = info.duration or 0.0
    video = Video(video.path, video.size, video.mtime_ns, duration)
    moments: Iterable[Moment] = frame_moments(library, video, tools)
    if tools.hearing is not None:
        moments = itertools.chain(moments, transcript_moments(video, tools))
    return int(library.put_video(video, moments))


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
