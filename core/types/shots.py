"""Shots: the stretches of a video between two cuts, as a scene sampler found them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vidtt.types.clock import clock

Boundary = Literal["start", "cut", "gradual"]


class Shot(BaseModel):
    """One shot: its time range, its frame range and which of the clip's frames lie in it."""

    model_config = ConfigDict(frozen=True)
    start: float = Field(ge=0, description="seconds from the video's first frame")
    end: float = Field(ge=0, description="seconds: where the next shot (or the range) starts")
    first_frame: int = Field(ge=0, description="the shot's first frame number")
    end_frame: int = Field(ge=0, description="the frame number after the shot's last")
    frames: list[int] = Field(default_factory=list, description="positions in the Clip")
    boundary: Boundary = Field("start", description="how the shot begins: a cut or a fade")

    @property
    def duration(self) -> float:
        return self.end - self.start

    def label(self, number: int) -> str:
        """`shot 3, 0:41-1:05`: as a prompt shows it (`number` counts from 1)."""
        return f"shot {number}, {clock(self.start)}-{clock(self.end)}"
