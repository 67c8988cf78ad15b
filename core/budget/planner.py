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

The parts: `schema` (Budget, BudgetPlan), `counts` (the processor's counts, cached),
`allowance` (a budget in numbers), `search` (searches over counts), `sizes` (the candidate
sizes), `messages` (the reason and the errors); this module puts them together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vidtt import limits as vidtt_limits
from vidtt.budget.allowance import Allowance, allowance_of
from vidtt.budget.counts import (
    Cost,
    clear_cache,
    fewest_frames,
    measure,
    resolve_formatter,
    text_tokens,
    visual_tokens,
)
from vidtt.budget.messages import over_budget, reason, too_small
from vidtt.budget.schema import Budget, BudgetPlan, Size
from vidtt.budget.search import first, largest
from vidtt.budget.sizes import Sizes, candidate_sizes
from vidtt.errors import OptionsError

__all__ = [
    "Budget",
    "BudgetPlan",
    "Cost",
    "Size",
    "clear_cache",
    "measure",
    "plan",
    "resolve_formatter",
    "text_tokens",
    "visual_tokens",
]

UNIT = 2  # two frames: a whole temporal patch for Qwen-style processors


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
    formatter = resolve_formatter(formatter)
    _check_counts(videos, min_frames, requested_frames)
    allowance = allowance_of(budget, context, text_tokens, max_new_tokens, videos)
    hi = _frame_cap(max_frames, video_frames)
    lo = min(min_frames, hi)
    space = candidate_sizes(processor, formatter, size, sizes, UNIT)
    fewest = fewest_frames(processor, formatter, space.floor)
    search = _Search(processor, formatter, allowance, max(lo, min(fewest, hi)), hi, fewest)
    n = _frame_count(search, space, requested_frames)
    chosen = _largest_size(search, space, n)
    return _plan_of(budget, search, space, n, chosen, requested_frames, (max_frames, video_frames))


def _check_counts(videos: int, min_frames: int, requested_frames: int | None) -> None:
    if videos < 1 or min_frames < 1:
        raise OptionsError("videos and min_frames must be at least 1")
    if requested_frames is not None and requested_frames < 1:
        raise OptionsError(f"the frame count must be at least 1, not {requested_frames}")


def _frame_cap(max_frames: int | None, video_frames: int | None) -> int:
    """The most frames a plan may take: max_frames, the video's frames, vidtt's limit."""
    caps = [c for c in (max_frames, video_frames) if c is not None]
    hi = min([*caps, vidtt_limits.current().max_frames])
    if hi < 1:
        raise OptionsError(f"no frames to plan: the video has {video_frames} frames")
    return hi


@dataclass
class _Search:
    """One plan's frame counts lo..hi, measured against its allowance."""

    processor: Any
    formatter: Any
    allowance: Allowance
    lo: int
    hi: int
    fewest: int  # the fewest frames the processor takes

    def cost(self, n: int, at: Size) -> Cost:
        return measure(self.processor, self.formatter, n, *at)

    def fits(self, n: int, at: Size) -> bool:
        return self.allowance.fits(self.cost(n, at))

    def guess(self, at: Size) -> int:
        """The count the allowance fits at `at`, judging by the slope of two counts."""
        one, two = self.cost(self.lo, at), self.cost(self.lo + UNIT, at)
        slope = max((two.total - one.total) / UNIT, 1e-9)
        return self.lo + int((self.allowance.limit / self.allowance.videos - one.total) / slope)

    def most(self, at: Size, upto: int, start: int = 1) -> int | None:
        """The most frames in start..upto that fit at `at`, or None."""
        return largest(lambda n: self.fits(n, at), start, upto, self.guess(at))


def _frame_count(search: _Search, space: Sizes, requested: int | None) -> int:
    """The requested count when it fits at the smallest size, else the most that fit there."""
    floor = space.floor
    if requested is not None:
        _check_requested(search, space, requested)
        return requested
    found = search.most(floor, search.hi, search.lo)
    if found is None:
        raise too_small(
            search.allowance, search.cost(search.lo, floor), search.lo, space.shown(floor)
        )
    return found


def _check_requested(search: _Search, space: Sizes, n: int) -> None:
    """Refuse a requested count that does not fit, naming the most that do."""
    floor, fewest = space.floor, search.fewest
    if search.fits(n, floor):
        return
    best = search.most(floor, min(search.hi, n - 1), fewest) if n > fewest else None
    if best is None:
        raise too_small(search.allowance, search.cost(fewest, floor), fewest, space.shown(floor))
    raise over_budget(search.allowance, n, search.cost(n, floor), best, space.shown(floor))


def _largest_size(search: _Search, space: Sizes, n: int) -> Size:
    """The largest candidate size at which n frames fit (candidates are largest first)."""
    candidates = space.candidates
    if len(candidates) == 1:
        return candidates[0]
    last = len(candidates) - 1

    def predicted(i: int) -> bool:  # n frames fit at size i, judging by 2 frames' count
        pair = search.cost(UNIT, candidates[i])
        visual = math.ceil(pair.visual * n / UNIT)
        return search.allowance.fits(Cost(visual, pair.total - pair.visual + visual, None))

    hint = first(predicted, last, last // 2)
    return candidates[first(lambda i: search.fits(n, candidates[i]), last, hint)]


def _plan_of(
    budget: Budget,
    search: _Search,
    space: Sizes,
    n: int,
    chosen: Size,
    requested: int | None,
    caps: tuple[int | None, int | None],
) -> BudgetPlan:
    """The plan for n frames at `chosen`, with its counts and reason."""
    spent = search.cost(n, chosen)
    more = None
    if requested is None and n < search.hi:  # what one frame more would take
        at = space.floor if space.chosen else chosen
        more = (at, search.cost(n + 1, at))
    why = reason(
        search.allowance,
        n,
        space.shown(chosen),
        spent,
        top=space.top,
        requested=requested is not None,
        capped=n == search.hi,
        caps=caps,
        more=more,
    )
    videos = search.allowance.videos
    visual = spent.visual * videos
    per = visual / (n * videos)
    return BudgetPlan(
        budget=budget,
        limit=search.allowance.limit,
        num_frames=n,
        size=space.shown(chosen),
        visual_tokens=visual,
        video_tokens=spent.total * videos,
        tokens_per_frame=int(per) if per == int(per) else round(per, 2),
        reason=why,
    )
