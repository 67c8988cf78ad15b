"""A visual-token budget: how many frames (and, where it matters, what frame size) fit.

    budget = Budget(max_visual_tokens=18_000)            # or Budget(fit="context"), or both
    chosen = plan(processor, formatter, budget, video_frames=900, max_frames=None, size=(1280, 720),
                  sizes=None, context=32_768, text_tokens=40, max_new_tokens=512,
                  requested_frames=None)
    chosen.num_frames, chosen.size, chosen.reason

Every count is the processor's own: `visual_tokens` builds the prompt the pipeline would send
for a video of blank frames (the formatter's `build_inputs` on a blank Clip, no model call) and
counts the visual tokens in its `input_ids`. The planner searches those real counts, so models
that merge frames in time (Qwen-VL's 2-frame temporal patches: 3 frames cost as much as 4),
round frame counts, or scale tokens with frame size are planned by their own rules.

The rules:
- the limit is `max_visual_tokens` (visual tokens), and with `fit="context"` the room the
  context leaves: `context - text_tokens - max_new_tokens` (compared with everything the video
  adds to the prompt, its wrapper tokens included); with both, both must hold;
- frames: the largest count within `min_frames` .. `max_frames` and the video's frame count
  that fits; an explicit `requested_frames` wins when it fits, and is an `OptionsError` naming
  the largest count that does when it cannot;
- size, for models whose token count depends on the frame size (Qwen2/2.5/3-VL, GLM-4V, ...):
  more frames first, shrinking frames at most to half their side (a quarter of their tokens),
  then the largest size at which that many frames fit. Frames are never enlarged.

torch and transformers are imported only when a count is measured.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidtt.errors import OptionsError

Size = tuple[int, int]  # (width, height)

# Frames are shrunk at most to this fraction of their per-frame tokens (half their side).
SIZE_FLOOR = 0.25
# Past the largest count the search found, this many more counts are measured too, so that a
# processor whose count is not monotonic in the frame count (rounding) is still planned right.
LOOKAHEAD = 2
# Formatter kinds accepted as shorthands for the built-in formatters.
KINDS = {"image": "image-expansion", "video": "native-video"}


class Budget(BaseModel):
    """How many visual tokens the video(s) of a prompt may take.

    `max_visual_tokens`: at most this many visual tokens. `fit="context"`: what the model's
    context leaves after the prompt text and `max_new_tokens`. With both, the smaller wins.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_visual_tokens: int | None = Field(None, ge=1, description="visual tokens at most")
    fit: Literal["context"] | None = Field(
        None, description='"context": leave room for the prompt text and max_new_tokens'
    )

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.max_visual_tokens is None and self.fit is None:
            raise ValueError('a budget needs max_visual_tokens, fit="context", or both')
        return self

    @classmethod
    def of(
        cls, max_visual_tokens: int | None = None, fit: Literal["context"] | None = None
    ) -> Budget | None:
        """The budget for these settings, or None when neither is set (no budget)."""
        if max_visual_tokens is None and fit is None:
            return None
        return cls(max_visual_tokens=max_visual_tokens, fit=fit)

    def describe(self) -> str:
        parts = []
        if self.max_visual_tokens is not None:
            parts.append(f"max_visual_tokens={self.max_visual_tokens}")
        if self.fit is not None:
            parts.append(f"fit={self.fit!r}")
        return ", ".join(parts)


