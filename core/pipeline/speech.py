"""What is said in a request's videos: the pipeline's transcriber, its cache, and the cap on
transcript tokens.

A video is transcribed once per time range and transcriber setting while it stays cached, so
several questions on one video transcribe it once. A video with no audio is answered from its
frames with a warning, unless the transcript is `required`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from vidtt.errors import NoAudioError, OptionsError, VidttError
from vidtt.interfaces import Progress, Transcriber, TranscriberOptions
from vidtt.media.audio import AudioWindow, read_audio
from vidtt.media.frame_cache import FrameCache, source_key
from vidtt.media.sample import label_of
from vidtt.types import Clip, Transcript, TranscriptMode, VideoSource, transcript_mode

CACHE_BYTES = 64 << 20  # of transcript text
NO_SOURCE = "it has no audio (frames given directly)"
_checks = threading.local()  # this thread's `interruptible` check, if any


class NoAudioWarning(UserWarning):
    """A transcript was asked for, but a video has no audio: it is answered from its frames."""


@dataclass
class Heard:
    """One video's transcript (None: none could be made) or, for a model that hears audio
    itself, its audio; and why there is neither."""

    transcript: Transcript | None
    warning: str | None = None
    audio: AudioWindow | None = None


def mode_of(value: Any, where: str = "transcript") -> TranscriptMode:
    """`off`, `on` or `required` from a bool or those words; an `OptionsError` otherwise."""
    mode = transcript_mode(value)
    if mode not in ("off", "on", "required"):
        raise OptionsError(f"{where} must be true, false, on, off or required, not {value!r}")
    return mode  # type: ignore[no-any-return]


class Speech:
    """A transcriber with the pipeline's options, device and dtype, and a transcript cache."""

    def __init__(
        self, transcriber: Transcriber, values: dict[str, Any], device: str, dtype: str
    ) -> None:
        self.transcriber = transcriber
        where = {k: v for k, v in (("device", device), ("dtype", dtype)) if v}
        self.values = {**where, **values}  # a stub engine (Ray's samplers) has no dtype
        transcriber.options(**self.values)  # bad options fail before any video is read
        self.cache: FrameCache[Transcript] = FrameCache(CACHE_BYTES, size=_text_bytes)

    def options(self, start: float | None, end: float | None) -> TranscriberOptions:
        return self.transcriber.options(**{**self.values, "start": start, "end": end})

    def hear(
        self,
        video: Any,
        number: int,
        start: float | None,
        end: float | None,
        required: bool,
        progress: Progress | None = None,
    ) -> Heard:
        """Video `number`'s transcript within `[start, end)`; a video with no audio gives a
        warning (raised as `NoAudioError` when `required`)."""
        label, source = label_of(video), audio_source(video)
        if source is None:
            return missing(number, label, NO_SOURCE, required)
        options = self.options(start, end)
        key = source_key(source)
        if key is not None:
            key = (*key, self.transcriber.name, options.model_dump_json())
        heard = checked(progress)
        try:
            made = self.cache.get(key, lambda: self.transcriber.transcribe(source, options, heard))
        except NoAudioError as exc:
            return missing(number, label, str(exc), required)
        except VidttError as exc:
            raise type(exc)(f"video {number} ({label}): transcript: {exc}") from None
        return Heard(made)


@contextmanager
def interruptible(check: Callable[[], None] | None) -> Iterator[None]:
    """Within it, in this thread, `check()` runs before each transcription and at each of the
    transcriber's progress reports (every window of audio, for the built-in ones): what it
    raises stops the transcription there. A server bounds a request's transcription by its
    time limit so."""
    before = getattr(_checks, "check", None)
    _checks.check = check
    try:
        yield
    finally:
        _checks.check = before


def checked(progress: Progress | None) -> Progress | None:
    """`progress`, with this thread's `interruptible` check run first (checked once now)."""
    check: Callable[[], None] | None = getattr(_checks, "check", None)
    if check is None:
        return progress
    check()

    def heard(done: float, total: float | None) -> None:
        check()
        if progress is not None:
            progress(done, total)

    return heard


def audio_source(video: Any) -> VideoSource | None:
    """Where a video's audio is read from: its source (a Clip's origin); None for frames."""
    source = video.origin if isinstance(video, Clip) else VideoSource.of(video)
    return None if source is None or source.kind == "frames" else source


def listen(
    video: Any, number: int, start: float | None, end: float | None, required: bool
) -> Heard:
    """Video `number`'s audio within `[start, end)`, for a model that hears it itself."""
    label, source = label_of(video), audio_source(video)
    if source is None:
        return missing(number, label, NO_SOURCE, required)
    try:
        return Heard(None, audio=read_audio(source, start=start, end=end))
    except NoAudioError as exc:
        return missing(number, label, str(exc), required)
    except VidttError as exc:
        raise type(exc)(f"video {number} ({label}): audio: {exc}") from None


def missing(number: int, label: str, why: str, required: bool) -> Heard:
    """No transcript for video `number`: an error when `required`, else a warning."""
    if required:
        raise NoAudioError(
            f"video {number} ({label}): no transcript: {why}; the transcript is required "
            "(transcript: on answers from the frames alone instead)"
        )
    text = f"video {number} ({label}) has no transcript ({why}): answered from its frames"
    warnings.warn(text, NoAudioWarning, stacklevel=4)
    return Heard(None, text)


def _text_bytes(transcript: Transcript) -> int:
    return sum(len(s.text) + 64 for s in transcript.segments) + 256


def trimmed(transcript: Transcript, cap: int, count: Any, rule: str) -> Transcript:
    """`transcript` within `cap` tokens (`count(texts) -> tokens of each`): segments dropped
    evenly over its length, the first and last kept, and the rule that trimmed it recorded."""
    lines = transcript.lines()
    costs = count(lines) if lines else []
    if sum(costs) <= cap:
        return transcript
    total, best = len(lines), list[int]()
    low, high = 0, total
    while low < high:  # the most evenly spread segments that fit
        k = (low + high + 1) // 2
        chosen = spread(total, k)
        if sum(costs[i] for i in chosen) <= cap:
            low, best = k, chosen
        else:
            high = k - 1
    kept = [transcript.segments[i] for i in best]
    note = (
        f"{len(kept)} of {total} segments kept (evenly over the video) to fit {rule} "
        f"({sum(costs)} tokens in all)"
    )
    return transcript.model_copy(update={"segments": kept, "trimmed": note})


def spread(total: int, k: int) -> list[int]:
    """`k` positions of `range(total)` spread evenly, the first and last included."""
    if k <= 0:
        return []
    if k == 1:
        return [0]
    return sorted({round(i * (total - 1) / (k - 1)) for i in range(k)})
