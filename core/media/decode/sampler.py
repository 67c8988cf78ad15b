"""The base of every sampler that decodes through this layer (`PyAVSampler`, in
`vidtt.plugin_api`): open, index, ask the subclass which frames, decode, build the Clip."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field, field_validator

from vidtt.errors import DecodeError, VidttError
from vidtt.interfaces import Sampler, SamplerOptions
from vidtt.limits import Limits
from vidtt.limits import current as current_limits
from vidtt.types import Clip, Shot, VideoInfo, VideoSource

from .decoder import Converter, Decoded, Guard, Resize, SeekMissed, decode_frames
from .dedupe import distinct, gap_fill, merge_rows
from .features import FAST_DECODE, FeatureConverter, Features, frames_features
from .frame_lists import as_rgb, check_count, fill_rows, frames_index, list_info
from .index import StreamIndex
from .kept_indexes import scanned
from .opening import Media, open_media
from .probe import main_video_stream, probe, rotated, shortfall, video_info

DEFAULT_DEDUPE = 0.95  # `dedupe=true`: near-identical frames
DEDUPE_ROUNDS = 4  # rounds of replacement frames, at most


class FrameOptions(SamplerOptions):
    """Options every built-in sampler takes: the common ones and `dedupe`."""

    dedupe: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="drop a frame at least this similar (0-1) to the frame kept before it "
        f"and take another in its place; true: {DEFAULT_DEDUPE}",
    )

    @field_validator("dedupe", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "on")):
            return DEFAULT_DEDUPE
        if value is False or (isinstance(value, str) and value.lower() in ("false", "no", "off")):
            return None
        return value


@dataclass
class Context:
    """What a sampler's `select` may use: the index, the range, the options, and the media
    (to decode what it needs to look at) or, for frame lists, the frames."""

    index: StreamIndex
    span: range
    options: Any
    label: str
    warnings: list[str]
    guard: Guard
    features: Callable[[list[int], bool], Features]  # (frames, keyframes only) -> features
    fps: float


@dataclass
class Selection:
    """The frames to return and, when the sampler found shots, their (first, end, boundary)."""

    chosen: list[int]
    shots: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass
class Rows:
    """Decoded frames: their numbers and one uint8 array (a row each); decoding counts."""

    indices: list[int]
    array: Any
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rotation: int = 0


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

    uses_decode_layer: ClassVar[bool] = True
    keyframes_only: ClassVar[bool] = False
    # Whether frames dropped as duplicates are replaced by others (False: the frames are fixed,
    # as the interval sampler's clock sets them).
    replaces_duplicates: ClassVar[bool] = True

    @abstractmethod
    def choose(
        self, index: StreamIndex, span: range, options: Any, label: str, warnings: list[str]
    ) -> list[int]:
        """Sorted, unique frame indices to return, all inside `span`."""

    def select(self, context: Context) -> Selection:
        """The frames to return (and shots, if any); by default `choose`'s frames."""
        c = context
        return Selection(self.choose(c.index, c.span, c.options, c.label, c.warnings))

    def replacements(
        self, context: Context, kept: list[int], tried: set[int], count: int
    ) -> list[int]:
        """Up to `count` frames not yet tried to stand in for dropped duplicates: the middles
        of the widest gaps between the frames kept."""
        return gap_fill(list(context.span), kept, tried, count)

    def sample(self, source: VideoSource, options: SamplerOptions) -> Clip:
        source = VideoSource.of(source)
        limits = current_limits()
        if source.kind == "frames":
            return self._sample_frames(source, options, limits)
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
        resize = Resize(options.size, options.max_side)
        with open_media(source) as media, media.container() as container:
            stream = main_video_stream(container)
            guard.check_size(stream.codec_context.width, stream.codec_context.height)
            index = scanned(container, stream, source, guard)
            warnings = [*index.warnings, *shortfall(container, stream, index)]
            span = index.span(options.start, options.end, source.label)
            info = video_info(container, stream, index)
            number = stream.index

            opened = [container]  # a decoder is set up once: later passes open anew

            def decode(frames: list[int], converter: Any, keys: bool, fast: bool) -> Decoded:
                plan = Plan(index, frames, resize, guard)
                if opened:
                    first = opened.pop()
                    return self._decode_any(media, first, number, plan, converter, keys, fast)
                with media.container() as again:
                    return self._decode_any(media, again, number, plan, converter, keys, fast)

            def rows(frames: list[int]) -> Rows:
                check_count(len(frames), limits, source.label)
                coded = stream.codec_context.width, stream.codec_context.height
                converter = Converter(len(frames), coded, resize, guard)
                return found_rows(decode(frames, converter, self.keyframes_only, False), frames)

            def features(frames: list[int], keys: bool) -> Features:
                coded = stream.codec_context.width, stream.codec_context.height
                converter = FeatureConverter(len(frames), coded, guard)
                result = decode(frames, converter, keys, True)
                return Features(converter.luma, converter.chroma, result.found)

            context = Context(
                index, span, options, source.label, warnings, guard, features, info.fps or 0
            )
            result, shots = self._frames(context, rows)
        if result.rotation:
            info = rotated(info, result.rotation)
        result.counts["access"] = f"{index.mode} by {index.match}"  # type: ignore[assignment]
        return self._clip(source.label, index, span, info, result, shots, warnings)

    def _sample_frames(self, source: VideoSource, options: SamplerOptions, limits: Limits) -> Clip:
        """A frame list sampled as a video would be (see `frames`)."""
        frames = source.value
        index = frames_index(source)
        guard = Guard(limits, source.label)
        span = index.span(options.start, options.end, source.label)
        warnings: list[str] = []
        size: list[tuple[int, int]] = []

        def rows(chosen: list[int]) -> Rows:
            check_count(len(chosen), limits, source.label)
            array = fill_rows(frames, chosen, options, guard, size)
            return Rows(list(chosen), array)

        def features(chosen: list[int], keys: bool) -> Features:
            guard.check_time()
            small = [as_rgb(frames[i], i) for i in chosen]
            shapes = {f.shape for f in small}
            if len(shapes) > 1:  # frames of several sizes: compare them at the first's
                small = list(
                    fill_rows(frames, chosen, SamplerOptions(size=small[0].shape[1::-1]), guard, [])
                )
            return frames_features(small)

        fps = source.fps or 1.0
        context = Context(index, span, options, source.label, warnings, guard, features, fps)
        result, shots = self._frames(context, rows)
        info = list_info(frames, fps, size[0] if size else (0, 0))
        return self._clip(source.label, index, span, info, result, shots, warnings)

    def _frames(
        self, context: Context, rows: Callable[[list[int]], Rows]
    ) -> tuple[Rows, list[tuple[int, int, str]]]:
        """The selected frames, decoded, with duplicates dropped and replaced when asked."""
        selection = self.select(context)
        check_count(len(selection.chosen), current_limits(), context.label)
        result = rows(selection.chosen)
        threshold = getattr(context.options, "dedupe", None)
        if threshold:
            result = self._dedupe(context, selection, result, rows, threshold)
        return result, selection.shots

    def _dedupe(
        self,
        context: Context,
        selection: Selection,
        result: Rows,
        rows: Callable[[list[int]], Rows],
        threshold: float,
    ) -> Rows:
        """Drop frames too close to the frame kept before them (within one shot, when there
        are shots); replace them while the sampler can and the video has frames to offer."""
        wanted = len(selection.chosen)
        tried = set(result.indices)
        groups = shot_of(selection.shots)
        dropped = 0
        for _ in range(DEDUPE_ROUNDS + 1):
            keep = distinct(result.array, threshold, [groups(i) for i in result.indices])
            kept = [i for i, k in zip(result.indices, keep) if k]
            dropped = len(result.indices) - len(kept)
            if len(kept) >= wanted or not self.replaces_duplicates or not dropped:
                break
            extra = self.replacements(context, kept, tried, wanted - len(kept))
            if not extra:
                break
            tried.update(extra)
            result = merge_rows(result, rows(sorted(extra)), keep)
        else:
            keep = distinct(result.array, threshold, [groups(i) for i in result.indices])
        result = merge_rows(result, None, keep)
        if len(result.indices) > wanted:
            positions = evenly(list(range(len(result.indices))), wanted)
            result = merge_rows(
                result, None, [p in set(positions) for p in range(len(result.indices))]
            )
        if len(result.indices) < wanted:
            context.warnings.append(
                f"dedupe={threshold:g}: {len(result.indices)} distinct frame(s) of the {wanted} "
                f"asked ({dropped} near-duplicate(s) dropped); lower dedupe to keep more"
            )
        result.counts["duplicates_dropped"] = len(tried) - len(result.indices)
        return result

    def _clip(
        self,
        label: str,
        index: StreamIndex,
        span: range,
        info: VideoInfo,
        result: Rows,
        shots: list[tuple[int, int, str]],
        warnings: list[str],
    ) -> Clip:
        if not result.indices:
            raise DecodeError(
                f"{label}: none of the chosen frames could be decoded"
                + (f" ({result.warnings[0]})" if result.warnings else "")
            )
        clip = Clip(
            array=result.array,
            indices=result.indices,
            timestamps=[index.time_of(i) for i in result.indices],
            info=info,
            sampler=self.name,
            source=label,
            warnings=warnings + result.warnings,
            metadata=dict(result.counts),
        )
        clip.shots = clip_shots(index, span, shots, result.indices)
        return clip

    def _decode_any(
        self,
        media: Media,
        container: Any,
        stream_index: int,
        plan: Plan,
        converter: Any,
        keys: bool,
        fast: bool,
    ) -> Decoded:
        """Decode by seeking where the index allows, else (or when a seek proved unreliable)
        forward from a fresh container; when a forward skip misses its entry point, once
        more decoding every packet."""
        if plan.index.mode == "seek":
            try:
                return self._decode(media, container, stream_index, plan, converter, keys, fast)
            except SeekMissed:
                plan.index.mode = "forward"
        try:
            with media.container() as fresh:
                return self._decode(media, fresh, stream_index, plan, converter, keys, fast)
        except SeekMissed:
            plan.index.entries = []
            with media.container() as fresh:
                return self._decode(media, fresh, stream_index, plan, converter, keys, fast)

    def _decode(
        self,
        media: Media,
        container: Any,
        stream_index: int,
        plan: Plan,
        converter: Any,
        keys: bool,
        fast: bool,
    ) -> Decoded:
        """Decode the plan's frames from `container`; more decoders may share the work when
        the media can be opened again (`fast`: every frame of a stretch, for features)."""
        stream = next(s for s in container.streams if s.index == stream_index)
        only_keys = keys and plan.index.match == "pts"
        return decode_frames(
            container,
            stream,
            plan.index,
            plan.chosen,
            converter,
            only_keys,
            plan.guard,
            media.reopen,
            codec_options=FAST_DECODE if fast else None,
            split=fast,
        )


