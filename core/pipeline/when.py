"""Finding when: a request with `spans` is asked for times, its answer's spans are read
(`vidtt.pipeline.spans`), then each is narrowed by a second look.

The question gets `WHEN` after it and the frames their times, so the model can name times. The
spans read from its answer are clamped to the range the frames were sampled from. Then, coarse
to fine, each of the first `MAX_NARROWED` spans is looked at again: the same question over the
span widened by one frame gap on each side, sampled with the request's own frame count (so
more densely), in one batch for all of them. The spans that second answer names inside its
window replace the first; where it names none, the first stays. On a long video (strategy
segments) the first answer comes from the timeline of segment notes, and the narrowing passes
sample the video itself. Every pass is reported in `Answer.narrowed`, its tokens in `usage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vidtt.errors import VidttError
from vidtt.pipeline.request import Request
from vidtt.types import Answer, Clip, Span, TextPart, VideoPart

if TYPE_CHECKING:
    from vidtt.pipeline.prepared import Prepared

WHEN = "Answer with the time span in seconds, as 'start - end seconds'."
MAX_NARROWED = 3  # spans looked at again, at most
WIDE = 0.8  # a window this share of the sampled range or more is not looked at again


def asking_when(request: Request) -> Request:
    """The request with `WHEN` after its question (the last user text), once."""
    if request.messages is None:
        question = request.question or ""
        return request.model_copy(update={"question": _with_when(question)})
    messages = [m.model_copy(deep=True) for m in request.messages]
    last = next((m for m in reversed(messages) if m.role == "user"), None)
    texts = [p for p in last.content if isinstance(p, TextPart)] if last else []
    if texts:
        texts[-1].text = _with_when(texts[-1].text)
    return request.model_copy(update={"messages": messages})


def _with_when(text: str) -> str:
    return text if text.rstrip().endswith(WHEN) else f"{text.rstrip()}\n{WHEN}"


def first_clip(prepared: Prepared) -> Clip | None:
    """The first video of the prompt, as sampled."""
    for message in prepared.conversation:
        for part in message.content:
            if isinstance(part, VideoPart) and isinstance(part.video, Clip):
                return part.video
    return None


def sampled_range(clip: Clip | None, options: Any) -> tuple[float, float] | None:
    """The seconds the frames were sampled from: the request's start/end within the video."""
    if clip is None or not clip.timestamps:
        return None
    start = float(getattr(options, "start", None) or 0.0)
    duration = clip.info.duration or clip.timestamps[-1] + gap_of(clip.timestamps)
    end = min(float(getattr(options, "end", None) or duration), duration)
    return (start, max(end, start))


def gap_of(times: list[float]) -> float:
    """The mean time between sampled frames (0 for one frame)."""
    return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0


def find_spans(pipeline: Any, prepared: list[Prepared], answers: list[Any]) -> list[Any]:
    """`answers` with the time spans of those whose request asked for them, read and
    narrowed."""
    for request, answer in zip(prepared, answers):
        if request.find is not None and isinstance(answer, Answer):
            _find(pipeline, request, answer)
    return answers


def _family(pipeline: Any) -> str | None:
    config = getattr(getattr(pipeline, "model", None), "config", None)
    return getattr(config, "model_type", None)


def _find(pipeline: Any, prepared: Prepared, answer: Answer) -> None:
    from vidtt.pipeline.spans import read_spans

    clip = first_clip(prepared)
    bounds = sampled_range(clip, prepared.find.sampler_options)
    times = clip.timestamps if clip is not None else []
    gap = gap_of(times)
    if clip is None and prepared.segments:  # answered from the timeline's notes alone
        notes = prepared.segments
        bounds = (notes[0].start, notes[-1].end)
        gap = min(gap_of(n.frames) or n.end - n.start for n in notes)
    family = _family(pipeline)
    answer.spans = read_spans(answer.text, times=times, family=family, bounds=bounds)
    if answer.spans and bounds is not None:
        narrow(pipeline, prepared, answer, bounds, gap)


def _window(span: Span, gap: float, bounds: tuple[float, float]) -> tuple[float, float] | None:
    """The span widened by a frame gap on each side, within bounds; None when that is most
    of the sampled range already (a second look would see the same frames)."""
    start, end = max(bounds[0], span.start - gap), min(bounds[1], span.end + gap)
    if end - start >= WIDE * (bounds[1] - bounds[0]) or end <= start:
        return None
    return (start, end)


def narrow(
    pipeline: Any, prepared: Prepared, answer: Answer, bounds: tuple[float, float], gap: float
) -> None:
    """Look again at each of the first spans (one batch of passes) and keep what they find."""
    from vidtt.pipeline.spans import merge_spans, read_spans

    spans = list(answer.spans or [])
    chosen = [(n, w) for n, s in enumerate(spans[:MAX_NARROWED]) if (w := _window(s, gap, bounds))]
    if not chosen:
        return
    request = prepared.find.request
    passes = []
    for _, (start, end) in chosen:
        options = {**request.sampler_options, "start": start, "end": end}
        fields = {"sampler_options": options, "spans": False, "strategy": "direct"}
        passes.append(pipeline.prepare(request.model_copy(update=fields), timestamps=True))
    family = _family(pipeline)
    for (n, window), looked in zip(chosen, pipeline.answer_each(passes)):
        if isinstance(looked, VidttError):
            continue
        answer.usage = answer.usage + looked.usage
        answer.narrowed.extend(looked.videos[:1])
        times = looked.videos[0].timestamps if looked.videos else []
        found = read_spans(looked.text, times=times, family=family, bounds=window)
        if found:
            spans[n] = found[0]
            spans.extend(found[1:])
    answer.spans = merge_spans(spans)
