"""The timeline of a long video: one note for each segment, as the segment strategy made it."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vidtt.types.clock import clock

Strategy = Literal["direct", "segments"]
STRATEGIES: tuple[Strategy, ...] = ("direct", "segments")


class SegmentOptions(BaseModel):
    """How the `segments` strategy cuts and describes a video (see docs/long.md).

    Segment length, unless `segment_seconds` is given: max(`min_segment`, duration /
    `max_segments`); so a video has at most `max_segments` segments, none shorter than
    `min_segment` seconds (but the last, when the video is shorter)."""

    model_config = ConfigDict(extra="forbid")
    segment_seconds: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="fixed segment length (default: the rule)"
    )
    min_segment: float = Field(30.0, gt=0, allow_inf_nan=False, description="seconds, at least")
    max_segments: int = Field(48, ge=1, le=10_000, description="segments a video, at most")
    segment_frames: int = Field(4, ge=1, le=64, description="frames described per segment")
    note_tokens: int = Field(96, ge=1, le=4096, description="new tokens per segment note")
    batch_size: int = Field(8, ge=1, le=256, description="segments described together")
    shots: bool = Field(True, description="cut at the scene sampler's shots when installed")
    refine: bool = Field(False, description="look again at the cited segments, more frames")
    refine_frames: int = Field(12, ge=1, le=256, description="frames a cited segment, refined")
    refine_segments: int = Field(3, ge=1, le=16, description="cited segments looked at again")


class SegmentNote(BaseModel):
    """One segment of the timeline: its time range, what the model said happens in it, the
    times of the frames it was shown and the transcript lines beside them."""

    start: float = Field(ge=0, description="seconds")
    end: float = Field(ge=0, description="seconds")
    note: str
    frames: list[float] = Field(default_factory=list, description="frame timestamps shown")
    transcript: list[str] = Field(default_factory=list, description="`[m:ss-m:ss] text` lines")
    cached: bool = Field(False, description="reused from the note store, not made now")

    def span(self) -> str:
        """`12:00-13:00`, as the prompts show it."""
        return f"{clock(self.start)}-{clock(self.end)}"

    def line(self) -> str:
        """`[12:00-13:00] note`: the segment as the timeline prompt shows it."""
        return f"[{self.span()}] {' '.join(self.note.split())}"


TIMELINE_FORMATS = ("json", "md", "vtt")


def render_timeline(notes: list[SegmentNote], fmt: str, title: str = "") -> str:
    """The timeline as `json` (the notes), `md` (Markdown: a line per segment, with times) or
    `vtt` (WebVTT chapters: a cue per segment)."""
    if fmt == "json":
        body = {"title": title, "segments": [n.model_dump(exclude={"cached"}) for n in notes]}
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    if fmt == "md":
        head = f"# {title}\n\n" if title else ""
        lines = []
        for n in notes:
            lines.append(f"- **{n.span()}** {' '.join(n.note.split()) or '...'}")
            lines += [f"  - said: {line}" for line in n.transcript]
        return head + "\n".join(lines) + "\n"
    if fmt == "vtt":
        cues = []
        for number, n in enumerate(notes, 1):
            text = " ".join(n.note.split()).replace("-->", "->") or "..."
            cues.append(f"{number}\n{stamp(n.start)} --> {stamp(n.end)}\n{text}\n")
        return "WEBVTT\n\n" + "\n".join(cues)
    raise ValueError(f"unknown timeline format {fmt!r}; use {', '.join(TIMELINE_FORMATS)}")


def stamp(seconds: float) -> str:
    """`hh:mm:ss.mmm`, as WebVTT writes times."""
    millis = round(max(seconds, 0.0) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"
