"""The `segments` strategy: a long video answered from a timeline of segment notes.

1. The requested range is cut into segments: the `scene` sampler's shots when it is registered
   (shots shorter than `min_segment` join a neighbour, shots longer than twice the segment
   length are split, then at most `max_segments`), else equal fixed windows. The segment length
   is `segment_seconds`, or max(`min_segment`, duration / `max_segments`): at most
   `max_segments` segments, none shorter than `min_segment` seconds (a shorter video is one).
2. Each segment's `segment_frames` frames are sampled (equal windows: one uniform pass over a
   batch of segments, its equal spacing giving each segment its frames; shots: one pass each),
   described by the model `batch_size` segments at a time, and released: memory does not grow
   with the duration. Every note is stored (`vidtt.media.store`, kind `notes`) as soon as it is
   made, keyed by the video's content, the sampling, the model and its revision, the
   generation options and the exact prompt: a rerun after Ctrl-C, or a second question, reuses
   the notes made; any change to those makes new ones.
3. The question is answered from the timeline (`[12:00-13:00] note` lines, and the transcript
   lines when the transcript is on), the model asked to cite the times it relies on; with
   `refine`, the segments the first answer cited are looked at again with `refine_frames`
   frames each, and the question answered from those frames and the timeline.

`prepare` returns a `Prepared` whose prompt is the last step's: the final answer is generated
like any other request (batched, streamed), and carries the timeline (`Answer.segments`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vidtt.errors import OptionsError
from vidtt.interfaces import Sampler, ShotFinder
from vidtt.media.decode.probe import probe as probe_video
from vidtt.media.frame_cache import FrameCache, source_key
from vidtt.media.sample import media_context, sample_video
from vidtt.media.store import content_key
from vidtt.pipeline.prepared import Prepared
from vidtt.pipeline.request import Request
from vidtt.pipeline.resolved import Resolved
from vidtt.pipeline.speech import trimmed
from vidtt.progress import Counter, Progress, TerminalBar
from vidtt.types import (
    Clip,
    GenerationOptions,
    ImagePart,
    Message,
    SegmentNote,
    SegmentOptions,
    TextPart,
    Transcript,
    Usage,
    VideoPart,
    VideoSource,
)
from vidtt.types.clock import clock

if TYPE_CHECKING:
    from vidtt.pipeline.protocol import PipelineLike

NOTES = "notes"  # the store's kind for segment notes
KEY_VERSION = 1  # bumped when what a note means changes
NOTE_PROMPT = (
    "This is part of a longer video, from {start} to {end}. "
    "Describe what happens in it, briefly and concretely."
)
SAID = "\nWhat is said in it:\n{lines}"
WHEN = re.compile(r"^\s*(when|at what (time|point)|what time|how long (into|before|after))\b", re.I)
TIME = r"(?:\d+:)?\d{1,2}:\d{2}"
RANGE = re.compile(rf"({TIME})\s*(?:-|–|—|to|until)\s*({TIME})|({TIME})")


# -- the video, the range ---------------------------------------------------------------------
def the_video(request: Request) -> Any:
    """The request's one video (the segments strategy answers about one at a time)."""
    if request.videos is not None:
        videos = list(request.videos)
    else:
        parts = [p for m in request.messages or [] for p in m.content]
        if any(isinstance(p, ImagePart) for p in parts):
            raise OptionsError("strategy segments takes one video and no images")
        videos = [p.video for p in parts if isinstance(p, VideoPart)]
    if len(videos) != 1:
        raise OptionsError(
            f"strategy segments takes one video, not {len(videos)}: ask about each on its own"
        )
    video = videos[0]
    if isinstance(video, Clip):  # sampled already (a command's): the segments resample it
        origin = video.origin
        if origin is None or origin.kind == "frames":
            raise OptionsError("strategy segments samples the video itself: pass a path or URL")
        return origin.value
    return video


def the_question(request: Request) -> str:
    """The request's text: its question, or every text part of its conversation."""
    conversation = request.conversation()
    texts = [p.text for m in conversation for p in m.content if isinstance(p, TextPart)]
    return "\n".join(t.strip() for t in texts if t.strip())


