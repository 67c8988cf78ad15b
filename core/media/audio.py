"""Audio from any video source: the main audio stream, decoded with PyAV to 16 kHz mono float32,
streamed in windows on the same clock as the sampled frames.

- The stream: the main one, not simply the first (see `main_audio_stream` for the rule).
- The clock: second 0 is the first frame of the video's main video stream (the time the
  samplers' `Clip.timestamps` count from); in an audio-only file, the audio's own start.
- Streaming: `audio_windows` decodes as it goes and holds one window (plus one decoded frame)
  at a time, so a 3-hour file never sits in memory; `read_audio` reads one range, capped.
- `start`/`end`: a seek lands before `start` (by `SEEK_MARGIN`) and the samples are then cut
  exactly; audio that starts late is placed where it starts (`audio_windows`) or padded with
  silence up to `start` (`read_audio`); audio shorter than the video just ends; gaps in the
  audio's timestamps (dropped packets) are filled with silence so what follows stays aligned.
- Damaged packets are skipped and counted (`AudioWindow.skipped`); a stream too damaged to go
  on (`MAX_BAD_PACKETS` in a row) is a `DecodeError`.
- Every failure is a one-line `VidttError`; decoding is bounded by the `decode_seconds` limit
  (time spent decoding, not time the caller spends on each window).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from vidtt.errors import DecodeError, LimitError, NoAudioError, OptionsError, VidttError
from vidtt.limits import current as current_limits
from vidtt.media.containers import Media, main_video_stream, open_media
from vidtt.types import VideoSource

SAMPLE_RATE = 16_000
SEEK_MARGIN = 1.0  # seconds before `start` a seek aims at: codec pre-roll, inexact seeking
MAX_BAD_PACKETS = 32  # damaged packets in a row after which the audio counts as undecodable
GAP_TOLERANCE = 0.02  # seconds of timestamp jitter not taken for a gap in the audio
MAX_GAP = 600.0  # a larger jump ahead in the audio's timestamps is a discontinuity, not silence
MAX_OVERLAP = 1.0  # a larger step back is a discontinuity, not samples decoded twice
READ_SECONDS = 1800.0  # `read_audio`'s cap when `max_seconds` is not given (115 MB)
FIRST_PACKETS = 64  # video packets read to find the video's first frame time
PAD_CHUNK = SAMPLE_RATE * 10  # silence is produced in pieces of at most this many samples


@dataclass(frozen=True)
class AudioInfo:
    """The chosen audio stream."""

    stream: int  # index of the stream in the container
    codec: str
    sample_rate: int  # the stream's own rate
    channels: int
    layout: str
    duration: float | None  # seconds of audio, from the headers (None when they do not say)
    start: float  # where the audio starts on the video's clock, seconds
    streams: int  # how many audio streams the file has
    language: str | None  # the stream's language tag, if any


@dataclass(frozen=True, eq=False)
class AudioWindow:
    """`samples` (float32 mono in [-1, 1] at `SAMPLE_RATE`), `samples[0]` at `start` seconds on
    the video's clock; `skipped`: damaged packets left out while this window was read."""

    start: float
    samples: Any  # numpy.ndarray
    skipped: int = 0

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def probe_audio(source: Any) -> AudioInfo:
    """The chosen audio stream's info, from the headers (no audio is decoded); `NoAudioError`
    when the source has none."""
    source = VideoSource.of(source)
    with _guarded(source), _opened(source) as opened:
        return opened.info


def audio_windows(
    source: Any,
    *,
    start: float | None = None,
    end: float | None = None,
    window: float = 30.0,
    overlap: float = 0.0,
) -> Iterator[AudioWindow]:
    """The audio from `start` (default: the video's start) to `end` (default: the audio's end)
    in windows of `window` seconds, each sharing `overlap` seconds with the one before; the
    last one is shorter. The first window begins where audio plays at or after `start`. Audio
    of 0 length gives no windows. Errors (`NoAudioError` first) come on the first `next()`."""
    source = VideoSource.of(source)
    _check_range(start, end)
    _check_window(window, overlap)
    return _windows(source, start, end, window, overlap)


