"""`Engine`: a loaded model and processor on one device, generating for prepared inputs.

The engine knows nothing of videos: a `Pipeline` samples the media and formats the prompt, and
the engine places the inputs, checks the context, and generates, one batch at a time (calls
from several threads wait their turn). Several pipelines can share one engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from vidtt.config import PipelineConfig
from vidtt.engine import generate
from vidtt.engine.generate import Batch
from vidtt.engine.prefix import MIB, PrefixCache, PrefixStats, default_limit
from vidtt.engine.processed import keep_processed
from vidtt.engine.reuse import blocker, split
from vidtt.engine.streaming import AnswerStream
from vidtt.interfaces import Backend
from vidtt.plugins.choose import select_backend
from vidtt.types import Answer, FramesUsed, GenerationOptions, Timings


class Engine:
    """The model, its processor, and where they run."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        name: str,
        backend: str = "cpu",
        dtype: str = "",
        prefix_cache: PrefixCache | None = None,
        memory: Backend | None = None,
    ) -> None:
        self.model, self.processor = model, processor
        self.memory = memory  # the backend measuring each batch's peak memory (None: none)
        self.name, self.backend, self.dtype = name, backend, dtype
        self._lock = threading.Lock()
        # why prompts are prefilled whole even with a prefix cache (None: they are not)
        self.reuse_blocker = blocker(model) if prefix_cache is not None else None
        self.prefix_cache = prefix_cache if self.reuse_blocker is None else None

    @classmethod
    def load(cls, config: PipelineConfig, registry: Any = None, processor: Any = None) -> Engine:
        """Load `config.model` on the config's backend in its dtype (with `processor`, when
        it was loaded already, instead of loading it again)."""
        from vidtt.engine.loading import load

        registry = registry or config.registry()
        backend = select_backend(config.backend, registry)
        dtype = backend.check_dtype(config.dtype)
        processor, model = load(config, backend, dtype, processor)
        store = None
        if config.prefix_cache:
            mib = config.prefix_cache_mb
            store = PrefixCache(mib * MIB if mib else default_limit(model.device))
            keep_processed(processor, store.limit // 4)  # the frames of prompts kept
        return cls(
            model,
            processor,
            name=config.model,
            backend=backend.name,
            dtype=dtype,
            prefix_cache=store,
            memory=backend,
        )

    @property
    def meta(self) -> dict[str, str]:
        """What each Answer reports about where it was generated."""
        device = str(self.model.device)
        return {"model": self.name, "backend": self.backend, "device": device, "dtype": self.dtype}

    def context_size(self) -> int | None:
        return generate.context_size(self.model)

    def reuses(self, options: GenerationOptions) -> bool:
        """Whether prompts generated with `options` continue from kept prefix states (then
        `prepare` takes one processor output per prompt): a prefix cache is on, the model
        can continue that way, and no beams are searched."""
        return self.prefix_cache is not None and options.num_beams == 1

    def prefix_stats(self) -> PrefixStats | None:
        """What the prefix cache did so far (None when there is none)."""
        return self.prefix_cache.stats() if self.prefix_cache is not None else None

    def prepare(
        self,
        inputs: Any,
        options: GenerationOptions,
        videos: list[list[FramesUsed]],
        timings: list[Timings],
        meta: dict[str, str] | None = None,
        media: list[str] | None = None,
    ) -> Batch:
        """Processor output (or, where `reuses(options)`, a list of one per prompt, with the
        `media` digest of each prompt's frames and images when the caller has it) moved to
        the model's device and dtype, checked against the context."""
        meta = {**self.meta, **(meta or {})}
        if not isinstance(inputs, list):
            inputs = self._placed(inputs)
            frames = sum(len(f.indices) for row in videos for f in row)
            generate.check_context(self.model, self.processor, inputs, options, frames)
            return Batch(inputs=inputs, options=options, videos=videos, timings=timings, meta=meta)
        identity = "|".join([self.name, *self.meta.values(), str(self.model.dtype)])
        visual = generate.visual_token_ids(self.processor)
        rows = [
            split(one, visual, identity, media[n] if media else None)
            for n, one in enumerate(inputs)
        ]
        for row, used in zip(rows, videos):
            row.inputs = self._placed(row.inputs)
            frames = sum(len(f.indices) for f in used)
            generate.check_context(self.model, self.processor, row.inputs, options, frames)
        return Batch(
            inputs=None, options=options, videos=videos, timings=timings, meta=meta, rows=rows
        )

    def _placed(self, inputs: Any) -> Any:
        """`inputs` on the model's device, floating point ones in its dtype."""
        import torch

        inputs = inputs.to(self.model.device)
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor) and torch.is_floating_point(value):
                inputs[key] = value.to(self.model.dtype)
        return inputs

    def generate(
        self, request: Batch, streamer: Any = None, cancel: threading.Event | None = None
    ) -> list[Answer]:
        """One Answer per row of `request`; waits while another generation runs."""
        with self._lock:
            if self.memory is not None:
                self.memory.reset_peak_memory()
            answers = generate.run(
                self.model, self.processor, request, streamer, cancel, self.prefix_cache
            )
            peak = self.memory.peak_memory() if self.memory is not None else None
        for answer in answers:
            answer.peak_memory = peak
        return answers

    def stream(
        self, request: Batch, finish: Callable[[list[Answer]], list[Answer]] | None = None
    ) -> AnswerStream:
        """The answer to a one-row request, piece by piece (see `AnswerStream`); `finish`
        completes the Answer after its last piece (the pipeline reads its time spans)."""
        done = finish or (lambda answers: answers)
        return AnswerStream(
            lambda streamer, cancel: done(self.generate(request, streamer, cancel)),
            self.processor,
            request.options.stop,
        )
