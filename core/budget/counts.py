"""The processor's own token counts: what a video of blank frames adds to the prompt.

`measure` builds the prompt the pipeline would send for a video of blank frames (the
formatter's `build_inputs` on a blank Clip, no model call) and counts the visual tokens in its
`input_ids`. Counts are cached per processor, formatter, frame count and size.
torch and transformers are imported only when a count is measured.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vidtt.budget.schema import Size
from vidtt.errors import FormatterError, OptionsError

# Formatter kinds accepted as shorthands for the built-in formatters.
KINDS = {"image": "image-expansion", "video": "native-video"}


@dataclass(frozen=True)
class Cost:
    """What one video of n blank frames at a size adds to the prompt."""

    visual: int  # visual tokens (image/video tokens after expansion)
    total: int  # every prompt token the video adds (wrappers, separators)
    seen: Size | None  # the size the processor resized frames to, where it can be read


# -- the cache ---------------------------------------------------------------------------------

_cache: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()
_watched: set[int] = set()


def clear_cache() -> None:
    """Forget every measured count (after changing a processor's settings, say)."""
    with _lock:
        _cache.clear()


def _forget(key: int) -> None:
    with _lock:
        _watched.discard(key)
        for k in [k for k in _cache if k[0] == key]:
            del _cache[k]


def _cached(processor: Any, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    full = (id(processor), *key)
    with _lock:
        if full in _cache:
            return _cache[full]
    value = compute()
    with _lock:
        _cache[full] = value
        if id(processor) not in _watched:
            try:  # drop the processor's counts when it goes (its id may be reused)
                weakref.finalize(processor, _forget, id(processor))
                _watched.add(id(processor))
            except TypeError:
                pass
    return value


# -- measuring ---------------------------------------------------------------------------------


def resolve_formatter(formatter: Any) -> Any:
    """A PromptFormatter from itself, its registered name, or a kind ("image", "video")."""
    if not isinstance(formatter, str):
        return formatter
    from vidtt.plugins import registry

    return registry.formatter(KINDS.get(formatter, formatter))


def _blank_clip(n: int, width: int, height: int) -> Any:
    import numpy as np

    from vidtt.types import Clip, VideoInfo

    info = VideoInfo(width=width, height=height, fps=1.0, frame_count=n, duration=float(n))
    return Clip(
        array=np.zeros((n, height, width, 3), np.uint8),
        indices=range(n),
        timestamps=[float(i) for i in range(n)],
        info=info,
        sampler="budget",
        source="<blank>",
    )


def _text_only(processor: Any, formatter: Any) -> int:
    """Prompt tokens of the dry-run conversation without its video."""
    from vidtt.types import Message, TextPart

    def compute() -> int:
        message = Message(role="user", content=[TextPart(text="")])
        inputs = formatter.build_inputs([[message]], processor)
        return int(inputs["input_ids"].shape[1])

    return int(_cached(processor, (formatter.name, "text"), compute))


def _seen_size(processor: Any, inputs: Any) -> Size | None:
    """The size the processor resized frames to: from pixel tensors, or Qwen-style grids."""
    for key in ("video_grid_thw", "image_grid_thw"):
        grid = inputs.get(key)
        sub = getattr(processor, "video_processor" if "video" in key else "image_processor", None)
        patch = getattr(sub, "patch_size", None)
        if grid is not None and len(grid) and isinstance(patch, int):
            return int(grid[0][2]) * patch, int(grid[0][1]) * patch
    for key in ("pixel_values_videos", "pixel_values"):
        pixels = inputs.get(key)
        if pixels is not None and getattr(pixels, "ndim", 0) >= 4:
            width, height = int(pixels.shape[-1]), int(pixels.shape[-2])
            if min(width, height) >= 8 and max(width, height) <= 16 * min(width, height):
                return width, height  # not a flattened layout
    return None


def _dry_run(processor: Any, formatter: Any, num_frames: int, width: int, height: int) -> Cost:
    """Build the prompt for a video of blank frames and count what the video adds."""
    from vidtt.engine.generate import visual_token_ids
    from vidtt.types import Message, TextPart, VideoPart

    visual = visual_token_ids(processor)
    if not visual:
        raise OptionsError(
            f"{type(processor).__name__} names no image or video token, so vidtt cannot "
            "count its visual tokens: give num_frames instead of a visual-token budget"
        )
    clip = _blank_clip(num_frames, width, height)
    message = Message(role="user", content=[VideoPart(video=clip), TextPart(text="")])
    inputs = formatter.build_inputs([[message]], processor)
    ids = inputs["input_ids"][0]
    count = sum(int((ids == i).sum()) for i in visual)
    total = int(ids.shape[0]) - _text_only(processor, formatter)
    return Cost(count, max(total, count), _seen_size(processor, inputs))


def measure(processor: Any, formatter: Any, num_frames: int, width: int, height: int) -> Cost:
    """What a video of `num_frames` blank frames of `width` x `height` adds to the prompt the
    formatter builds (cached per processor, formatter, count and size)."""
    formatter = resolve_formatter(formatter)
    if num_frames < 1 or width < 1 or height < 1:
        raise OptionsError(f"cannot measure {num_frames} frames of {width}x{height}")

    def compute() -> Cost:
        return _dry_run(processor, formatter, num_frames, width, height)

    return _cached(processor, (formatter.name, num_frames, width, height), compute)  # type: ignore[no-any-return]


def fewest_frames(processor: Any, formatter: Any, size: Size) -> int:
    """The fewest frames the processor takes (GLM-4V and Qwen3-VL refuse a lone frame)."""
    for n in range(1, 5):
        try:
            measure(processor, formatter, n, *size)
            return n
        except FormatterError:
            if n == 4:
                raise
    return 1


def visual_tokens(
    processor: Any, formatter_name_or_kind: Any, num_frames: int, width: int, height: int
) -> int:
    """Visual tokens in the processor's real output for a video of `num_frames` blank frames
    of `width` x `height`, formatted as the pipeline would (a dry run, no model call)."""
    return measure(processor, formatter_name_or_kind, num_frames, width, height).visual


def text_tokens(processor: Any, formatter: Any, conversation: Sequence[Any]) -> int:
    """Prompt tokens of a conversation without its videos (text, template, images): what
    `plan(text_tokens=...)` takes for `fit="context"`."""
    from vidtt.types import Message, TextPart, VideoPart

    formatter = resolve_formatter(formatter)
    kept = []
    for message in conversation:
        message = message if isinstance(message, Message) else Message.model_validate(message)
        parts = [p for p in message.content if not isinstance(p, VideoPart)]
        kept.append(Message(role=message.role, content=parts or [TextPart(text="")]))
    return int(formatter.build_inputs([kept], processor)["input_ids"].shape[1])