@dataclass
class Span:
    """The range of the video the segments cover, and how it is sampled (through the
    pipeline's frame cache)."""

    video: Any
    start: float
    end: float
    sampler: Sampler
    options: dict[str, Any]  # uniform options over the pipeline's (size, max_side)
    cache: FrameCache | None = None


def span_of(pipe: PipelineLike, resolved: Resolved) -> Span:
    video = the_video(resolved.request)
    source = VideoSource.of(video)
    options = resolved.sampler_options
    uniform = pipe.registry.sampler("uniform")
    info = probe_video(source)
    if not info.duration:
        raise OptionsError(f"{source.label}: its duration is unknown: strategy segments needs it")
    start = float(options.start or 0.0)
    end = float(min(options.end, info.duration) if options.end else info.duration)
    if end <= start:
        raise OptionsError(f"{source.label}: nothing to sample between {start} and {end} s")
    keep = {k: v for k, v in options.model_dump(include={"size", "max_side"}).items() if v}
    return Span(video, start, end, uniform, keep, pipe.cache)


# -- cutting ------------------------------------------------------------------------------------
def segment_length(duration: float, options: SegmentOptions) -> float:
    """`segment_seconds`, else max(`min_segment`, duration / `max_segments`)."""
    if options.segment_seconds:
        return max(options.segment_seconds, duration / options.max_segments)
    return max(options.min_segment, duration / options.max_segments)


def windows(start: float, end: float, options: SegmentOptions) -> list[tuple[float, float]]:
    """Equal windows over [start, end), each about `segment_length` long."""
    duration = end - start
    count = max(
        1, min(options.max_segments, math.ceil(duration / segment_length(duration, options) - 1e-9))
    )
    return equal_parts(start, end, count)


def equal_parts(start: float, end: float, count: int) -> list[tuple[float, float]]:
    """[start, end) cut into `count` equal parts, the last ending exactly at `end`."""
    step = (end - start) / count
    return [
        (start + k * step, end if k == count - 1 else start + (k + 1) * step) for k in range(count)
    ]


def from_shots(
    shots: list[tuple[float, float]], start: float, end: float, options: SegmentOptions
) -> list[tuple[float, float]]:
    """Shots as segments: long ones split into windows, short ones joined to the shorter
    neighbour, then joined until at most `max_segments` are left."""
    length = segment_length(end - start, options)
    pieces: list[tuple[float, float]] = []
    for a, b in shots:
        a, b = max(a, start), min(b, end)
        if b <= a:
            continue
        parts = max(1, math.floor((b - a) / length)) if b - a > 2 * length else 1
        pieces += equal_parts(a, b, parts)
    if not pieces:
        return windows(start, end, options)
    pieces[0] = (start, pieces[0][1])
    pieces[-1] = (pieces[-1][0], end)
    pieces = [(a, b) for (a, _), (b, _) in zip(pieces, [*pieces[1:], (end, end)])]  # no gaps
    least = min(options.min_segment, length)
    while len(pieces) > 1:
        k = min(range(len(pieces)), key=lambda n: pieces[n][1] - pieces[n][0])
        if len(pieces) <= options.max_segments and pieces[k][1] - pieces[k][0] >= least:
            break
        left = pieces[k - 1][1] - pieces[k - 1][0] if k > 0 else math.inf
        right = pieces[k + 1][1] - pieces[k + 1][0] if k + 1 < len(pieces) else math.inf
        j = k - 1 if left <= right else k
        pieces = [*pieces[:j], (pieces[j][0], pieces[j + 1][1]), *pieces[j + 2 :]]
    return pieces


def cut(
    pipe: PipelineLike, span: Span, options: SegmentOptions
) -> tuple[list[tuple[float, float]], str]:
    """The segments of the span and how they were cut (`shots` or `windows`)."""
    source = VideoSource.of(span.video)
    if options.shots and "scene" in pipe.registry.names("samplers"):
        scene = pipe.registry.sampler("scene")
        if isinstance(scene, ShotFinder):
            shots = scene.shot_times(source, start=span.start, end=span.end)
            if len(shots) > 1:
                return from_shots(shots, span.start, span.end, options), "shots"
    return windows(span.start, span.end, options), "windows"


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
    pending = Pending(ranges, [], [], [], transcript)
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
    store = store_of(pipe)
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
            store.put_json(NOTES, key, note.model_dump(exclude={"cached"}))
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


