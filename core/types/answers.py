"""Generation options and what comes back: answers, usage, timings, the frames used."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidtt.types.timeline import SegmentNote, Strategy
from vidtt.types.transcripts import Transcript

MAX_NEW_TOKENS = 1_000_000  # the most tokens one answer may ask for
MAX_SEED = 2**64 - 1  # seeds are 0 .. 2**64 - 1, the range torch.manual_seed takes
MAX_BEAMS = 256


class GenerationOptions(BaseModel):
    """Options passed to `model.generate`; the defaults decode greedily.

    The named fields are the common ones; any other field of transformers' `GenerationConfig`
    (`min_p`, `no_repeat_ngram_size`, ...) is accepted too and checked against it by name.
    `stop` strings end the answer and are not part of its text (OpenAI's convention).
    Every number has its range (`seed`: 0 to 2**64 - 1; no NaN or infinity), so a value
    `model.generate` or torch cannot take is refused here, with its name.
    """

    model_config = ConfigDict(extra="allow")
    max_new_tokens: int = Field(256, ge=1, le=MAX_NEW_TOKENS)
    min_new_tokens: int | None = Field(None, ge=0, le=MAX_NEW_TOKENS)
    do_sample: bool = False
    temperature: float | None = Field(None, gt=0, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    top_k: int | None = Field(None, ge=1)
    repetition_penalty: float | None = Field(None, gt=0, allow_inf_nan=False)
    num_beams: int = Field(1, ge=1, le=MAX_BEAMS)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="0 to 2**64 - 1")
    stop: list[str] | None = Field(None, description="strings that end the answer (excluded)")

    @model_validator(mode="before")
    @classmethod
    def _stop_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("stop"), str):
            data = {**data, "stop": [data["stop"]]}
        return data

    @model_validator(mode="after")
    def _check_extra(self) -> GenerationOptions:
        stop = self.stop or []
        if any(not s for s in stop):
            raise ValueError("stop strings must not be empty")
        if self.model_extra:
            check_generation_fields(self.model_extra)
        if self.min_new_tokens is not None and self.min_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens={self.min_new_tokens} is above "
                f"max_new_tokens={self.max_new_tokens}"
            )
        return self

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate` (unset sampling knobs left out)."""
        kwargs = self.model_dump(exclude_none=True, exclude={"seed", "stop"})
        if self.stop:
            kwargs["stop_strings"] = list(self.stop)
        return kwargs


# GenerationConfig fields vidtt sets itself or whose output shape it cannot turn into Answers.
RESERVED_GENERATION = {
    "stop_strings": "use stop",
    "num_return_sequences": "send the request several times with do_sample and a seed",
    "return_dict_in_generate": "vidtt builds the Answer itself",
    "output_scores": "vidtt builds the Answer itself",
    "output_logits": "vidtt builds the Answer itself",
    "output_attentions": "vidtt builds the Answer itself",
    "output_hidden_states": "vidtt builds the Answer itself",
    "streamer": "use stream=True",
}


def generation_config_fields() -> set[str]:
    """Names transformers' `GenerationConfig` knows (imports transformers)."""
    from transformers import GenerationConfig

    return set(GenerationConfig().to_dict()) - {"transformers_version", "_from_model_config"}


def check_generation_fields(extra: dict[str, Any]) -> None:
    """Refuse names `GenerationConfig` does not know, and the few vidtt reserves."""
    for name in extra:
        if name in RESERVED_GENERATION:
            raise ValueError(
                f"generation option {name!r} is not accepted: {RESERVED_GENERATION[name]}"
            )
    unknown = sorted(set(extra) - generation_config_fields())
    if unknown:
        raise ValueError(
            f"unknown generation option(s) {', '.join(map(repr, unknown))}: use a field of "
            "transformers' GenerationConfig (e.g. min_p, no_repeat_ngram_size) or one of "
            "max_new_tokens, min_new_tokens, temperature, top_p, top_k, stop, seed"
        )


class Usage(BaseModel):
    prompt_tokens: int = Field(description="all input tokens, visual ones included")
    visual_tokens: int = Field(description="input tokens that stand for image or video content")
    generated_tokens: int
    cached_tokens: int = Field(
        0, description="prompt tokens whose model state came from the prefix cache"
    )

    @classmethod
    def zero(cls) -> Usage:
        return cls(prompt_tokens=0, visual_tokens=0, generated_tokens=0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            visual_tokens=self.visual_tokens + other.visual_tokens,
            generated_tokens=self.generated_tokens + other.generated_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class Timings(BaseModel):
    """Seconds spent in each stage of one request."""

    sampling: float = 0.0
    preprocessing: float = 0.0
    prefill: float = 0.0
    decode: float = 0.0

    @property
    def total(self) -> float:
        return self.sampling + self.preprocessing + self.prefill + self.decode


class FramesUsed(BaseModel):
    """Which frames of one video the model saw."""

    source: str
    sampler: str
    indices: list[int]
    timestamps: list[float]
    rule: str = Field("", description="what chose the frames: your settings, the model's, vidtt's")
    budget: dict[str, Any] | None = Field(
        None, description="the visual-token budget's plan, when one chose the frames"
    )
    transcript: Transcript | None = Field(
        None, description="what is said in the video, as the prompt gave it (segments used)"
    )
    warnings: list[str] = Field(default_factory=list)


class Span(BaseModel):
    """A stretch of the video an answer points at: seconds on the video's clock (the frames'
    clock; for a watched stream, the stream's), and the words of the answer it was read from."""

    start: float = Field(ge=0, allow_inf_nan=False)
    end: float = Field(ge=0, allow_inf_nan=False)
    text: str = Field("", description="the sentence of the answer that gave this span")

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.end < self.start:
            raise ValueError(f"a span ends ({self.end}) before it starts ({self.start})")
        return self


class Answer(BaseModel):
    """A model's reply: the generated text only, with its token ids, usage and timings."""

    text: str
    token_ids: list[int]
    finish_reason: Literal["stop", "length"]
    usage: Usage
    timings: Timings
    videos: list[FramesUsed] = Field(default_factory=list)
    model: str = ""
    formatter: str = ""
    backend: str = ""
    device: str = ""
    dtype: str = ""
    spans: list[Span] | None = Field(
        None,
        description="when asked for (spans=True): the time spans the answer points at, in "
        "order and merged ([] when it names no time); None when not asked",
    )
    narrowed: list[FramesUsed] = Field(
        default_factory=list,
        description="with spans: the frames of each narrowing pass, one a span (at most 3), "
        "sampled densely around it",
    )
    peak_memory: int | None = Field(
        None,
        description="the most bytes of device memory in use while the answer's batch was "
        "generated (on the CPU: the process's peak resident size); None where not told",
    )
    strategy: Strategy = Field("direct", description="direct, or segments (a long video)")
    segments: list[SegmentNote] = Field(
        default_factory=list, description="the timeline the answer was made from (segments)"
    )
