"""The public API for plugin authors: what a sampler, formatter, backend, transcriber or embedder
imports.

A sampler that decodes with PyAV subclasses `PyAVSampler` and only chooses frame numbers; the
decode layer under it (probe, index, decode, frame features, shot detection) is core's
`vidtt.media.decode`, reached from here. What core asks of a sampler beyond `sample` is declared
here too: `ShotFinder` (shot times, asked of the `scene` sampler) and `Sampler.uses_decode_layer`.

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
    Embedder,
    EmbedderOptions,
    Progress,
    PromptFormatter,
    Sampler,
    SamplerOptions,
    ShotFinder,
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
from vidtt.media.decode.dedupe import gap_fill
from vidtt.media.decode.index import StreamIndex
from vidtt.media.decode.opening import open_media as open_video
from vidtt.media.decode.probe import probe as probe_video
from vidtt.media.decode.sampler import Context as SamplingContext
from vidtt.media.decode.sampler import FrameOptions, PyAVSampler, Selection, evenly
from vidtt.media.decode.shots import Cut, Detection, keyframe_cuts
from vidtt.media.decode.shots import detect as detect_cuts
from vidtt.media.decode.shots import window as transition_window
from vidtt.media.fetch import download
from vidtt.plugins.hookspecs import hookimpl
from vidtt.settings.hub import hub_keywords as hub_options
from vidtt.settings.packages import check_torchvision
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
    "Cut",
    "DecodeError",
    "Detection",
    "DtypeError",
    "Embedder",
    "EmbedderOptions",
    "FileView",
    "FormatterError",
    "FrameOptions",
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
    "PyAVSampler",
    "Sampler",
    "SamplerOptions",
    "SamplingContext",
    "Segment",
    "Selection",
    "Shot",
    "ShotFinder",
    "SourceError",
    "StreamIndex",
    "TextPart",
    "Transcriber",
    "TranscriberOptions",
    "Transcript",
    "VideoInfo",
    "VideoPart",
    "VideoSource",
    "VidttError",
    "audio_windows",
    "check_torchvision",
    "current_limits",
    "detect_cuts",
    "download",
    "evenly",
    "gap_fill",
    "hookimpl",
    "hub_options",
    "keyframe_cuts",
    "main_video_stream",
    "open_media",
    "open_video",
    "probe_audio",
    "probe_video",
    "read_audio",
    "transition_window",
    "visual_token_ids",
]
