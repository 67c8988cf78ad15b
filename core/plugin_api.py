"""The public API for plugin authors: everything a sampler, formatter or backend may import.

The names here are stable: they change only with a deprecation period of one release. The
built-in plugins import nothing else of vidtt (an import-linter contract checks it), so a
third-party plugin can do all they do. See docs/plugins.md.
"""

from __future__ import annotations

from vidtt.engine.generate import visual_token_ids
from vidtt.errors import (
    BackendUnavailableError,
    DecodeError,
    DtypeError,
    FormatterError,
    LimitError,
    OptionsError,
    SourceError,
    VidttError,
)
from vidtt.interfaces import Backend, PromptFormatter, Sampler, SamplerOptions
from vidtt.limits import Limits
from vidtt.limits import current as current_limits
from vidtt.media.fetch import download
from vidtt.plugins.hookspecs import hookimpl
from vidtt.types import (
    Clip,
    ImagePart,
    Message,
    TextPart,
    VideoInfo,
    VideoPart,
    VideoSource,
)

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "Clip",
    "DecodeError",
    "DtypeError",
    "FormatterError",
    "ImagePart",
    "LimitError",
    "Limits",
    "Message",
    "OptionsError",
    "PromptFormatter",
    "Sampler",
    "SamplerOptions",
    "SourceError",
    "TextPart",
    "VideoInfo",
    "VideoPart",
    "VideoSource",
    "VidttError",
    "current_limits",
    "download",
    "hookimpl",
    "visual_token_ids",
]
