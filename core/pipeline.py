"""`Pipeline`: sample videos, format the prompt, generate; one loaded model, reused.

pipe = vidtt.Pipeline(model="llava-hf/llava-interleave-qwen-0.5b-hf", backend="auto")
answer = pipe.ask("cats.mp4", "What is the cat doing?")
for piece in pipe.ask(["a.mp4", "b.mp4"], "Same thing in both?", stream=True): ...
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import generate, limits
from .config import PipelineConfig, load_config
from .devices import select_backend
from .errors import ConfigError, FormatterError, OptionsError, VidttError
from .interfaces import PromptFormatter
from .types import (
    Answer,
    Clip,
    FramesUsed,
    GenerationOptions,
    ImagePart,
    Message,
    TextPart,
    Timings,
    VideoPart,
    VideoSource,
    _looks_like_frames,
)
from .validation import describe


class Pipeline:
    """A loaded model with its processor, sampler, formatter and backend."""

    def __init__(
        self, config: PipelineConfig | dict[str, Any] | str | Path | None = None, **settings: Any
    ) -> None:
        self.config = _merge(config, settings)
        self.registry = self.config.registry()
        self.config.check_names(self.registry)
        self.backend = select_backend(self.config.backend, self.registry)
        self.dtype = self.backend.check_dtype(self.config.dtype)
        self.sampler = self.registry.sampler(self.config.sampler)
        self.sampler_options = self.sampler.options(**self.config.sampler_options)
        from .loading import load

        self.processor, self.model = load(self.config, self.backend, self.dtype)
        self._apply_model_defaults()
        self.formatter = self._choose_formatter()
        self._lock = threading.Lock()

    def _apply_model_defaults(self) -> None:
        """Sample as the model's video processor would when the user set no frame count or
        rate (see `vidtt.model_defaults`); `frames_rule` says which rule chose the frames."""
        from .model_defaults import sampling_defaults

        rule = sampling_defaults(
            getattr(self.processor, "video_processor", None),
            self.sampler.name,
            set(self.sampler.options_model.model_fields),
            self.config.sampler_options,
            sampler_chosen="sampler" in self.config.model_fields_set,
            samplers={e.name for e in self.registry.entries("samplers")},
        )
        if rule.sampler != self.sampler.name:
            self.sampler = self.registry.sampler(rule.sampler)
        if rule.options:
            self.sampler_options = self.sampler.options(
                **{**rule.options, **self.config.sampler_options}
            )
        self.frames_rule = rule.rule

    @classmethod
    def from_config(
        cls, config: PipelineConfig | dict[str, Any] | str | Path | None = None, **settings: Any
    ) -> Pipeline:
        """Build from a PipelineConfig, a dict, or a YAML/TOML/JSON file; `settings` override."""
        return cls(config, **settings)

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
        **generation: Any,
    ) -> Any:
        """Answer `question` about one video or a list of videos."""
        return self.chat(
            [question_message(videos, question)], stream=stream, timestamps=timestamps, **generation
        )

    def chat(
        self,
        messages: list[Message | dict[str, Any]],
        *,
        stream: bool = False,
        timestamps: bool = False,
        **generation: Any,
    ) -> Any:
        """Continue a conversation whose content parts are text, video and image."""
        conversation = parse_messages(messages)
        options = self.generation_options(generation)
        request = self._prepare([conversation], options, timestamps)
        if stream:
            return generate.AnswerStream(
                lambda on: self._run(request, on), self.processor, options.stop
            )
        return self._run(request)[0]

    def batch(
        self,
        requests: list[dict[str, Any]],
        *,
        batch_size: int = 8,
        timestamps: bool = False,
        **generation: Any,
    ) -> list[Answer]:
        """Answer many requests (`{"videos": [...], "question": ...}` or `{"messages": [...]}`),
        generated together `batch_size` at a time with left padding."""
        if batch_size < 1:
            raise OptionsError("batch_size must be at least 1")
        conversations = [request_conversation(r, n) for n, r in enumerate(requests, 1)]
        options = self.generation_options(generation)
        answers: list[Answer] = []
        for start in range(0, len(conversations), batch_size):
            chunk = conversations[start : start + batch_size]
            answers += self._run(self._prepare(chunk, options, timestamps))
        return answers

    def generation_options(self, overrides: dict[str, Any]) -> GenerationOptions:
        try:
            return GenerationOptions.model_validate(
                {**self.config.generation.model_dump(exclude_unset=True), **overrides}
            )
        except ValidationError as exc:
            raise OptionsError(f"generation options: {describe(exc)}") from None

    # -- steps ------------------------------------------------------------------------------
    def _prepare(
        self, conversations: list[list[Message]], options: GenerationOptions, timestamps: bool
    ) -> generate.Request:
        started = time.perf_counter()
        with limits.use(self.config.limits):
            resolved = [self.resolve_media(c) for c in conversations]
        sampled = time.perf_counter()
        inputs = self.formatter.build_inputs(resolved, self.processor, timestamps=timestamps)
        inputs = self._to_device(inputs)
        prepared = time.perf_counter()
        frames = sum(len(f.indices) for c in resolved for f in frames_used(c))
        generate.check_context(self.model, self.processor, inputs, options, frames)
        share = len(conversations)
        timing = Timings(
            sampling=(sampled - started) / share, preprocessing=(prepared - sampled) / share
        )
        return generate.Request(
            inputs=inputs,
            options=options,
            videos=[frames_used(c) for c in resolved],
            timings=[timing] * share,
            meta={
                "model": self.config.model,
                "formatter": self.formatter.name,
                "backend": self.backend.name,
                "device": str(self.model.device),
                "dtype": self.dtype,
            },
        )

    def _to_device(self, inputs: Any) -> Any:
        import torch

        inputs = inputs.to(self.model.device)
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor) and torch.is_floating_point(value):
                inputs[key] = value.to(self.model.dtype)
        return inputs

    def _run(self, request: generate.Request, on_tokens: Any = None) -> list[Answer]:
        with self._lock:  # one generate at a time on one model
            return generate.run(self.model, self.processor, request, on_tokens)

    def resolve_media(self, conversation: list[Message]) -> list[Message]:
        """The conversation with every video sampled into a Clip and every image loaded."""
        resolved, number = [], 0
        for message in conversation:
            parts: list[Any] = []
            for part in message.content:
                if isinstance(part, VideoPart):
                    number += 1
                    parts.append(VideoPart(video=self.sample(part.video, number)))
                elif isinstance(part, ImagePart):
                    parts.append(ImagePart(image=load_image(part.image)))
                else:
                    parts.append(part)
            resolved.append(Message(role=message.role, content=parts))
        return resolved

    def sample(self, video: Any, number: int = 1) -> Clip:
        """Sample one video with the configured sampler (a Clip passes through)."""
        if isinstance(video, Clip):
            return video
        try:
            clip = self.sampler.sample(VideoSource.of(video), self.sampler_options)
            clip.metadata.setdefault("frames_rule", self.frames_rule)
            return clip
        except VidttError as exc:
            label = getattr(video, "label", None) or (
                video if isinstance(video, (str, Path)) else type(video).__name__
            )
            raise type(exc)(f"video {number} ({label}): {exc}") from None


def choose_formatter(
    registry: Any, name: str, model_config: Any, processor: Any, model: str = "the model"
) -> PromptFormatter:
    """The formatter called `name`, or with "auto" the highest-priority one that fits."""
    if name != "auto":
        formatter: PromptFormatter = registry.formatter(name)
        reason = formatter.decline_reason(model_config, processor)
        if reason:
            raise FormatterError(f"formatter {formatter.name!r} cannot serve {model!r}: {reason}")
        return formatter
    tried = []
    for entry in sorted(registry.entries("formatters"), key=lambda e: (-e.obj.priority, e.name)):
        reason = entry.obj.decline_reason(model_config, processor)
        if reason is None:
            return entry.obj  # type: ignore[no-any-return]
        tried.append(f"{entry.name} ({reason})")
    raise FormatterError(
        f"no formatter fits {model!r}; tried: {'; '.join(tried) or 'none installed'}"
    )


def _merge(
    config: PipelineConfig | dict[str, Any] | str | Path | None, settings: dict[str, Any]
) -> PipelineConfig:
    base = load_config(config, check_names=False) if config is not None else PipelineConfig()
    if settings:
        where = base.source.path if base.source is not None else None
        try:
            merged = PipelineConfig.model_validate(
                {**base.model_dump(exclude_unset=True), **settings}
            )
        except ValidationError as exc:
            named = f"{where} with the pipeline settings" if where else "pipeline settings"
            raise ConfigError(f"{named}: {describe(exc)}") from None
        base = merged.set_source(base.source)
    return base


def question_message(videos: Any, question: str) -> Message:
    if not isinstance(question, str) or not question.strip():
        raise OptionsError("the question is empty: ask something about the video")
    many = isinstance(videos, (list, tuple)) and not _looks_like_frames(videos)
    items = list(videos) if many else [videos]
    if not items:
        raise OptionsError("no video given: pass a path, URL, bytes, frames or a list of them")
    return Message(
        role="user", content=[*(VideoPart(video=v) for v in items), TextPart(text=question)]
    )


def parse_messages(messages: list[Message | dict[str, Any]]) -> list[Message]:
    if not messages:
        raise OptionsError("the conversation is empty: pass at least one user message")
    try:
        parsed = [m if isinstance(m, Message) else Message.model_validate(m) for m in messages]
    except ValidationError as exc:
        raise OptionsError(f"bad message: {describe(exc)}") from None
    if not any(isinstance(p, TextPart) and p.text.strip() for m in parsed for p in m.content):
        raise OptionsError("the conversation has no text: ask something about the video")
    return parsed


def request_conversation(request: dict[str, Any], number: int) -> list[Message]:
    if not isinstance(request, dict):
        raise OptionsError(f"request {number} must be an object with videos and question")
    if "messages" in request:
        return parse_messages(request["messages"])
    if "question" not in request:
        raise OptionsError(f"request {number} has no question")
    return [question_message(request.get("videos", request.get("video")), request["question"])]


def frames_used(conversation: list[Message]) -> list[FramesUsed]:
    return [
        FramesUsed(
            source=p.video.source,
            sampler=p.video.sampler,
            indices=list(p.video.indices),
            timestamps=list(p.video.timestamps),
            rule=p.video.metadata.get("frames_rule", "a Clip sampled by the caller"),
        )
        for m in conversation
        for p in m.content
        if isinstance(p, VideoPart)
    ]


def load_image(image: Any) -> Any:
    """A PIL RGB image from a PIL image, an array, a path or an http(s) URL."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, Path)):
        source = VideoSource.of(image)
        try:
            if source.kind == "url":
                from .fetch import download

                with download(source.value) as data:
                    return Image.open(data).convert("RGB")
            return Image.open(source.value).convert("RGB")
        except FileNotFoundError:
            raise OptionsError(f"image not found: {image}") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise OptionsError(f"cannot read image {image}: {exc}") from None
    import numpy as np

    return Image.fromarray(np.asarray(image)).convert("RGB")
