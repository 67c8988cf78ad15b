"""`Request`: one question about videos, as `Pipeline.batch`, `vidtt run` and the server take it.

    {"id": "q1", "videos": ["a.mp4"], "question": "What happens?", "num_frames": 16,
     "max_new_tokens": 64}
    {"id": "q2", "messages": [{"role": "user", "content": [{"type": "video", "video": "a.mp4"},
     {"type": "text", "text": "And then?"}]}], "generation": {"temperature": 0.7}}

Sampler options (`num_frames`, `fps`, `start`, ...) and generation options (`max_new_tokens`,
`temperature`, ...) may be given at the top level or under `sampler_options` / `generation`.
Relative video and image paths resolve against `base` (for `vidtt run`: the JSONL file's folder).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vidtt.errors import OptionsError
from vidtt.types import (
    GenerationOptions,
    ImagePart,
    Message,
    SegmentOptions,
    Strategy,
    TextPart,
    TranscriptMode,
    VideoPart,
    _looks_like_frames,
    transcript_mode,
)
from vidtt.validation import describe

SAMPLING_KEYS = frozenset(
    {
        "num_frames",
        "fps",
        "every",
        "start",
        "end",
        "size",
        "max_side",
        "max_frames",
        "min_frames",
        "dedupe",
    }
)
GENERATION_KEYS = frozenset(GenerationOptions.model_fields)
# a request's options besides its media, question, sampler and generation, passed on as given
PASSED_OPTIONS = (
    "timestamps",
    "max_visual_tokens",
    "fit",
    "transcript",
    "max_transcript_tokens",
    "strategy",
    "segment_options",
    "spans",
)
MAX_DEPTH = 32  # nesting deeper than any real request


class Request(BaseModel):
    """Videos and a question (or a whole conversation), with per-request options."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    id: str | int | None = None
    videos: list[Any] | None = Field(None, description="paths, URLs, bytes or frame arrays")
    question: str | None = None
    messages: list[Message] | None = None
    sampler: str | None = Field(None, min_length=1, description="a sampler other than the config's")
    sampler_options: dict[str, Any] = Field(default_factory=dict)
    generation: dict[str, Any] = Field(default_factory=dict)
    timestamps: bool | None = Field(None, description="say when each frame was taken")
    max_visual_tokens: int | None = Field(None, ge=1, description="a visual-token budget")
    fit: Literal["context"] | None = Field(None, description="'context': fit the context")
    transcript: TranscriptMode | None = Field(None, description="off, on or required")
    max_transcript_tokens: int | None = Field(None, ge=1, description="a cap on transcripts")
    strategy: Strategy | None = Field(None, description="direct or segments (long videos)")
    spans: bool | None = Field(
        None, description="find when: the answer's time spans, read and narrowed (Answer.spans)"
    )
    segment_options: dict[str, Any] = Field(
        default_factory=dict, description="segments options, over the config's"
    )

    @field_validator("segment_options")
    @classmethod
    def _segment_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        SegmentOptions.model_validate(value)  # names a bad option now, not mid-video
        return value

    @field_validator("transcript", mode="before")
    @classmethod
    def _transcript_mode(cls, value: Any) -> Any:
        return None if value is None else transcript_mode(value)

    @field_validator("videos", mode="before")
    @classmethod
    def _one_video(cls, value: Any) -> Any:
        if value is None or (isinstance(value, list) and not _looks_like_frames(value)):
            return value
        return [value]

    def conversation(self) -> list[Message]:
        """The request as chat messages (a user turn with the videos, then the question)."""
        if self.messages is not None:
            if self.videos or self.question:
                raise OptionsError("give messages, or videos and a question, not both")
            return check_conversation(self.messages)
        if not self.videos:
            raise OptionsError(
                'the request has no videos: add "videos": ["clip.mp4"] (or "messages")'
            )
        if self.question is None or not self.question.strip():
            raise OptionsError('the request has no question: add "question": "..."')
        parts: list[Any] = [VideoPart(video=v) for v in self.videos]
        return [Message(role="user", content=[*parts, TextPart(text=self.question)])]

    def with_base(self, base: Path) -> Request:
        """A copy whose relative local paths are resolved against `base`."""
        videos = [_rebase(v, base) for v in self.videos] if self.videos else self.videos
        messages = None
        if self.messages is not None:
            messages = [_rebase_message(m, base) for m in self.messages]
        return self.model_copy(update={"videos": videos, "messages": messages})


