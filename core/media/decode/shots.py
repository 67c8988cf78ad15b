"""Shot boundaries from the frames' coarse luma and chroma samples (see `features`).

- A hard cut is a frame that differs from the one before far more than its neighbours do
  from theirs (so camera motion, which changes every frame, is not a cut), unless the picture
  comes back within a few frames (a flash, a muzzle blast, a camera flash).
- A dissolve is a stretch where the middle frame is the blend of the frames either side,
  unless the stretch is one picture moving steadily (a pan or tilt across a scene whose
  colours drift looks like a slow blend): a steady shift undoes most of each step's change.
- A fade is a short run of flat (black or white) frames between two different pictures.
Gradual transitions are placed at their middle. All work is vectorised over the frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .features import Features

CHUNK = 2048  # frames compared at once (bounds the temporary arrays)
CUT_RATIO = 3.0  # a cut differs this many times more than its neighbours' changes
FLAT_STD = 6.0  # a frame whose luma varies less than this is flat (black, white, one colour)
BLEND_ERROR = 0.45  # a dissolve's middle frame is this close to the blend of its two sides
MOTION_RATIO = 0.5  # a change that shifting the picture cuts to this share is camera motion


@dataclass(frozen=True)
class Cut:
    frame: int  # position in the features: the first frame of the new shot
    kind: Literal["cut", "gradual"]
    strength: float  # how much the picture changed (for merging the weakest cuts first)


@dataclass
class Detection:
    cuts: list[Cut]
    motion: Any  # change from the frame before, per frame (0 for the first)
    all_cuts: bool = False  # nearly every frame differs from the last: no shots to speak of


def difference(features: Features, a: Any, b: Any) -> Any:
    """Mean absolute change between rows `a` and rows `b` (luma plus both chroma planes)."""
    import numpy as np

    out = np.empty(len(a), dtype=np.float32)
    for at in range(0, len(a), CHUNK):
        i, j = a[at : at + CHUNK], b[at : at + CHUNK]
        luma = np.abs(features.luma[i].astype(np.int16) - features.luma[j]).mean(axis=(1, 2))
        chroma = np.abs(features.chroma[i].astype(np.int16) - features.chroma[j])
        out[at : at + CHUNK] = luma + chroma.mean(axis=(2, 3)).sum(axis=1)
    return out


def keyframe_cuts(features: Features, threshold: float) -> Detection:
    """Cuts between keyframes (seconds apart, so no neighbours to compare with): a keyframe
    that differs from the one before by `threshold` or more."""
    import numpy as np

    frames = np.arange(1, len(features.luma))
    change = difference(features, frames, frames - 1) if len(frames) else np.zeros(0)
    cuts = [Cut(int(f), "cut", float(c)) for f, c in zip(frames, change) if c >= threshold]
    return Detection(cuts, None)


def window(fps: float) -> int:
    """Half the span of frames a gradual transition is judged over (0.4 s, 3 to 15 frames)."""
    return max(3, min(15, round(0.4 * fps)))


def detect(features: Features, fps: float, threshold: float) -> Detection:
    """The cuts of the frames in `features` (`fps`: their rate; `threshold`: the least mean
    change, on 0-255 levels, that can be a cut)."""
    import numpy as np

    count = len(features.luma)
    motion = np.zeros(count, dtype=np.float32)
    if count < 2:
        return Detection([], motion)
    frames = np.arange(1, count)
    motion[1:] = difference(features, frames, frames - 1)
    if unrelated(features, motion, threshold):
        return Detection([], motion, all_cuts=True)
    hard = hard_cuts(features, motion, fps, threshold)
    reach = window(fps)
    gradual = [
        c
        for c in [
            *dissolves(features, motion, reach, threshold),
            *fades(features, reach, threshold),
        ]
        if all(abs(c.frame - h.frame) > reach for h in hard)
    ]
    return Detection(spaced(sorted([*hard, *gradual], key=lambda c: c.frame), 3), motion)


def unrelated(features: Features, motion: Any, threshold: float) -> bool:
    """Whether most frames differ from the one before as much as from the one before that
    (no frame follows from the last: noise, a slideshow of single frames), by a cut's worth."""
    import numpy as np

    if len(motion) < 3 or np.median(motion[1:]) < 2 * threshold:
        return False
    frames = np.arange(2, len(motion))
    return bool(np.median(difference(features, frames, frames - 2)) < 1.2 * np.median(motion[2:]))


def neighbourhood(values: Any, reach: int, skip: int) -> Any:
    """Per frame, the median of `values` within `reach` frames, leaving out `skip` either side."""
    import numpy as np

    padded = np.pad(values, reach, mode="edge")
    views = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1)
    keep = np.r_[0 : reach - skip + 1, reach + skip : 2 * reach + 1]
    return np.median(views[:, keep], axis=1)


