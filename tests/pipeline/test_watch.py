"""`Pipeline.watch` and `vidtt watch` on files played in real time: ticks, windows, skipping,
filters, stops; the live-source checks; the ring buffer."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from watching import WATCH, Recorder

from vidtt import limits
from vidtt.errors import OptionsError, SourceError
from vidtt.media.live.ring import Frame, Ring
from vidtt.media.live.sources import live_source
from vidtt.pipeline.watch import split_watch_fields
from vidtt.testing.videos import make_video
from vidtt.types.watch import WatchOptions

pytestmark = pytest.mark.slow
FPS = 10


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 s MPEG-TS file: played at its own speed, it stands in for a live source."""
    path = tmp_path_factory.mktemp("live") / "live.ts"
    make_video(path, frames=12 * FPS, fps=FPS, size=(160, 120), codec="libx264", bframes=0)
    return path


@pytest.fixture
def pipe(llava):
    return llava  # the session's tiny llava pipeline; watches ask for short answers (WATCH)


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vidtt-live-reader"]


def test_windows_hold_the_last_seconds_with_their_times(pipe, stream_file: Path) -> None:
    watch = pipe.watch(str(stream_file), "What?", every=1, window=2, max_events=3, **WATCH)
    recorder = Recorder(pipe, watch)
    events = [event for event, _, _ in recorder.events()]
    seen = recorder.seen
    assert [e.kind for e in events] == ["answer"] * 3
    assert [e.number for e in events] == sorted({e.number for e in events})
    offset = events[0].frame_times[0] - seen[0][0] / FPS  # the stream clock: frame n at n / fps
    for event, numbers in zip(events, seen):
        assert event.start <= event.frame_times[0] <= event.frame_times[-1] <= event.end
        assert event.end - event.start <= 2.0 + 1e-6
        assert numbers == sorted(numbers) and len(numbers) == 4
        for number, at in zip(numbers, event.frame_times):  # the frames shown are those timed
            assert at == pytest.approx(number / FPS + offset, abs=0.002)
        assert 0 <= event.latency < 2.0
        assert event.answer
    assert events[-1].end > events[0].end  # the window moved on with the stream
    time.sleep(0.1)
    assert not reader_threads()  # the watch stopped its reader when it ended


def test_a_slow_model_skips_ticks_instead_of_queueing_them(pipe, stream_file: Path) -> None:
    def slow(prepared):
        time.sleep(1.6)
        return pipe.answer([prepared])[0]

    started = time.monotonic()
    watch = pipe.watch(str(stream_file), "What?", every=0.5, window=1, duration=5, **WATCH)
    watch.generate = slow
    events = [e for e in watch if e.kind == "answer"]
    took = time.monotonic() - started
    assert took < 7.5  # no backlog is worked off after the duration
    assert 2 <= len(events) <= 4  # one answer per 1.6 s, not one per 0.5 s tick
    assert all(e.skipped >= 2 for e in events[1:])  # each says what it passed over
    gaps = [b.number - a.number for a, b in itertools.pairwise(events)]
    assert all(gap == e.skipped + 1 for gap, e in zip(gaps, events[1:]))


def test_when_and_yes_no_print_only_matching_answers(pipe, stream_file: Path) -> None:
    replies = iter(["No, nobody.", "Yes, a person.", "no", "YES!", "no"] * 4)
    settings = {"every": 0.3, "max_events": 2, **WATCH}
    watch = pipe.watch(str(stream_file), "Anyone there?", yes_no=True, **settings)
    recorder = Recorder(pipe, watch, lambda: next(replies))
    events = [event for event, _, _ in recorder.events()]
    assert [e.answer for e in events] == ["Yes, a person.", "YES!"]
    assert all(e.matched for e in events)
    assert recorder.asked[0].startswith("Anyone there?") and "yes or no" in recorder.asked[0]

    replies = iter(["a cat", "a red car", "a dog", "the red door"] * 4)
    watch = pipe.watch(str(stream_file), "What?", when=r"\bred\b", **settings)
    recorder = Recorder(pipe, watch, lambda: next(replies))
    assert [e.answer for e, _, _ in recorder.events()] == ["a red car", "the red door"]


