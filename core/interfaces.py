"""The four plugin interfaces (Sampler, PromptFormatter, Backend, Transcriber) and the
capabilities core may use of a sampler (`ShotFinder`, `Sampler.uses_decode_layer`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vidtt.errors import BackendUnavailableError, DtypeError, OptionsError
from vidtt.progress import Progress
from vidtt.types import Clip, Message, Transcript, VideoInfo, VideoSource
from vidtt.validation import describe

DTYPES = ("float32", "float16", "bfloat16")

# The names sampler options share for how many frames are taken, and how often.
COUNT_OPTIONS = ("num_frames", "max_frames")  # a frame count, or a cap on one
RATE_OPTIONS = ("every", "fps")  # one frame every N seconds, N frames a second
FRAME_OPTIONS = frozenset({*COUNT_OPTIONS, *RATE_OPTIONS, "min_frames"})
RATE_SAMPLER = "interval"  # the built-in sampler that takes a rate
COUNT_SAMPLER = "uniform"  # the built-in sampler that takes a count
# What an option given replaces in the options it lies over: a count or a rate replaces the
# other counts and rates (a cap on a rate's frames, `max_frames`, stays unless a count is
# given); `size` and `max_side` replace each other.
REPLACES: dict[str, frozenset[str]] = {
    "num_frames": frozenset({"fps", "every", "max_frames"}),
    "max_frames": frozenset({"num_frames"}),
    "fps": frozenset({"num_frames", "every"}),
    "every": frozenset({"num_frames", "fps"}),
    "size": frozenset({"max_side"}),
    "max_side": frozenset({"size"}),
}


def options_over(given: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Sampler options `given` (flags, a request's fields) laid over `base` (a config's): key
    by key, except that a given option drops the base options it replaces (`REPLACES`). The
    one rule for every entry point (docs/guide.md, "How settings combine")."""
    dropped = {name for key in given for name in REPLACES.get(key, ())}
    return {**{k: v for k, v in base.items() if k not in dropped}, **given}


class SamplerOptions(BaseModel):
    """Options every sampler takes: a time range and the output size.

    `size`: an int sets the shorter side (aspect kept); a `(width, height)` pair is exact.
    `max_side`: the longer side is at most this many pixels (never upscales).
    """

    model_config = ConfigDict(extra="forbid")
    start: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="seconds from the video's start"
    )
    end: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="seconds from the video's start"
    )
    size: int | tuple[int, int] | None = None
    max_side: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> SamplerOptions:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.size is not None and self.max_side is not None:
            raise ValueError("give size or max_side, not both")
        sizes = (self.size,) if isinstance(self.size, int) else (self.size or ())
        if any(s < 1 for s in sizes):
            raise ValueError("size must be positive")
        return self


class Sampler(ABC):
    """Picks frames from a video. Subclasses set `name` and their own `options_model`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options_model: ClassVar[type[SamplerOptions]] = SamplerOptions
    # Which option `--frames` (and other "how many frames" settings) sets; None: it has none.
    # Left unset, it is `num_frames`, else `max_frames`, whichever the options model has.
    count_option: ClassVar[str | None]
    # Whether it reads videos through core's decode layer (FFmpeg, `vidtt.media.decode`): then
    # core refuses a local video that layer cannot open before any model loads (a plugin that
    # reads what FFmpeg does not leaves it False).
    uses_decode_layer: ClassVar[bool] = False

    @classmethod
    def frames_option(cls) -> str | None:
        """The option that sets how many frames this sampler takes, or None."""
        if hasattr(cls, "count_option"):
            return cls.count_option
        fields = cls.options_model.model_fields
        return next((name for name in COUNT_OPTIONS if name in fields), None)

    @classmethod
    def takes(cls, names: Any) -> bool:
        """Whether this sampler's options model has every option in `names`."""
        return set(names) <= set(cls.options_model.model_fields)

    def options(self, **values: Any) -> SamplerOptions:
        """Validate options for this sampler; raise `OptionsError` naming each bad field."""
        try:
            return self.options_model(**values)
        except ValidationError as exc:
            raise OptionsError(f"sampler {self.name!r}: {describe(exc)}") from None

    @abstractmethod
    def sample(self, source: VideoSource, options: SamplerOptions) -> Clip:
        """Decode and return the chosen frames of `source`."""

    def probe(self, source: VideoSource) -> VideoInfo | None:
        """The video's frame count, size and duration without decoding frames, or None when
        this sampler cannot tell (a visual-token budget then plans without them)."""
        return None


