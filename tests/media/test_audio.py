"""The audio reader (`vidtt.media.audio`) on synthetic audio: tone bursts at known times land at
those times on the frames' clock, over every container and codec, rate and layout, range,
window and overlap, stream choice, source kind, and bad input; memory stays bounded."""

from __future__ import annotations

import functools
import io
import itertools
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import vidtt
from vidtt.errors import DecodeError, LimitError, NoAudioError, OptionsError, SourceError
from vidtt.media.audio import (
    SAMPLE_RATE,
    AudioWindow,
    audio_windows,
    probe_audio,
    read_audio,
)
from vidtt.testing import make_audio, make_video

ALIGN = 0.02  # seconds: how close a tone's onset must land to where it was written
TONES = [(1.0, 0.3, 440.0), (2.2, 0.3, 880.0)]


def onsets(window: AudioWindow, threshold: float = 0.05) -> list[float]:
    """The times (on the window's clock) where sound starts after at least 0.1 s of quiet."""
    loud = np.abs(window.samples) > threshold
    times, last = [], -1e9
    for i in np.flatnonzero(loud):
        if i - last > SAMPLE_RATE // 10:
            times.append(window.start + i / SAMPLE_RATE)
        last = i
    return times


def joined(windows: list[AudioWindow]) -> AudioWindow:
    """Windows without overlap, laid end to end (each must follow the one before)."""
    for a, b in itertools.pairwise(windows):
        assert b.start == pytest.approx(a.end, abs=1 / SAMPLE_RATE)
    return AudioWindow(windows[0].start, np.concatenate([w.samples for w in windows]))


def assert_onsets(window: AudioWindow, expected: list[float]) -> None:
    found = onsets(window)
    assert len(found) == len(expected), (found, expected)
    for got, want in zip(found, expected):
        assert got == pytest.approx(want, abs=ALIGN), (found, expected)


def one_line(error: pytest.ExceptionInfo, *words: str) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


# Every codec each container takes (PCM: not in MPEG-TS or WebM; WebM: Opus alone here).
MATRIX = [
    (".mp4", "aac"),
    (".mp4", "libmp3lame"),
    (".mp4", "libopus"),
    (".mp4", "flac"),
    (".mov", "aac"),
    (".mov", "pcm_s16le"),
    (".mov", "libmp3lame"),
    (".mkv", "aac"),
    (".mkv", "libmp3lame"),
    (".mkv", "libopus"),
    (".mkv", "pcm_s16le"),
    (".mkv", "flac"),
    (".webm", "libopus"),
    (".ts", "aac"),
    (".ts", "libmp3lame"),
    (".ts", "libopus"),
]
RATES = {"libopus": 48000, "libmp3lame": 44100}


@pytest.mark.parametrize(("suffix", "codec"), MATRIX, ids=[f"{s[1:]}-{c}" for s, c in MATRIX])
def test_tones_land_at_their_times_in_every_container(tmp_path: Path, suffix, codec) -> None:
    """With a video from 0 s and audio from 0.5 s, both tones land at their times, read at
    once, in windows, and from a start past the first."""
    path = make_audio(
        tmp_path / f"a{suffix}",
        TONES,
        seconds=3.0,
        start=0.5,
        rate=RATES.get(codec, 22050),
        layout="stereo",
        codec=codec,
        video=3.0,
    )
    info = probe_audio(path)
    assert info.streams == 1 and info.channels == 2 and info.start == pytest.approx(0.5, abs=0.06)
    assert_onsets(read_audio(path), [1.0, 2.2])
    assert_onsets(joined(list(audio_windows(path, window=0.7))), [1.0, 2.2])
    assert_onsets(read_audio(path, start=2.0), [2.2])


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("a.m4a", "aac"),
        ("a.mp3", "libmp3lame"),
        ("a.wav", "pcm_s16le"),
        ("a.flac", "flac"),
        ("a.ogg", "libopus"),
    ],
)
def test_audio_only_files(tmp_path: Path, name, codec) -> None:
    """Files with no video (which the samplers refuse) read from the audio's own start."""
    path = make_audio(tmp_path / name, TONES, rate=RATES.get(codec, 44100), codec=codec)
    info = probe_audio(path)
    assert info.start == 0.0
    window = read_audio(path)
    assert window.start == 0.0 and window.duration == pytest.approx(3.0, abs=0.05)
    assert_onsets(window, [1.0, 2.2])
    with pytest.raises(DecodeError, match="no video stream"):
        vidtt.sample(path)