def found_rows(result: Decoded, chosen: list[int]) -> Rows:
    """The decoded frames of `result` (those that decoded) as `Rows`."""
    kept = [k for k, found in enumerate(result.found) if found]
    array = result.array if len(kept) == len(chosen) or not kept else result.array[kept]
    counts = {
        "decoded_frames": result.decoded,
        "seeks": result.seeks,
        "decoders": result.decoders,
        "asked_frames": len(chosen),
    }
    return Rows([chosen[k] for k in kept], array, counts, result.warnings, result.rotation)


def shot_of(shots: list[tuple[int, int, str]]) -> Callable[[int], int]:
    """A frame's shot number (0 when there are no shots)."""
    import bisect

    firsts = [first for first, _, _ in shots]
    return lambda frame: max(bisect.bisect_right(firsts, frame) - 1, 0)


def clip_shots(
    index: StreamIndex, span: range, shots: list[tuple[int, int, str]], indices: list[int]
) -> list[Shot]:
    """The shots as the Clip records them: times, frame range, the Clip's frames in each."""
    out = []
    for first, end, boundary in shots:
        stop = (
            index.time_of(end)
            if end < span.stop
            else index.time_of(span[-1]) + index.frame_duration()
        )
        rows = [k for k, i in enumerate(indices) if first <= i < end]
        out.append(
            Shot(
                start=index.time_of(first),
                end=max(stop, index.time_of(first)),
                first_frame=first,
                end_frame=end,
                frames=rows,
                boundary=boundary,  # type: ignore[arg-type]
            )
        )
    return out


@dataclass
class Plan:
    index: StreamIndex
    chosen: list[int]
    resize: Resize
    guard: Guard
