"""`Prepared`: a request with its media sampled, ready to be formatted and generated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidtt.types import GenerationOptions, Message, SegmentNote, TextPart, Usage, VideoPart


@dataclass
class Prepared:
    """A request with its media sampled, ready to be formatted and generated."""

    conversation: list[Message]
    options: GenerationOptions
    timestamps: bool
    sampling: float  # seconds spent sampling
    segments: list[SegmentNote] | None = None  # the timeline (strategy segments)
    # tokens generated for it already (the segment notes, a refine pass's first answer)
    spent: Usage = field(default_factory=Usage.zero)
    spent_frames: int = 0  # frames sampled for it that its prompt does not hold (the notes')
    find: Any = None  # the Resolved request when its answer's time spans are to be found

    def batch_key(self) -> str:
        """Requests with equal keys can be generated together."""
        return f"{self.timestamps}|{self.options.model_dump_json()}"

    def frames(self) -> int:
        """The video frames its prompt holds."""
        return sum(
            len(p.video) for m in self.conversation for p in m.content if isinstance(p, VideoPart)
        )

    def media(self) -> str:
        """What its videos show (each one's source and frame indices): requests about the same
        frames share a prompt start, which the prefix cache computes once."""
        return "|".join(
            f"{getattr(p.video, 'source', '')}:{list(getattr(p.video, 'indices', []))}"
            for m in self.conversation
            for p in m.content
            if isinstance(p, VideoPart)
        )

    def size(self) -> int:
        """A rough prompt length, to batch requests of similar length."""
        frames = self.frames()
        text = sum(
            len(p.text) for m in self.conversation for p in m.content if isinstance(p, TextPart)
        )
        return frames * 1000 + text // 4
