"""Decode chosen frames: seek to the keyframe before each one, never twice within a GOP, and
convert and resize each kept frame in one libswscale pass."""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from vidtt import LimitError
from vidtt.limits import Limits

from .index import StreamIndex, packet_time

TRANSPOSE = {
    90: "ROTATE_90",
    -270: "ROTATE_90",
    180: "ROTATE_180",
    -180: "ROTATE_180",
    -90: "ROTATE_270",
    270: "ROTATE_270",
}
MAX_DECODE_ERRORS = 8


@dataclass
class Resize:
    """`size` int: shorter side; `(w, h)`: exact; `max_side`: cap on the longer side."""

    size: int | tuple[int, int] | None = None
    max_side: int | None = None

    def target(self, width: int, height: int) -> tuple[int, int]:
        """Output (width, height) for an upright frame of `width` x `height`."""
        if isinstance(self.size, tuple):
            return self.size
        scale = 1.0
        if self.size is not None:
            scale = self.size / min(width, height)
        elif self.max_side is not None and max(width, height) > self.max_side:
            scale = self.max_side / max(width, height)
        if scale == 1.0:
            return width, height
        return max(1, round(width * scale)), max(1, round(height * scale))


class Guard:
    """Enforces the limits while one video decodes: time spent and pixels per frame."""

    def __init__(self, limits: Limits, label: str) -> None:
        self.limits, self.label = limits, label
        self.ends = time.monotonic() + limits.decode_seconds

    def check_time(self) -> None:
        if time.monotonic() > self.ends:
            raise LimitError(
                f"{self.label}: decoding took over {self.limits.decode_seconds:g} "
                "s; sample fewer frames, use the keyframe sampler, or raise "
                "vidtt.limits decode_seconds"
            )

    def check_size(self, width: int, height: int) -> None:
        if width * height > self.limits.max_pixels:
            raise LimitError(
                f"{self.label}: frames are {width}x{height} ({width * height} "
                f"pixels), over the limit of {self.limits.max_pixels}; raise "
                "vidtt.limits max_pixels to allow them"
            )


@dataclass
class Decoded:
    images: dict[int, tuple[int, Any]] = field(default_factory=dict)  # target -> (pts, image)
    decoded: int = 0
    seeks: int = 0
    rotation: int = 0
    warnings: list[str] = field(default_factory=list)


def to_image(frame: Any, resize: Resize) -> Any:
    """An upright RGB PIL image of `frame` at the asked size."""
    from PIL import Image

    rotation = int(getattr(frame, "rotation", 0) or 0)
    turn = TRANSPOSE.get(rotation)
    upright = (
        (frame.height, frame.width)
        if turn in ("ROTATE_90", "ROTATE_270")
        else (frame.width, frame.height)
    )
    width, height = resize.target(*upright)
    if turn in ("ROTATE_90", "ROTATE_270"):
        width, height = height, width
    scaled = (width, height) != (frame.width, frame.height)
    array = frame.to_ndarray(
        format="rgb24", width=width, height=height, interpolation="AREA" if scaled else None
    )
    image = Image.frombuffer("RGB", (array.shape[1], array.shape[0]), array, "raw", "RGB", 0, 1)
    return image.transpose(getattr(Image.Transpose, turn)) if turn else image


def runs(index: StreamIndex, targets: list[int]) -> list[list[int]]:
    """Targets grouped so that each group is decoded after one seek: a target joins the group
    before it when its keyframe is at or before that group's last target."""
    groups: list[list[int]] = []
    for target in targets:
        if groups and index.keyframe_for(target) <= groups[-1][-1]:
            groups[-1].append(target)
        else:
            groups.append([target])
    return groups


def decode_at(
    container: Any,
    stream: Any,
    index: StreamIndex,
    targets: list[int],
    resize: Resize,
    keyframes_only: bool = False,
    guard: Guard | None = None,
) -> Decoded:
    """Decode the frames whose pts are in `targets` (sorted, unique)."""
    if keyframes_only:
        stream.codec_context.skip_frame = "NONKEY"
    stream.thread_type = "AUTO"
    result = Decoded()
    for group in runs(index, targets):
        container.seek(index.keyframe_for(group[0]), stream=stream, backward=True)
        result.seeks += 1
        pending = list(group)
        frames = _frames(container, stream, result, set(group), skip=not keyframes_only)
        for frame in frames:
            pts = frame.pts if frame.pts is not None else frame.dts
            result.decoded += 1
            if guard is not None:
                guard.check_time()
                guard.check_size(frame.width, frame.height)
            result.rotation = result.rotation or int(getattr(frame, "rotation", 0) or 0)
            if pts < pending[0]:
                continue
            if pts > pending[0]:
                result.warnings.append(
                    f"frame at {index.seconds(pending[0]):.3f} s did not decode; "
                    f"used the next one ({index.seconds(pts):.3f} s)"
                )
            image = to_image(frame, resize)
            while pending and pending[0] <= pts:
                result.images[pending.pop(0)] = (pts, image)
            if not pending:
                frames.close()
                break
        if pending:
            result.warnings.append(f"the stream ended before {len(pending)} asked frame(s)")
            break
    return result


def _frames(
    container: Any, stream: Any, result: Decoded, run: set[int], skip: bool
) -> Generator[Any, None, None]:
    """Decoded frames from the current position until every packet of `run` was sent, then
    the decoder is drained (no frames decoded past the last one needed). With `skip`, frames
    that nothing refers to are skipped unless they are in `run`. Bad packets are skipped with
    a warning."""
    import av

    context = stream.codec_context
    unsent = set(run)
    errors = 0
    packets = container.demux(stream)
    while unsent:
        try:
            packet = next(packets)
            stamp = packet_time(packet)
            if skip:
                context.skip_frame = "DEFAULT" if stamp in run else "NONREF"
            frames = packet.decode()
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            errors += 1
            if errors == 1:
                result.warnings.append(f"damaged data skipped: {exc}")
            if errors >= MAX_DECODE_ERRORS:
                result.warnings.append("too much damaged data; decoding stopped early")
                return
            continue
        unsent.discard(stamp)
        yield from frames
    yield from context.decode(None)