def sample_segments(
    span: Span, ranges: list[tuple[float, float]], frames: int, how: str
) -> list[Clip]:
    """`frames` frames of each range: equal windows in one uniform pass over them all (the
    uniform spacing puts `frames` in each), shots (or a pass that did not) one pass each."""
    if how == "windows" and len(ranges) > 1:
        options = span.sampler.options(
            **span.options, num_frames=frames * len(ranges), start=ranges[0][0], end=ranges[-1][1]
        )
        clip = sample_video(span.video, span.sampler, options, rule=RULE, cache=span.cache)
        parts = [part(clip, k * frames, (k + 1) * frames) for k in range(len(ranges))]
        if len(clip) == frames * len(ranges) and all(
            all(a - 1e-6 <= t < b + 1e-6 for t in p.timestamps) for p, (a, b) in zip(parts, ranges)
        ):
            return parts
    return [sample_range(span, a, b, frames) for a, b in ranges]


RULE = "segments strategy"  # the frame rule a segment's clip names


def sample_range(span: Span, start: float, end: float, frames: int) -> Clip:
    options = span.sampler.options(**span.options, num_frames=frames, start=start, end=end)
    try:
        return sample_video(span.video, span.sampler, options, rule=RULE, cache=span.cache)
    except OptionsError:  # fewer frames in a short segment than asked for: all it has
        options = span.sampler.options(**span.options, start=start, end=end)
        return sample_video(span.video, span.sampler, options, rule=RULE, cache=span.cache)


def part(clip: Clip, a: int, b: int) -> Clip:
    """Frames a..b of a clip as a Clip of their own."""
    piece = Clip(
        array=clip.array[a:b],
        indices=clip.indices[a:b],
        timestamps=clip.timestamps[a:b],
        info=clip.info,
        sampler=clip.sampler,
        source=clip.source,
        warnings=list(clip.warnings),
        metadata=dict(clip.metadata),
    )
    piece.origin = clip.origin
    return piece


def segment_request(
    clip: Clip, prompt: str, options: GenerationOptions, resolved: Resolved, sampling: float
) -> Prepared:
    message = Message(role="user", content=[VideoPart(video=clip), TextPart(text=prompt)])
    return Prepared([message], options, resolved.note_timestamps, sampling)


# -- answering from the timeline --------------------------------------------------------------
def is_when(question: str) -> bool:
    """Whether the question asks when something happens."""
    return bool(WHEN.search(question)) or (" when " in f" {question.lower()} " and "?" in question)


def timeline_text(
    line: Timeline, transcript_lines: list[str], notes: list[str] | None = None
) -> str:
    said = ", and what is said" if line.transcript is not None else ""
    head = (
        f"This is the timeline of a video from {clock(line.start)} to {clock(line.end)}: one "
        f"line per part, [start-end] and what happens in it{said}.\n"
    )
    shown = notes if notes is not None else [n.line() for n in line.notes]
    text = head + "\n".join(shown) + "\n"
    if line.transcript is not None:
        said_lines = "\n".join(transcript_lines) if transcript_lines else "(nothing is said)"
        text += f"\nWhat is said, with times:\n{said_lines}\n"
    return text


def ask_text(question: str) -> str:
    cite = "Answer from the timeline, and cite the times ([m:ss-m:ss]) of the parts you rely on."
    if is_when(question):
        cite = (
            "Answer with the time range(s) where it happens, as m:ss-m:ss (h:mm:ss past an "
            "hour), from the timeline."
        )
    return f"\nQuestion: {question}\n{cite}"


