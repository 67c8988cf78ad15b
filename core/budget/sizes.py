"""The frame sizes a plan may choose from, for models whose token count depends on the size:
the video's size and smaller ones of its aspect, down to a quarter of its per-frame tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vidtt.budget.counts import measure
from vidtt.budget.schema import Size
from vidtt.budget.search import largest
from vidtt.errors import OptionsError

# Frames are shrunk at most to this fraction of their per-frame tokens (half their side).
SIZE_FLOOR = 0.25


@dataclass
class Sizes:
    """Candidate sizes, largest first, and whether the count depends on the size at all."""

    candidates: list[Size]
    chosen: bool  # False: one size, the model's count does not depend on it (plan.size None)

    @property
    def top(self) -> Size:
        return self.candidates[0]

    @property
    def floor(self) -> Size:
        return self.candidates[-1]

    def shown(self, size: Size) -> Size | None:
        """`size` as the plan names it: None where the budget chooses no size."""
        return size if self.chosen else None


def _factor(processor: Any, formatter: Any) -> int | None:
    """Qwen-style processors' size quantum: patch_size x merge_size, else None."""
    kind = "video_processor" if getattr(formatter, "name", "") == "native-video" else None
    for name in (kind, "video_processor", "image_processor"):
        sub = getattr(processor, name, None) if name else None
        patch, merge = getattr(sub, "patch_size", None), getattr(sub, "merge_size", None)
        if isinstance(patch, int) and isinstance(merge, int) and patch > 0 and merge > 0:
            return patch * merge
    return None


def _ladder(size: Size, step: int) -> list[Size]:
    """`size` and smaller sizes of the same aspect, the longer side going down by `step`."""
    width, height = size
    longest = max(width, height)
    out = [size]
    side = (longest // step) * step
    if side == longest:
        side -= step
    while side >= max(step, 2):
        short = max(step, round(min(width, height) * side / longest / step) * step)
        out.append((side, short) if width >= height else (short, side))
        side -= step
    return list(dict.fromkeys(out))


def _listed(sizes: Iterable[Size]) -> list[Size]:
    """Sizes a caller gave, largest first."""
    listed = sorted({(int(w), int(h)) for w, h in sizes}, key=lambda s: -s[0] * s[1])
    if not listed or any(w < 1 or h < 1 for w, h in listed):
        raise OptionsError(f"candidate sizes must be positive (width, height) pairs: {sizes}")
    return listed


def _depends(processor: Any, formatter: Any, size: Size, unit: int, factor: int | None) -> bool:
    """Whether the count depends on the frame size: by the processor, or measured at half."""
    width, height = size
    half = (max(1, width // 2), max(1, height // 2))
    return factor is not None or (
        measure(processor, formatter, unit, *size).visual
        != measure(processor, formatter, unit, *half).visual
    )


def _shrinking(processor: Any, formatter: Any, size: Size, unit: int, factor: int | None) -> Sizes:
    """`size` and the smaller sizes down to the floor that each cost fewer tokens."""

    def visual(at: Size) -> int:
        return measure(processor, formatter, unit, *at).visual

    ladder = _ladder(size, factor or max(2, max(size) // 64))
    full = visual(size)
    # the floor: the smallest size keeping SIZE_FLOOR of the per-frame tokens
    keep = largest(
        lambda i: visual(ladder[i]) >= full * SIZE_FLOOR, 0, len(ladder) - 1, len(ladder) // 2
    )
    last = keep or 0
    lowest = visual(ladder[last])
    if lowest == full:
        return Sizes([size], False)  # no smaller size is cheaper here
    # the largest size as cheap as the floor (smaller ones are enlarged again by the processor)
    dearer = largest(lambda i: visual(ladder[i]) > lowest, 0, last, last // 2)
    return Sizes(ladder[: (dearer or 0) + 2], True)


def candidate_sizes(
    processor: Any, formatter: Any, size: Size | None, sizes: Iterable[Size] | None, unit: int
) -> Sizes:
    """The sizes to plan among: `sizes` when given, else `size` and, where the count depends on
    the size, smaller ones (measured with `unit` frames)."""
    if sizes is not None:
        return Sizes(_listed(sizes), True)
    factor = _factor(processor, formatter)
    if size is None:
        if factor is not None:
            raise OptionsError(
                f"{type(processor).__name__} spends tokens by frame size: the planner needs the "
                "video's frame size (size=(width, height)) or candidate sizes"
            )
        return Sizes([(384, 384)], False)  # any size: the count does not depend on it
    width, height = size
    if width < 1 or height < 1:
        raise OptionsError(f"frame size must be positive, not {width}x{height}")
    if not _depends(processor, formatter, size, unit, factor):
        return Sizes([size], False)
    return _shrinking(processor, formatter, size, unit, factor)
