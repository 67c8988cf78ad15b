"""A budget in numbers: the visual tokens, and the prompt tokens, the video(s) may take."""

from __future__ import annotations

from dataclasses import dataclass

from vidtt.budget.counts import Cost
from vidtt.budget.schema import Budget
from vidtt.errors import OptionsError


@dataclass
class Allowance:
    """The budget in numbers: a limit on visual tokens and one on all the video's tokens."""

    visual: int | None  # visual tokens of all the videos, at most (max_visual_tokens)
    room: int | None  # prompt tokens the context leaves the videos (fit="context")
    videos: int

    def fits(self, cost: Cost) -> bool:
        if self.visual is not None and cost.visual * self.videos > self.visual:
            return False
        return self.room is None or cost.total * self.videos <= self.room

    @property
    def limit(self) -> int:
        return min(x for x in (self.visual, self.room) if x is not None)


def allowance_of(
    budget: Budget, context: int | None, text_tokens: int, max_new_tokens: int, videos: int
) -> Allowance:
    """The budget's allowance for `videos` videos in a prompt of `text_tokens` other tokens."""
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
    return Allowance(budget.max_visual_tokens, room, videos)