def test_a_match_says_where_the_condition_has_held(pipe, stream_file: Path) -> None:
    replies = iter(["no", "yes", "yes", "yes", "no", "yes"] * 3)
    settings = {"every": 0.3, "max_events": 6, **WATCH}
    watch = pipe.watch(str(stream_file), "Anyone?", yes_no=True, every_answer=True, **settings)
    events = [e for e, _, _ in Recorder(pipe, watch, lambda: next(replies)).events()][:6]
    assert [e.matched for e in events] == [False, True, True, True, False, True]
    assert [e.held is None for e in events] == [True, False, False, False, True, False]
    run = events[1:4]  # one run of matches: held from its first window on, to each one's end
    assert all(e.held.start == run[0].start and e.held.end == e.end for e in run)
    assert events[5].held.start == events[5].start  # a new run begins again


def test_breaking_out_stops_the_reader_and_memory_stays_bounded(pipe, stream_file) -> None:
    watch = pipe.watch(str(stream_file), "What?", every=0.5, window=1, buffer_fps=4, **WATCH)
    for event in watch:
        assert len(watch.reader.ring) <= 1 * 4 + 1
        if event.number >= 5:
            break
    watch_reader = watch.reader
    del watch
    deadline = time.monotonic() + 2
    while reader_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watch_reader.stopped
    assert not reader_threads()


def test_a_finished_file_ends_the_watch_with_a_source_event(pipe, tmp_path: Path) -> None:
    short = tmp_path / "short.ts"
    make_video(short, frames=15, fps=FPS, size=(160, 120), codec="libx264", bframes=0)
    events = list(pipe.watch(str(short), "What?", every=0.5, reconnect_seconds=0.5, **WATCH))
    assert events[-1].kind == "source" and "ended" in events[-1].message
    assert any(e.kind == "answer" for e in events)


def test_watch_refuses_request_settings_that_make_no_sense_live(pipe, stream_file) -> None:
    with pytest.raises(OptionsError, match="transcript is not a watch setting"):
        pipe.watch(str(stream_file), "What?", transcript="on")
    with pytest.raises(OptionsError, match="evry"):
        pipe.watch(str(stream_file), "What?", evry=3)
    with pytest.raises(OptionsError, match="every"):
        pipe.watch(str(stream_file), "What?", every=0)
    with pytest.raises(OptionsError, match="question is empty"):
        pipe.watch(str(stream_file), "  ")
    time.sleep(0.1)
    assert not reader_threads()  # a watch refused after its source opened stops it


# -- options, sources, ring ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"every": 0}, "every"),
        ({"window": -1}, "window"),
        ({"buffer_fps": 100}, "buffer_fps"),
        ({"when": "(unclosed"}, "not a regular expression"),
        ({"window": 3600, "buffer_fps": 10}, "over 3600"),
        ({"transport": "sctp"}, "transport"),
        ({"max_events": 0}, "max_events"),
        ({"duration": float("inf")}, "duration"),
    ],
)
def test_watch_options_name_what_is_wrong(values: dict, problem: str) -> None:
    with pytest.raises(OptionsError, match=problem):
        split_watch_fields(values)


def test_matches_yes_no_and_patterns() -> None:
    yes_no = WatchOptions(yes_no=True)
    assert yes_no.matches("Yes.") and yes_no.matches("  yes, there is")
    assert not yes_no.matches("No") and not yes_no.matches("yesterday")
    pattern = WatchOptions(when="fail(ed|ure)")
    assert pattern.matches("The print FAILED") and not pattern.matches("all good")
    both = WatchOptions(yes_no=True, when="door")
    assert both.matches("yes, at the door") and not both.matches("yes, in the garden")


OPEN = limits.make(block_private_addresses=False)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("rtsp://127.0.0.1:8554/live", "rtsp"),
        ("rtsps://127.0.0.1/live", "rtsp"),
        ("http://127.0.0.1:8080/live.m3u8", "http"),
        ("udp://127.0.0.1:5000", "udp"),
        ("udp://0.0.0.0:5000", "udp"),
    ],
)
def test_network_sources_are_recognised(text: str, kind: str) -> None:
    source = live_source(text, OPEN)
    assert source.kind == kind
    assert source.local == (kind == "udp")
    assert "protocol_whitelist" in source.options and "file" not in source.options[
        "protocol_whitelist"
    ].split(",")


