"""Data crossing vidtt's boundaries: `media` (sources, clips), `messages` (conversations),
`answers` (generation options, answers), `transcripts` (what is said) and `timeline`
(a long video's segment notes); every name is
importable from `vidtt.types`."""

from vidtt.types.answers import (
    RESERVED_GENERATION,
    Answer,
    FramesUsed,
    GenerationOptions,
    Span,
    Timings,
    Usage,
    check_generation_fields,
    generation_config_fields,
)
from vidtt.types.media import (
    MIN_FRAMES_FPS,
    Clip,
    SourceKind,
    VideoInfo,
    VideoSource,
    _looks_like_frames,
)
from vidtt.types.messages import ContentPart, ImagePart, Message, TextPart, VideoPart
from vidtt.types.shots import Shot
from vidtt.types.timeline import (
    STRATEGIES,
    TIMELINE_FORMATS,
    SegmentNote,
    SegmentOptions,
    Strategy,
    render_timeline,
)
from vidtt.types.transcripts import (
    TRANSCRIPT_FORMATS,
    TRANSCRIPT_MODES,
    Segment,
    Transcript,
    TranscriptMode,
    transcript_mode,
)

__all__ = [
    "MIN_FRAMES_FPS",
    "RESERVED_GENERATION",
    "STRATEGIES",
    "TIMELINE_FORMATS",
    "TRANSCRIPT_FORMATS",
    "TRANSCRIPT_MODES",
    "Answer",
    "Clip",
    "ContentPart",
    "FramesUsed",
    "GenerationOptions",
    "ImagePart",
    "Message",
    "Segment",
    "SegmentNote",
    "SegmentOptions",
    "Shot",
    "SourceKind",
    "Span",
    "Strategy",
    "TextPart",
    "Timings",
    "Transcript",
    "TranscriptMode",
    "Usage",
    "VideoInfo",
    "VideoPart",
    "VideoSource",
    "_looks_like_frames",
    "check_generation_fields",
    "generation_config_fields",
    "render_timeline",
    "transcript_mode",
]
