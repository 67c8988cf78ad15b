"""Frame-list sources: frames already decoded (PIL images or arrays), sampled like a video.

Frame `i` of the list is shown at `i / fps` seconds, where `fps` is the source's own rate
(`VideoSource.from_frames(frames, fps=30)`) or 1 frame a second. The sampler's rules
(`num_frames`, `start`, `end`, `fps`/`every`...) then choose frames as they would in a video;
only the chosen frames are converted.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from vidtt.errors import LimitError, OptionsError
from vidtt.interfaces import SamplerOptions
from vidtt.limits import Limits
from vidtt.types import VideoInfo, VideoSource

from .decoder import Guard, Resize
from .index import StreamIndex


def frames_index(source: VideoSource) -> StreamIndex:
    """The index of a frame list: frame i at i / fps seconds, every frame a keyframe."""
    frames = source.value
    count = len(frames)
    if count == 0:
        raise OptionsError("the frame list is empty: pass at least one frame")
    fps = source.fps or 1.0
    index = StreamIndex(
        list(range(count)), list(range(count)), Fraction(1) / Fraction(fps).limit_denominator()
    )
    index.default_frame_duration = 1 / fps
    return index


def fill_rows(
    frames: Any, chosen: list[int], options: SamplerOptions, guard: Guard, size: list[Any]
) -> Any:
    """The `chosen` frames as one array at the asked size; the first chosen frame's own size
    goes into `size` (once)."""
    first = as_rgb(frames[chosen[0]], chosen[0])
    height, width = first.shape[:2]
    guard.check_size(width, height)
    if not size:
        size.append((width, height))
    target = Resize(options.size, options.max_side).target(*size[0])
    guard.check_clip(len(chosen), *target)
    return _fill(frames, chosen, first, target, guard)


def list_info(frames: Any, fps: float, size: tuple[int, int]) -> VideoInfo:
    count = len(frames)
    return VideoInfo(
        duration=count / fps,
        fps=fps,
        frame_count=count,
        frame_count_exact=True,
        width=size[0],
        height=size[1],
        codec="frames",
        keyframe_count=count,
    )


def check_count(count: int, limits: Limits, label: str) -> None:
    if count > limits.max_frames:
        raise LimitError(
            f"{label}: {count} frames asked, over the limit of {limits.max_frames}; ask for "
            "fewer or raise vidtt.limits max_frames"
        )


def _fill(frames: Any, chosen: list[int], first: Any, target: tuple[int, int], guard: Guard) -> Any:
    import numpy as np
    from PIL import Image

    array = np.empty((len(chosen), target[1], target[0], 3), dtype=np.uint8)
    for row, i in enumerate(chosen):
        guard.check_time()
        rgb = first if row == 0 else as_rgb(frames[i], i)
        guard.check_size(rgb.shape[1], rgb.shape[0])
        if (rgb.shape[1], rgb.shape[0]) != target:
            rgb = np.asarray(Image.fromarray(rgb).resize(target, Image.Resampling.BILINEAR))
        array[row] = rgb
    return array


def as_rgb(frame: Any, position: int) -> Any:
    """Frame `position` as an HxWx3 uint8 array; `OptionsError` naming what is wrong."""
    import numpy as np

    if hasattr(frame, "convert") and hasattr(frame, "mode"):  # a PIL image
        frame = frame.convert("RGB")
    try:
        array = np.asarray(frame)
    except Exception as exc:
        raise OptionsError(f"frame {position} is not an image or array: {exc}") from None
    if _channels_first(array.shape):
        array = array.transpose(1, 2, 0)  # as torch tensors are
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise OptionsError(
            f"frame {position} has shape {tuple(array.shape)}: frames must be HxW (grey), "
            "HxWx3 (RGB) or HxWx4 (RGBA) images"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise OptionsError(f"frame {position} is empty ({array.shape[1]}x{array.shape[0]})")
    rgb = _to_uint8(array, position)
    if rgb.shape[-1] == 1:
        return np.repeat(rgb, 3, axis=-1)
    return rgb[..., :3]  # RGBA: alpha dropped


def _channels_first(shape: tuple[int, ...]) -> bool:
    """(C, H, W) with C of 1, 3 or 4 and no room for doubt (both sides over 4 pixels)."""
    return (
        len(shape) == 3
        and shape[0] in (1, 3, 4)
        and shape[-1] not in (1, 3, 4)
        and (min(shape[1:]) > 4)
    )


def _to_uint8(array: Any, position: int) -> Any:
    import numpy as np

    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise OptionsError(f"frame {position} holds {array.dtype} values: pass numbers")
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise OptionsError(f"frame {position} holds NaN or infinite values")
    if np.issubdtype(array.dtype, np.floating) and values.max(initial=0) <= 1.0:
        values = values * 255  # floats in [0, 1]
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
