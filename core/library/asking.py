"""Asking a library: the moments that best match a question, each video's frames around them
sampled, and one prompt that names every moment by its video and time, so the answer can cite
them (`vidtt ask --library`)."""

from __future__ import annotations

from typing import Any

from vidtt.library.records import Hit
from vidtt.types import Message, TextPart, VideoPart
from vidtt.types.clock import clock

PAD = 2.0  # seconds of video on each side of a moment
CITE = "Say which moment (its number) and what time your answer comes from."


def query_vector(signature: str | None, text: str) -> Any:
    """The text's vector by the embedder a library was made with (its signature, e.g.
    `clip:openai/clip-vit-base-patch32@main` or `colour`), None when it is all zeros;
    `UnknownNameError` when that embedder is not installed here."""
    from vidtt.plugins import registry

    name, _, model = (signature or "").partition(":")
    embedder = registry.embedder(name)
    given = {"model": model.rpartition("@")[0]} if model else {}
    vector = embedder.embed_texts([text], embedder.options(**given))[0]
    return vector if vector.any() else None  # says nothing the vectors know: words alone


def windows(hits: list[Hit], count: int, pad: float = PAD) -> list[tuple[str, float, float]]:
    """The first `count` stretches of video to show, (path, start, end): each hit widened by
    `pad` seconds, hits of one video whose stretches overlap joined, best first."""
    chosen: list[list[Any]] = []
    for hit in hits:
        start, end = max(0.0, hit.start - pad), hit.end + pad
        same = next((w for w in chosen if w[0] == hit.path and start <= w[2] and end >= w[1]), None)
        if same is not None:
            same[1], same[2] = min(same[1], start), max(same[2], end)
        elif len(chosen) < count:
            chosen.append([hit.path, start, end])
    return [(path, start, end) for path, start, end in chosen]


def library_message(question: str, clips: list[tuple[str, float, float, Any]]) -> Message:
    """One user turn: each moment named (number, video, time) before its frames, then the
    question and how to cite."""
    parts: list[Any] = []
    for number, (path, start, end, clip) in enumerate(clips, 1):
        parts.append(TextPart(text=f"Moment {number}: {path}, {clock(start)}-{clock(end)}"))
        parts.append(VideoPart(video=clip))
    parts.append(TextPart(text=f"{question.strip()}\n{CITE}"))
    return Message(role="user", content=parts)
