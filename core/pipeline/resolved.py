"""A request resolved once: every choice a strategy needs, made in one place and handed on.

    resolved = pipe.resolve({"videos": ["talk.mp4"], "question": "When?", "strategy": "segments"})
    resolved.strategy, resolved.sampler.name, resolved.transcript_cap

The rule, for every entry point (Python, each command, `vidtt run`, Ray actors, the server):
a request's own fields lie over the config's (`strategy`, `sampler` and its options,
generation options, `transcript`, `max_transcript_tokens`, `max_visual_tokens`, `fit`,
`segment_options`); the config lies over vidtt's defaults. A sampler option that sets a frame
count or rate (`num_frames`, `fps`, `every`, ...) replaces the config's count and rate.
`Pipeline.resolve` makes a `Resolved` by these rules; nothing below it parses a request again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from vidtt.config import PipelineConfig
from vidtt.errors import OptionsError
from vidtt.interfaces import Sampler, SamplerOptions
from vidtt.pipeline.request import Request
from vidtt.types import GenerationOptions, SegmentOptions, Strategy, TranscriptMode
from vidtt.validation import describe


@dataclass(frozen=True)
class Resolved:
    """What a request asks for, with the config filled in: read, never re-derived."""

    request: Request
    strategy: Strategy
    sampler: Sampler
    sampler_options: SamplerOptions
    generation: GenerationOptions
    transcript: TranscriptMode
    transcript_cap: int | None  # transcript tokens at most (None: no cap)
    transcript_rule: str  # which rule set the cap, in words
    max_visual_tokens: int | None
    fit: str | None
    timestamps: bool  # the prompt says when each frame was taken
    note_timestamps: bool  # the entry's own setting, as segment notes are made with it
    segments: SegmentOptions  # how strategy segments cuts and notes
    spans: bool = False  # find when: the answer's time spans read, then narrowed

    @property
    def budget(self) -> dict[str, Any]:
        """The visual-token budget settings, as `vidtt.budget.request.budget_of` takes them."""
        return {"max_visual_tokens": self.max_visual_tokens, "fit": self.fit}


def strategy_of(config: PipelineConfig, asked: str | None) -> Strategy:
    """The strategy that answers a request: its own, else the config's."""
    return "segments" if (asked or config.strategy) == "segments" else "direct"


def segment_options(config: PipelineConfig, request: Request) -> SegmentOptions:
    """The config's segment options with the request's over them."""
    base = config.segment_options.model_dump(exclude_unset=True)
    try:
        return SegmentOptions.model_validate({**base, **request.segment_options})
    except ValidationError as exc:
        raise OptionsError(f"segment_options: {describe(exc)}") from None


def transcript_cap(
    config: PipelineConfig,
    request: Request,
    generation: GenerationOptions,
    strategy: Strategy,
    context: int | None,
) -> tuple[int | None, str]:
    """The most transcript tokens a request may take, and the rule that says so: its own cap,
    else the config's, else (with `fit: context`, or a timeline that must fit the context)
    half of the `context` left after the answer."""
    cap = request.max_transcript_tokens or config.max_transcript_tokens
    if cap is not None:
        return cap, f"max_transcript_tokens={cap}"
    fit = request.fit or config.fit
    if (fit == "context" or strategy == "segments") and context:
        half = max(1, (context - generation.max_new_tokens) // 2)
        why = "fit: context" if fit == "context" else "strategy segments"
        return half, f"{why} (at most half of the {context}-token context)"
    return None, ""