def check_conversation(messages: list[Message]) -> list[Message]:
    if not messages:
        raise OptionsError("the conversation is empty: pass at least one user message")
    if not any(isinstance(p, TextPart) and p.text.strip() for m in messages for p in m.content):
        raise OptionsError("the conversation has no text: ask something about the video")
    return messages


def parse_request(data: Any, where: str = "the request") -> Request:
    """A Request from a dict; unknown or misspelled keys are named, nothing is guessed."""
    if isinstance(data, Request):
        return data
    if not isinstance(data, dict):
        raise OptionsError(f"{where} must be a JSON object with videos and a question")
    if depth(data) > MAX_DEPTH:
        raise OptionsError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    unknown = [k for k in data if k not in Request.model_fields and k != "video"]
    unknown = [k for k in unknown if k not in SAMPLING_KEYS | GENERATION_KEYS]
    if unknown:
        raise OptionsError(f"{where}: {unknown_key(unknown[0])}")
    fields = {k: v for k, v in data.items() if k in Request.model_fields}
    if "video" in data:
        if "videos" in data:
            raise OptionsError(f'{where}: give "video" or "videos", not both')
        fields["videos"] = data["video"]
    fields["sampler_options"] = _merged(data, "sampler_options", SAMPLING_KEYS, where)
    fields["generation"] = _merged(data, "generation", GENERATION_KEYS, where)
    try:
        return Request.model_validate(fields)
    except ValidationError as exc:
        raise OptionsError(f"{where}: {describe(exc)}") from None


def _merged(data: dict[str, Any], section: str, keys: frozenset[str], where: str) -> Any:
    nested = data.get(section, {})
    if not isinstance(nested, dict):
        raise OptionsError(f"{where}: {section} must be an object")
    return {**nested, **{k: v for k, v in data.items() if k in keys}}


def unknown_key(key: str) -> str:
    known = sorted({*Request.model_fields, "video", *SAMPLING_KEYS, *GENERATION_KEYS})
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(known)}"
    return f"unknown key {str(key)[:60]!r}{hint}"


def depth(value: Any, level: int = 0) -> int:
    """How deeply `value` nests lists and dicts (stops counting past MAX_DEPTH)."""
    if level > MAX_DEPTH or not isinstance(value, (dict, list)):
        return level
    items = value.values() if isinstance(value, dict) else value
    return max((depth(v, level + 1) for v in items), default=level + 1)


def parse_line(line: str, number: int) -> tuple[Any, Request | str]:
    """(id, Request or the error message) for one JSONL line; the id defaults to the line
    number."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return number, f"line {number} is not JSON: {exc.msg}"
    except RecursionError:
        return number, f"line {number} is nested too deeply to read"
    rid = data.get("id", number) if isinstance(data, dict) else number
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        return number, f"line {number}: id must be a string or an integer"
    try:
        request = parse_request(data, f"line {number}")
        request.conversation()  # no videos, no question: known before any model loads
    except OptionsError as exc:
        return rid, str(exc)
    return rid, request


def _rebase(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or "://" in value or value.startswith("data:"):
        return value
    path = Path(value).expanduser()
    return value if path.is_absolute() else str(base / path)


def _rebase_message(message: Message, base: Path) -> Message:
    parts: list[Any] = []
    for part in message.content:
        if isinstance(part, VideoPart):
            part = VideoPart(video=_rebase(part.video, base))
        elif isinstance(part, ImagePart):
            part = ImagePart(image=_rebase(part.image, base))
        parts.append(part)
    return Message(role=message.role, content=parts)
