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
    NoAudioError,
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
from vidtt.media.audio import (
    SAMPLE_RATE,
    AudioInfo,
    AudioWindow,
    audio_windows,
    probe_audio,
    read_audio,
)
from vidtt.media.containers import NO_NESTED_OPENS, FileView, Media, main_video_stream, open_media
from vidtt.media.fetch import download
from vidtt.plugins.hookspecs import hookimpl
from vidtt.settings.hub import hub_keywords as hub_options
from vidtt.types import (
    Clip,
    ImagePart,
    Message,
    Segment,
    Shot,
    TextPart,
    Transcript,
    VideoInfo,
    VideoPart,
    VideoSource,
)

__all__ = [
    "NO_NESTED_OPENS",
    "SAMPLE_RATE",
    "AudioInfo",
    "AudioWindow",
    "Backend",
    "BackendUnavailableError",
    "Clip",
    "DecodeError",
    "DtypeError",
    "FileView",
    "FormatterError",
    "ImagePart",
    "LimitError",
    "Limits",
    "Media",
    "Message",
    "ModelLoadError",
    "NoAudioError",
    "OptionsError",
    "Progress",
    "PromptFormatter",
    "Sampler",
    "SamplerOptions",
    "Segment",
    "Shot",
    "SourceError",
    "TextPart",
    "Transcriber",
    "TranscriberOptions",
    "Transcript",
    "VideoInfo",
    "VideoPart",
    "VideoSource",
    "VidttError",
    "audio_windows",
    "current_limits",
    "download",
    "hookimpl",
    "hub_options",
    "main_video_stream",
    "open_media",
    "probe_audio",
    "read_audio",
    "visual_token_ids",
]
