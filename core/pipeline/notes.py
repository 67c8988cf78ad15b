"""Segment notes: each segment of a long video described by the model, and kept.

Segments are described `batch_size` at a time, and their frames released: memory does not grow
with the duration. Every note is stored (`vidtt.media.store`, kind `notes`) as soon as it is
made, keyed by the video's content, the sampling, the model and its revision, the generation
options and the exact prompt: a rerun after Ctrl-C, or a second question, reuses the notes
made; any change to those makes new ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vidtt.errors import OptionsError
from vidtt.media.frame_cache import source_key
from vidtt.media.sample import media_context
from vidtt.media.store import content_key
from vidtt.pipeline.prepared import Prepared
from vidtt.pipeline.request import Request
from vidtt.pipeline.resolved import Resolved
from vidtt.progress import Counter, Progress, TerminalBar
from vidtt.types import (
    Clip,
    GenerationOptions,
    Message,
    SegmentNote,
    TextPart,
    Transcript,
    Usage,
    VideoPart,
    VideoSource,
)
from vidtt.types.clock import clock

if TYPE_CHECKING:
    from vidtt.pipeline.protocol import PipelineLike
from vidtt.pipeline.cutting import Span, cut, sample_segments, span_of

NOTES = "notes"  # the store's kind for segment notes
KEY_VERSION = 1  # bumped when what a note means changes
NOTE_PROMPT = (
    "This is part of a longer video, from {start} to {end}. "
    "Describe what happens in it, briefly and concretely."
)
SAID = "\nWhat is said in it:\n{lines}"


# -- the note store -----------------------------------------------------------------------------
class MemoryStore:
    """Notes kept in this process only: what is used when no store is at hand."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}

    def get_json(self, kind: str, key: str) -> Any:
        return self.values.get((kind, key))

    def put_json(self, kind: str, key: str, value: Any) -> None:
        self.values[(kind, key)] = value


_MEMORY = MemoryStore()


def store_of(pipe: PipelineLike) -> Any:
    """The pipeline's note store: its own (`pipe.note_store`), else vidtt's on-disk store."""
    own = getattr(pipe, "note_store", None)
    if own is not None:
        return own
    try:
        from vidtt.media.store import default_store  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return _MEMORY
    return default_store()


def video_key(source: VideoSource) -> Any:
    """What identifies the video's content (None: it cannot be told, so nothing is stored)."""
    return source_key(source)


def note_key(
    video: Any,
    pipe: PipelineLike,
    start: float,
    end: float,
    sampling: dict[str, Any],
    generation: GenerationOptions,
    timestamps: bool,
    prompt: str,
) -> str | None:
    """The store key of one segment's note: everything that made it."""
    if video is None:
        return None
    made = {
        "version": KEY_VERSION,
        "video": video,
        "range": [round(start, 3), round(end, 3)],
        "sampling": sampling,
        "model": pipe.config.model,
        "revision": pipe.config.revision,
        "dtype": pipe.config.dtype,
        "formatter": pipe.formatter.name,
        "timestamps": timestamps,
        "generation": generation.model_dump(mode="json"),
        "prompt": prompt,
    }
    return content_key(made)


# -- describing the segments ----------------------------------------------------------------------
@dataclass
class Timeline:
    """A video's segment notes over a range, and what made them."""

    notes: list[SegmentNote]
    start: float
    end: float
    cut: str  # shots or windows
    transcript: Transcript | None = None
    made: int = 0  # notes made now (the others were stored)
    keys: list[str | None] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage.zero)  # the tokens of the notes made now
    frames: int = 0  # the frames sampled for the notes made now
    span: Span | None = None  # what was cut, and how it is sampled


def note_prompt(start: float, end: float, lines: list[str]) -> str:
    prompt = NOTE_PROMPT.format(start=clock(start), end=clock(end))
    return prompt + (SAID.format(lines="\n".join(lines)) if lines else "")


def timeline(
    pipe: PipelineLike,
    request: Request | Resolved | dict[str, Any],
    timestamps: bool = False,
    generation: dict[str, Any] | None = None,
    progress: Any = None,
) -> Timeline:
    """The request's video cut into segments, each described (or its note found stored),
    inside the pipeline's media context."""
    resolved = pipe.resolve(request, timestamps, generation)
    with media_context(pipe.config.limits):
        return describe_video(pipe, resolved, progress)


@dataclass
class Pending:
    """The notes of a timeline being made: found in the store, or still to make."""

    ranges: list[tuple[float, float]]
    notes: list[SegmentNote | None]
    keys: list[str | None]
    prompts: list[str]
    transcript: Transcript | None
    store: Any  # where the notes are looked up and kept (`store_of`, once a timeline)

    def todo(self) -> list[int]:
        return [n for n, note in enumerate(self.notes) if note is None]

    def lines(self, n: int) -> list[str]:
        """The transcript lines said in segment `n`."""
        if self.transcript is None:
            return []
        return self.transcript.within(*self.ranges[n]).lines()


