"""Watching a live source: how a watch runs (`WatchOptions`) and what it reports (`WatchEvent`)."""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vidtt.types.answers import Span

Transport = Literal["tcp", "udp"]
EventKind = Literal["answer", "source"]
YES = re.compile(r"^\W*yes\b", re.IGNORECASE)
YES_NO_HINT = " Answer yes or no first."
MIN_EVERY = 0.1  # seconds: a tick asks the model; more often only keeps a core busy
MAX_PATTERN = 1000  # characters of a `when` pattern


class WatchOptions(BaseModel):
    """Every `every` seconds the frames of the last `window` seconds are asked the question.

    Frames are kept at most `buffer_fps` a second (a ring buffer of the window: memory does not
    grow with time). A source that drops is reopened with backoff for up to `reconnect_seconds`
    (a file: waited for to grow that long) before the watch ends.
    """

    model_config = ConfigDict(extra="forbid")
    every: float = Field(5.0, gt=0, le=86_400, allow_inf_nan=False, description="seconds per tick")
    window: float = Field(
        10.0, gt=0, le=3_600, allow_inf_nan=False, description="seconds of frames each tick sees"
    )
    buffer_fps: float = Field(
        4.0, gt=0, le=60, allow_inf_nan=False, description="frames a second kept in the window"
    )
    when: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PATTERN,
        description="a regular expression (RE2 syntax): only answers it matches count",
    )
    yes_no: bool = Field(False, description="ask for yes or no; only 'yes' answers count")
    max_events: int | None = Field(None, ge=1, description="stop after this many answers")
    duration: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="stop after this many seconds"
    )
    transport: Transport = Field("tcp", description="RTSP transport: tcp or udp")
    open_timeout: float = Field(
        10.0, gt=0, le=600, allow_inf_nan=False, description="seconds to open the source"
    )
    read_timeout: float = Field(
        5.0, gt=0, le=600, allow_inf_nan=False, description="seconds a read may stall"
    )
    reconnect_seconds: float = Field(
        30.0, ge=0, le=86_400, allow_inf_nan=False, description="how long a lost source is retried"
    )

    @field_validator("every")
    @classmethod
    def _every(cls, value: float) -> float:
        if 0 < value < MIN_EVERY:
            raise ValueError(
                f"ticks come at most every {MIN_EVERY:g} s (each asks the model): give "
                f"{MIN_EVERY:g} or more"
            )
        return value

    @field_validator("when")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            pattern(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> WatchOptions:
        if self.window * self.buffer_fps > 3_600:
            raise ValueError(
                f"window x buffer_fps is {self.window * self.buffer_fps:g} frames, over 3600: "
                "shorten the window or lower buffer_fps"
            )
        return self

    def filters(self) -> bool:
        """Whether only some answers count (`when` or `yes_no`)."""
        return self.when is not None or self.yes_no

    def matches(self, answer: str) -> bool:
        """Whether an answer counts: it says yes (`yes_no`) and matches `when`."""
        if self.yes_no and not YES.search(answer):
            return False
        if self.when is None:
            return True
        text = answer.encode("utf-8", "replace").decode("utf-8")  # RE2 reads UTF-8
        return pattern(self.when).search(text) is not None

    def question(self, question: str) -> str:
        """The question as the model is asked it."""
        return question + YES_NO_HINT if self.yes_no else question


@functools.lru_cache(maxsize=64)
def pattern(text: str) -> Any:
    """`text` compiled by RE2, case-insensitive: matching takes time linear in the answer,
    whatever the pattern (no backtracking: no look-around, no back-references); a
    `ValueError` naming what is wrong when RE2 cannot compile it."""
    import re2

    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the reason is in the error raised here, not on stderr
    try:
        return re2.compile(text, options)
    except (re2.error, UnicodeError) as exc:
        said = exc.args[0] if exc.args and isinstance(exc, re2.error) else "not valid Unicode"
        reason = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        raise ValueError(
            f"not a regular expression vidtt accepts ({reason}): patterns use RE2 syntax, "
            "without look-around or back-references"
        ) from None


class WatchEvent(BaseModel):
    """One thing a watch reports: an answer for a tick, or news of the source.

    Times `start`, `end` and `frame_times` are stream seconds: since the watch began, on the
    source's own clock (kept running across reconnects). `latency` is the seconds from the last
    frame of the window reaching vidtt to the answer; `skipped` the ticks passed over while the
    model was busy with earlier ones (they are skipped, never queued).
    """

    kind: EventKind = "answer"
    number: int = Field(0, description="the tick (answers) or the event's count (source)")
    wall_time: str = Field(description="when it happened, ISO 8601 UTC")
    start: float | None = None
    end: float | None = None
    frame_times: list[float] = Field(default_factory=list)
    answer: str = ""
    matched: bool | None = Field(None, description="with when/yes_no: whether it matched")
    held: Span | None = Field(
        None,
        description="with when/yes_no, on a match: the stretch of the stream where the "
        "condition has held, from the first window of this run of matches to this one's end",
    )
    latency: float | None = None
    skipped: int = 0
    message: str = Field("", description="source events: what happened")

    def text(self) -> str:
        """One line for a terminal."""
        if self.kind == "source":
            return f"[{self.wall_time}] source: {self.message}"
        late = f", {self.latency:.1f} s late" if self.latency is not None else ""
        skipped = f", {self.skipped} tick(s) skipped" if self.skipped else ""
        span = f"{self.start:.1f}-{self.end:.1f} s" if self.start is not None else "-"
        return f"[{self.wall_time}] {span}{late}{skipped}: {' '.join(self.answer.split())}"
