"""Conversations: questions and messages as vidtt Messages, the media they hold, and what the
Answer reports about the frames used."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from vidtt.engine import generate
from vidtt.errors import ContextOverflowError, OptionsError
from vidtt.pipeline.request import check_conversation
from vidtt.types import (
    FramesUsed,
    ImagePart,
    Message,
    TextPart,
    VideoPart,
    _looks_like_frames,
)
from vidtt.validation import describe

# No tokenizer vidtt serves makes a token of more characters than this in practice (the longest
# are runs of spaces or of one punctuation mark); text longer than the context times this
# cannot fit, and is refused before the tokenizer spends memory and seconds on it.
MAX_CHARS_PER_TOKEN = 32
# The context assumed for a model whose config does not give one.
UNKNOWN_CONTEXT_TOKENS = 1 << 20


def text_chars(conversation: list[Message]) -> int:
    """How many characters of text the conversation holds."""
    return sum(len(p.text) for m in conversation for p in m.content if isinstance(p, TextPart))


def check_text_size(conversation: list[Message], context: int | None) -> None:
    """Refuse, before anything tokenizes it, text that cannot fit a `context`-token context
    (at most `MAX_CHARS_PER_TOKEN` characters a token)."""
    tokens = context if isinstance(context, int) and context > 0 else UNKNOWN_CONTEXT_TOKENS
    limit = tokens * MAX_CHARS_PER_TOKEN
    chars = text_chars(conversation)
    if chars > limit:
        raise ContextOverflowError(
            f"the text of the request is {chars} characters, more than the model's context of "
            f"{tokens} tokens can hold (at most {limit} characters, {MAX_CHARS_PER_TOKEN} a "
            "token): shorten the text or send it in parts"
        )


def check_media_tokens(conversation: list[Message], processor: Any) -> None:
    """Refuse text that holds the model's own image or video placeholder tokens (the
    processor would count them as media and fail)."""
    tokens = media_tokens(processor)
    for message in conversation:
        for part in message.content:
            if isinstance(part, TextPart):
                found = next((t for t in tokens if t in part.text), None)
                if found:
                    raise OptionsError(
                        f"the text contains {found!r}, the model's own media token: remove it "
                        "and attach images or videos as their own parts"
                    )


def media_tokens(processor: Any) -> list[str]:
    found = {getattr(processor, n, None) for n in ("image_token", "video_token")}
    tokenizer = processor.tokenizer
    found.update(tokenizer.convert_ids_to_tokens(i) for i in generate.visual_token_ids(processor))
    return sorted(t for t in found if isinstance(t, str) and t)


def question_message(videos: Any, question: str) -> Message:
    if not isinstance(question, str) or not question.strip():
        raise OptionsError("the question is empty: ask something about the video")
    many = isinstance(videos, (list, tuple)) and not _looks_like_frames(videos)
    items = list(videos) if many else [videos]
    if not items:
        raise OptionsError("no video given: pass a path, URL, bytes, frames or a list of them")
    return Message(
        role="user", content=[*(VideoPart(video=v) for v in items), TextPart(text=question)]
    )


def parse_messages(messages: list[Message | dict[str, Any]]) -> list[Message]:
    if not messages:
        raise OptionsError("the conversation is empty: pass at least one user message")
    try:
        parsed = [m if isinstance(m, Message) else Message.model_validate(m) for m in messages]
    except ValidationError as exc:
        raise OptionsError(f"bad message: {describe(exc)}") from None
    return check_conversation(parsed)


def frames_used(conversation: list[Message]) -> list[FramesUsed]:
    return [
        FramesUsed(
            source=p.video.source,
            sampler=p.video.sampler,
            indices=list(p.video.indices),
            timestamps=list(p.video.timestamps),
            rule=p.video.metadata.get("frames_rule", "a Clip sampled by the caller"),
            budget=p.video.metadata.get("budget"),
            transcript=p.video.transcript,
            warnings=list(p.video.warnings),
        )
        for m in conversation
        for p in m.content
        if isinstance(p, VideoPart)
    ]


def media_digest(conversation: list[Message]) -> str:
    """A digest of every video's frames (and audio, for models that hear it) and every image
    of `conversation`, in order: with the prompt's tokens, what makes the model state of its
    visual tokens (the prefix cache's key)."""
    import hashlib

    import numpy as np

    hashed = hashlib.sha256()
    for message in conversation:
        for part in message.content:
            if isinstance(part, VideoPart):
                clip = part.video
                hashed.update(f"video|{clip.digest()}|".encode())
                if getattr(clip, "audio", None) is not None:
                    hashed.update(np.ascontiguousarray(clip.audio.samples).data)
            elif isinstance(part, ImagePart):
                image = np.ascontiguousarray(np.asarray(part.image))
                hashed.update(f"image|{image.shape}|{image.dtype}|".encode())
                hashed.update(image.data)
    return hashed.hexdigest()