def describe_video(pipe: PipelineLike, resolved: Resolved, progress: Any = None) -> Timeline:
    """The timeline of a resolved request (called inside its media context)."""
    if not callable(getattr(pipe.model, "generate", None)):
        raise OptionsError(
            "strategy segments needs the model to describe the segments, and this pipeline's "
            "engine has no weights (a processor-only engine)"
        )
    options = resolved.segments
    span = span_of(pipe, resolved)
    ranges, how = cut(pipe, span, options)
    transcript = None
    if resolved.transcript != "off":
        required = resolved.transcript == "required"
        transcript = pipe.speech.hear(span.video, 1, span.start, span.end, required).transcript
    note_options = notes_generation(resolved)
    pending = look_up(pipe, resolved, span, ranges, how, note_options, transcript)
    todo = pending.todo()
    usage, frames = Usage.zero(), 0
    bar = progress_bar(pipe, len(ranges), len(ranges) - len(todo), progress)
    try:
        for batch in chunks(todo, options.batch_size):
            used, seen = make_notes(pipe, span, pending, batch, how, note_options, resolved)
            usage, frames = usage + used, frames + seen
            bar.update(len(batch))
    finally:
        bar.close()
    done = [n for n in pending.notes if n is not None]
    return Timeline(
        done, span.start, span.end, how, transcript, len(todo), pending.keys, usage, frames, span
    )


def notes_generation(resolved: Resolved) -> GenerationOptions:
    """The request's generation options for segment notes: `note_tokens` new tokens at most,
    and no minimum."""
    asked = resolved.generation.model_dump(exclude_unset=True)
    asked.pop("min_new_tokens", None)
    asked["max_new_tokens"] = resolved.segments.note_tokens
    return GenerationOptions.model_validate(asked)


def look_up(
    pipe: PipelineLike,
    resolved: Resolved,
    span: Span,
    ranges: list[tuple[float, float]],
    how: str,
    note_options: GenerationOptions,
    transcript: Transcript | None,
) -> Pending:
    """Each segment's prompt and store key, and its note where one is stored."""
    source = VideoSource.of(span.video)
    vkey = video_key(source) if source.kind != "frames" else None
    store = store_of(pipe)
    sampling = {
        "sampler": span.sampler.name,
        "frames": resolved.segments.segment_frames,
        "cut": how,
        **span.options,
    }
    pending = Pending(ranges, [], [], [], transcript, store)
    for n, (a, b) in enumerate(ranges):
        prompt = note_prompt(a, b, pending.lines(n))
        timestamps = resolved.note_timestamps
        key = note_key(vkey, pipe, a, b, sampling, note_options, timestamps, prompt)
        found = store.get_json(NOTES, key) if key is not None else None
        pending.notes.append(
            SegmentNote.model_validate({**found, "cached": True}) if found else None
        )
        pending.keys.append(key)
        pending.prompts.append(prompt)
    return pending


def make_notes(
    pipe: PipelineLike,
    span: Span,
    pending: Pending,
    batch: list[int],
    how: str,
    note_options: GenerationOptions,
    resolved: Resolved,
) -> tuple[Usage, int]:
    """Describe the segments of one batch, store their notes: the tokens and frames used."""
    started = time.perf_counter()
    frames_each = resolved.segments.segment_frames
    clips = sample_segments(span, [pending.ranges[n] for n in batch], frames_each, how)
    sampling_time = (time.perf_counter() - started) / len(batch)
    ready = [
        segment_request(clip, pending.prompts[n], note_options, resolved, sampling_time)
        for n, clip in zip(batch, clips)
    ]
    answers = pipe.gathered(ready)  # with other videos' notes asked for meanwhile
    usage, frames = Usage.zero(), 0
    for n, clip, answer in zip(batch, clips, answers):
        usage, frames = usage + answer.usage, frames + len(clip)
        note = SegmentNote(
            start=pending.ranges[n][0],
            end=pending.ranges[n][1],
            note=answer.text.strip(),
            frames=list(clip.timestamps),
            transcript=pending.lines(n),
        )
        key = pending.keys[n]
        if key is not None:
            pending.store.put_json(NOTES, key, note.model_dump(exclude={"cached"}))
        pending.notes[n] = note
    return usage, frames


def chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def progress_bar(pipe: PipelineLike, total: int, done: int, progress: Progress | None) -> Counter:
    """The notes counted for `progress` (a callable hearing (done, total)); without it, tqdm
    on stderr (segments described, with an ETA) when the pipeline shows progress."""
    report = progress or TerminalBar("describing", "segment", shown=pipe.progress)
    return Counter(report, total, done)


def segment_request(
    clip: Clip, prompt: str, options: GenerationOptions, resolved: Resolved, sampling: float
) -> Prepared:
    message = Message(role="user", content=[VideoPart(video=clip), TextPart(text=prompt)])
    return Prepared([message], options, resolved.note_timestamps, sampling)
