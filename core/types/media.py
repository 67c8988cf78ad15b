"""Media crossing vidtt's boundaries: video sources, what a probe tells, sampled clips."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from vidtt.errors import DecodeError, OptionsError, SourceError
from vidtt.urls import URL_SCHEMES, printable, redact

if TYPE_CHECKING:
    from PIL.Image import Image

    from vidtt.types.shots import Shot
    from vidtt.types.transcripts import Transcript

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
        shown = printable(str(self.value))
        try:
            if path.is_dir():
                raise SourceError(f"{shown} is a directory: pass a video file inside it")
            size = path.stat().st_size
        except FileNotFoundError:
            raise SourceError(f"video not found: {shown} (check the path)") from None
        except OSError as exc:  # e.g. a symlink loop, a too-long name
            raise SourceError(f"cannot read {shown}: {exc.strerror or exc}") from None
        except ValueError as exc:  # a NUL byte in a VideoSource made by hand
            raise SourceError(f"cannot read {shown}: {exc}") from None
        if size == 0:
            raise DecodeError(f"{shown} is empty (0 bytes)")
        if not os.access(path, os.R_OK):
            raise SourceError(f"permission denied reading {shown}")
        return str(path)


def _source_from_text(text: str) -> VideoSource:
    """A URL or a path; its label is what messages show (credentials hidden, control
    characters escaped: one line whatever the text holds)."""
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in URL_SCHEMES:
            raise SourceError(
                f"URL scheme {printable(repr(scheme))} is not allowed in '{redact(text)}': use "
                "http(s) or a local path"
            )
        return VideoSource("url", text, redact(text))
    if not text:
        raise SourceError("empty video path: pass a file path or an http(s) URL")
    if "\x00" in text:
        raise SourceError(
            f"the path '{printable(text)}' contains a NUL byte (\\x00), which no file name "
            "can hold: pass the file's real path"
        )
    return VideoSource("path", text, printable(text))


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
        self.transcript: Transcript | None = None  # what is said in the clip's time range
        self.shots: list[Shot] = []  # the shots a scene sampler found, in time order
        self.origin: VideoSource | None = None  # the source it was sampled from, if known
        self.audio: Any = None  # the clip's audio (an AudioWindow) for models that hear it
        self._images: list[Image] | None = None
        self._digest = ""

    def __len__(self) -> int:
        return len(self.array)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to another process) without its source, which may hold the whole file's
        bytes or an open file, and without the PIL views, made again on use."""
        return {**self.__dict__, "origin": None, "_images": None}

    def __repr__(self) -> str:
        return (
            f"Clip({len(self)} frames of {self.width}x{self.height} from {self.source!r}, "
            f"sampler={self.sampler!r}, indices={self.indices})"
        )

    def digest(self) -> str:
        """A digest of the frames and where they were taken (their pixels, indices and times;
        made once: a Clip's frames are not changed after it is made)."""
        if not self._digest:
            import hashlib

            import numpy as np

            hashed = hashlib.sha256()  # accelerated: 2 MB of frames in about a millisecond
            hashed.update(f"{self.array.shape}|{self.indices}|{self.timestamps}|".encode())
            hashed.update(np.ascontiguousarray(self.array).data)
            self._digest = hashed.hexdigest()
        return self._digest

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
