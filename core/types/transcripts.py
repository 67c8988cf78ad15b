"""What is said in a video: timed segments of text, and the formats a transcript is written in."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vidtt.types.clock import clock

TRANSCRIPT_FORMATS = ("text", "srt", "vtt", "json")
TranscriptMode = Literal["off", "on", "required"]
TRANSCRIPT_MODES: tuple[TranscriptMode, ...] = ("off", "on", "required")


def transcript_mode(value: Any) -> Any:
    """`off`, `on` or `required` from those words or a bool (True: on); anything else is left
    for validation to refuse."""
    if value is None or value is False:
        return "off"
    if value is True:
        return "on"
    if isinstance(value, str) and value.strip().lower() in (*TRANSCRIPT_MODES, "true", "false"):
        word = value.strip().lower()
        return {"true": "on", "false": "off"}.get(word, word)
    return value


class Segment(BaseModel):
    """One stretch of speech: seconds on the video's clock (the frames' clock) and its text."""

    model_config = ConfigDict(frozen=True)
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str


class Transcript(BaseModel):
    """Timed segments of what is said, the language spoken, and how they were made."""

    segments: list[Segment] = Field(default_factory=list)
    language: str | None = Field(None, description="the language spoken, as detected or given")
    transcriber: str = ""
    source: str = ""
    warnings: list[str] = Field(default_factory=list)
    trimmed: str | None = Field(None, description="the rule that left segments out, if any")

    def within(self, start: float | None, end: float | None) -> Transcript:
        """The segments that overlap `[start, end)` (None: open)."""
        lo = start or 0.0
        kept = [s for s in self.segments if s.end > lo and (end is None or s.start < end)]
        return self.model_copy(update={"segments": kept})

    def lines(self) -> list[str]:
        """One line per segment, `[m:ss-m:ss] text`, as the prompt shows them."""
        return [f"[{clock(s.start)}-{clock(s.end)}] {s.text}" for s in self.segments]

    def prompt(self, number: int) -> str:
        """What the prompt says beside video `number`'s frames: its timed lines."""
        if not self.segments:
            return f"\nTranscript of video {number}: nothing is said.\n"
        lines = "\n".join(self.lines())
        return f"\nTranscript of video {number} (what is said, with times):\n{lines}\n"

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    def render(self, fmt: str) -> str:
        """The transcript as `text` (timed lines), `srt`, `vtt` (WebVTT) or `json`."""
        if fmt == "text":
            return "".join(line + "\n" for line in self.lines())
        if fmt == "srt":
            return _cues(self.segments, ",", numbered=True)
        if fmt == "vtt":
            return "WEBVTT\n\n" + _cues(self.segments, ".", numbered=False)
        if fmt == "json":
            return json.dumps(self.model_dump(), ensure_ascii=False, indent=2) + "\n"
        raise ValueError(f"unknown transcript format {fmt!r}; use {', '.join(TRANSCRIPT_FORMATS)}")


def _stamp(seconds: float, mark: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{mark}{millis:03d}"


def _cues(segments: Iterable[Segment], mark: str, numbered: bool) -> str:
    cues = []
    for number, s in enumerate(segments, 1):
        head = f"{number}\n" if numbered else ""
        text = s.text.strip().replace("-->", "->") or "..."
        cues.append(f"{head}{_stamp(s.start, mark)} --> {_stamp(s.end, mark)}\n{text}\n")
    return "\n".join(cues)