@pytest.mark.parametrize(
    ("name", "rate", "layout", "channel"),
    [
        ("a.wav", 8000, "mono", None),
        ("a.mkv", 96000, "stereo", 1),
        ("a.mp4", 96000, "5.1", 2),  # the centre channel alone: still heard after the downmix
        ("a.mkv", 48000, "5.1", 0),
        ("a.mp4", 8000, "stereo", 0),
        ("a.webm", 16000, "mono", None),  # (libopus's 8 kHz encoding misplaces its own start)
    ],
)
def test_rates_and_layouts(tmp_path: Path, name, rate, layout, channel) -> None:
    codec = {"a.webm": "libopus", "a.mp4": "aac"}.get(name)
    path = make_audio(
        tmp_path / name, TONES, rate=rate, layout=layout, channel=channel, codec=codec
    )
    info = probe_audio(path)
    assert info.channels == {"mono": 1, "stereo": 2, "5.1": 6}[layout]
    assert info.sample_rate == (48000 if codec == "libopus" else rate)  # Opus decodes at 48 kHz
    window = read_audio(path)
    assert window.samples.dtype == np.float32 and window.samples.ndim == 1
    assert np.abs(window.samples).max() <= 1.0
    assert np.abs(window.samples).max() > 0.1  # heard, whichever channel held it
    assert_onsets(window, [1.0, 2.2])


def test_five_one_is_downmixed_not_its_first_channel(tmp_path: Path) -> None:
    for channel in range(6):
        if channel == 3:  # LFE: left out of a downmix, as FFmpeg does
            continue
        path = make_audio(tmp_path / f"c{channel}.mkv", TONES, layout="5.1", channel=channel)
        assert_onsets(read_audio(path), [1.0, 2.2])


def test_start_and_end_cut_exactly(tmp_path: Path) -> None:
    path = make_audio(
        tmp_path / "a.mkv", [(1.0, 0.3, 440.0), (4.0, 0.3, 440.0)], seconds=6.0, video=6.0
    )
    window = read_audio(path, start=0.75, end=4.5)
    assert window.start == 0.75
    assert len(window.samples) == round(3.75 * SAMPLE_RATE)
    assert_onsets(window, [1.0, 4.0])
    windows = list(audio_windows(path, start=3.5, end=5.0, window=1.0))
    assert [w.start for w in windows] == [3.5, 4.5]
    assert windows[-1].end == pytest.approx(5.0)
    assert_onsets(joined(windows), [4.0])


def test_seeking_far_in_lands_right(tmp_path: Path) -> None:
    """A start well past the seek margin: the seek lands before it and the cut is exact."""
    tones = [(t, 0.2, 440.0) for t in (5.0, 20.0, 33.3)]
    for name, codec in (("a.mp4", "aac"), ("a.mkv", "libopus"), ("a.ts", "aac")):
        rate = 48000 if codec == "libopus" else 16000
        path = make_audio(tmp_path / name, tones, seconds=40.0, codec=codec, rate=rate, video=1.0)
        assert_onsets(read_audio(path, start=19.0, end=34.0), [20.0, 33.3])
        assert_onsets(read_audio(path, start=33.0), [33.3])


def test_late_audio_is_placed_where_it_starts(tmp_path: Path) -> None:
    """Audio starting 2 s after the video: windows begin where it starts; `read_audio`
    pads up to its `start` so the audio lines up with frames from there."""
    path = make_audio(tmp_path / "late.mkv", [(2.5, 0.3, 440.0)], seconds=2.0, start=2.0, video=5.0)
    assert probe_audio(path).start == pytest.approx(2.0, abs=0.01)
    windows = list(audio_windows(path, window=1.0))
    assert windows[0].start == pytest.approx(2.0, abs=0.01)
    assert_onsets(joined(windows), [2.5])
    padded = read_audio(path)
    assert padded.start == 0.0 and padded.end == pytest.approx(4.0, abs=0.02)
    assert np.abs(padded.samples[: SAMPLE_RATE * 2 - 200]).max() == 0
    assert_onsets(padded, [2.5])


