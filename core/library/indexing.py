"""`vidtt index`'s work: videos found (files, URLs, folders, globs, JSONL lists), planned
against the library (new, changed, unchanged, removed, by file and by recipe), then each one's
moments made (`vidtt.library.moments`) and written whole or not at all (`Library.put_video`):
Ctrl-C or a crash loses only the video being indexed, which the next run indexes again.

`IndexWork` says what indexing does, by plugin names and option values (picklable, so a Ray
actor gets it whole), and `Tools` is it loaded, once per process.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidtt.errors import OptionsError, VidttError
from vidtt.library.moments import moments_of
from vidtt.library.records import Plan, Video, is_url
from vidtt.progress import Counter, TerminalBar

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".ts", ".mpg", ".mpeg"}
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
    from vidtt.media.decode.kept_indexes import forget
    from vidtt.media.decode.probe import probe
    from vidtt.media.fetch import downloads_reused
    from vidtt.types import VideoSource

    with downloads_reused():  # a URL's video is fetched once, whatever reads it
        info = probe(VideoSource.of(video.path))
        video = Video(video.path, video.size, video.mtime_ns, info.duration or 0.0)
        try:
            moments = moments_of(library, video, tools)
            return int(library.put_video(video, moments, recipe=tools.work.recipe()))
        finally:
            forget(video.path)  # its frame index served its chunks: keep no more of it
