"""Data crossing vidtt's boundaries: sources, clips, conversations, generation options, answers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import DecodeError, SourceError

if TYPE_CHECKING:
    from PIL.Image import Image

URL_SCHEMES = ("http", "https")
SourceKind = Literal["path", "url", "bytes", "file", "frames"]


@dataclass(frozen=True)
class VideoSource:
    """Where a video comes from: a path, an http(s) URL, bytes, a binary file object or frames."""

    kind: SourceKind
    value: Any
    label: str

    @classmethod
    def of(cls, source: Any) -> VideoSource:
        """Wrap anything a sampler accepts; raise `SourceError` for anything else."""
        if isinstance(source, VideoSource):
            return source
        if isinstance(source, (str, os.PathLike)):
            return _source_from_text(os.fspath(source))
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            return cls("bytes", data, f"<{len(data)} bytes>")
        if hasattr(source, "read"):
            return cls("file", source, getattr(source, "name", None) or "<file object>")
        if _looks_like_frames(source):
            return cls("frames", source, f"<{len(source)} frames>")
        raise SourceError(
            f"unsupported video source of type {type(source).__name__}: pass a path, an http(s) "
            "URL, bytes, a binary file object, or a list of frames"
        )

    def checked_path(self) -> str:
        """The local path, once checked to be a readable, non-empty file."""
        path = Path(self.value).expanduser()
        try:
            if path.is_dir():
                raise SourceError(f"{self.value} is a directory: pass a video file inside it")
            size = path.stat().st_size
        except FileNotFoundError:
            raise SourceError(f"video not found: {self.value} (check the path)") from None
        except OSError as exc:  # e.g. a symlink loop, a too-long name
            raise SourceError(f"cannot read {self.value}: {exc.strerror or exc}") from None
        if size == 0:
            raise DecodeError(f"{self.value} is empty (0 bytes)")
        if not os.access(path, os.R_OK):
            raise SourceError(f"permission denied reading {self.value}")
        return str(path)


def _source_from_text(text: str) -> VideoSource:
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in URL_SCHEMES:
            raise SourceError(
                f"URL scheme {scheme!r} is not allowed in {text!r}: use http(s) or a local path"
            )
        return VideoSource("url", text, text)
    if not text:
        raise SourceError("empty video path: pass a file path or an http(s) URL")
    return VideoSource("path", text, text)


def _looks_like_frames(source: Any) -> bool:
    if isinstance(source, (list, tuple)):
        return len(source) > 0 and all(hasattr(f, "size") or hasattr(f, "shape") for f in source)
    shape = getattr(source, "shape", None)
    return shape is not None and len(shape) == 4


class VideoInfo(BaseModel):
    """What the container says about a video, corrected where it could not be trusted."""

    duration: float | None = Field(None, description="seconds")
    fps: float | None = Field(None, description="average frames per second")
    frame_count: int | None = None
    frame_count_exact: bool = Field(False, description="counted by decoding, not read from headers")
    width: int
    height: int
    codec: str = ""
    container: str = ""
    rotation: int = Field(0, description="degrees counter-clockwise frames were turned upright")
    start_time: float = 0.0
    keyframe_count: int | None = None


@dataclass
class Clip:
    """Frames sampled from one video, with their true indices and timestamps."""

    frames: list[Image]
    indices: list[int]
    timestamps: list[float]
    info: VideoInfo
    sampler: str = ""
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not len(self.frames) == len(self.indices) == len(self.timestamps):
            raise ValueError("a Clip needs as many indices and timestamps as frames")

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def sampled_fps(self) -> float:
        """Frames per second of the sample itself (1.0 for a single frame)."""
        if len(self.timestamps) < 2:
            return 1.0
        span = self.timestamps[-1] - self.timestamps[0]
        return (len(self.timestamps) - 1) / span if span > 0 else 1.0


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class VideoPart(BaseModel):
    """A video in a message: any source `VideoSource.of` accepts, or a `Clip` already sampled."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    type: Literal["video"] = "video"
    video: Any

    @model_validator(mode="before")
    @classmethod
    def _accept_aliases(cls, data: Any) -> Any:
        return _alias_to(data, "video")


class ImagePart(BaseModel):
    """An image in a message: a PIL image, an array, or a path/URL."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    type: Literal["image"] = "image"
    image: Any

    @model_validator(mode="before")
    @classmethod
    def _accept_aliases(cls, data: Any) -> Any:
        return _alias_to(data, "image")


def _alias_to(data: Any, key: str) -> Any:
    """Accept transformers' chat-template spelling (`path`/`url`) for the media field."""
    if isinstance(data, dict) and key not in data:
        for alias in ("path", "url"):
            if alias in data:
                data = {**data, key: data[alias]}
                data.pop(alias)
                break
    return data


ContentPart = Annotated[TextPart | VideoPart | ImagePart, Field(discriminator="type")]


class Message(BaseModel):
    """One turn of a conversation; a plain string content becomes one text part."""

    role: Literal["system", "user", "assistant"]
    content: list[ContentPart]

    @model_validator(mode="before")
    @classmethod
    def _text_content(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("content"), str):
            data = {**data, "content": [{"type": "text", "text": data["content"]}]}
        return data


class GenerationOptions(BaseModel):
    """Options passed to `model.generate`; the defaults decode greedily.

    The named fields are the common ones; any other field of transformers' `GenerationConfig`
    (`min_p`, `no_repeat_ngram_size`, ...) is accepted too and checked against it by name.
    `stop` strings end the answer and are not part of its text (OpenAI's convention).
    """

    model_config = ConfigDict(extra="allow")
    max_new_tokens: int = Field(256, ge=1, le=1_000_000)
    min_new_tokens: int | None = Field(None, ge=0)
    do_sample: bool = False
    temperature: float | None = Field(None, gt=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    repetition_penalty: float | None = Field(None, gt=0)
    num_beams: int = Field(1, ge=1)
    seed: int | None = None
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
