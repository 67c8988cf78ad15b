"""What every PyAV sampler shares: open, index, choose frames, decode, build the Clip."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from vidtt.plugin_api import (
    Clip,
    DecodeError,
    Limits,
    Sampler,
    SamplerOptions,
    VideoInfo,
    VideoSource,
    VidttError,
    current_limits,
)

from .decode import Converter, Decoded, Guard, Resize, SeekMissed, decode_frames
from .frames import check_count, frames_clip
from .index import StreamIndex, scan
from .probe import main_video_stream, probe, rotated, shortfall, video_info
from .sources import Media, open_media


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
        limits = current_limits()
        if source.kind == "frames":
            return frames_clip(self.name, self.choose, source, options, limits)
        try:
            return self._sample(source, options, limits)
        except VidttError:
            raise
        except Exception as exc:  # untrusted media must not escape as a raw library error
            raise DecodeError(
                f"{source.label} could not be decoded: {type(exc).__name__}: {exc}"
            ) from exc

    def probe(self, source: VideoSource) -> VideoInfo | None:
        return probe(VideoSource.of(source))

    def _sample(self, source: VideoSource, options: SamplerOptions, limits: Limits) -> Clip:
        guard = Guard(limits, source.label)
        with open_media(source) as media:
            with media.container() as container:
                stream = main_video_stream(container)
                guard.check_size(stream.codec_context.width, stream.codec_context.height)
                index = scan(container, stream, source.label, guard)
                warnings = [*index.warnings, *shortfall(container, stream, index)]
                span = index.span(options.start, options.end, source.label)
                chosen = self.choose(index, span, options, source.label, warnings)
                check_count(len(chosen), limits, source.label)
                plan = Plan(index, chosen, Resize(options.size, options.max_side), guard)
                info = video_info(container, stream, index)
                number = stream.index
                result = self._seek_decode(media, container, number, plan)
            if result is None:
                result = self._forward_decode(media, number, plan)
        if result.rotation:
            info = rotated(info, result.rotation)
        kept = [k for k, found in enumerate(result.found) if found]
        if not kept:
            raise DecodeError(
                f"{source.label}: none of the chosen frames could be decoded"
                + (f" ({result.warnings[0]})" if result.warnings else "")
            )
        return Clip(
            array=result.array if len(kept) == len(chosen) else result.array[kept],
            indices=[chosen[k] for k in kept],
            timestamps=[index.time_of(chosen[k]) for k in kept],
            info=info,
            sampler=self.name,
            source=source.label,
            warnings=warnings + result.warnings,
            metadata={
                "decoded_frames": result.decoded,
                "seeks": result.seeks,
                "decoders": result.decoders,
                "asked_frames": len(chosen),
                "access": f"{index.mode} by {index.match}",
            },
        )

    def _seek_decode(
        self, media: Media, container: Any, stream_index: int, plan: Plan
    ) -> Decoded | None:
        """Decode by seeking where the index allows; None when it does not or a seek proved
        unreliable (then the frames are decoded forward). More decoders may share the work
        when the media can be opened more than once."""
        if plan.index.mode != "seek":
            return None
        try:
            return self._decode(media, container, stream_index, plan)
        except SeekMissed:
            return None

    def _forward_decode(self, media: Media, stream_index: int, plan: Plan) -> Decoded:
        """Decode forward from a freshly opened container, skipping the packets before entry
        points (runs from different entry points may be shared between decoders); when a
        skip misses its entry point, once more decoding every packet."""
        plan.index.mode = "forward"
        try:
            with media.container() as container:
                return self._decode(media, container, stream_index, plan)
        except SeekMissed:
            plan.index.entries = []
            with media.container() as container:
                return self._decode(media, container, stream_index, plan)

    def _decode(self, media: Media, container: Any, stream_index: int, plan: Plan) -> Decoded:
        """Decode the plan's frames from `container`; more decoders may share the work when
        the media can be opened again."""
        stream = next(s for s in container.streams if s.index == stream_index)
        coded = stream.codec_context.width, stream.codec_context.height
        converter = Converter(len(plan.chosen), coded, plan.resize, plan.guard)
        only_keys = self.keyframes_only and plan.index.match == "pts"
        return decode_frames(
            container,
            stream,
            plan.index,
            plan.chosen,
            converter,
            only_keys,
            plan.guard,
            media.reopen,
        )


@dataclass
class Plan:
    index: StreamIndex
    chosen: list[int]
    resize: Resize
    guard: Guard
