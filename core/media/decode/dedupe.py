"""Near-duplicate frames: which to drop, and which frames could stand in for them.

Two frames' similarity is 1 - their mean absolute difference / 255, over 16x16 RGB thumbnails
(box-averaged, so noise and compression count for little): 1.0 is identical, two shots of
different scenes are usually below 0.85.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any

THUMB = 16


def thumbnails(array: Any) -> Any:
    """(N, THUMB, THUMB, 3) float32 box averages of the frames in `array` (N, H, W, 3)."""
    import numpy as np

    _count, height, width = array.shape[:3]
    ys = np.linspace(0, height, THUMB + 1).astype(int)
    xs = np.linspace(0, width, THUMB + 1).astype(int)
    ys[1:] = np.maximum(ys[1:], ys[:-1] + 1).clip(max=height)
    xs[1:] = np.maximum(xs[1:], xs[:-1] + 1).clip(max=width)
    # sums over rows of cells, then over columns of cells (integral-image style, via reduceat)
    rows = np.add.reduceat(array.astype(np.float32), ys[:-1].clip(max=height - 1), axis=1)
    cells = np.add.reduceat(rows, xs[:-1].clip(max=width - 1), axis=2)
    areas = np.outer(np.diff(ys).clip(min=1), np.diff(xs).clip(min=1))[None, :, :, None]
    return cells / areas


def similarity(a: Any, b: Any) -> float:
    import numpy as np

    return float(1.0 - np.abs(a - b).mean() / 255.0)


def distinct(array: Any, threshold: float, groups: list[int]) -> list[bool]:
    """Which frames to keep: each frame unless it is at least `threshold` similar to the
    frame kept before it in the same group (a shot); a group's first frame is always kept."""
    thumbs = thumbnails(array)
    keep: list[bool] = []
    last = None
    for k, group in enumerate(groups):
        same = last is not None and groups[last] == group
        duplicate = same and similarity(thumbs[k], thumbs[last]) >= threshold
        keep.append(not duplicate)
        if not duplicate:
            last = k
    return keep


def gap_fill(candidates: list[int], kept: list[int], tried: set[int], count: int) -> list[int]:
    """Up to `count` of `candidates` (sorted frame numbers) not in `tried`: the one nearest
    the middle of each of the widest gaps between `kept` frames (and the range's ends)."""
    if not candidates:
        return []
    edges = [candidates[0] - 1, *kept, candidates[-1] + 1]
    gaps = sorted(itertools.pairwise(edges), key=lambda g: g[0] - g[1])
    picks: list[int] = []
    for low, high in gaps:
        if len(picks) >= count:
            break
        pick = _nearest_untried(candidates, (low + high) / 2, low, high, tried)
        if pick is not None:
            picks.append(pick)
    return sorted(picks)


def _nearest_untried(
    candidates: list[int], middle: float, low: int, high: int, tried: set[int]
) -> int | None:
    """The candidate strictly between `low` and `high`, not tried, nearest `middle`."""
    at = bisect.bisect_left(candidates, middle)
    left, right = at - 1, at
    while left >= 0 or right < len(candidates):
        for k in (right, left):
            inside = 0 <= k < len(candidates) and low < candidates[k] < high
            if inside and candidates[k] not in tried:
                return candidates[k]
        left, right = left - 1, right + 1
        if (left < 0 or candidates[left] <= low) and (
            right >= len(candidates) or candidates[right] >= high
        ):
            return None
    return None


def merge_rows(rows: Any, more: Any, keep: list[bool]) -> Any:
    """`rows` with only its `keep` frames, and `more` (Rows or None) merged in, in time order."""
    import numpy as np

    indices = [i for i, k in zip(rows.indices, keep) if k]
    array = rows.array[np.flatnonzero(keep)] if not all(keep) else rows.array
    if more is not None and more.indices:
        indices += more.indices
        array = np.concatenate([array, more.array])
        order = np.argsort(indices, kind="stable")
        indices = [indices[k] for k in order]
        array = array[order]
        for key, value in more.counts.items():
            if isinstance(value, int) and isinstance(rows.counts.get(key), int):
                rows.counts[key] += value
        rows.warnings += [w for w in more.warnings if w not in rows.warnings]
        rows.rotation = rows.rotation or more.rotation
    rows.indices, rows.array = indices, array
    return rows