def test_rtsp_transport_is_passed_on() -> None:
    assert live_source("rtsp://127.0.0.1/x", OPEN, "udp").options["rtsp_transport"] == "udp"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rtsp://127.0.0.1:8554/live", "private, loopback or link-local"),
        ("http://10.0.0.5/live.m3u8", "private, loopback or link-local"),
        ("ftp://example.com/x", "cannot be watched"),
        ("file:///etc/passwd", "cannot be watched"),
        ("udp://127.0.0.1", "names no port"),
        ("rtsp:///live", "names no host"),
        ("rtsp://host:99999/x", "malformed URL"),
        ("/dev/video97", "no camera at /dev/video97"),
        ("/nonexistent/cam.ts", "video not found"),
        ("", "no live source"),
        ("a\nb.ts", "control characters"),
    ],
)
def test_bad_sources_are_one_line_errors(text: str, problem: str) -> None:
    with pytest.raises(SourceError, match=problem) as caught:
        live_source(text, limits.make())
    assert "\n" not in str(caught.value)


def test_credentials_never_reach_a_message() -> None:
    with pytest.raises(SourceError) as caught:
        live_source("rtsp://admin:hunter2@127.0.0.1:8554/live", limits.make())
    assert "hunter2" not in str(caught.value) and "***@" in str(caught.value)
    source = live_source("rtsp://admin:hunter2@127.0.0.1:8554/live", OPEN)
    assert "hunter2" not in source.label and source.target.count("hunter2") == 1


def test_a_directory_is_not_a_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a directory"):
        live_source(str(tmp_path), OPEN)


def test_an_unreachable_source_fails_within_seconds(pipe) -> None:
    started = time.monotonic()
    with limits.use(OPEN), pytest.raises(SourceError, match="connection refused"):
        pipe.watch("rtsp://127.0.0.1:9/live", "What?", open_timeout=2)
    assert time.monotonic() - started < 5
    with limits.use(OPEN), pytest.raises(SourceError, match="sent nothing within 1 s"):
        pipe.watch("udp://127.0.0.1:9", "What?", open_timeout=1)
    assert time.monotonic() - started < 10


def test_the_ring_keeps_the_last_seconds_within_its_bytes() -> None:
    frame = np.zeros((10, 10, 3), np.uint8)
    ring = Ring(seconds=2.0, max_bytes=frame.nbytes * 100)
    for n in range(100):
        ring.push(Frame(n * 0.1, 0.0, frame, n))
    times = [f.time for f in ring.window()]
    assert times[0] == pytest.approx(9.9 - 2.0) and times[-1] == pytest.approx(9.9)
    assert [f.time for f in ring.window(0.5)] == pytest.approx([9.4, 9.5, 9.6, 9.7, 9.8, 9.9])
    small = Ring(seconds=100.0, max_bytes=frame.nbytes * 5)
    for n in range(50):
        small.push(Frame(float(n), 0.0, frame, n))
    assert len(small) == 5 and small.nbytes == 5 * frame.nbytes
    assert [f.number for f in small.window()] == [45, 46, 47, 48, 49]
    assert Ring(1.0, 1).window() == []


# -- the command --------------------------------------------------------------------------
def vidtt_command() -> list[str]:
    return [str(Path(sys.executable).with_name("vidtt"))]


def test_the_command_prints_json_lines_and_stops(llava_dir: Path, stream_file: Path) -> None:
    import json

    done = subprocess.run(
        [*vidtt_command(), "watch", str(stream_file), "-q", "What?", "--every", "0.5",
         "--window", "1", "--max-events", "2", "--json", "--model", str(llava_dir),
         "--backend", "cpu", "--frames", "2", "--max-new-tokens", "2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["kind"] for e in events] == ["answer", "answer"]
    assert all(len(e["frame_times"]) == 2 for e in events)


def test_the_command_refuses_a_bad_source_before_loading_the_model(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [*vidtt_command(), "watch", "rtsp://127.0.0.1:9/x", "-q", "hi", "--model",
         str(tmp_path / "no-model")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "vidtt: error: refused rtsp://127.0.0.1:9/x: 127.0.0.1 is a private, loopback or "
        "link-local address (127.0.0.1); to allow it pass --allow-private"
    ]
    done = subprocess.run(
        [*vidtt_command(), "watch", "rtsp://127.0.0.1:9/x", "-q", "hi", "--allow-private",
         "--model", str(tmp_path / "no-model")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "connection refused" in done.stderr
    assert time.monotonic() - started < 30


def test_ctrl_c_stops_the_command_at_once_with_130(llava_dir: Path, stream_file: Path) -> None:
    process = subprocess.Popen(
        [*vidtt_command(), "watch", str(stream_file), "-q", "What?", "--every", "0.5",
         "--model", str(llava_dir), "--backend", "cpu", "--frames", "2",
         "--max-new-tokens", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # an answer: the watch runs
        assert first.strip()
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 130
        assert time.monotonic() - sent < 3
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