def read_audio(
    source: Any,
    *,
    start: float | None = None,
    end: float | None = None,
    max_seconds: float | None = None,
) -> AudioWindow:
    """The audio from `start` (default 0, the video's start) to `end` (default: the audio's
    end) as one window whose `samples[0]` is at `start`: audio that starts later is preceded by
    silence, so it lines up with frames from `start`. More than `max_seconds` (default
    `READ_SECONDS`) is a `LimitError`: pass `end`, or use `audio_windows`."""
    source = VideoSource.of(source)
    _check_range(start, end)
    cap = READ_SECONDS if max_seconds is None else max_seconds
    if not (isinstance(cap, (int, float)) and math.isfinite(cap) and cap > 0):
        raise OptionsError(f"max_seconds must be a positive number of seconds, not {cap!r}")
    begin = 0.0 if start is None else float(start)
    if end is not None and end - begin > cap:
        raise LimitError(
            f"{source.label}: reading {end - begin:g} s of audio at once is over the "
            f"{cap:g} s allowed (max_seconds); read a shorter range or use audio_windows"
        )
    import numpy as np

    limit = round(cap * SAMPLE_RATE)
    pieces: list[Any] = []
    held, skipped = 0, 0
    with _guarded(source), _opened(source) as opened:
        reader = _Reader(opened)
        for at, chunk in reader.samples(begin, end):
            if not held and at > begin:  # late audio: silence up to it
                gap = round((at - begin) * SAMPLE_RATE)
                pieces.append(np.zeros(gap, dtype=np.float32))
                held += gap
            pieces.append(chunk)
            held += len(chunk)
            if held > limit:
                raise LimitError(
                    f"{source.label}: the audio from {begin:g} s is longer than the "
                    f"{cap:g} s allowed at once (max_seconds); pass end, raise max_seconds, "
                    "or use audio_windows"
                )
        skipped = reader.skipped
    samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return AudioWindow(begin, samples, skipped)


def main_audio_stream(container: Any) -> Any:
    """The audio stream to read, or None when none can be decoded. Among the streams with a
    decoder and at least one channel, in this order: not marked as commentary, audio
    description or for hearing- or visually-impaired viewers; marked default; more channels
    (the full mix over a stereo or mono alternative); longer; first in the file."""
    import av

    flags = av.stream.Disposition
    secondary = flags.comment | flags.descriptions | flags.hearing_impaired | flags.visual_impaired
    streams = [s for s in container.streams.audio if _decodable(s)]
    if not streams:
        return None

    def rank(stream: Any) -> tuple[bool, bool, int, float, int]:
        return (
            not stream.disposition & secondary,
            bool(stream.disposition & flags.default),
            stream.codec_context.channels,
            _stream_duration(stream) or 0.0,
            -stream.index,
        )

    return max(streams, key=rank)


def _decodable(stream: Any) -> bool:
    try:
        context = stream.codec_context
        return context is not None and context.codec is not None and context.channels > 0
    except Exception:  # a stream PyAV cannot set up a decoder for
        return False