class BudgetPlan(BaseModel):
    """The frames (and size) a budget chose, with the counts behind the choice."""

    model_config = ConfigDict(frozen=True)
    budget: Budget
    limit: int = Field(description="the tokens the video(s) may take under the budget")
    num_frames: int = Field(description="frames to sample from each video")
    size: Size | None = Field(
        None, description="(width, height) to sample frames at; None: the budget chose no size"
    )
    visual_tokens: int = Field(description="visual tokens of the planned video(s)")
    video_tokens: int = Field(
        description="prompt tokens the planned video(s) add, wrapper tokens included"
    )
    tokens_per_frame: int | float = Field(description="visual tokens / frames, as measured")
    reason: str = Field(description="one sentence: why these frames and this size")

    def sampler_options(self, count_option: str | None = "num_frames") -> dict[str, Any]:
        """Sampler options for the plan: the frame count under `count_option` (the sampler's
        `frames_option()`), and `size` when the budget chose one (it replaces `max_side`)."""
        options: dict[str, Any] = {}
        if count_option:
            options[count_option] = self.num_frames
        if self.size is not None:
            options["size"] = self.size
        return options


# -- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """What one video of n blank frames at a size adds to the prompt."""

    visual: int  # visual tokens (image/video tokens after expansion)
    total: int  # every prompt token the video adds (wrappers, separators)
    seen: Size | None  # the size the processor resized frames to, where it can be read


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


def measure(processor: Any, formatter: Any, num_frames: int, width: int, height: int) -> Cost:
    """What a video of `num_frames` blank frames of `width` x `height` adds to the prompt the
    formatter builds (cached per processor, formatter, count and size)."""
    formatter = resolve_formatter(formatter)
    if num_frames < 1 or width < 1 or height < 1:
        raise OptionsError(f"cannot measure {num_frames} frames of {width}x{height}")

    def compute() -> Cost:
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

    return _cached(processor, (formatter.name, num_frames, width, height), compute)  # type: ignore[no-any-return]


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


# -- planning ----------------------------------------------------------------------------------


@dataclass
class _Limits:
    """The budget in numbers: a limit on visual tokens and one on all the video's tokens."""

    visual: int | None
    room: int | None
    videos: int

    def fits(self, cost: Cost) -> bool:
        if self.visual is not None and cost.visual * self.videos > self.visual:
            return False
        return self.room is None or cost.total * self.videos <= self.room

    @property
    def limit(self) -> int:
        return min(x for x in (self.visual, self.room) if x is not None)


def _limits(
    budget: Budget, context: int | None, text_tokens: int, max_new_tokens: int, videos: int
) -> _Limits:
    room = None
    if budget.fit == "context":
        if context is None:
            raise OptionsError(
                'fit="context" needs the model\'s context size, which its config does not '
                "declare: give max_visual_tokens instead"
            )
        room = context - text_tokens - max_new_tokens
        if room < 1:
            raise OptionsError(
                f"the context ({context:,} tokens) has no room for video: the prompt text takes "
                f"{text_tokens:,} and max_new_tokens={max_new_tokens:,}; lower max_new_tokens "
                "or shorten the prompt"
            )
    return _Limits(budget.max_visual_tokens, room, videos)


def _largest(fits: Callable[[int], bool], lo: int, hi: int, guess: int) -> int | None:
    """The largest n in lo..hi with fits(n), searching the real counts: gallop from a guess,
    bisect, then look a few counts further for processors whose count is not monotonic."""
    if lo > hi or not fits(lo):
        return None
    good, bad = lo, hi + 1
    while True:
        g = min(max(guess, good + 1), hi)
        if good < g < bad:
            if fits(g):
                good = g
            else:
                bad = g
        step = 1
        while bad == hi + 1 and good < hi:  # no failing count known yet: gallop up
            n = min(hi, good + step)
            if fits(n):
                good = n
                step *= 2
            else:
                bad = n
        while bad - good > 1:
            mid = (good + bad) // 2
            if fits(mid):
                good = mid
            else:
                bad = mid
        further = next((n for n in range(bad + 1, min(hi, bad + LOOKAHEAD) + 1) if fits(n)), None)
        if further is None:
            return good
        good, bad, guess = further, hi + 1, further + 1


def _fewest_frames(processor: Any, formatter: Any, size: Size) -> int:
    """The fewest frames the processor takes (GLM-4V and Qwen3-VL refuse a lone frame)."""
    from vidtt.errors import FormatterError

    for n in range(1, 5):
        try:
            measure(processor, formatter, n, *size)
            return n
        except FormatterError:
            if n == 4:
                raise
    return 1


