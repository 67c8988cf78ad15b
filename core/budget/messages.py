"""The words of a plan: its reason (one sentence) and the errors of a budget too small."""

from __future__ import annotations

from vidtt.budget.allowance import Allowance
from vidtt.budget.counts import Cost
from vidtt.budget.schema import Size
from vidtt.errors import OptionsError


def frames_text(n: int) -> str:
    return "1 frame" if n == 1 else f"{n} frames"


def wh(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def limit_text(allowance: Allowance) -> str:
    parts = []
    if allowance.visual is not None:
        parts.append(f"max_visual_tokens={allowance.visual:,}")
    if allowance.room is not None:
        parts.append(f"{allowance.room:,} tokens left in the context")
    return " and ".join(parts)


def spent_text(allowance: Allowance, cost: Cost) -> str:
    videos = allowance.videos
    if allowance.room is not None and (
        allowance.visual is None or cost.total * videos > allowance.room
    ):
        return f"{cost.total * videos:,} prompt tokens"
    return f"{cost.visual * videos:,} visual tokens"


def too_small(allowance: Allowance, cost: Cost, n: int, at: Size | None) -> OptionsError:
    """The error for a budget that `n` frames (the fewest there may be) do not fit."""
    frames = "one frame" if n == 1 else f"{n} frames"
    where = f" at {wh(at)}" if at else ""
    needs = []
    if allowance.visual is not None and cost.visual * allowance.videos > allowance.visual:
        needs.append(f"max_visual_tokens={cost.visual * allowance.videos:,}")
    if allowance.room is not None and cost.total * allowance.videos > allowance.room:
        short = cost.total * allowance.videos - allowance.room
        needs.append(
            f"{short:,} more tokens of context room (lower max_new_tokens or shorten the prompt)"
        )
    return OptionsError(
        f"the budget ({limit_text(allowance)}) is too small for {frames}{where}, which "
        f"takes {spent_text(allowance, cost)}; the smallest budget that works: "
        f"{' and '.join(needs)}"
    )


def over_budget(
    allowance: Allowance, n: int, cost: Cost, best: int, at: Size | None
) -> OptionsError:
    """The error for a requested frame count over the budget; `best`: the most that fit."""
    where = f" (at {wh(at)})" if at else ""
    return OptionsError(
        f"{n} frames need {spent_text(allowance, cost)}, over the budget "
        f"({limit_text(allowance)}): the most frames that fit is {best}{where}; ask "
        f"for {best} frames or fewer, or raise the budget"
    )


def reason(
    allowance: Allowance,
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
    videos = allowance.videos
    visual = spent.visual * videos
    per = visual / (n * videos)
    per_text = f"{per:,.2f}".rstrip("0").rstrip(".")
    shown = size or spent.seen
    at = f" at {wh(shown)}" if shown else ""
    of = "" if videos == 1 else f" of each of {videos} videos"
    notes = _size_notes(n, size, spent.seen, top)
    count = _count_note(
        allowance, n, size, requested=requested, capped=capped, caps=caps, more=more
    )
    if count is not None:
        notes.append(count)
    return (
        f"{frames_text(n)}{of}{at} use {_used(allowance, spent)} ({per_text} per frame)"
        + "".join(f"; {note}" for note in notes)
    )


def _used(allowance: Allowance, spent: Cost) -> str:
    """What the plan spends, of the limit that binds."""
    videos = allowance.videos
    if allowance.room is not None and (
        allowance.visual is None or allowance.room < allowance.visual
    ):
        return (
            f"{spent.total * videos:,} of the {allowance.room:,} prompt tokens the context leaves"
        )
    return f"{spent.visual * videos:,} of {allowance.limit:,} visual tokens"


def _size_notes(n: int, size: Size | None, seen: Size | None, top: Size) -> list[str]:
    """How the frames' size came about: the processor's resize, the planner's shrinking."""
    notes = []
    if size is not None and seen is not None and seen != size:
        notes.append(f"the processor resizes them to {wh(seen)}")
    if size is not None and size != top:
        notes.append(f"shrunk from {wh(top)} to fit {frames_text(n)}")
    return notes


def _count_note(
    allowance: Allowance,
    n: int,
    size: Size | None,
    *,
    requested: bool,
    capped: bool,
    caps: tuple[int | None, int | None],
    more: tuple[Size, Cost] | None,
) -> str | None:
    """Why not more frames: asked for, capped, or what one more would take."""
    if requested:
        return f"{frames_text(n)} asked for"
    if capped:
        return _cap_note(caps)
    if more is None:
        return None
    where, cost = more
    even = " even" if size is not None and where != size else ""
    at_more = f" at {wh(where)}" if size is not None else ""
    return f"{n + 1} frames would take {spent_text(allowance, cost)}{even}{at_more}"


def _cap_note(caps: tuple[int | None, int | None]) -> str:
    """Which cap holds the frame count: the video's frames, max_frames, or vidtt's limit."""
    max_frames, video_frames = caps
    if video_frames is not None and (max_frames is None or video_frames <= max_frames):
        return "every frame of the video"
    if max_frames is not None:
        return f"the most max_frames={max_frames} allows"
    return "the most vidtt's max_frames limit allows"
