"""The OpenAI response bodies `vidtt serve` sends: a chat completion, the chunks of a stream,
and the usage and vidtt details they carry."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from vidtt.types import Answer


def usage_of(answer: Answer) -> dict[str, Any]:
    """OpenAI's usage block, with the prompt tokens the prefix cache gave
    (`prompt_tokens_details.cached_tokens`, as OpenAI and vLLM say it) and vidtt's visual ones."""
    u = answer.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.generated_tokens,
        "total_tokens": u.prompt_tokens + u.generated_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "visual_tokens": u.visual_tokens,
    }


TIME_DECIMALS = 3  # frame times to the millisecond: 11.867, not 11.866666666666667
TIMING_DECIMALS = 6  # the stages' seconds to the microsecond


def details_of(answer: Answer) -> dict[str, Any]:
    """What vidtt adds to a response: the frames each video gave (their times rounded to the
    millisecond), the timings and the batch's peak memory."""
    videos = []
    for used in answer.videos:
        video = used.model_dump()
        video["timestamps"] = [round(t, TIME_DECIMALS) for t in used.timestamps]
        videos.append(video)
    timings = {k: round(v, TIMING_DECIMALS) for k, v in answer.timings.model_dump().items()}
    details: dict[str, Any] = {"videos": videos, "timings": timings, "formatter": answer.formatter}
    if answer.peak_memory is not None:
        details["peak_memory"] = answer.peak_memory
    if answer.spans is not None:  # asked for (spans: true): [] when the answer named no time
        details["spans"] = [span.model_dump() for span in answer.spans]
        details["narrowed"] = [used.model_dump() for used in answer.narrowed]
    if answer.segments is not None:  # strategy segments: the timeline the answer came from
        details["strategy"] = answer.strategy
        details["segments"] = [segment_of(note) for note in answer.segments]
    return details


def segment_of(note: Any) -> dict[str, Any]:
    """A segment note as the response carries it (times to the millisecond)."""
    data: dict[str, Any] = note.model_dump()
    data["start"], data["end"] = round(note.start, TIME_DECIMALS), round(note.end, TIME_DECIMALS)
    data["frames"] = [round(t, TIME_DECIMALS) for t in note.frames]
    return data


def progress_of(done: int, total: int, seconds: float) -> dict[str, Any]:
    """vidtt's details of a progress chunk: the segment notes made so far (stored ones
    included), of how many, and the seconds since the request began."""
    return {"progress": {"stage": "segments", "done": done, "total": total, "seconds": seconds}}


def completion(model: str, answer: Answer) -> dict[str, Any]:
    """A `chat.completion`: the whole answer at once."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": usage_of(answer),
        "system_fingerprint": None,
        "vidtt": details_of(answer),
    }


def delta(change: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """The one choice of a streamed chunk: what the answer gained, and why it ended (if it did)."""
    return {"index": 0, "delta": change, "logprobs": None, "finish_reason": finish}


@dataclass(frozen=True)
class Chunks:
    """The `chat.completion.chunk`s of one stream: each with the stream's id, time and model."""

    ident: str
    created: int
    model: str
    include_usage: bool  # the client asked for usage (stream_options.include_usage)

    @classmethod
    def new(cls, model: str, include_usage: bool) -> Chunks:
        return cls(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model, include_usage)

    def chunk(
        self,
        choices: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        vidtt: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A chunk of `choices`; it has `usage` when given or when the client asked for it (then
        null until the end), and vidtt's details when given."""
        data: dict[str, Any] = {
            "id": self.ident,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if usage is not None or self.include_usage:
            data["usage"] = usage
        if vidtt is not None:
            data["vidtt"] = vidtt
        return data

    def first(self) -> dict[str, Any]:
        return self.chunk([delta({"role": "assistant", "content": ""})])

    def progress(self, done: int, total: int, seconds: float) -> dict[str, Any]:
        """A chunk that says how far the request's preparation is (an empty assistant delta,
        which OpenAI clients take as a chunk with no text)."""
        change = delta({"role": "assistant", "content": ""})
        return self.chunk([change], vidtt=progress_of(done, total, round(seconds, 3)))

    def piece(self, text: str) -> dict[str, Any]:
        return self.chunk([delta({"content": text})])

    def last(self, answer: Answer) -> list[dict[str, Any]]:
        """The chunk that ends the answer (its finish reason, usage and details), then the
        usage-only chunk (no choices) when the client asked for usage."""
        end = delta({}, answer.finish_reason)
        final = [self.chunk([end], usage_of(answer), details_of(answer))]
        if self.include_usage:
            final.append(self.chunk([], usage_of(answer)))
        return final