def final_prompt(pipe: PipelineLike, resolved: Resolved, line: Timeline, question: str) -> str:
    """The text-only prompt: the timeline, the transcript lines (within the resolved cap),
    the question; the notes shortened where the whole would not fit the context."""
    generation = resolved.generation
    lines: list[str] = []
    if line.transcript is not None:
        transcript = line.transcript
        if resolved.transcript_cap is not None:
            cap, rule = resolved.transcript_cap, resolved.transcript_rule
            transcript = trimmed(transcript, cap, pipe.count_tokens, rule)
        lines = transcript.lines()
    text = timeline_text(line, lines) + ask_text(question)
    context = pipe.engine.context_size()
    if not context:
        return text
    room = context - generation.max_new_tokens - TEMPLATE_TOKENS
    total = pipe.count_tokens([text])[0]
    if total <= room:
        return text
    shown = [n.line() for n in line.notes]
    costs = pipe.count_tokens(shown)
    fixed = total - sum(costs)
    share = max(8, (room - fixed) // max(1, len(shown)))
    shorter = [cut_tokens(pipe, s, share) if c > share else s for s, c in zip(shown, costs)]
    return timeline_text(line, lines, shorter) + ask_text(question)


TEMPLATE_TOKENS = 64  # the chat template's own tokens around the prompt, at most


def cut_tokens(pipe: PipelineLike, text: str, tokens: int) -> str:
    """`text` cut to its first `tokens` tokens, marked with an ellipsis."""
    tokenizer = pipe.processor.tokenizer
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max(1, tokens - 1)]
    return str(tokenizer.decode(ids)).rstrip() + "…"


def cited(text: str, notes: list[SegmentNote]) -> list[int]:
    """The notes whose ranges the text names (m:ss, h:mm:ss, or ranges of them), in order."""
    found: list[int] = []
    for match in RANGE.finditer(text):
        a = seconds(match.group(1) or match.group(3))
        b = seconds(match.group(2)) if match.group(2) else a
        lo, hi = min(a, b), max(a, b)
        for n, note in enumerate(notes):
            hit = note.start <= lo < note.end or lo <= note.start < hi
            if hit and n not in found:
                found.append(n)
    return found


def seconds(text: str) -> float:
    total = 0.0
    for piece in text.split(":"):
        total = total * 60 + int(piece)
    return total


def prepare(
    pipe: PipelineLike, resolved: Resolved, progress: Callable[[int, int], None] | None = None
) -> Prepared:
    """The request answered from its video's timeline: the notes made (or found), and the
    final prompt ready to generate (after the refine pass, when asked for). Called inside
    the request's media context (`Pipeline.prepare`). `progress`, when given, hears (done,
    total) once the segments are known and after each batch of notes (an exception it raises
    stops the notes there: those made are stored already); without it, the tqdm bar of
    `pipe.progress`."""
    started = time.perf_counter()
    line = describe_video(pipe, resolved, progress)
    question = the_question(resolved.request)
    options = resolved.generation
    text = final_prompt(pipe, resolved, line, question)
    conversation = [Message(role="user", content=[TextPart(text=text)])]
    prepared = Prepared(
        conversation, options, False, time.perf_counter() - started, line.notes, line.usage,
        line.frames,
    )  # fmt: skip
    if not resolved.segments.refine:
        return prepared
    return refined(pipe, resolved, line, prepared, text, started)


def refined(
    pipe: PipelineLike,
    resolved: Resolved,
    line: Timeline,
    prepared: Prepared,
    text: str,
    started: float,
) -> Prepared:
    """The refine pass: a first answer from the timeline, then the segments it cited looked
    at again with `refine_frames` frames each (sampled from the same span and cache)."""
    seg = resolved.segments
    draft = pipe.answer([prepared])[0]
    first, spent = draft.text, line.usage + draft.usage
    chosen = cited(first, line.notes)[: seg.refine_segments]
    if not chosen or line.span is None:
        return dataclasses.replace(prepared, spent=spent)
    parts: list[Any] = []
    for number, n in enumerate(chosen, 1):
        note = line.notes[n]
        clip = sample_range(line.span, note.start, note.end, seg.refine_frames)
        parts += [TextPart(text=f"Video {number}: {note.span()}"), VideoPart(video=clip)]
    again = (
        text
        + f"\nA first answer, from the timeline alone, was: {first.strip()}\n"
        + "Above are more frames of the parts it named. Look at them and answer the question "
        + "again, citing the times."
    )
    conversation = [Message(role="user", content=[*parts, TextPart(text=again)])]
    seconds = time.perf_counter() - started
    return Prepared(conversation, prepared.options, True, seconds, line.notes, spent, line.frames)