def test_audio_shorter_than_the_video_just_ends(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "short.mp4", [(0.5, 0.3, 440.0)], seconds=1.5, video=4.0)
    windows = list(audio_windows(path, window=1.0))
    assert windows[-1].end == pytest.approx(1.5, abs=0.05)
    assert read_audio(path, start=0.0, end=4.0).end == pytest.approx(1.5, abs=0.05)
    assert list(audio_windows(path, start=2.0)) == []


def test_windows_share_their_overlap(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "a.mkv", TONES, seconds=3.0)
    windows = list(audio_windows(path, window=1.0, overlap=0.25))
    assert [round(w.start, 6) for w in windows] == [0.0, 0.75, 1.5, 2.25]
    assert [len(w.samples) for w in windows[:-1]] == [SAMPLE_RATE] * 3
    assert windows[-1].end == pytest.approx(3.0, abs=0.01)
    shared = SAMPLE_RATE // 4
    for a, b in itertools.pairwise(windows):
        np.testing.assert_array_equal(a.samples[-shared:], b.samples[:shared])
    for window in windows:  # every window sees the tones inside it at their times
        for at, _, _ in TONES:
            if window.start + 0.05 < at < window.end - 0.05:
                assert any(abs(t - at) < ALIGN for t in onsets(window)), (window.start, at)
    # the window before the end took the audio to its end: no window of overlap alone follows
    exact = list(audio_windows(path, window=1.5, overlap=0.0))
    assert [w.start for w in exact] == [0.0, 1.5]


def test_the_main_stream_is_chosen(tmp_path: Path) -> None:
    """A commentary (even first, 5.1 and default) loses to the main mix; among plain streams
    the default, then the one with more channels."""
    main, other = [(1.5, 0.3, 440.0)], [(0.5, 0.3, 440.0)]
    path = make_audio(
        tmp_path / "comment.mp4",
        streams=[
            {"tones": other, "layout": "5.1", "disposition": "comment"},
            {"tones": main, "layout": "stereo", "language": "fra"},
        ],
        video=3.0,
    )
    info = probe_audio(path)
    assert (info.stream, info.streams, info.language, info.channels) == (2, 2, "fra", 2)
    assert_onsets(read_audio(path), [1.5])
    path = make_audio(
        tmp_path / "channels.mkv",
        streams=[{"tones": other, "layout": "mono"}, {"tones": main, "layout": "5.1"}],
    )
    assert probe_audio(path).channels == 6
    assert_onsets(read_audio(path), [1.5])
    path = make_audio(
        tmp_path / "default.mkv",
        streams=[{"tones": other, "layout": "5.1"}, {"tones": main, "disposition": "default"}],
    )
    assert probe_audio(path).stream == 1
    assert_onsets(read_audio(path), [1.5])


def test_damaged_packets_are_skipped_and_counted(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "bad.mkv", TONES, corrupt=(5, 6, 7), video=3.0)
    window = read_audio(path)
    assert window.skipped == 3
    assert_onsets(window, [1.0, 2.2])  # the audio after them stays aligned
    windows = list(audio_windows(path, window=1.0))
    assert sum(w.skipped for w in windows) == 3
    hopeless = make_audio(tmp_path / "worse.mkv", TONES, corrupt=tuple(range(2, 90)))
    with pytest.raises(DecodeError) as error:
        read_audio(hopeless)
    one_line(error, "worse.mkv", "too damaged")


def test_zero_length_audio_gives_no_windows(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "empty.mkv", seconds=0.0, video=2.0)
    assert probe_audio(path).streams == 1
    assert list(audio_windows(path)) == []
    assert len(read_audio(path).samples) == 0
    # MP4 drops a track with no samples: then there is no audio at all
    with pytest.raises(NoAudioError):
        probe_audio(make_audio(tmp_path / "empty.mp4", seconds=0.0, video=2.0))


