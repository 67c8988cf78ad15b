"""The budget a caller sets (`Budget`) and the plan it gets back (`BudgetPlan`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Size = tuple[int, int]  # (width, height)


class Budget(BaseModel):
    """How many visual tokens the video(s) of a prompt may take.

    `max_visual_tokens`: at most this many visual tokens. `fit="context"`: what the model's
    context leaves after the prompt text and `max_new_tokens`. With both, the smaller wins.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_visual_tokens: int | None = Field(None, ge=1, description="visual tokens at most")
    fit: Literal["context"] | None = Field(
        None, description='"context": leave room for the prompt text and max_new_tokens'
    )

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.max_visual_tokens is None and self.fit is None:
            raise ValueError('a budget needs max_visual_tokens, fit="context", or both')
        return self

    @classmethod
    def of(
        cls, max_visual_tokens: int | None = None, fit: Literal["context"] | None = None
    ) -> Budget | None:
        """The budget for these settings, or None when neither is set (no budget)."""
        if max_visual_tokens is None and fit is None:
            return None
        return cls(max_visual_tokens=max_visual_tokens, fit=fit)

    def describe(self) -> str:
        parts = []
        if self.max_visual_tokens is not None:
            parts.append(f"max_visual_tokens={self.max_visual_tokens}")
        if self.fit is not None:
            parts.append(f"fit={self.fit!r}")
        return ", ".join(parts)


class BudgetPlan(BaseModel):
    """The frames (and size) a budget chose, with the counts behind the choice."""

    model_config = ConfigDict(frozen=True)
    budget: Budget
    limit: int = Field(description="the tokens the video(s) may take under the budget")
    num_frames: int = Field(description="frames to sample from each video")
    size: Size | None = Field(
        None, description="(width, height) to sample frames at; None: the budget chose no size"
    )
    visual_tokens: int = Field(description="visual tokens of the planned video(s)")
    video_tokens: int = Field(
        description="prompt tokens the planned video(s) add, wrapper tokens included"
    )
    tokens_per_frame: int | float = Field(description="visual tokens / frames, as measured")
    reason: str = Field(description="one sentence: why these frames and this size")

    def sampler_options(self, count_option: str | None = "num_frames") -> dict[str, Any]:
        """Sampler options for the plan: the frame count under `count_option` (the sampler's
        `frames_option()`), and `size` when the budget chose one (it replaces `max_side`)."""
        options: dict[str, Any] = {}
        if count_option:
            options[count_option] = self.num_frames
        if self.size is not None:
            options["size"] = self.size
        return options