def _stream_duration(stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")  # Matroska's
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
    return None


def _check_range(start: float | None, end: float | None) -> None:
    for name, value in (("start", start), ("end", end)):
        if value is not None and not (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ):
            raise OptionsError(f"{name} must be a number of seconds, not {value!r}")
    if start is not None and end is not None and end <= start:
        raise OptionsError(f"end ({end} s) must come after start ({start} s)")


def _check_window(window: float, overlap: float) -> None:
    for name, value in (("window", window), ("overlap", overlap)):
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise OptionsError(f"{name} must be a number of seconds, not {value!r}")
    if window * SAMPLE_RATE < 1:
        raise OptionsError(f"window must be a positive number of seconds, not {window!r}")
    if not 0 <= overlap < window:
        raise OptionsError(
            f"overlap must be at least 0 and less than the window ({window:g} s), not {overlap!r}"
        )


@dataclass
class _Opened:
    media: Media
    container: Any
    stream: Any
    origin: float  # the container time (seconds) that is second 0 of the video's clock
    info: AudioInfo


@contextmanager
def _guarded(source: VideoSource) -> Iterator[None]:
    """Untrusted media must not escape as a raw library error."""
    try:
        yield
    except VidttError:
        raise
    except (GeneratorExit, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        raise DecodeError(
            f"the audio of {source.label} could not be decoded: {type(exc).__name__}: {exc}"
        ) from exc


@contextmanager
def _opened(source: VideoSource) -> Iterator[_Opened]:
    if source.kind == "frames":
        raise NoAudioError(f"{source.label} is a list of frames: it has no audio")
    with open_media(source) as media, media.container() as container:
        stream = main_audio_stream(container)
        if stream is None:
            raise NoAudioError(_no_audio(source, container))
        origin = _origin(media, container, stream)
        yield _Opened(media, container, stream, origin, _info(container, stream, origin))


def _no_audio(source: VideoSource, container: Any) -> str:
    if container.streams.audio:
        count = len(container.streams.audio)
        return (
            f"{source.label} has {count} audio stream(s) but none that can be decoded "
            "(an unknown codec, or no channels); convert its audio, e.g. to AAC"
        )
    kinds = sorted({s.type for s in container.streams}) or ["no streams"]
    return f"{source.label} has no audio stream (found: {', '.join(kinds)}); nothing is said in it"


def _seconds(value: int | None, time_base: Any) -> float | None:
    return float(value * time_base) if value is not None and time_base else None


def _origin(media: Media, container: Any, audio: Any) -> float:
    """Second 0 of the video's clock, in container seconds: the first frame of the main video
    stream, as the samplers count it (the earliest time among the first packets from the
    first keyframe on, packets the container discards left out); the audio's own start in
    a file with no video."""
    try:
        video = main_video_stream(container) if container.streams.video else None
    except VidttError:  # only a cover picture: an audio file
        video = None
    if video is None:
        return _seconds(audio.start_time, audio.time_base) or 0.0
    declared = _seconds(video.start_time, video.time_base)
    if media.seekable:
        with media.container() as other:
            first = _first_frame_pts(other, other.streams[video.index])
        if first is not None:
            return float(first * video.time_base)
    return declared or 0.0


def _first_frame_pts(container: Any, stream: Any) -> int | None:
    import av

    times: list[int] = []
    keyframe = None
    seen = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            seen += 1
            if seen > FIRST_PACKETS:
                break
            if keyframe is None:
                if not packet.is_keyframe:
                    continue  # a lead-in the samplers leave out
                keyframe = packet.pts
            if packet.pts is not None and (seen == 1 or keyframe is None or packet.pts >= keyframe):
                times.append(packet.pts)
    except av.error.FFmpegError:
        pass
    return min(times) if times else None


def _info(container: Any, stream: Any, origin: float) -> AudioInfo:
    context = stream.codec_context
    begins = _seconds(stream.start_time, stream.time_base)
    duration = _stream_duration(stream)
    if duration is None and container.duration:
        duration = container.duration / 1_000_000
        absolute = begins or 0.0
        if "matroska" in container.format.name:  # counted from 0, not from the start time
            duration -= max(absolute, 0.0)
        else:
            duration -= max(absolute - (container.start_time or 0) / 1_000_000, 0.0)
        duration = max(duration, 0.0)
    language = stream.metadata.get("language")
    return AudioInfo(
        stream=stream.index,
        codec=context.name,
        sample_rate=context.sample_rate,
        channels=context.channels,
        layout=context.layout.name,
        duration=duration,
        start=(begins if begins is not None else origin) - origin,
        streams=len(container.streams.audio),
        language=language if language and language != "und" else None,
    )


class _Reader:
    """Decodes the chosen stream into 16 kHz mono pieces placed on the video's clock."""

    def __init__(self, opened: _Opened) -> None:
        self.opened = opened
        self.label = opened.media.source.label
        self.skipped = 0
        self.limit = current_limits().decode_seconds
        self.spent = 0.0  # seconds spent decoding before `resumed`
        self.resumed = time.monotonic()

    def pause(self) -> None:
        """The caller holds a window: the time until `resume` is not decoding time."""
        self.spent += time.monotonic() - self.resumed

    def resume(self) -> None:
        self.resumed = time.monotonic()

    def check_time(self) -> None:
        if self.spent + time.monotonic() - self.resumed > self.limit:
            raise LimitError(
                f"{self.label}: decoding its audio took over {self.limit:g} s; read a shorter "
                "range (start, end) or raise vidtt.limits decode_seconds"
            )

    def samples(self, begin: float | None, end: float | None) -> Iterator[tuple[float, Any]]:
        """(time, samples) pieces, in order and without overlap, cut exactly to
        [begin, end); silence fills gaps in the audio's timestamps."""
        for at, chunk in self._placed(begin):
            stop = at + len(chunk) / SAMPLE_RATE
            if begin is not None and stop <= begin:
                continue
            if begin is not None and at < begin:
                cut = round((begin - at) * SAMPLE_RATE)
                chunk, at = chunk[cut:], begin  # exact: the cut is rounded to a sample
            if end is not None and stop > end:
                chunk = chunk[: max(round((end - at) * SAMPLE_RATE), 0)]
            if len(chunk):
                yield at, chunk
            if end is not None and stop >= end:
                return

    def _placed(self, begin: float | None) -> Iterator[tuple[float, Any]]:
        """Every decoded sample, resampled, with its time. The first frame's time places
        them; later frames follow on while their times agree with the samples so far (within
        `GAP_TOLERANCE`). Audio the timestamps put later is preceded by silence; audio they
        put a little earlier (a damaged packet decoded too long) has its overlap left out; a
        jump of more than `MAX_GAP` ahead or `MAX_OVERLAP` back is a discontinuity (joined
        files): the samples follow on."""
        import numpy as np

        position = 0.0  # where the next output sample goes
        expected: float | None = None  # where the next decoded frame should start
        resampler = None
        drop = 0  # output samples still to leave out (an overlap)
        for frame in self._frames(begin):
            self.check_time()
            at = self._time_of(frame, expected)
            pieces: list[Any] = []
            if expected is None:
                position = expected = at
            elif GAP_TOLERANCE < at - expected <= MAX_GAP:  # a gap: what is held, then silence
                pieces = _flush(resampler)
                resampler = None
                held = sum(map(len, pieces)) / SAMPLE_RATE
                silence = round((at - position - held) * SAMPLE_RATE)
                pieces += [np.zeros(size, dtype=np.float32) for size in _pieces(silence)]
                expected = at
            elif GAP_TOLERANCE < expected - at <= MAX_OVERLAP:
                drop += round((expected - at) * SAMPLE_RATE)
                expected = at
            duration = frame.samples / frame.sample_rate if frame.sample_rate else 0.0
            expected += duration
            out = _resample(resampler, frame) if resampler is not None else None
            if out is None:  # the first frame, or the stream's format changed
                pieces += _flush(resampler)
                resampler = _resampler()
                out = _resample(resampler, frame) or []
            pieces += out
            for piece in pieces:
                if drop:
                    cut = min(drop, len(piece))
                    piece, drop = piece[cut:], drop - cut
                if len(piece):
                    yield position, piece
                    position += len(piece) / SAMPLE_RATE
        for piece in _flush(resampler):
            if len(piece):
                yield position, piece
                position += len(piece) / SAMPLE_RATE

    def _time_of(self, frame: Any, expected: float | None) -> float:
        if frame.pts is None or frame.time_base is None:
            return expected if expected is not None else 0.0
        return float(frame.pts * frame.time_base) - self.opened.origin

    def _frames(self, begin: float | None) -> Iterator[Any]:
        """Decoded frames of the stream, from a seek before `begin` when that helps; damaged
        packets skipped and counted."""
        import av

        container, stream = self.opened.container, self.opened.stream
        first_time = self.opened.info.start
        seeking = begin is not None and begin - SEEK_MARGIN > first_time
        if seeking and self.opened.media.seekable:
            assert begin is not None
            target = begin + self.opened.origin - SEEK_MARGIN
            try:
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
            except av.error.FFmpegError:  # cannot seek: decoded from the start
                container.seek(0)
        in_a_row = 0
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError:  # the container is damaged from here on
                self.skipped += 1
                break
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError) as exc:
                self.skipped += 1
                in_a_row += 1
                if in_a_row >= MAX_BAD_PACKETS:
                    raise DecodeError(
                        f"the audio of {self.label} is too damaged to decode ({in_a_row} "
                        f"packets in a row failed: {exc}); repair or re-encode it"
                    ) from None
                continue
            in_a_row = 0
            yield from frames


def _resampler() -> Any:
    import av

    return av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)


