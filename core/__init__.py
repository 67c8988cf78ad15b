"""vidtt: ask questions about videos with video language models.

`import vidtt` stays light: torch, transformers and av load only when a video is sampled or a
model is loaded.
"""

from __future__ import annotations

from typing import Any

from . import limits, registry
from .config import DEFAULT_MODEL, PipelineConfig, load_config
from .devices import auto_backend, select_backend
from .errors import (
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
from .hookspecs import hookimpl
from .interfaces import Backend, PromptFormatter, Sampler, SamplerOptions
from .types import (
    Answer,
    Clip,
    FramesUsed,
    GenerationOptions,
    ImagePart,
    Message,
    TextPart,
    Timings,
    Usage,
    VideoInfo,
    VideoPart,
    VideoSource,
)
from .version import __version__

_LAZY = {  # loaded on first use: they import nothing heavy, but keep `import vidtt` cheap
    "Pipeline": "pipeline",
    "Engine": "engine",
    "FrameCache": "frame_cache",
    "Request": "request",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'vidtt' has no attribute {name!r}")


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
