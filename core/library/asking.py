"""Searching and asking a library: a text's vector by the library's own embedder, the moments
that best match a question, each video's frames around them sampled, and one prompt that names
every moment by its video and time, so the answer can cite them (`vidtt search`, `vidtt ask
--library`, `vidtt serve`'s library routes)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from vidtt.errors import LibraryError, UnknownNameError
from vidtt.library.records import Hit
from vidtt.types import Answer, Message, Span, TextPart, VideoPart
from vidtt.types.clock import clock

PAD = 2.0  # seconds of video on each side of a moment
CITE = "Say which moment (its number) and what time your answer comes from."
WHEN = "Give the time as 'Moment N, start - end seconds'."
CANDIDATES = 5  # hits searched per moment shown (hits of one video join)


@dataclass
class Shown:
    """A stretch of one video shown to the model as moment `number`, and the time spans the
    answer points at inside it (asked with `spans`)."""

    number: int
    path: str
    start: float
    end: float
    thumbnail: str | None = None  # the best hit's in it
    spans: list[Span] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "moment": self.number,
            "path": self.path,
            "start": self.start,
            "end": self.end,
            "thumbnail": self.thumbnail,
            "spans": [span.model_dump() for span in self.spans],
        }


@dataclass
class LibraryAnswer:
    """The answer to a question across a library, and the moments it was shown."""

    answer: Answer
    moments: list[Shown]

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer.model_dump(mode="json"),
            "moments": [shown.as_dict() for shown in self.moments],
        }


def query_vector(signature: str | None, text: str) -> Any:
    """The text's vector by the embedder a library was made with (its signature, e.g.
    `clip:openai/clip-vit-base-patch32@main` or `colour`); None, words alone, when that vector
    says nothing (all zeros) or the embedder is not installed here (with a warning)."""
    from vidtt.plugins import registry

    name, _, model = (signature or "").partition(":")
    try:
        embedder = registry.embedder(name)
    except UnknownNameError:
        warnings.warn(
            f"the library's embedder {name!r} is not installed here: matching words only "
            "(install the plugin that provides it for vector search)",
            stacklevel=2,
        )
        return None
    given = {"model": model.rpartition("@")[0]} if model else {}
    vector = embedder.embed_texts([text], embedder.options(**given))[0]
    return vector if vector.any() else None


def search(library: Any, text: str, limit: int = 10, **filters: Any) -> list[Hit]:
    """The library's best `limit` moments for `text`, words and vectors fused; `filters` as
    `Library.search` takes them (kinds, path_glob, min_duration, max_duration, since)."""
    vector = query_vector(library.embedder, text)
    return list(library.search(text, vector, limit=limit, **filters))


def windows(hits: list[Hit], count: int, pad: float = PAD) -> list[Shown]:
    """The first `count` stretches of video to show: each hit widened by `pad` seconds, hits
    of one video whose stretches overlap joined, best first."""
    chosen: list[Shown] = []
    for hit in hits:
        start, end = max(0.0, hit.start - pad), hit.end + pad
        same = next(
            (w for w in chosen if w.path == hit.path and start <= w.end and end >= w.start), None
        )
        if same is not None:
            same.start, same.end = min(same.start, start), max(same.end, end)
        elif len(chosen) < count:
            chosen.append(Shown(len(chosen) + 1, hit.path, start, end, hit.thumbnail))
    return chosen


def ask(
    library: Any,
    pipe: Any,
    question: str,
    moments: int = 4,
    spans: bool = False,
    **filters: Any,
) -> LibraryAnswer:
    """Answer `question` across the library (`best_moments`, then `answer_moments`)."""
    return answer_moments(
        pipe, question, best_moments(library, question, moments, **filters), spans
    )


def best_moments(library: Any, question: str, moments: int = 4, **filters: Any) -> list[Shown]:
    """The library's best `moments` stretches of video for `question`; `LibraryError` when
    none matches."""
    shown = windows(search(library, question, moments * CANDIDATES, **filters), moments)
    if not shown:
        raise LibraryError(
            f"no moment of library {library.name!r} matches the question: index more videos "
            "(vidtt index) or ask otherwise"
        )
    return shown


def answer_moments(
    pipe: Any, question: str, shown: list[Shown], spans: bool = False
) -> LibraryAnswer:
    """The stretches `shown`, sampled with the pipeline's sampler, in one prompt that names
    each, answered citing them. With `spans`, the times the answer names are read and kept by
    the moment they fall in."""
    clips = sample_moments(pipe, shown)
    message = library_message(question, shown, clips, spans)
    answer = pipe.chat([message], timestamps=True, strategy="direct")
    if spans:
        cite_spans(answer, shown, clips, pipe)
    return LibraryAnswer(answer, shown)


def sample_moments(pipe: Any, shown: list[Shown]) -> list[Any]:
    """Each moment's stretch of its video, sampled with the pipeline's sampler and options."""
    options = pipe.sampler_options
    return [
        pipe.sample(
            s.path, s.number, options=options.model_copy(update={"start": s.start, "end": s.end})
        )
        for s in shown
    ]


def library_message(question: str, shown: list[Shown], clips: list[Any], spans: bool) -> Message:
    """One user turn: each moment named (number, video, time) before its frames, then the
    question and how to cite."""
    parts: list[Any] = []
    for moment, clip in zip(shown, clips):
        text = f"Moment {moment.number}: {moment.path}, {clock(moment.start)}-{clock(moment.end)}"
        parts += [TextPart(text=text), VideoPart(video=clip)]
    parts.append(TextPart(text=f"{question.strip()}\n{CITE}" + (f"\n{WHEN}" if spans else "")))
    return Message(role="user", content=parts)


def cite_spans(answer: Answer, shown: list[Shown], clips: list[Any], pipe: Any) -> None:
    """The answer's time spans, each kept by the moment it is in: the text after "Moment N" is
    read against moment N's frames, text before any moment against all of them (a span goes to
    the first moment it overlaps). `answer.spans` holds them all, moment by moment."""
    from vidtt.pipeline.spans import read_spans

    family = getattr(getattr(getattr(pipe, "model", None), "config", None), "model_type", None)
    for number, text in _by_moment(answer.text, len(shown)):
        targets = [shown[number - 1]] if number else shown
        times = sorted(t for s, c in zip(shown, clips) if s in targets for t in c.timestamps)
        for span in read_spans(text, times=times, family=family):
            moment = next((s for s in targets if s.start <= span.end and span.start <= s.end), None)
            if moment is not None:
                bounds = {"start": max(span.start, moment.start), "end": min(span.end, moment.end)}
                moment.spans.append(span.model_copy(update=bounds))
    answer.spans = [span for moment in shown for span in moment.spans]


def _by_moment(text: str, count: int) -> list[tuple[int | None, str]]:
    """`text` cut where it names a moment ("Moment 2", "moment #2"): (its number, or None
    before the first, the text up to the next naming)."""
    import re

    pieces: list[tuple[int | None, str]] = []
    at, number = 0, None
    for match in re.finditer(r"\bmoment\s*#?\s*(\d+)", text, re.IGNORECASE):
        pieces.append((number, text[at : match.start()]))
        named = int(match.group(1))
        at, number = match.end(), named if 1 <= named <= count else None
    pieces.append((number, text[at:]))
    return [(n, piece) for n, piece in pieces if piece.strip()]
