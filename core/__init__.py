"""vidtt: ask questions about videos with video language models.

`import vidtt` stays light: torch, transformers and av load only when a video is sampled or a
model is loaded.
"""

from __future__ import annotations

from typing import Any

from vidtt import limits
from vidtt._lazy import exports
from vidtt.config import DEFAULT_MODEL, PipelineConfig, load_config
from vidtt.errors import (
    BackendUnavailableError,
    ConfigError,
    ContextOverflowError,
    DecodeError,
    DtypeError,
    FormatterError,
    GenerationError,
    LimitError,
    ModelLoadError,
    OptionsError,
    PluginError,
    RegistryError,
    SourceError,
    UnknownNameError,
    VidttError,
)
from vidtt.interfaces import Backend, PromptFormatter, Sampler, SamplerOptions
from vidtt.plugins import registry
from vidtt.plugins.choose import auto_backend, select_backend
from vidtt.plugins.hookspecs import hookimpl
from vidtt.types import (
    Answer,
    Clip,
    FramesUsed,
    GenerationOptions,
    ImagePart,
    Message,
    Span,
    TextPart,
    Timings,
    Usage,
    VideoInfo,
    VideoPart,
    VideoSource,
)
from vidtt.version import __version__

__getattr__ = exports(  # loaded on first use: they import nothing heavy, but keep it cheap
    __name__,
    {
        "Pipeline": "vidtt.pipeline.core",
        "Engine": "vidtt.engine.core",
        "FrameCache": "vidtt.media.frame_cache",
        "Request": "vidtt.pipeline.request",
    },
)


def sample(source: Any, sampler: str = "uniform", **options: Any) -> Clip:
    """Sample frames from one video: `vidtt.sample("cat.mp4", num_frames=8, max_side=384)`."""
    chosen = registry.sampler(sampler)
    return chosen.sample(VideoSource.of(source), chosen.options(**options))


__all__ = [
    "DEFAULT_MODEL",
    "Answer",
    "Backend",
    "BackendUnavailableError",
    "Clip",
    "ConfigError",
    "ContextOverflowError",
    "DecodeError",
    "DtypeError",
    "Engine",
    "FormatterError",
    "FrameCache",
    "FramesUsed",
    "GenerationError",
    "GenerationOptions",
    "ImagePart",
    "LimitError",
    "Message",
    "ModelLoadError",
    "OptionsError",
    "Pipeline",
    "PipelineConfig",
    "PluginError",
    "PromptFormatter",
    "RegistryError",
    "Request",
    "Sampler",
    "SamplerOptions",
    "SourceError",
    "Span",
    "TextPart",
    "Timings",
    "UnknownNameError",
    "Usage",
    "VideoInfo",
    "VideoPart",
    "VideoSource",
    "VidttError",
    "__version__",
    "auto_backend",
    "hookimpl",
    "limits",
    "load_config",
    "registry",
    "sample",
    "select_backend",
]