def hard_cuts(features: Features, motion: Any, fps: float, threshold: float) -> list[Cut]:
    import numpy as np

    reach = max(4, round(fps / 3))
    around = neighbourhood(motion, reach, 1)
    peak = np.r_[False, (motion[1:-1] >= motion[:-2]) & (motion[1:-1] >= motion[2:]), True]
    found = np.flatnonzero((motion >= threshold) & (motion >= CUT_RATIO * around) & peak)
    flashes = set(flashed(features, motion, found, max(2, round(0.3 * fps))))
    return [Cut(int(f), "cut", float(motion[f])) for f in found if f not in flashes]


def flashed(features: Features, motion: Any, found: Any, reach: int) -> list[int]:
    """The cuts after which the picture returns to the one before within `reach` frames, and
    the cuts that return to a picture of up to `reach` frames before: a flash, not a shot."""
    import numpy as np

    flashes: list[int] = []
    count = len(motion)
    for f in found:
        later = np.arange(f + 1, min(f + reach + 1, count))
        earlier = np.arange(max(f - reach - 1, 0), f - 1)
        back = difference(features, later, np.full(len(later), f - 1))
        again = difference(features, earlier, np.full(len(earlier), f))
        if (back < 0.3 * motion[f]).any() or (again < 0.3 * motion[f]).any():
            flashes.append(int(f))
    return flashes


