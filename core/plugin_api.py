"""The public API for plugin authors: what a sampler, formatter, backend or transcriber imports.

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
    ModelLoadError,
    OptionsError,
    SourceError,
    VidttError,
)
from vidtt.interfaces import (
    Backend,
    Progress,
    PromptFormatter,
    Sampler,
    SamplerOptions,
    Transcriber,
    TranscriberOptions,
)
from vidtt.limits import Limits
from vidtt.limits import current as current_limits
from vidtt.media.fetch import download
from vidtt.plugins.hookspecs import hookimpl
from vidtt.settings.hub import hub_keywords as hub_options
from vidtt.types import (
    Clip,
    ImagePart,
    Message,
    Segment,
    TextPart,
    Transcript,
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
    "ModelLoadError",
    "Limits",
    "Message",
    "OptionsError",
    "Progress",
    "PromptFormatter",
    "Sampler",
    "SamplerOptions",
    "Segment",
    "SourceError",
    "TextPart",
    "Transcriber",
    "TranscriberOptions",
    "Transcript",
    "VideoInfo",
    "VideoPart",
    "VideoSource",
    "VidttError",
    "current_limits",
    "download",
    "hookimpl",
    "hub_options",
    "visual_token_ids",
]