def _resample(resampler: Any, frame: Any) -> list[Any] | None:
    """`frame` as pieces of float32 mono; None when it does not match the resampler's setup
    (the stream's rate or layout changed)."""
    try:
        frames = resampler.resample(frame)
    except ValueError:
        return None
    return [_mono(f) for f in frames]


def _flush(resampler: Any) -> list[Any]:
    if resampler is None:
        return []
    try:
        return [_mono(f) for f in resampler.resample(None)]
    except ValueError:
        return []


def _pieces(total: int) -> Iterator[int]:
    """`total` samples in pieces of at most `PAD_CHUNK`."""
    while total > 0:
        yield min(total, PAD_CHUNK)
        total -= PAD_CHUNK


def _mono(frame: Any) -> Any:
    import numpy as np

    samples = frame.to_ndarray().reshape(-1)
    return np.clip(samples, -1.0, 1.0, out=samples).astype(np.float32, copy=False)


def _windows(
    source: VideoSource, start: float | None, end: float | None, window: float, overlap: float
) -> Iterator[AudioWindow]:
    import numpy as np

    size = round(window * SAMPLE_RATE)
    step = size - round(overlap * SAMPLE_RATE)
    begin = 0.0 if start is None else float(start)
    with _guarded(source), _opened(source) as opened:
        reader = _Reader(opened)
        buffer = np.zeros(size, dtype=np.float32)
        filled, first, count, reported = 0, None, 0, 0
        carried = 0  # samples at the buffer's head that the window before held too
        for at, chunk in reader.samples(begin, end):
            if first is None:
                first = at
            while len(chunk):
                take = min(size - filled, len(chunk))
                buffer[filled : filled + take] = chunk[:take]
                filled += take
                chunk = chunk[take:]
                if filled == size:
                    skipped, reported = reader.skipped - reported, reader.skipped
                    reader.pause()
                    yield AudioWindow(first + count * step / SAMPLE_RATE, buffer.copy(), skipped)
                    reader.resume()
                    count += 1
                    carried = size - step
                    buffer[:carried] = buffer[step:]
                    filled = carried
        if first is not None and filled > carried:
            skipped = reader.skipped - reported
            yield AudioWindow(first + count * step / SAMPLE_RATE, buffer[:filled].copy(), skipped)