def dissolves(features: Features, motion: Any, reach: int, threshold: float) -> list[Cut]:
    """Middles of stretches whose middle frame is the blend of the frames `reach` either side."""
    import numpy as np

    count = len(motion)
    if count <= 2 * reach:
        return []
    middle = np.arange(reach, count - reach)
    apart = difference(features, middle - reach, middle + reach)
    error = blend_error(features, middle, reach)
    steps = np.lib.stride_tricks.sliding_window_view(motion[1:], 2 * reach)[: len(middle)]
    smooth = steps.max(axis=1) < np.maximum(apart / 3, 1.0)  # no jump inside the stretch
    known = np.r_[motion[1], motion[1:]]  # the first frame's 0 is no measure of motion
    outside = np.maximum(neighbourhood(known, 3 * reach, 2 * reach)[middle], 0.5)
    faster = apart >= 6 * outside  # far more change across it than the shots' own motion
    near_flat = np.lib.stride_tricks.sliding_window_view(flat_frames(features), 2 * reach + 1)
    hits = (apart >= 1.5 * threshold) & (error <= BLEND_ERROR * apart) & smooth & faster
    hits &= ~near_flat.any(axis=1)  # a fade (through black): `fades` places it
    return [
        Cut(int(middle[m]), "gradual", float(apart[m]))
        for m in centres(bridged(hits, max(2, reach // 4)), apart)
        if not panned(features, int(middle[m]), reach)
    ]


def panned(features: Features, middle: int, reach: int) -> bool:
    """Whether the `reach` frames either side of `middle` are one picture moving (a pan, a
    tilt, the camera following something), not one picture blending into another: at some
    stride (two to eight steps: each long enough for a blend's share to show), each step is
    the picture moved by a steady shift, which undoes most of the step's change."""
    stride = reach
    while stride >= max(1, reach // 4):
        steps = range(middle - reach, middle + reach - stride + 1, stride)
        shifts = []
        for a in steps:
            shift = step_shift(features.luma[a], features.luma[a + stride])
            if shift is None:
                break
            shifts.append(shift)
        else:
            if steady(shifts):
                return True
        stride //= 2
    return False


def steady(shifts: list[tuple[int, int]]) -> bool:
    """Whether the shifts are about the same (a pan's, not chance matches)."""
    for axis in (0, 1):
        values = sorted(shift[axis] for shift in shifts)
        typical = values[len(values) // 2]
        if values[-1] - values[0] > 2 * max(2, abs(typical) // 4):
            return False
    return True


def step_shift(before: Any, after: Any) -> tuple[int, int] | None:
    """The (rows, columns) shift that moves `before` onto `after`, leaving at most
    `MOTION_RATIO` of the plain change; None when no shift up to a third of the picture does."""
    import numpy as np

    a, b = before.astype(np.float32), after.astype(np.float32)
    plain = float(np.median(np.abs(a - b)))
    if plain < 1.0:  # hardly any change: the camera paused
        return (0, 0)
    h, w = a.shape
    dx = profile_shift(a.mean(axis=0), b.mean(axis=0))
    if dx is None:
        return None
    columns = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w - max(dx, 0))
    dy = profile_shift(a[:, columns[0]].mean(axis=1), b[:, columns[1]].mean(axis=1))
    if dy is None:
        return None
    rows = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h - max(dy, 0))
    dx = profile_shift(a[rows[0]].mean(axis=0), b[rows[1]].mean(axis=0))
    if dx is None:
        return None
    moved, shift = min(
        (shifted_change(a, b, dy + i, dx + j), (dy + i, dx + j))
        for i in (-1, 0, 1)
        for j in (-1, 0, 1)
    )
    return shift if moved <= MOTION_RATIO * plain else None


def profile_shift(a: Any, b: Any) -> int | None:
    """The shift `s` (up to a third of the length either way) for which `b[x]` best matches
    `a[x + s]`; None when the best is at the edge of that range (no match within it)."""
    import numpy as np

    reach = len(a) // 3
    padded = np.pad(b, reach, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, len(a))  # k: b moved k - reach
    errors = np.nanmean(np.abs(windows - a), axis=1)
    best = int(np.argmin(errors))
    return None if best in (0, 2 * reach) else reach - best


def shifted_change(a: Any, b: Any, dy: int, dx: int) -> float:
    """Median absolute difference of `b` and `a` moved by (dy, dx), over where they overlap
    (infinite past a third of the picture either way): an object crossing is left out."""
    import numpy as np

    h, w = a.shape
    if abs(dy) * 3 > h or abs(dx) * 3 > w:
        return float("inf")
    moved = a[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
    still = b[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
    return float(np.median(np.abs(moved - still)))


def blend_error(features: Features, middle: Any, reach: int) -> Any:
    """How far each middle frame's luma is from the average of the frames `reach` either side."""
    import numpy as np

    out = np.empty(len(middle), dtype=np.float32)
    for at in range(0, len(middle), CHUNK):
        m = middle[at : at + CHUNK]
        before = features.luma[m - reach].astype(np.float32)
        after = features.luma[m + reach].astype(np.float32)
        out[at : at + CHUNK] = np.abs(features.luma[m] - (before + after) / 2).mean(axis=(1, 2))
    return out * 2  # on the scale of `difference` (luma plus chroma)


def fades(features: Features, reach: int, threshold: float) -> list[Cut]:
    """Middles of short runs of flat frames between two pictures that differ."""
    import numpy as np

    count = len(features.luma)
    cuts = []
    for start, stop in runs_of(flat_frames(features)):
        before, after = start - reach, stop - 1 + reach
        if before < 0 or after >= count or stop - start > 8 * reach:
            continue
        dark = float(features.luma[start:stop].mean()) < 64
        if not dark and stop - start < 3:  # a bright frame or two: a flash, not a fade
            continue
        across = float(difference(features, np.array([before]), np.array([after]))[0])
        if across >= threshold:
            cuts.append(Cut((start + stop) // 2, "gradual", across))
    return cuts


def flat_frames(features: Features) -> Any:
    """Per frame, whether its luma hardly varies (black, white or one colour)."""
    import numpy as np

    count = len(features.luma)
    flat = np.empty(count, dtype=bool)
    for at in range(0, count, CHUNK):
        flat[at : at + CHUNK] = features.luma[at : at + CHUNK].std(axis=(1, 2)) < FLAT_STD
    return flat


def runs_of(flags: Any) -> list[tuple[int, int]]:
    """(start, stop) of each run of true values."""
    import numpy as np

    edges = np.diff(np.r_[0, flags.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def bridged(hits: Any, gap: int) -> Any:
    """`hits` with gaps of up to `gap` frames inside a run filled (a frame or two of noise in
    a dissolve does not make it two)."""
    hits = hits.copy()
    for start, stop in runs_of(~hits):
        if start > 0 and stop < len(hits) and stop - start <= gap:
            hits[start:stop] = True
    return hits


def centres(hits: Any, strength: Any) -> list[int]:
    """For each run of hits, the middle of the part within 90% of the run's strongest."""
    import numpy as np

    out = []
    for start, stop in runs_of(hits):
        part = strength[start:stop]
        strong = np.flatnonzero(part >= 0.9 * part.max())
        out.append(start + int(strong[0] + strong[-1]) // 2)
    return out


def spaced(cuts: list[Cut], gap: int) -> list[Cut]:
    """Cuts at least `gap` frames apart: of two closer ones, the stronger stays."""
    kept: list[Cut] = []
    for cut in cuts:
        if kept and cut.frame - kept[-1].frame < gap:
            if cut.strength > kept[-1].strength:
                kept[-1] = cut
            continue
        kept.append(cut)
    return kept