@runtime_checkable
class ShotFinder(Protocol):
    """A sampler that can report a video's shots without sampling frames: what the segments
    strategy asks of the sampler named `scene` (cut at shots, else at equal windows)."""

    def shot_times(
        self, source: Any, *, start: float | None = None, end: float | None = None
    ) -> list[tuple[float, float]]:
        """The (start, end) seconds of every shot of the video between `start` and `end`."""
        ...


class PromptFormatter(ABC):
    """Turns conversations with videos into processor inputs for one family of models."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    priority: ClassVar[int] = 0

    @abstractmethod
    def decline_reason(self, model_config: Any, processor: Any) -> str | None:
        """Why this formatter cannot serve the model, or None when it can."""

    def supports(self, model_config: Any, processor: Any) -> bool:
        return self.decline_reason(model_config, processor) is None

    def takes_audio(self, processor: Any) -> bool:
        """Whether this formatter gives the model a video's audio itself (omni models): then
        a transcript is not made, and each Clip's `audio` is filled instead."""
        return False

    @abstractmethod
    def build_inputs(
        self, conversations: list[list[Message]], processor: Any, **options: Any
    ) -> Any:
        """Processor outputs (a `BatchFeature`) for conversations whose videos are Clips."""


class Backend(ABC):
    """A device family. Availability probes are cheap, cached, and never initialise the device."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    priority: ClassVar[int] = 0
    visible_devices_env: ClassVar[str | None] = None

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self._reason: str | None = None
        self._probed = False

    @abstractmethod
    def probe(self) -> str | None:
        """Look for the device without initialising it: None if usable, else the reason."""

    def is_available(self) -> bool:
        return self.why_unavailable() is None

    def why_unavailable(self) -> str | None:
        """The probe's reason, cached; a probe that raises makes the backend unavailable."""
        if not self._probed:
            try:
                self._reason = self.probe()
            except Exception as exc:
                self._reason = f"its availability check failed: {type(exc).__name__}: {exc}"
            self._probed = True
        return self._reason

    def reset(self) -> None:
        """Forget the cached probe (after the environment changed)."""
        self._probed = False

    def require(self) -> None:
        """Raise `BackendUnavailableError` with the reason when this backend cannot run."""
        reason = self.why_unavailable()
        if reason is not None:
            raise BackendUnavailableError(
                f"backend {self.name!r} is unavailable: {reason}; choose another with "
                "--backend or VIDTT_BACKEND (see `vidtt backends`)"
            )

    @property
    def device(self) -> str:
        return f"{self.name}:{self.index}"

    def device_count(self) -> int:
        return 1 if self.is_available() else 0

    def device_name(self) -> str:
        return self.name

    @property
    def supported_dtypes(self) -> list[str]:
        """Dtypes this device runs, best first."""
        return ["float32"]

    def check_dtype(self, dtype: str) -> str:
        """Resolve `auto` to the best dtype; raise `DtypeError` for one this device lacks."""
        supported = self.supported_dtypes
        if dtype == "auto":
            return supported[0]
        if dtype not in supported:
            raise DtypeError(
                f"dtype {dtype!r} is not supported on backend {self.name!r}; "
                f"use one of {', '.join(supported)} or 'auto'"
            )
        return dtype

    def memory_info(self) -> dict[str, int] | None:
        """`{"total": bytes, "free": bytes}` where the device tells, else None."""
        return None

    def reset_peak_memory(self) -> None:
        """Start measuring `peak_memory` afresh (a no-op where the device cannot)."""

    def peak_memory(self) -> int | None:
        """The most bytes in use since `reset_peak_memory`, where the device tells, else None."""
        return None

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op where work is synchronous)."""

    def empty_cache(self) -> None:
        """Release cached device memory (a no-op where there is no cache)."""


class TranscriberOptions(BaseModel):
    """Options every transcriber takes: a time range, the language, and where to run.

    `start`/`end` are on the video's clock, as sampler options are. `language` None: detect it.
    `device` and `dtype` are the pipeline's (its backend and dtype) unless set here.
    """

    model_config = ConfigDict(extra="forbid")
    start: float | None = Field(None, ge=0, allow_inf_nan=False, description="seconds")
    end: float | None = Field(None, gt=0, allow_inf_nan=False, description="seconds")
    language: str | None = Field(None, min_length=2, description="e.g. 'en'; None: detected")
    device: str | None = Field(None, description="e.g. 'cpu' or 'cuda:0'; None: the pipeline's")
    dtype: str | None = Field(None, description="float32, float16, bfloat16; None: the pipeline's")

    @model_validator(mode="after")
    def _check(self) -> TranscriberOptions:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        return self


class Transcriber(ABC):
    """Turns a video's speech into a timed `Transcript`. Subclasses set `name` and their own
    `options_model`; `transcribe` raises `NoAudioError` for a video with no audio."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options_model: ClassVar[type[TranscriberOptions]] = TranscriberOptions

    def options(self, **values: Any) -> TranscriberOptions:
        """Validate options for this transcriber; raise `OptionsError` naming each bad field."""
        try:
            return self.options_model(**values)
        except ValidationError as exc:
            raise OptionsError(f"transcriber {self.name!r}: {describe(exc)}") from None

    @abstractmethod
    def transcribe(
        self, source: VideoSource, options: TranscriberOptions, progress: Progress | None = None
    ) -> Transcript:
        """The timed segments said in `source` (within the options' time range)."""


