"""`Pipeline`: messages -> media (sampled, cached) -> formatter -> engine.

pipe = vidtt.Pipeline(model="llava-hf/llava-interleave-qwen-0.5b-hf", backend="auto")
answer = pipe.ask("cats.mp4", "What is the cat doing?")
for piece in pipe.ask(["a.mp4", "b.mp4"], "Same thing in both?", stream=True): ...
answers = pipe.batch([{"videos": ["a.mp4"], "question": "Who?", "num_frames": 16}, ...])
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidtt.budget.schema import BudgetPlan
from vidtt.config import PipelineConfig
from vidtt.engine import generate
from vidtt.engine.core import Engine
from vidtt.engine.processed import name_frames
from vidtt.engine.streaming import AnswerStream
from vidtt.errors import FormatterError, OptionsError, VidttError
from vidtt.interfaces import (
    PromptFormatter,
    Sampler,
    SamplerOptions,
    options_over,
)
from vidtt.media.frame_cache import FrameCache
from vidtt.media.images import load_image
from vidtt.media.sample import media_context, sample_video
from vidtt.pipeline import segments
from vidtt.pipeline.batching import batches
from vidtt.pipeline.gather import Gather
from vidtt.pipeline.messages import (
    check_media_tokens,
    check_text_size,
    frames_used,
    media_digest,
    parse_messages,
    question_message,
)
from vidtt.pipeline.prepared import Prepared
from vidtt.pipeline.request import Request, parse_request
from vidtt.pipeline.resolved import Resolved, segment_options, strategy_of, transcript_cap
from vidtt.pipeline.speech import Heard, Speech, listen, mode_of, trimmed
from vidtt.pipeline.when import asking_when, find_spans
from vidtt.plugins.choose import choose_formatter
from vidtt.plugins.registry import Registry
from vidtt.settings.resolve import Settings, resolve
from vidtt.types import (
    Answer,
    Clip,
    GenerationOptions,
    ImagePart,
    Message,
    TextPart,
    Timings,
    VideoPart,
)
from vidtt.validation import describe


class Pipeline:
    """A model (its `engine`) with the sampler, formatter and options of a config."""

    def __init__(
        self,
        config: Settings | PipelineConfig | dict[str, Any] | str | Path | None = None,
        *,
        engine: Engine | None = None,
        cache: FrameCache | None = None,
        processor: Any = None,
        **fields: Any,
    ) -> None:
        """`config` is resolved once (already-resolved `Settings` are taken as they are);
        `processor`, when the caller loaded it already, is not loaded again."""
        resolved = config if isinstance(config, Settings) else resolve(config, **fields)
        if isinstance(config, Settings) and fields:
            raise OptionsError("pass config fields in the Settings, not beside them")
        resolved.sampler_options()  # bad options fail before the model loads
        self.engine = engine or Engine.load(resolved.config, resolved.registry, processor)
        self.settings = resolved.with_video_processor(
            getattr(self.processor, "video_processor", None)
        )
        self.sampler = self.settings.sampler
        self.sampler_options = self.settings.sampler_options()
        self.cache = cache if cache is not None else FrameCache()
        self.formatter = self._choose_formatter()
        self._speech: Speech | None = None
        self._speech_lock = threading.Lock()
        # answers that threads ask for at once, generated together (segment notes of videos
        # prepared side by side); `answer` looked up on each call, as a test may replace it
        self.gathered = Gather(lambda prepared: self.answer(prepared))
        self.note_store: Any = None  # where segment notes are kept (None: vidtt.media.store)
        self.progress = False  # segments described shown on a terminal (the CLI sets it)

    @property
    def config(self) -> PipelineConfig:
        return self.settings.config

    @property
    def registry(self) -> Registry:
        return self.settings.registry

    @property
    def frames_rule(self) -> str:
        """Which rule chose the frames, in words (the model's, vidtt's default or yours)."""
        return self.settings.rule

    @property
    def model(self) -> Any:
        return self.engine.model

    @property
    def processor(self) -> Any:
        return self.engine.processor

    @property
    def speech(self) -> Speech:
        """The configured transcriber with the pipeline's device and dtype (made on first use:
        a pipeline that never transcribes never reads it)."""
        with self._speech_lock:
            if self._speech is None:
                transcriber = self.registry.transcriber(self.config.transcriber)
                self._speech = Speech(
                    transcriber,
                    self.config.transcriber_options,
                    str(self.engine.model.device),
                    self.engine.dtype,
                )
            return self._speech

    @classmethod
    def from_config(
        cls, config: PipelineConfig | dict[str, Any] | str | Path | None = None, **fields: Any
    ) -> Pipeline:
        """Build from a PipelineConfig, a dict, or a YAML/TOML/JSON file; `fields` (config
        fields) override."""
        return cls(config, **fields)

    def _choose_formatter(self) -> PromptFormatter:
        return choose_formatter(
            self.registry,
            self.config.formatter,
            self.model.config,
            self.processor,
            self.config.model,
        )

    # -- public API -------------------------------------------------------------------------
    def ask(
        self,
        videos: Any,
        question: str,
        *,
        stream: bool = False,
        timestamps: bool = False,
        transcript: bool | str | None = None,
        strategy: str | None = None,
        segment_options: dict[str, Any] | None = None,
        spans: bool = False,
        **generation: Any,
    ) -> Any:
        """Answer `question` about one video or a list of videos. `transcript` (True, "on" or
        "required"; default the config's) puts what is said beside the frames; `strategy`
        "segments" answers a long video from a timeline of segment notes (docs/long.md);
        `spans` finds when: the answer's time spans in `Answer.spans` (docs/when.md)."""
        return self.chat(
            [question_message(videos, question)],
            stream=stream,
            timestamps=timestamps,
            transcript=transcript,
            strategy=strategy,
            segment_options=segment_options,
            spans=spans,
            **generation,
        )

    def chat(
        self,
        messages: list[Message | dict[str, Any]],
        *,
        stream: bool = False,
        timestamps: bool = False,
        transcript: bool | str | None = None,
        strategy: str | None = None,
        segment_options: dict[str, Any] | None = None,
        spans: bool = False,
        **generation: Any,
    ) -> Any:
        """Continue a conversation whose content parts are text, video and image (`spans`:
        find when, as `ask`)."""
        fields = {"strategy": strategy, "segment_options": segment_options, "spans": spans or None}
        request = parse_request(
            {
                "messages": parse_messages(messages),
                "generation": generation,
                "transcript": None if transcript is None else mode_of(transcript),
                **{k: v for k, v in fields.items() if v is not None},
            }
        )
        prepared = self.prepare(request, timestamps=timestamps)
        if stream:
            return self.stream(prepared)
        return self.answer([prepared])[0]

    def batch(
        self,
        requests: list[Request | dict[str, Any]],
        *,
        batch_size: int = 8,
        timestamps: bool = False,
        errors: str = "raise",
        **generation: Any,
    ) -> list[Any]:
        """Answer many requests (`Request`s, or dicts such as `{"videos": [...], "question":
        ...}` or `{"messages": [...]}` with per-request options), generated `batch_size` at a
        time with left padding. With `errors="return"` a request that fails gives its
        VidttError in its place instead of raising."""
        if batch_size < 1:
            raise OptionsError("batch_size must be at least 1")
        if errors not in ("raise", "return"):
            raise OptionsError('errors must be "raise" or "return"')
        results: list[Any] = [None] * len(requests)
        ready: list[tuple[int, Prepared]] = []
        for number, item in enumerate(requests):
            try:
                request = parse_request(item, f"request {number + 1}")
                ready.append((number, self.prepare(request, timestamps, generation)))
            except VidttError as exc:
                if errors == "raise":
                    raise
                results[number] = exc
        for group in batches([p for _, p in ready], batch_size):
            answers = self.answer_each([ready[n][1] for n in group])
            for n, answer in zip(group, answers):
                if isinstance(answer, VidttError) and errors == "raise":
                    raise answer
                results[ready[n][0]] = answer
        return results

    def watch(self, source: str, question: str, **fields: Any) -> Any:
        """Ask `question` about a live source (RTSP, HLS, UDP, a webcam, a growing file) every
        `every` seconds, over the frames of the last `window`: an iterator of `WatchEvent`s.
        `fields` are `WatchOptions` and a request's (sampler, num_frames, max_new_tokens...);
        see docs/live.md. An unreachable source raises its one-line `SourceError` here."""
        from vidtt.pipeline.watch import Watch, open_reader, split_watch_fields

        options, request = split_watch_fields(fields, self.config.watch)
        with media_context(self.config.limits):
            reader = open_reader(source, options)
        try:
            return Watch(self, reader, question, options, **request)
        except BaseException:
            reader.stop()
            raise

    def generation_options(self, overrides: dict[str, Any]) -> GenerationOptions:
        try:
            return GenerationOptions.model_validate(
                {**self.config.generation.model_dump(exclude_unset=True), **overrides}
            )
        except ValidationError as exc:
            raise OptionsError(f"generation options: {describe(exc)}") from None

    # -- steps ------------------------------------------------------------------------------
    def resolve(
        self,
        request: Request | Resolved | dict[str, Any],
        timestamps: bool = False,
        generation: dict[str, Any] | None = None,
    ) -> Resolved:
        """The request resolved against this pipeline's config, once (the rules of
        `vidtt.pipeline.resolved`), with the entry's `timestamps` and `generation` defaults
        under the request's own: what every strategy reads."""
        if isinstance(request, Resolved):
            return request
        request = parse_request(request)
        config = self.config
        strategy = strategy_of(config, request.strategy)
        sampler, sampler_options = self.sampler_for(request)
        options = self.generation_options({**(generation or {}), **request.generation})
        mode = request.transcript or config.transcript
        context = self.engine.context_size()
        cap, rule = transcript_cap(config, request, options, strategy, context)
        # frame times tie what is said to what is shown
        shown = (timestamps or mode != "off") if request.timestamps is None else request.timestamps
        if request.spans:  # the model sees when each frame was taken, and is asked for times
            request, shown = asking_when(request), True
        return Resolved(
            request=request,
            strategy=strategy,
            sampler=sampler,
            sampler_options=sampler_options,
            generation=options,
            transcript=mode,
            transcript_cap=cap,
            transcript_rule=rule,
            max_visual_tokens=request.max_visual_tokens or config.max_visual_tokens,
            fit=request.fit or config.fit,
            timestamps=shown,
            note_timestamps=timestamps,
            segments=segment_options(config, request),
            spans=bool(request.spans),
        )

    def prepare(
        self,
        request: Request | Resolved | dict[str, Any],
        timestamps: bool = False,
        generation: dict[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Prepared:
        """Check a request and sample its media (safe to call from several threads), every
        strategy inside the config's media context (limits, download reuse, frame cache).
        `progress` hears this request's segment notes made, (done, total), under strategy
        segments (see `vidtt.pipeline.segments.prepare`)."""
        resolved = self.resolve(request, timestamps, generation)
        with media_context(self.config.limits):
            if resolved.strategy == "segments":
                prepared = segments.prepare(self, resolved, progress)
            else:
                prepared = self.prepare_direct(resolved)
        prepared.find = resolved if resolved.spans else None
        return prepared

    def prepare_direct(self, resolved: Resolved) -> Prepared:
        """The `direct` strategy: the conversation with its videos sampled (within the
        budget) and their transcripts beside them."""
        conversation = resolved.request.conversation()
        check_text_size(conversation, self.engine.context_size())  # before any tokenizing
        check_media_tokens(conversation, self.processor)
        started = time.perf_counter()
        conversation = self.resolve_media(conversation, videos=False)  # probed, then sampled
        heard = self.hear(resolved, conversation)
        sampler_options, plan = self.plan_frames(resolved, with_transcripts(conversation, heard))
        sampled = self.resolve_media(
            conversation, resolved.sampler, sampler_options, plan, images=False
        )
        attach_transcripts(sampled, heard)
        return Prepared(
            conversation=sampled,
            options=resolved.generation,
            timestamps=resolved.timestamps,
            sampling=time.perf_counter() - started,
        )

    def hear(self, resolved: Resolved, conversation: list[Message]) -> list[Heard]:
        """Each video's transcript over the sampled time range, within the resolved
        transcript-token cap."""
        if resolved.transcript == "off":
            return []
        videos = [p.video for m in conversation for p in m.content if isinstance(p, VideoPart)]
        options = resolved.sampler_options
        span = (options.start, options.end, resolved.transcript == "required")
        if self.formatter.takes_audio(self.processor):  # the model hears the audio itself
            return [listen(v, n, *span) for n, v in enumerate(videos, 1)]
        heard = [self.speech.hear(v, n, *span) for n, v in enumerate(videos, 1)]
        cap = resolved.transcript_cap
        if cap is not None:
            share = max(1, cap // max(1, len(heard)))
            for h in heard:
                if h.transcript is not None:
                    h.transcript = trimmed(
                        h.transcript, share, self.count_tokens, resolved.transcript_rule
                    )
        return heard

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text, as the model's tokenizer counts them."""
        ids = self.processor.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(i) for i in ids]

    def answer(
        self, prepared: list[Prepared], stops: list[threading.Event] | None = None
    ) -> list[Answer]:
        """Format and generate requests together (they must share a `batch_key`). Setting
        `stops[k]` ends request k's answer at its next token."""
        batch = self.encode(prepared)
        batch.stops = stops
        return find_spans(self, prepared, self.engine.generate(batch))

    def answer_each(
        self, prepared: list[Prepared], stops: list[threading.Event] | None = None
    ) -> list[Answer | VidttError]:
        """Like `answer`, but a request that cannot be formatted or generated gets its error
        and the others their answers (grouped by `batch_key` as needed)."""
        found: dict[int, Answer | VidttError] = {}
        for group in batches(prepared, max(1, len(prepared))):
            chosen = [prepared[n] for n in group]
            own = [stops[n] for n in group] if stops is not None else None
            answers: list[Answer | VidttError]
            try:
                answers = [*self.answer(chosen, own)]
            except VidttError as exc:
                if len(chosen) == 1:
                    answers = [exc]
                else:
                    answers = [self._answer_one(chosen, own, k) for k in range(len(chosen))]
            found.update(zip(group, answers))
        return [found[n] for n in range(len(prepared))]

    def _answer_one(
        self, prepared: list[Prepared], stops: list[threading.Event] | None, k: int
    ) -> Answer | VidttError:
        try:
            return self.answer([prepared[k]], stops and [stops[k]])[0]
        except VidttError as exc:
            return exc

    def stream(self, prepared: Prepared) -> AnswerStream:
        """The answer to one prepared request, piece by piece."""
        return self.engine.stream(
            self.encode([prepared]), lambda answers: find_spans(self, [prepared], answers)
        )

    def encode(self, prepared: list[Prepared]) -> generate.Batch:
        """The prompt for prepared requests, on the device and checked against the context."""
        if len({p.batch_key() for p in prepared}) > 1:
            raise OptionsError("requests with different options cannot be generated together")
        started = time.perf_counter()
        conversations = [p.conversation for p in prepared]
        for conversation in conversations:
            check_text_size(conversation, self.engine.context_size())
        shown = prepared[0].timestamps
        try:
            build = self.formatter.build_inputs
            if self.engine.reuses(prepared[0].options):  # one processor output a prompt
                for clip in clips_of(conversations):  # kept processed frames found by digest
                    name_frames(clip.array, clip.digest())
                inputs = [build([c], self.processor, timestamps=shown) for c in conversations]
            else:
                inputs = build(conversations, self.processor, timestamps=shown)
        except VidttError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FormatterError(f"the processor refused the prompt: {first}") from exc
        share = (time.perf_counter() - started) / len(prepared)
        batch = self.engine.prepare(
            inputs,
            prepared[0].options,
            [frames_used(c) for c in conversations],
            [Timings(sampling=p.sampling, preprocessing=share) for p in prepared],
            {"formatter": self.formatter.name},
            [media_digest(c) for c in conversations] if isinstance(inputs, list) else None,
        )
        batch.timelines = [p.segments for p in prepared]
        return batch

    def sampler_for(self, request: Request) -> tuple[Sampler, SamplerOptions]:
        """The request's sampler and options: its own, over the pipeline's for the same
        sampler. Options the pipeline's sampler does not take (say `fps` for `uniform`)
        pick the configured or built-in sampler that takes them all."""
        wanted = request.sampler_options
        if request.sampler is None and not wanted:
            return self.sampler, self.sampler_options
        named = request.sampler
        sampler = self.registry.sampler(named) if named else self.settings.sampler_taking(wanted)
        base = self.settings.sampler_values if sampler.name == self.sampler.name else {}
        return sampler, sampler.options(**options_over(wanted, base))

    def plan_frames(
        self, resolved: Resolved, conversation: list[Message]
    ) -> tuple[SamplerOptions, BudgetPlan | None]:
        """The sampler options within the resolved visual-token budget, and the plan;
        unchanged without a budget."""
        from vidtt.budget.request import budget_of, plan_request

        budget = budget_of(resolved.budget)
        sampler, options = resolved.sampler, resolved.sampler_options
        if budget is None:
            return options, None
        key = sampler.frames_option()
        given = dict(resolved.request.sampler_options)
        if sampler.name == self.config.sampler:
            given = {**self.config.sampler_options, **given}
        return plan_request(
            budget,
            processor=self.processor,
            formatter=self.formatter,
            sampler=sampler,
            options=options,
            conversation=conversation,
            explicit=given.get(key) if key else None,
            context=self.engine.context_size(),
            max_new_tokens=resolved.generation.max_new_tokens,
        )

    def resolve_media(
        self,
        conversation: list[Message],
        sampler: Sampler | None = None,
        options: SamplerOptions | None = None,
        plan: BudgetPlan | None = None,
        videos: bool = True,
        images: bool = True,
    ) -> list[Message]:
        """The conversation with every image loaded and every video sampled into a Clip
        (`images` / `videos` False: those parts are left as they are)."""
        resolved, number = [], 0
        for message in conversation:
            parts: list[Any] = []
            for part in message.content:
                if isinstance(part, VideoPart) and videos:
                    number += 1
                    clip = self.sample(part.video, number, sampler, options, plan)
                    parts.append(VideoPart(video=clip))
                elif isinstance(part, ImagePart) and images:
                    parts.append(ImagePart(image=load_image(part.image)))
                else:
                    parts.append(part)
            resolved.append(Message(role=message.role, content=parts))
        return resolved

    def sample(
        self,
        video: Any,
        number: int = 1,
        sampler: Sampler | None = None,
        options: SamplerOptions | None = None,
        plan: BudgetPlan | None = None,
    ) -> Clip:
        """Sample one video with the configured (or given) sampler; a Clip passes through.
        Each video is decoded once per sampler setting while it stays in the frame cache."""
        sampler = sampler or self.sampler
        options = options or self.sampler_options
        rule = self.frames_rule
        if plan is not None:
            rule = f"the visual-token budget: {plan.reason}"
        elif sampler is not self.sampler or options is not self.sampler_options:
            rule = "the request's sampler settings"
        budget = plan.model_dump() if plan is not None else None
        return sample_video(
            video, sampler, options, rule=rule, number=number, cache=self.cache, budget=budget
        )


def clips_of(conversations: list[list[Message]]) -> list[Clip]:
    """The sampled videos of `conversations`."""
    return [
        p.video
        for c in conversations
        for m in c
        for p in m.content
        if isinstance(p, VideoPart) and isinstance(p.video, Clip)
    ]


def with_transcripts(conversation: list[Message], heard: list[Heard]) -> list[Message]:
    """The conversation with each video's transcript text after it: what the prompt will hold
    (for the visual-token budget to count)."""
    if not heard:
        return conversation
    out, number = [], 0
    for message in conversation:
        parts: list[Any] = []
        for part in message.content:
            parts.append(part)
            if isinstance(part, VideoPart):
                number += 1
                transcript = heard[number - 1].transcript
                if transcript is not None:
                    parts.append(TextPart(text=transcript.prompt(number)))
        out.append(Message(role=message.role, content=parts))
    return out


def attach_transcripts(conversation: list[Message], heard: list[Heard]) -> None:
    """Give each sampled video its transcript (or audio) and any warning about it."""
    clips = [p.video for m in conversation for p in m.content if isinstance(p, VideoPart)]
    for clip, h in zip(clips, heard):
        clip.transcript, clip.audio = h.transcript, h.audio
        if h.warning:
            clip.warnings = [*clip.warnings, h.warning]
