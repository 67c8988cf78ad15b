"""`Engine`: a loaded model and processor on one device, generating for prepared inputs.

The engine knows nothing of videos: a `Pipeline` samples the media and formats the prompt, and
the engine places the inputs, checks the context, and generates, one batch at a time (calls
from several threads wait their turn). Several pipelines can share one engine.
"""

from __future__ import annotations

import threading
from typing import Any

from vidtt.config import PipelineConfig
from vidtt.engine import generate
from vidtt.engine.generate import Batch
from vidtt.engine.streaming import AnswerStream
from vidtt.plugins.choose import select_backend
from vidtt.types import Answer, FramesUsed, GenerationOptions, Timings


class Engine:
    """The model, its processor, and where they run."""

    def __init__(
        self, model: Any, processor: Any, *, name: str, backend: str = "cpu", dtype: str = ""
    ) -> None:
        self.model, self.processor = model, processor
        self.name, self.backend, self.dtype = name, backend, dtype
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: PipelineConfig, registry: Any = None, processor: Any = None) -> Engine:
        """Load `config.model` on the config's backend in its dtype (with `processor`, when
        it was loaded already, instead of loading it again)."""
        from vidtt.engine.loading import load

        registry = registry or config.registry()
        backend = select_backend(config.backend, registry)
        dtype = backend.check_dtype(config.dtype)
        processor, model = load(config, backend, dtype, processor)
        return cls(model, processor, name=config.model, backend=backend.name, dtype=dtype)

    @property
    def meta(self) -> dict[str, str]:
        """What each Answer reports about where it was generated."""
        device = str(self.model.device)
        return {"model": self.name, "backend": self.backend, "device": device, "dtype": self.dtype}

    def context_size(self) -> int | None:
        return generate.context_size(self.model)

    def prepare(
        self,
        inputs: Any,
        options: GenerationOptions,
        videos: list[list[FramesUsed]],
        timings: list[Timings],
        meta: dict[str, str] | None = None,
    ) -> Batch:
        """Processor output moved to the model's device and dtype, checked against the context."""
        import torch

        inputs = inputs.to(self.model.device)
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor) and torch.is_floating_point(value):
                inputs[key] = value.to(self.model.dtype)
        frames = sum(len(f.indices) for row in videos for f in row)
        generate.check_context(self.model, self.processor, inputs, options, frames)
        return Batch(
            inputs=inputs,
            options=options,
            videos=videos,
            timings=timings,
            meta={**self.meta, **(meta or {})},
        )

    def generate(
        self, request: Batch, streamer: Any = None, cancel: threading.Event | None = None
    ) -> list[Answer]:
        """One Answer per row of `request`; waits while another generation runs."""
        with self._lock:
            return generate.run(self.model, self.processor, request, streamer, cancel)

    def stream(self, request: Batch) -> AnswerStream:
        """The answer to a one-row request, piece by piece (see `AnswerStream`)."""
        return AnswerStream(
            lambda streamer, cancel: self.generate(request, streamer, cancel),
            self.processor,
            request.options.stop,
        )
