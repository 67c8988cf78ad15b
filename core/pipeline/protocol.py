"""`PipelineLike`: what strategies, the server and the job runners need of a pipeline.

`vidtt.Pipeline` is one; a test double or a wrapper may be another. Modules that take a
pipeline type it with this protocol instead of importing `vidtt.pipeline.core`, so imports
run one way: `pipeline.core` uses the strategies, never the other way round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from vidtt.config import PipelineConfig
    from vidtt.engine.core import Engine
    from vidtt.engine.streaming import AnswerStream
    from vidtt.errors import VidttError
    from vidtt.interfaces import PromptFormatter, Sampler, SamplerOptions
    from vidtt.media.frame_cache import FrameCache
    from vidtt.pipeline.prepared import Prepared
    from vidtt.pipeline.request import Request
    from vidtt.pipeline.resolved import Resolved
    from vidtt.pipeline.speech import Speech
    from vidtt.plugins.registry import Registry
    from vidtt.types import Answer, GenerationOptions


class PipelineLike(Protocol):
    """A model with its config's sampler, formatter and options (see `vidtt.Pipeline`)."""

    engine: Engine
    cache: FrameCache
    formatter: PromptFormatter
    sampler: Sampler  # the config's sampler, used where a request names none
    sampler_options: SamplerOptions  # its options, from the config
    note_store: Any  # where segment notes are kept (None: vidtt's on-disk store)
    progress: bool  # segment notes shown on a terminal

    @property
    def gathered(self) -> Callable[[list[Prepared]], list[Answer]]:
        """Answers asked for by several threads at once, generated together."""
        ...

    @property
    def config(self) -> PipelineConfig: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def frames_rule(self) -> str: ...

    @property
    def model(self) -> Any: ...

    @property
    def processor(self) -> Any: ...

    @property
    def speech(self) -> Speech: ...

    def resolve(
        self,
        request: Request | Resolved | dict[str, Any],
        timestamps: bool = False,
        generation: dict[str, Any] | None = None,
    ) -> Resolved: ...

    def prepare(
        self,
        request: Request | Resolved | dict[str, Any],
        timestamps: bool = False,
        generation: dict[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Prepared: ...

    def sampler_for(self, request: Request) -> tuple[Sampler, SamplerOptions]: ...

    def generation_options(self, overrides: dict[str, Any]) -> GenerationOptions: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def answer(
        self, prepared: list[Prepared], stops: list[threading.Event] | None = None
    ) -> list[Answer]: ...

    def answer_each(
        self, prepared: list[Prepared], stops: list[threading.Event] | None = None
    ) -> list[Answer | VidttError]: ...

    def stream(self, prepared: Prepared) -> AnswerStream: ...