class EmbedderOptions(BaseModel):
    """Options every embedder takes: where it runs, and how many inputs go in one batch."""

    model_config = ConfigDict(extra="forbid")
    device: str = Field("cpu", description="e.g. 'cpu' or 'cuda:0'")
    dtype: str = Field("float32", description="float32, float16 or bfloat16")
    batch_size: int = Field(32, ge=1, le=4096, description="frames or texts a forward pass")


class Embedder(ABC):
    """Turns frames and texts into vectors of one space, so that a text finds the frames (and
    the texts) it describes. Subclasses set `name` and their own `options_model`. Vectors are
    float32 rows of length `dimension(options)`, each of length 1 (cosine is a dot product)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options_model: ClassVar[type[EmbedderOptions]] = EmbedderOptions

    def options(self, **values: Any) -> EmbedderOptions:
        """Validate options for this embedder; raise `OptionsError` naming each bad field."""
        try:
            return self.options_model(**values)
        except ValidationError as exc:
            raise OptionsError(f"embedder {self.name!r}: {describe(exc)}") from None

    def signature(self, options: EmbedderOptions) -> str:
        """What makes its vectors comparable: vectors of two signatures must not be mixed
        (by default the name; a model-backed embedder adds its model)."""
        return self.name

    @abstractmethod
    def dimension(self, options: EmbedderOptions) -> int:
        """The length of its vectors."""

    @abstractmethod
    def embed_frames(self, frames: Any, options: EmbedderOptions) -> Any:
        """One vector per frame of `frames` (uint8, N x height x width x 3): N x dimension."""

    @abstractmethod
    def embed_texts(self, texts: list[str], options: EmbedderOptions) -> Any:
        """One vector per text: N x dimension."""