def _first(fits: Callable[[int], bool], hi: int, guess: int) -> int:
    """The smallest i in 0..hi with fits(i), where fits(hi) holds and fits only turns from
    False to True: measured from a guess outwards, then bisected."""
    g = min(max(guess, 0), hi)
    step = 1
    if g < hi and not fits(g):
        no, yes = g, hi
        while no + step < hi:  # gallop towards hi
            if fits(no + step):
                yes = no + step
                break
            no, step = no + step, step * 2
    else:
        no, yes = -1, g
        while yes > 0:  # gallop towards 0
            i = max(0, yes - step)
            if not fits(i):
                no = i
                break
            yes, step = i, step * 2
    while yes - no > 1:
        mid = (no + yes) // 2
        if fits(mid):
            yes = mid
        else:
            no = mid
    return yes


@dataclass
class _Sizes:
    """Candidate sizes, largest first, and whether the count depends on the size at all."""

    candidates: list[Size]
    chosen: bool  # False: one size, the model's count does not depend on it (plan.size None)


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


def _candidate_sizes(
    processor: Any, formatter: Any, size: Size | None, sizes: Iterable[Size] | None, unit: int
) -> _Sizes:
    if sizes is not None:
        listed = sorted({(int(w), int(h)) for w, h in sizes}, key=lambda s: -s[0] * s[1])
        if not listed or any(w < 1 or h < 1 for w, h in listed):
            raise OptionsError(f"candidate sizes must be positive (width, height) pairs: {sizes}")
        return _Sizes(listed, True)
    factor = _factor(processor, formatter)
    if size is None:
        if factor is not None:
            raise OptionsError(
                f"{type(processor).__name__} spends tokens by frame size: the planner needs the "
                "video's frame size (size=(width, height)) or candidate sizes"
            )
        return _Sizes([(384, 384)], False)  # any size: the count does not depend on it
    width, height = size
    if width < 1 or height < 1:
        raise OptionsError(f"frame size must be positive, not {width}x{height}")
    half = (max(1, width // 2), max(1, height // 2))
    depends = factor is not None or (
        measure(processor, formatter, unit, *size).visual
        != measure(processor, formatter, unit, *half).visual
    )
    if not depends:
        return _Sizes([size], False)
    ladder = _ladder(size, factor or max(2, max(size) // 64))
    full = measure(processor, formatter, unit, *size).visual
    # the floor: the smallest size keeping SIZE_FLOOR of the per-frame tokens
    keep = _largest(
        lambda i: measure(processor, formatter, unit, *ladder[i]).visual >= full * SIZE_FLOOR,
        0,
        len(ladder) - 1,
        len(ladder) // 2,
    )
    last = keep or 0
    lowest = measure(processor, formatter, unit, *ladder[last]).visual
    if lowest == full:
        return _Sizes([size], False)  # no smaller size is cheaper here
    # the largest size as cheap as the floor (smaller ones are enlarged again by the processor)
    dearer = _largest(
        lambda i: measure(processor, formatter, unit, *ladder[i]).visual > lowest,
        0,
        last,
        last // 2,
    )
    candidates = ladder[: (dearer or 0) + 2]
    return _Sizes(candidates, True)


def plan(
    processor: Any,
    formatter: Any,
    budget: Budget,
    *,
    video_frames: int | None,
    min_frames: int = 1,
    max_frames: int | None,
    size: Size | None,
    sizes: Iterable[Size] | None,
    context: int | None,
    text_tokens: int,
    max_new_tokens: int,
    requested_frames: int | None,
    videos: int = 1,
) -> BudgetPlan:
    """The frames (and, for models whose count depends on it, the size) that fill `budget`.

    `formatter`: the PromptFormatter the pipeline uses, its name, or "image"/"video".
    `video_frames`: frames in the video (or its sampled range); `min_frames`/`max_frames`: the
    sampler's bounds. `size`: the (width, height) frames would be sampled at; `sizes`: candidate
    sizes to choose from instead of the planner's own. `context`, `text_tokens` (the prompt's
    tokens without its videos: see `text_tokens()`) and `max_new_tokens` matter for
    `fit="context"`. `requested_frames`: a count the user gave. `videos`: videos in the prompt,
    each sampled by this plan.
    """
    from vidtt import limits as vidtt_limits

    formatter = resolve_formatter(formatter)
    if videos < 1 or min_frames < 1:
        raise OptionsError("videos and min_frames must be at least 1")
    if requested_frames is not None and requested_frames < 1:
        raise OptionsError(f"the frame count must be at least 1, not {requested_frames}")
    bound = _limits(budget, context, text_tokens, max_new_tokens, videos)
    caps = [c for c in (max_frames, video_frames) if c is not None]
    hi = min([*caps, vidtt_limits.current().max_frames])
    if hi < 1:
        raise OptionsError(f"no frames to plan: the video has {video_frames} frames")
    lo = min(min_frames, hi)
    unit = 2  # two frames: a whole temporal patch for Qwen-style processors
    space = _candidate_sizes(processor, formatter, size, sizes, unit)
    top, floor = space.candidates[0], space.candidates[-1]
    fewest = _fewest_frames(processor, formatter, floor)
    lo = max(lo, min(fewest, hi))

    def cost(n: int, at: Size) -> Cost:
        return measure(processor, formatter, n, *at)

    def fits_at(at: Size) -> Callable[[int], bool]:
        return lambda n: bound.fits(cost(n, at))

    def guess(at: Size) -> int:
        one, two = cost(lo, at), cost(lo + unit, at)
        slope = max((two.total - one.total) / unit, 1e-9)
        return lo + int((bound.limit / videos - one.total) / slope)

    def most(at: Size, upto: int, start: int = 1) -> int | None:
        return _largest(fits_at(at), start, upto, guess(at))

    if requested_frames is not None:
        n = requested_frames
        if not bound.fits(cost(n, floor)):
            best = most(floor, min(hi, n - 1), fewest) if n > fewest else None
            if best is None:
                shown = floor if space.chosen else None
                raise _too_small(budget, bound, cost(fewest, floor), fewest, shown)
            at = f" (at {_wh(floor)})" if space.chosen else ""
            raise OptionsError(
                f"{n} frames need {_spent(bound, cost(n, floor))}, over the budget "
                f"({_limit_text(budget, bound)}): the most frames that fit is {best}{at}; ask "
                f"for {best} frames or fewer, or raise the budget"
            )
    else:
        found = most(floor, hi, lo)
        if found is None:
            raise _too_small(budget, bound, cost(lo, floor), lo, floor if space.chosen else None)
        n = found
    # the largest size at which n frames fit (sizes are largest first)
    index = 0
    if len(space.candidates) > 1:
        last = len(space.candidates) - 1

        def predicted(i: int) -> bool:  # n frames fit at size i, judging by 2 frames' count
            pair = cost(unit, space.candidates[i])
            visual = math.ceil(pair.visual * n / unit)
            return bound.fits(Cost(visual, pair.total - pair.visual + visual, None))

        hint = _first(predicted, last, last // 2)
        index = _first(lambda i: bound.fits(cost(n, space.candidates[i])), last, hint)
    chosen = space.candidates[index]
    spent = cost(n, chosen)
    more = None
    if requested_frames is None and n < hi:
        more = (floor, cost(n + 1, floor)) if space.chosen else (chosen, cost(n + 1, chosen))
    why = _reason(
        bound,
        n,
        chosen if space.chosen else None,
        spent,
        top=top,
        requested=requested_frames is not None,
        capped=n == hi,
        caps=(max_frames, video_frames),
        more=more,
    )
    visual = spent.visual * videos
    per = visual / (n * videos)
    return BudgetPlan(
        budget=budget,
        limit=bound.limit,
        num_frames=n,
        size=chosen if space.chosen else None,
        visual_tokens=visual,
        video_tokens=spent.total * videos,
        tokens_per_frame=int(per) if per == int(per) else round(per, 2),
        reason=why,
    )


# -- messages ----------------------------------------------------------------------------------


def _frames(n: int) -> str:
    return "1 frame" if n == 1 else f"{n} frames"


def _wh(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def _limit_text(budget: Budget, bound: _Limits) -> str:
    parts = []
    if bound.visual is not None:
        parts.append(f"max_visual_tokens={bound.visual:,}")
    if bound.room is not None:
        parts.append(f"{bound.room:,} tokens left in the context")
    return " and ".join(parts)


def _spent(bound: _Limits, cost: Cost) -> str:
    videos = bound.videos
    if bound.room is not None and (bound.visual is None or cost.total * videos > bound.room):
        return f"{cost.total * videos:,} prompt tokens"
    return f"{cost.visual * videos:,} visual tokens"


def _too_small(budget: Budget, bound: _Limits, cost: Cost, n: int, at: Size | None) -> OptionsError:
    frames = "one frame" if n == 1 else f"{n} frames"
    where = f" at {_wh(at)}" if at else ""
    needs = []
    if bound.visual is not None and cost.visual * bound.videos > bound.visual:
        needs.append(f"max_visual_tokens={cost.visual * bound.videos:,}")
    if bound.room is not None and cost.total * bound.videos > bound.room:
        short = cost.total * bound.videos - bound.room
        needs.append(
            f"{short:,} more tokens of context room (lower max_new_tokens or shorten the prompt)"
        )
    return OptionsError(
        f"the budget ({_limit_text(budget, bound)}) is too small for {frames}{where}, which "
        f"takes {_spent(bound, cost)}; the smallest budget that works: {' and '.join(needs)}"
    )


def _reason(
    bound: _Limits,
    n: int,
    size: Size | None,
    spent: Cost,
    *,
    top: Size,
    requested: bool,
    capped: bool,
    caps: tuple[int | None, int | None],
    more: tuple[Size, Cost] | None,
) -> str:
    """One sentence: what the plan spends, and why not more frames or a larger size."""
    videos = bound.videos
    visual = spent.visual * videos
    per = visual / (n * videos)
    per_text = f"{per:,.2f}".rstrip("0").rstrip(".")
    shown = size or spent.seen
    at = f" at {_wh(shown)}" if shown else ""
    of = "" if videos == 1 else f" of each of {videos} videos"
    if bound.room is not None and (bound.visual is None or bound.room < bound.visual):
        used = f"{spent.total * videos:,} of the {bound.room:,} prompt tokens the context leaves"
    else:
        used = f"{visual:,} of {bound.limit:,} visual tokens"
    notes = []
    if size is not None and spent.seen is not None and spent.seen != size:
        notes.append(f"the processor resizes them to {_wh(spent.seen)}")
    if size is not None and size != top:
        notes.append(f"shrunk from {_wh(top)} to fit {_frames(n)}")
    if requested:
        notes.append(f"{_frames(n)} asked for")
    elif capped:
        max_frames, video_frames = caps
        if video_frames is not None and (max_frames is None or video_frames <= max_frames):
            notes.append("every frame of the video")
        elif max_frames is not None:
            notes.append(f"the most max_frames={max_frames} allows")
        else:
            notes.append("the most vidtt's max_frames limit allows")
    elif more is not None:
        where, cost = more
        even = " even" if size is not None and where != size else ""
        at_more = f" at {_wh(where)}" if size is not None else ""
        notes.append(f"{n + 1} frames would take {_spent(bound, cost)}{even}{at_more}")
    return f"{_frames(n)}{of}{at} use {used} ({per_text} per frame)" + "".join(
        f"; {note}" for note in notes
    )
