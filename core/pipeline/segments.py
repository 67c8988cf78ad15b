"""The `segments` strategy: a long video answered from a timeline of segment notes.

1. The requested range is cut into segments (`vidtt.pipeline.cutting`).
2. Each segment is described by the model, and its note kept (`vidtt.pipeline.notes`).
3. The question is answered from the timeline (`[12:00-13:00] note` lines, and the transcript
   lines when the transcript is on), the model asked to cite the times it relies on; with
   `refine`, the segments the first answer cited are looked at again with `refine_frames`
   frames each, and the question answered from those frames and the timeline.

`prepare` returns a `Prepared` whose prompt is the last step's: the final answer is generated
like any other request (batched, streamed), and carries the timeline (`Answer.segments`).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vidtt.pipeline.prepared import Prepared
from vidtt.pipeline.request import Request
from vidtt.pipeline.resolved import Resolved
from vidtt.pipeline.speech import trimmed
from vidtt.types import (
    Message,
    SegmentNote,
    TextPart,
    VideoPart,
)
from vidtt.types.clock import clock

if TYPE_CHECKING:
    from vidtt.pipeline.protocol import PipelineLike
from vidtt.pipeline.cutting import sample_range
from vidtt.pipeline.notes import Timeline, describe_video

WHEN = re.compile(r"^\s*(when|at what (time|point)|what time|how long (into|before|after))\b", re.I)
TIME = r"(?:\d+:)?\d{1,2}:\d{2}"
RANGE = re.compile(rf"({TIME})\s*(?:-|–|—|to|until)\s*({TIME})|({TIME})")


def the_question(request: Request) -> str:
    """The request's text: its question, or every text part of its conversation."""
    conversation = request.conversation()
    texts = [p.text for m in conversation for p in m.content if isinstance(p, TextPart)]
    return "\n".join(t.strip() for t in texts if t.strip())


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
    # the final prompt first, as it was: the prefix cache keeps its state from the first answer
    parts: list[Any] = [
        TextPart(text=f"{text}\nA first answer, from the timeline alone, was: {first.strip()}\n")
    ]
    for number, n in enumerate(chosen, 1):
        note = line.notes[n]
        clip = sample_range(line.span, note.start, note.end, seg.refine_frames)
        parts += [TextPart(text=f"Video {number}: {note.span()}"), VideoPart(video=clip)]
    again = (
        "Above are more frames of the parts it named. Look at them and answer the question "
        "again, citing the times."
    )
    conversation = [Message(role="user", content=[*parts, TextPart(text=again)])]
    seconds = time.perf_counter() - started
    return Prepared(conversation, prepared.options, True, seconds, line.notes, spent, line.frames)
