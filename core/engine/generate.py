"""Running `model.generate` on prepared inputs: timings, streaming, and the Answers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from vidtt.engine.inputs import generate_inputs
from vidtt.engine.prefix import PrefixCache
from vidtt.engine.reuse import Row, continue_from, keep
from vidtt.errors import ContextOverflowError, GenerationError
from vidtt.types import Answer, FramesUsed, GenerationOptions, SegmentNote, Timings, Usage


@dataclass
class Batch:
    """Prepared inputs of one generation (one row per request) and what the Answers report."""

    inputs: Any
    options: GenerationOptions
    videos: list[list[FramesUsed]]  # per row
    timings: list[Timings]  # per row: sampling and preprocessing filled in
    meta: dict[str, str] = field(default_factory=dict)
    stops: list[threading.Event] | None = None  # per row: once set, that row stops
    timelines: list[list[SegmentNote] | None] | None = None  # per row: strategy segments'
    # per row, when the engine continues prompts from kept prefix states (then `inputs` is
    # laid out by `vidtt.engine.reuse` when generation starts)
    rows: list[Row] | None = None

    @property
    def size(self) -> int:
        """Rows in the batch."""
        return len(self.rows) if self.rows is not None else int(self.inputs["input_ids"].shape[0])


class Clock:
    """A streamer that notes when the first new token arrives (the end of prefill)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.calls = 0

    def put(self, value: Any) -> None:
        if self.calls == 1 and self.first is None:
            self.first = time.perf_counter()
        self.calls += 1

    def end(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()


def context_size(model: Any) -> int | None:
    """The model's context in tokens (None when its config does not say)."""
    return context_of(model.config)


def context_of(model_config: Any) -> int | None:
    """The context in tokens that a model config gives its text model."""
    text = getattr(model_config, "text_config", None) or model_config
    return getattr(text, "max_position_embeddings", None)


def visual_token_ids(processor: Any) -> set[int]:
    """Ids of the tokens that stand for image or video content once the processor expanded
    them (the image/video tokens, and families' patch tokens such as Molmo2's)."""
    tokenizer = processor.tokenizer
    ids: set[int] = set()
    for name in ("image_token", "video_token"):
        found = getattr(processor, f"{name}_id", None)
        token = getattr(processor, name, None)
        if found is None and token:
            found = tokenizer.convert_tokens_to_ids(token)
        unknown = found == tokenizer.unk_token_id and token != tokenizer.unk_token
        if isinstance(found, int) and found >= 0 and not unknown:
            ids.add(found)
    extra = getattr(processor, "image_token_ids", None)
    if isinstance(extra, (list, tuple)):
        ids.update(i for i in extra if isinstance(i, int) and i != tokenizer.unk_token_id)
    return ids


def check_context(
    model: Any, processor: Any, inputs: Any, options: GenerationOptions, frames: int
) -> None:
    """Fail early, with the numbers, when the prompt plus new tokens exceed the context."""
    limit = context_size(model)
    if limit is not None:
        check_prompt_size(processor, inputs, options.max_new_tokens, frames, limit)


def check_prompt_size(processor: Any, inputs: Any, new: int, frames: int, limit: int) -> None:
    """Raise `ContextOverflowError` when the prompt of `inputs` plus `new` tokens is over a
    `limit`-token context (also asked before the model loads, from its config)."""
    prompt = int(inputs["input_ids"].shape[1])
    if prompt + new <= limit:
        return
    visual = int(sum((inputs["input_ids"] == i).sum() for i in visual_token_ids(processor)))
    raise ContextOverflowError(overflow_message(prompt, visual, frames, new, limit))


def overflow_message(prompt: int, visual: int, frames: int, new: int, limit: int) -> str:
    """What a prompt of `prompt` tokens (`visual` of them for `frames` frames) with `new` new
    tokens says when it does not fit a `limit`-token context: the numbers, and the options
    that choose frames that fit (as the command line and as a config or request spell them)."""
    room = limit - new - (prompt - visual)  # visual tokens the rest of the prompt leaves
    said = (
        f"the prompt needs {prompt} tokens ({visual} for images and {frames} video frames) plus "
        f"max_new_tokens={new}, {prompt + new} in all, but the model's context is {limit} tokens"
    )
    if (visual > 0 and room <= 0) or (visual == 0 and frames == 0):
        return f"{said}: the text alone leaves no room; shorten it or lower max_new_tokens"
    budget = f"--max-visual-tokens {room}" if visual > 0 else "--max-visual-tokens N"
    return (
        f"{said}: pass --fit-context (fit: context) to choose the frames that fit, or {budget} "
        "(max_visual_tokens) to cap their tokens at what is left, with no frame count (--frames, "
        "num_frames) so that it chooses; or sample fewer frames or smaller ones, or lower "
        "max_new_tokens"
    )


def generation_kwargs(model: Any, processor: Any, options: GenerationOptions) -> dict[str, Any]:
    """`options` as `model.generate` keywords, with the tokenizer stop strings need."""
    kwargs = options.generate_kwargs()
    if getattr(model.generation_config, "pad_token_id", None) is None:
        kwargs["pad_token_id"] = pad_id(model, processor)
    if "stop_strings" in kwargs:
        kwargs["tokenizer"] = processor.tokenizer
    return kwargs


def cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """`text` up to (not including) the earliest stop string, and whether one was found."""
    found = [i for i in (text.find(s) for s in stop or []) if i >= 0]
    return (text[: min(found)], True) if found else (text, False)


def held_back(text: str, stop: list[str] | None) -> int:
    """How many trailing characters of `text` might be the start of a stop string."""
    longest = 0
    for s in stop or []:
        for size in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:size]):
                longest = size
                break
    return longest


