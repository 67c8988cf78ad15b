"""What the watch tests share: a recorder of the frames the model saw at each tick."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from vidtt.testing.videos import read_frame_number

WATCH = {"max_new_tokens": 2}  # short answers: the ticks, not the model, are under test


class Recorder:
    """Becomes `watch`'s answer step: keeps the numbers of the frames each tick showed the
    model (`seen`), then answers with `pipe` (its text replaced by `reply()`, if given)."""

    def __init__(self, pipe: Any, watch: Any, reply: Callable[[], str] | None = None) -> None:
        self.pipe, self.watch, self.reply = pipe, watch, reply
        self.seen: list[list[int]] = []
        self.asked: list[str] = []
        watch.generate = self

    def __call__(self, prepared: Any) -> Any:
        clip = prepared.conversation[0].content[0].video
        self.seen.append([read_frame_number(frame) for frame in clip.array])
        self.asked.append(prepared.conversation[0].content[-1].text)
        answer = self.pipe.answer([prepared])[0]
        return answer.model_copy(update={"text": self.reply()}) if self.reply else answer

    def events(self) -> Iterator[tuple[Any, list[int], float]]:
        """The watch's events, each with the frame numbers of its tick (none for source
        events) and when it came (monotonic)."""
        for event in self.watch:
            numbers = self.seen[-1] if event.kind == "answer" else []
            yield event, numbers, time.monotonic()