def test_no_audio_is_a_clear_error(tmp_path: Path) -> None:
    silent = make_video(tmp_path / "silent.mp4", frames=10)
    for call in (probe_audio, read_audio, lambda s: next(audio_windows(s))):
        with pytest.raises(NoAudioError) as error:
            call(silent)
        one_line(error, "silent.mp4", "no audio stream")
    with pytest.raises(NoAudioError, match="frames"):
        probe_audio(vidtt.VideoSource.from_frames([np.zeros((4, 4, 3), np.uint8)]))
    assert issubclass(NoAudioError, SourceError)


def test_bad_sources_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as error:
        probe_audio(tmp_path / "missing.mkv")
    one_line(error, "missing.mkv")
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00\x01 not audio at all " * 100)
    with pytest.raises(DecodeError) as error:
        read_audio(junk)
    one_line(error, "junk.mp3")
    with pytest.raises(DecodeError):
        probe_audio(b"")


def test_options_are_checked(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "a.wav", seconds=1.0)
    for kwargs in (
        {"window": 0},
        {"window": 1.0, "overlap": 1.0},
        {"overlap": -1},
        {"start": 2.0, "end": 1.0},
        {"start": float("nan")},
    ):
        with pytest.raises(OptionsError):
            audio_windows(path, **kwargs)
    with pytest.raises(OptionsError):
        read_audio(path, max_seconds=0)


def test_read_audio_is_bounded(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "a.flac", seconds=3.0)
    with pytest.raises(LimitError) as error:
        read_audio(path, max_seconds=1.0)
    one_line(error, "a.flac", "audio_windows")
    with pytest.raises(LimitError):
        read_audio(path, start=0.0, end=100.0, max_seconds=10.0)
    assert read_audio(path, end=1.0, max_seconds=1.0).duration == pytest.approx(1.0)
    with vidtt.limits.use(decode_seconds=1e-9), pytest.raises(LimitError) as error:
        read_audio(path)
    one_line(error, "decode_seconds")


class _Pipe(io.RawIOBase):
    """A file object that cannot seek (a pipe)."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        chunk = self.data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_every_source_kind(tmp_path: Path, served: str) -> None:
    path = make_audio(tmp_path / "a.mkv", TONES, seconds=3.0, start=0.5, video=3.0)
    data = path.read_bytes()
    sources = [str(path), path, data, io.BytesIO(data), _Pipe(data)]
    for source in sources:
        assert_onsets(read_audio(source, start=0.8), [1.0, 2.2])
    assert_onsets(read_audio(_Pipe(data), start=1.8), [2.2])  # no seeking: decoded up to it
    with vidtt.limits.use(block_private_addresses=False):
        assert_onsets(read_audio(f"{served}/a.mkv"), [1.0, 2.2])
        assert probe_audio(f"{served}/a.mkv").channels == 1
    with pytest.raises(SourceError):  # private addresses stay refused by default
        probe_audio(f"{served}/a.mkv")


def test_plugin_api_exports_the_reader() -> None:
    from vidtt import plugin_api

    for name in (
        "probe_audio",
        "audio_windows",
        "read_audio",
        "AudioInfo",
        "AudioWindow",
        "SAMPLE_RATE",
        "NoAudioError",
        "Media",
        "FileView",
        "open_media",
    ):
        assert name in plugin_api.__all__ and hasattr(plugin_api, name)
    assert plugin_api.SAMPLE_RATE == 16_000


def test_memory_stays_bounded_on_a_long_track(tmp_path: Path) -> None:
    """25 minutes of audio read in 30 s windows: the peak is a few windows, not the track
    (which would take 96 MB as 16 kHz float32)."""
    minutes = 25
    tones = [(60.0 * m + 10.0, 0.2, 440.0) for m in range(minutes)]
    path = make_audio(tmp_path / "long.mkv", tones, seconds=60.0 * minutes, rate=8000, codec="flac")
    tracemalloc.start()
    try:
        found, count, duration = [], 0, 0.0
        for window in audio_windows(path, window=30.0):
            found += onsets(window)
            count += 1
            duration += window.duration
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == minutes * 2 and duration == pytest.approx(60.0 * minutes, abs=0.1)
    assert found == pytest.approx([t for t, _, _ in tones], abs=ALIGN)
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"
