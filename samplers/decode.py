"""Decode chosen frames: seek to the keyframe before each one, never twice within a GOP, and
convert and resize each kept frame in one libswscale pass."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .index import StreamIndex

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
    image = Image.fromarray(array)
    return image.transpose(getattr(Image.Transpose, turn)) if turn else image


def decode_at(
    container: Any,
    stream: Any,
    index: StreamIndex,
    targets: list[int],
    resize: Resize,
    keyframes_only: bool = False,
) -> Decoded:
    """Decode the frames whose pts are in `targets` (sorted, unique)."""
    context = stream.codec_context
    if keyframes_only:
        context.skip_frame = "NONKEY"
        stream.thread_type = "SLICE"
    else:
        stream.thread_type = "AUTO"
    result = Decoded()
    frames: Iterator[Any] | None = None
    position: int | None = None
    i = 0
    while i < len(targets):
        keyframe = index.keyframe_for(targets[i])
        if position is None or keyframe > position:
            container.seek(keyframe, stream=stream, backward=True)
            result.seeks += 1
            frames = _frames(container, stream, result, None if keyframes_only else set(targets))
        assert frames is not None
        for frame in frames:
            pts = frame.pts if frame.pts is not None else frame.dts
            result.decoded += 1
            position = pts
            if result.decoded == 1 or result.rotation == 0:
                result.rotation = int(getattr(frame, "rotation", 0) or 0)
            if pts < targets[i]:
                continue
            if pts > targets[i]:
                result.warnings.append(
                    f"frame at {index.seconds(targets[i]):.3f} s did not decode; "
                    f"used the next one ({index.seconds(pts):.3f} s)"
                )
            result.images[targets[i]] = (pts, to_image(frame, resize))
            i += 1
            while i < len(targets) and targets[i] <= pts:
                i += 1
            if i >= len(targets) or index.keyframe_for(targets[i]) > pts:
                break
        else:
            missing = len(targets) - i
            result.warnings.append(f"the stream ended before {missing} asked frame(s)")
            break
    return result


def _frames(container: Any, stream: Any, result: Decoded, wanted: set[int] | None) -> Iterator[Any]:
    """Decoded frames from the current position; bad packets are skipped with a warning.

    With `wanted`, frames that nothing refers to are skipped unless their pts is wanted.
    """
    import av

    context = stream.codec_context
    errors = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
            if wanted is not None:
                context.skip_frame = "DEFAULT" if packet.pts in wanted else "NONREF"
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
        yield from frames