def stop_when(event: threading.Event) -> Any:
    """A transformers `StoppingCriteria` that ends every row at the next token once `event`
    is set."""
    import torch
    from transformers import StoppingCriteria

    class Stopped(StoppingCriteria):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full(
                (input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device
            )

    return Stopped()


def stop_rows(events: list[threading.Event]) -> Any:
    """A transformers `StoppingCriteria` that ends row k at the next token once `events[k]`
    is set (generation ends when every row has)."""
    import torch
    from transformers import StoppingCriteria

    class RowsStopped(StoppingCriteria):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            flags = [event.is_set() for event in events]
            return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)

    return RowsStopped()


def run(
    model: Any,
    processor: Any,
    request: Batch,
    streamer: Any = None,
    cancel: threading.Event | None = None,
    store: PrefixCache | None = None,
) -> list[Answer]:
    """Generate for every row of `request` and build one Answer per row. `streamer` (a Clock
    or TextStreamer) receives the tokens; setting `cancel` stops every row at the next token,
    setting one of `request.stops` its own row. Rows split for reuse (`request.rows`) continue
    from their starts' states in `store`."""
    import torch

    if request.options.seed is not None:
        torch.manual_seed(request.options.seed)
    clock = streamer or Clock()
    kwargs = generation_kwargs(model, processor, request.options)
    if request.options.num_beams == 1:  # generate refuses a streamer with beam search
        kwargs["streamer"] = clock
    criteria = [stop_when(cancel)] if cancel is not None else []
    if request.stops is not None:
        if len(request.stops) != request.size:
            raise ValueError("one stop event per row is needed")
        criteria.append(stop_rows(request.stops))
    if criteria:
        from transformers import StoppingCriteriaList

        kwargs["stopping_criteria"] = StoppingCriteriaList(criteria)
    rows, cache = request.rows if store is not None else None, None
    try:
        with torch.inference_mode():
            if rows is not None and store is not None:
                request.inputs, cache = continue_from(model, store, rows, pad_id(model, processor))
            output = model.generate(**generate_inputs(model, request.inputs), **kwargs)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise GenerationError(f"generation failed: {str(exc).splitlines()[0]}") from exc
    ended = time.perf_counter()
    first = clock.first or ended
    answers = [
        answer_for(model, processor, request, row, output, first - clock.started, ended - first)
        for row in range(output.shape[0])
    ]
    if rows is not None and store is not None:
        with torch.inference_mode():
            keep(store, rows, cache, [answer.token_ids for answer in answers])
    return answers


def eos_ids(model: Any, processor: Any) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = processor.tokenizer.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])


def pad_id(model: Any, processor: Any) -> int | None:
    pad = getattr(model.generation_config, "pad_token_id", None)
    return pad if pad is not None else processor.tokenizer.pad_token_id


def _unpadded(ids: list[int], pad: int | None) -> list[int]:
    """`ids` without the padding a batch adds after a row stopped (by a stop string or its
    stop event) while others went on."""
    end = len(ids)
    while end and ids[end - 1] == pad:
        end -= 1
    return ids[:end]


def answer_for(
    model: Any,
    processor: Any,
    request: Batch,
    row: int,
    output: Any,
    prefill: float,
    decode: float,
) -> Answer:
    inputs = request.inputs
    new = output[row, inputs["input_ids"].shape[1] :].tolist()
    stops = eos_ids(model, processor)
    cut = next((i + 1 for i, token in enumerate(new) if token in stops), None)
    ids = new[:cut] if cut else _unpadded(new, pad_id(model, processor))
    prompt_ids = inputs["input_ids"][row]
    mask = inputs.get("attention_mask")
    visual = visual_token_ids(processor)
    timings = request.timings[row].model_copy(update={"prefill": prefill, "decode": decode})
    text = processor.tokenizer.decode(ids, skip_special_tokens=True)
    text, stopped = cut_at_stop(text, request.options.stop)
    return Answer(
        text=text,
        token_ids=ids,
        finish_reason="stop" if cut or stopped else "length",
        usage=Usage(
            prompt_tokens=int(mask[row].sum()) if mask is not None else len(prompt_ids),
            visual_tokens=int(sum(int((prompt_ids == i).sum()) for i in visual)),
            generated_tokens=len(ids),
            cached_tokens=request.rows[row].reused if request.rows is not None else 0,
        ),
        timings=timings,
        videos=request.videos[row],
        **timeline_of(request, row),
        **request.meta,
    )


def timeline_of(request: Batch, row: int) -> dict[str, Any]:
    """What an Answer made from a timeline of segment notes (strategy segments) reports."""
    notes = request.timelines[row] if request.timelines is not None else None
    return {} if notes is None else {"strategy": "segments", "segments": list(notes)}
