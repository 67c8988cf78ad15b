"""Data crossing vidtt's boundaries: sources, clips, conversations, generation options, answers."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidtt.errors import DecodeError, OptionsError, SourceError
from vidtt.urls import URL_SCHEMES, redact

if TYPE_CHECKING:
    from PIL.Image import Image

MIN_FRAMES_FPS = 1e-6  # a frame list's slowest rate: one frame in 11.6 days
SourceKind = Literal["path", "url", "bytes", "file", "frames"]


@dataclass(frozen=True)
class VideoSource:
    """Where a video comes from: a path, an http(s) URL, bytes, a binary file object or frames."""

    kind: SourceKind
    value: Any
    label: str
    fps: float | None = None  # frame sources: frames per second (default 1)

    @classmethod
    def from_frames(cls, frames: Any, fps: float = 1.0) -> VideoSource:
        """Frames already decoded (PIL images or arrays), frame i shown at i / fps seconds."""
        real = isinstance(fps, numbers.Real) and not isinstance(fps, bool)
        if not (real and math.isfinite(fps) and fps > 0):
            raise OptionsError(f"fps of a frame list must be a positive number, not {fps!r}")
        if fps < MIN_FRAMES_FPS:  # times of 1 / fps seconds and more would not be finite
            raise OptionsError(
                f"fps of a frame list must be at least {MIN_FRAMES_FPS:g}, not {fps!r}"
            )
        if not _looks_like_frames(frames) and not _is_empty_frames(frames):
            raise SourceError(
                f"expected a list of images or an (N, H, W, C) array, not {type(frames).__name__}"
            )
        return cls("frames", frames, f"<{len(frames)} frames>", float(fps))  # numpy: a float

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
        if _looks_like_frames(source) or _is_empty_frames(source):
            return cls("frames", source, f"<{len(source)} frames>")
        _check_frames_shape(source)
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
        return VideoSource("url", text, redact(text))
    if not text:
        raise SourceError("empty video path: pass a file path or an http(s) URL")
    return VideoSource("path", text, text)


def _check_frames_shape(source: Any) -> None:
    """`OptionsError` naming what is wrong with an array or a list that is meant as frames."""
    shape = getattr(source, "shape", None)
    if shape is not None:
        raise OptionsError(
            f"an array of shape {tuple(shape)} is not a list of frames: pass an (N, H, W, C) "
            "array or a list of images (HxW, HxWx3 or HxWx4 arrays, or PIL images)"
        )
    if isinstance(source, (list, tuple)) and any(_is_frame(f) for f in source):
        bad = next(i for i, f in enumerate(source) if not _is_frame(f))
        raise OptionsError(
            f"item {bad} of the frame list is a {type(source[bad]).__name__}, not an image or "
            "array: every item must be an image"
        )


def _is_frame(item: Any) -> bool:
    return hasattr(item, "size") or hasattr(item, "shape")


def _is_empty_frames(source: Any) -> bool:
    """An empty list of frames or an array with no frames (refused when sampled)."""
    if isinstance(source, (list, tuple)):
        return len(source) == 0
    shape = getattr(source, "shape", None)
    return shape is not None and len(shape) == 4 and shape[0] == 0


def _looks_like_frames(source: Any) -> bool:
    if isinstance(source, (list, tuple)):
        return len(source) > 0 and all(_is_frame(f) for f in source)
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


class Clip:
    """Frames sampled from one video, with their true indices and timestamps.

    The frames are held as one uint8 array, `array`, of shape (N, height, width, 3): 3 bytes a
    pixel. `frames` gives PIL images on demand (views of the array, made once). Build a Clip
    from either: `Clip(array=...)` or `Clip(frames=[PIL images or HxWx3 arrays], ...)`.
    """

    def __init__(
        self,
        frames: Sequence[Any] | None = None,
        indices: Sequence[int] = (),
        timestamps: Sequence[float] = (),
        info: VideoInfo | None = None,
        sampler: str = "",
        source: str = "",
        warnings: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        array: Any = None,
    ) -> None:
        if (frames is None) == (array is None):
            raise ValueError("a Clip needs either frames or array")
        self.array = _check_array(array) if frames is None else _stack(frames)
        self.indices = list(indices)
        self.timestamps = [float(t) for t in timestamps]
        if not len(self.array) == len(self.indices) == len(self.timestamps):
            raise ValueError("a Clip needs as many indices and timestamps as frames")
        if info is None:
            raise ValueError("a Clip needs its VideoInfo")
        self.info = info
        self.sampler, self.source = sampler, source
        self.warnings = list(warnings or [])
        self.metadata = dict(metadata or {})
        self._images: list[Image] | None = None

    def __len__(self) -> int:
        return len(self.array)

    def __repr__(self) -> str:
        return (
            f"Clip({len(self)} frames of {self.width}x{self.height} from {self.source!r}, "
            f"sampler={self.sampler!r}, indices={self.indices})"
        )

    @property
    def frames(self) -> list[Image]:
        """The frames as RGB PIL images (made on first use; they share the array's memory)."""
        if self._images is None:
            from PIL import Image as PILImage

            self._images = [PILImage.fromarray(frame, "RGB") for frame in self.array]
        return self._images

    @property
    def width(self) -> int:
        return int(self.array.shape[2])

    @property
    def height(self) -> int:
        return int(self.array.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    @property
    def sampled_fps(self) -> float:
        """Frames per second of the sample itself (1.0 for a single frame)."""
        if len(self.timestamps) < 2:
            return 1.0
        span = self.timestamps[-1] - self.timestamps[0]
        return (len(self.timestamps) - 1) / span if span > 0 else 1.0


def _check_array(array: Any) -> Any:
    import numpy as np

    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3 or 0 in array.shape:
        raise ValueError(
            f"a Clip's array must be uint8 of shape (frames, height, width, 3) with no empty "
            f"axis; got {array.dtype} {tuple(array.shape)}"
        )
    return array


def _stack(frames: Sequence[Any]) -> Any:
    """One (N, H, W, 3) uint8 array from PIL images or HxWx3 uint8 arrays of one size."""
    import numpy as np

    arrays = [np.asarray(f.convert("RGB") if hasattr(f, "convert") else f) for f in frames]
    if not arrays:
        raise ValueError("a Clip needs at least one frame")
    if len({a.shape for a in arrays}) > 1:
        raise ValueError("all frames of a Clip must have the same size")
    return _check_array(np.stack(arrays))


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
    rule: str = Field("", description="what chose the frames: your settings, the model's, vidtt's")
    budget: dict[str, Any] | None = Field(
        None, description="the visual-token budget's plan, when one chose the frames"
    )


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
