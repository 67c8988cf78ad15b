"""What every PyAV sampler shares: open, index, choose frames, decode, build the Clip."""

from __future__ import annotations

import bisect
from abc import abstractmethod
from typing import Any, ClassVar

import vidtt
from vidtt import (
    Clip,
    DecodeError,
    LimitError,
    Sampler,
    SamplerOptions,
    VideoInfo,
    VideoSource,
    VidttError,
)
from vidtt.limits import Limits

from .decode import Guard, Resize, decode_at
from .index import StreamIndex, scan
from .sources import open_container


def evenly(items: list[int], count: int) -> list[int]:
    """`count` items spread evenly over `items`, first and last included."""
    if count >= len(items):
        return list(items)
    if count == 1:
        return [items[len(items) // 2]]
    step = (len(items) - 1) / (count - 1)
    return [items[round(k * step)] for k in range(count)]


class PyAVSampler(Sampler):
    """A sampler that decodes with PyAV; subclasses only choose which frames."""

    keyframes_only: ClassVar[bool] = False

    @abstractmethod
    def choose(
        self, index: StreamIndex, span: range, options: Any, label: str, warnings: list[str]
    ) -> list[int]:
        """Sorted, unique frame indices to return, all inside `span`."""

    def sample(self, source: VideoSource, options: SamplerOptions) -> Clip:
        source = VideoSource.of(source)
        limits = vidtt.limits.current()
        if source.kind == "frames":
            return frames_clip(source, options, self.name, limits)
        try:
            return self._sample(source, options, limits)
        except VidttError:
            raise
        except Exception as exc:  # untrusted media must not escape as a raw library error
            raise DecodeError(
                f"{source.label} could not be decoded: {type(exc).__name__}: {exc}"
            ) from exc

    def _sample(self, source: VideoSource, options: SamplerOptions, limits: Limits) -> Clip:
        guard = Guard(limits, source.label)
        with open_container(source) as container:
            stream = container.streams.video[0]
            guard.check_size(stream.codec_context.width, stream.codec_context.height)
            index = scan(container, stream, source.label, guard)
            warnings = [*index.warnings, *shortfall(container, stream, index)]
            span = index.span(options.start, options.end, source.label)
            chosen = self.choose(index, span, options, source.label, warnings)
            if len(chosen) > limits.max_frames:
                raise LimitError(
                    f"{source.label}: {len(chosen)} frames asked, over the limit of "
                    f"{limits.max_frames}; ask for fewer or raise vidtt.limits "
                    "max_frames"
                )
            result = decode_at(
                container,
                stream,
                index,
                [index.pts[i] for i in chosen],
                Resize(options.size, options.max_side),
                self.keyframes_only,
                guard,
            )
            if not result.images:
                raise DecodeError(
                    f"{source.label}: none of the chosen frames could be decoded"
                    + (f" ({result.warnings[0]})" if result.warnings else "")
                )
            got = [result.images[index.pts[i]] for i in chosen if index.pts[i] in result.images]
            info = video_info(container, stream, index, result.rotation)
        return Clip(
            frames=[image for _, image in got],
            indices=[bisect.bisect_left(index.pts, pts) for pts, _ in got],
            timestamps=[index.seconds(pts) for pts, _ in got],
            info=info,
            sampler=self.name,
            source=source.label,
            warnings=warnings + result.warnings,
            metadata={
                "decoded_frames": result.decoded,
                "seeks": result.seeks,
                "asked_frames": len(chosen),
            },
        )


def shortfall(container: Any, stream: Any, index: StreamIndex) -> list[str]:
    """A warning when the frames cover clearly less time than the headers declare."""
    covered = index.duration()
    if stream.duration and stream.time_base:
        declared = float(stream.duration * stream.time_base)
    elif container.duration:  # some demuxers count it from 0, some from the start time:
        declared = container.duration / 1_000_000  # compare the frames' end with the smaller
        covered += max(float(index.start * index.time_base), 0.0)
    else:
        return []
    if covered < declared * 0.9 - 2 * index.frame_duration():
        return [
            f"the frames cover {covered:.2f} s of the {declared:.2f} s the file declares: "
            "it is probably cut short or damaged"
        ]
    return []


def video_info(container: Any, stream: Any, index: StreamIndex, rotation: int) -> VideoInfo:
    context = stream.codec_context
    width, height = context.width, context.height
    if rotation in (90, -90, 270, -270):
        width, height = height, width
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    if not fps and index.frame_duration() > 0:
        fps = 1.0 / index.frame_duration()
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    return VideoInfo(
        duration=index.duration() or None,
        fps=fps,
        frame_count=len(index),
        frame_count_exact=index.complete,
        width=width,
        height=height,
        codec=context.name,
        container=container.format.name,
        rotation=rotation,
        start_time=start,
        keyframe_count=len(index.keyframes),
    )


def frames_clip(source: VideoSource, options: SamplerOptions, sampler: str, limits: Limits) -> Clip:
    """Pass already-decoded frames through, resized; timestamps are one second apart."""
    from PIL import Image

    if len(source.value) > limits.max_frames:
        raise LimitError(
            f"{len(source.value)} frames given, over the limit of "
            f"{limits.max_frames}; pass fewer or raise vidtt.limits max_frames"
        )

    resize = Resize(options.size, options.max_side)
    images = []
    for frame in source.value:
        image = frame if isinstance(frame, Image.Image) else Image.fromarray(_as_array(frame))
        image = image.convert("RGB")
        target = resize.target(*image.size)
        if target != image.size:
            image = image.resize(target, Image.Resampling.BILINEAR)
        images.append(image)
    width, height = images[0].size
    info = VideoInfo(
        duration=float(len(images)),
        fps=1.0,
        frame_count=len(images),
        frame_count_exact=True,
        width=width,
        height=height,
        codec="frames",
    )
    return Clip(
        images,
        list(range(len(images))),
        [float(i) for i in range(len(images))],
        info,
        sampler=sampler,
        source=source.label,
    )


def _as_array(frame: Any) -> Any:
    import numpy as np

    array = np.asarray(frame)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # channels first, as torch tensors are
    if array.dtype != np.uint8:
        array = np.clip(array * (255 if array.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    return array.squeeze(-1) if array.ndim == 3 and array.shape[-1] == 1 else array
