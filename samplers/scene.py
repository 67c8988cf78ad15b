"""`scene`: frames from every shot. Shot boundaries first (hard cuts, fades, dissolves; flashes
and camera pans are not cuts), then, for sharing out frames only, shots shorter than
`min_scene` seconds merged into a neighbour (`find_shots` reports every shot), then up to
`max_frames` frames shared out by shot length (one at least each), each a still moment away
from the shot's edges (not the blurred first frame after a cut or a fade). A video with no
cuts gets uniform frames.

Detection reads coarse luma and chroma samples of each frame as it is decoded (no RGB, no
full-size copies; loop filters off), shared between decoders by keyframe. Past
`DENSE_FRAMES` frames in range only keyframes are decoded (encoders put them at cuts), and
cuts fall on keyframes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from vidtt.plugin_api import (
    Cut,
    Detection,
    FrameOptions,
    PyAVSampler,
    SamplingContext,
    Selection,
    Shot,
    VideoSource,
    detect_cuts,
    evenly,
    hookimpl,
    keyframe_cuts,
    transition_window,
)

from .uniform import uniform_indices

DENSE_FRAMES = 30_000  # frames in range past which only keyframes are looked at
MAX_KEYFRAMES = 6_000  # keyframes looked at, at most (thinned evenly)


class SceneOptions(FrameOptions):
    max_frames: int = Field(8, ge=1, le=10_000, description="frames in all, at most")
    min_scene: float = Field(
        1.0,
        ge=0,
        allow_inf_nan=False,
        description="seconds: in sharing out frames, shorter shots join a neighbour",
    )
    threshold: float = Field(
        12.0,
        gt=0,
        le=255,
        allow_inf_nan=False,
        description="the least mean change (0-255 levels) between two frames that can be a cut",
    )


Shots = list[tuple[int, int, str]]  # (first frame, end frame, how it begins)


class SceneSampler(PyAVSampler):
    name = "scene"
    description = "frames from every shot (cuts, fades, dissolves found), up to max_frames"
    options_model = SceneOptions
    count_option = "max_frames"

    def shot_times(self, source: Any, **options: Any) -> list[tuple[float, float]]:
        """The (start, end) seconds of every shot of the video, without sampling frames: the
        `ShotFinder` capability (`vidtt.plugin_api`) the core's segments strategy asks of the
        sampler named `scene` (options as `find_shots`)."""
        return [(shot.start, shot.end) for shot in find_shots(source, **options)]

    def choose(
        self, index: Any, span: range, options: Any, label: str, warnings: list[str]
    ) -> list[int]:
        """Uniform frames (what `select` falls back to when there are no shots)."""
        count = min(options.max_frames, len(span))
        return sorted({span[i] for i in uniform_indices(len(span), count)})

    def select(self, context: SamplingContext) -> Selection:
        span, options = context.span, context.options
        if len(span) == 1:
            return Selection([span[0]], [(span[0], span.stop, "start")])
        cuts, motion = self._cuts(context)
        shots = merge_short(context, cuts, options.min_scene)
        if len(shots) > options.max_frames:
            context.warnings.append(
                f"{context.label}: {len(shots)} shots found, more than max_frames="
                f"{options.max_frames}: the shots across the weakest cuts were joined"
            )
            shots = merge_weakest(shots, options.max_frames)
        first_shots: Shots = [(a, b, kind) for a, b, kind, _ in shots]
        if len(shots) == 1:
            return Selection(self.choose(context.index, span, options, "", []), first_shots)
        counts = share_frames([b - a for a, b, _, _ in shots], options.max_frames)
        reach = transition_window(context.fps or 25)
        chosen = []
        for (a, b, kind, _), count, following in zip(shots, counts, [*shots[1:], None]):
            edges = (
                reach if kind == "gradual" else 1,
                reach if following and following[2] == "gradual" else 1,
            )
            chosen += representatives(motion, span[0], a, b, count, edges)
        return Selection(sorted(set(chosen)), first_shots)

    def _cuts(self, context: SamplingContext) -> tuple[list[Cut], Any]:
        """The cuts in the range (frame numbers), and each frame's change (None when only
        keyframes were looked at)."""
        span, options, fps = context.span, context.options, context.fps or 25.0
        if len(span) <= DENSE_FRAMES:
            frames = list(span)
            detection = detect_cuts(context.features(frames, False), fps, options.threshold)
            motion = detection.motion
        else:
            frames, detection = self._keyframe_cuts(context)
            motion = None
        if detection.all_cuts:
            context.warnings.append(
                f"{context.label}: nearly every frame differs from the one before (noise or a "
                "slideshow of single frames?): no shots to tell apart; took uniform frames"
            )
            return [], motion
        return [Cut(frames[c.frame], c.kind, c.strength) for c in detection.cuts], motion

    def _keyframe_cuts(self, context: SamplingContext) -> tuple[list[int], Detection]:
        span, index = context.span, context.index
        keys = [k for k in index.keyframes if span[0] <= k < span.stop] or [span[0]]
        keys = sorted({span[0], *evenly(keys, MAX_KEYFRAMES)})
        context.warnings.append(
            f"{context.label}: {len(span)} frames in range, over {DENSE_FRAMES}: shots were found "
            f"from {len(keys)} keyframes only (cuts placed at keyframes)"
        )
        return keys, keyframe_cuts(context.features(keys, True), 2 * context.options.threshold)


Shot4 = tuple[int, int, str, float]  # (first, end, how it begins, that cut's strength)


def between(span: range, cuts: list[Cut]) -> list[Shot4]:
    """The shots of `span` between the cuts, each with the cut that begins it."""
    starts = [(span[0], "start", float("inf")), *((c.frame, c.kind, c.strength) for c in cuts)]
    ends = [*(c.frame for c in cuts), span.stop]
    return [(first, end, kind, strength) for (first, kind, strength), end in zip(starts, ends)]


def merge_short(context: SamplingContext, cuts: list[Cut], min_scene: float) -> list[Shot4]:
    """Shots between the cuts, for sharing out frames: a shot shorter than `min_scene`
    seconds joins the neighbour across its weaker cut, shortest first."""
    span, index = context.span, context.index
    shots = between(span, cuts)

    def seconds(shot: Shot4) -> float:
        end = index.time_of(shot[1]) if shot[1] < span.stop else index.duration()
        return end - index.time_of(shot[0])

    while len(shots) > 1:
        k = min(range(len(shots)), key=lambda n: seconds(shots[n]))
        if seconds(shots[k]) >= min_scene:
            break
        shots = join(shots, k)
    return shots


def join(shots: list[Shot4], k: int) -> list[Shot4]:
    """Shot `k` joined with the neighbour across its weaker cut."""
    before = shots[k][3] if k > 0 else float("inf")
    after = shots[k + 1][3] if k + 1 < len(shots) else float("inf")
    left = k - 1 if before <= after else k  # join shots left and left + 1
    a, b = shots[left], shots[left + 1]
    return [*shots[:left], (a[0], b[1], a[2], a[3]), *shots[left + 2 :]]


def merge_weakest(shots: list[Shot4], count: int) -> list[Shot4]:
    """Join shots across the weakest cuts until `count` are left."""
    while len(shots) > count:
        weakest = min(range(1, len(shots)), key=lambda n: shots[n][3])
        a, b = shots[weakest - 1], shots[weakest]
        shots = [*shots[: weakest - 1], (a[0], b[1], a[2], a[3]), *shots[weakest + 1 :]]
    return shots


def share_frames(lengths: list[int], total: int) -> list[int]:
    """Frames for each shot: one each, the rest by length (largest remainders), never more
    than a shot has."""
    counts = [1] * len(lengths)
    spare = min(total, sum(lengths)) - len(lengths)
    while spare > 0:
        room = [n for n, length in enumerate(lengths) if counts[n] < length]
        if not room:
            break
        whole = sum(lengths[n] for n in room)
        wants = {
            n: lengths[n] * (spare + sum(counts[m] for m in room)) / whole - counts[n] for n in room
        }
        best = max(room, key=lambda n: wants[n])
        counts[best] += 1
        spare -= 1
    return counts


def representatives(
    motion: Any, offset: int, first: int, end: int, count: int, edges: tuple[int, int]
) -> list[int]:
    """`count` frames of the shot [first, end): one in each of `count` equal parts, the
    stillest of the part's middle half, `edges` frames kept clear of each boundary."""
    size = end - first
    low = first + min(edges[0], size // 4)
    high = end - min(edges[1], size // 4)
    if high <= low:
        low, high = first, end
    picks = []
    for part in range(count):
        a = low + (high - low) * part / count
        b = low + (high - low) * (part + 1) / count
        centre = (a + b) / 2
        lo, hi = int(a + (b - a) / 4), max(int(a + (b - a) / 4) + 1, int(b - (b - a) / 4))
        picks.append(
            stillest(motion, offset, range(lo, min(hi, end)), centre)
            if motion is not None
            else int(centre)
        )
    return picks


def stillest(motion: Any, offset: int, frames: range, centre: float) -> int:
    """The frame of `frames` that changes least from its neighbours (nearest `centre` of
    equals)."""

    def cost(frame: int) -> float:
        at = frame - offset
        after = float(motion[at + 1]) if at + 1 < len(motion) else 0.0
        return float(motion[at]) + after + 1e-3 * abs(frame - centre)

    return min(frames, key=cost)


class ShotsOnly(SceneSampler):
    """The scene sampler's shots without its frames (one small frame is decoded): every shot
    detected, however short (`min_scene` only shares out the sampler's frames)."""

    name = "scene-shots"

    def select(self, context: SamplingContext) -> Selection:
        if len(context.span) == 1:
            return super().select(context)
        cuts, _ = self._cuts(context)
        shots = between(context.span, cuts)
        return Selection([context.span[0]], [(a, b, kind) for a, b, kind, _ in shots])


def find_shots(source: Any, **options: Any) -> list[Shot]:
    """Every shot of a video as the scene sampler detects them, without sampling frames: for
    shot detection alone. Options as the sampler's (`threshold`, `start`, `end`); a shot
    shorter than `min_scene` is still reported (merging is for sharing out frames only)."""
    finder = ShotsOnly()
    options.setdefault("max_side", 16)
    return finder.sample(VideoSource.of(source), finder.options(**options)).shots


@hookimpl
def register_samplers(register) -> None:  # type: ignore[no-untyped-def]
    register(SceneSampler())
