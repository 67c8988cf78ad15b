"""`Pipeline.watch` on real streams on 127.0.0.1: an HLS live playlist over HTTP, MPEG-TS over
UDP, RTSP over TCP and UDP, and a file still being written. Each frame carries its number, so
the tests check what every window held, on which clock, and what happened across a restart."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest
from watching import WATCH, Recorder

from vidtt import limits
from vidtt.testing.streams import GrowingFile, HlsStream, RtspServer, UdpStream

pytestmark = pytest.mark.slow
FPS = 10


@pytest.fixture(autouse=True)
def private_allowed() -> Any:
    with limits.use(limits.make(block_private_addresses=False)):  # the streams are on 127.0.0.1
        yield


@pytest.fixture
def pipe(llava: Any) -> Any:
    return llava  # the session's tiny llava pipeline; watches ask for short answers (WATCH)


def recorded(pipe: Any, watch: Any) -> list[tuple[Any, list[int], float]]:
    return list(Recorder(pipe, watch).events())


def check_windows(events: list[tuple[Any, list[int], float]], stream: Any, window: float) -> None:
    """Each window: frames in order, on the source's clock (frame n at n / fps plus one
    offset per connection), within the window, and recent (live, not from the start)."""
    answers = [(e, n, at) for e, n, at in events if e.kind == "answer"]
    assert answers
    for event, numbers, at in answers:
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        assert event.start <= event.frame_times[0] <= event.frame_times[-1] <= event.end
        assert event.end - event.start <= window + 1e-6
        first_time, first = event.frame_times[0], numbers[0]
        for number, when in zip(numbers, event.frame_times):
            assert when - first_time == pytest.approx((number - first) / stream.fps, abs=0.06)
        sent = stream.sent_times[numbers[-1]]
        assert at - sent < 6.0  # the newest frame seen left the source moments ago
    newest = [n[-1] for _, n, _ in answers]
    assert newest == sorted(newest) and newest[-1] > newest[0]


def test_hls_live_playlist(pipe, tmp_path: Path) -> None:
    with HlsStream(tmp_path / "hls", fps=FPS, segment_seconds=0.5) as stream:
        assert stream.wait_ready(10, segments=2)
        watch = pipe.watch(stream.url, "What?", every=1, window=2, max_events=4, **WATCH)
        events = recorded(pipe, watch)
        assert stream.error is None
    check_windows(events, stream, 2)


def test_mpegts_over_udp(pipe) -> None:
    with UdpStream(fps=FPS) as stream:
        watch = pipe.watch(stream.url, "What?", every=1, window=2, max_events=4, **WATCH)
        events = recorded(pipe, watch)
    check_windows(events, stream, 2)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp(pipe, transport: str) -> None:
    with RtspServer(fps=FPS) as stream:
        assert stream.wait_ready(10)
        watch = pipe.watch(
            stream.url, "What?", every=1, window=2, max_events=3, transport=transport, **WATCH
        )
        events = recorded(pipe, watch)
        assert not watch.reader._thread.is_alive()  # the watch stopped its reader
        deadline = time.monotonic() + 5
        while stream.playing and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stream.playing == 0  # and let go of its connection
    check_windows(events, stream, 2)


def test_ticks_come_every_few_seconds(pipe) -> None:
    with UdpStream(fps=FPS) as stream:
        watch = pipe.watch(stream.url, "What?", every=0.8, window=1, max_events=5, **WATCH)
        events = recorded(pipe, watch)
    times = [at for e, _, at in events if e.kind == "answer"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # one answer a tick, in step: a late tick (two test processes share two cores) is made up
    # by the next, never a tick missed (a gap of two) nor a backlog (answers back to back)
    assert all(0.2 < gap < 1.6 for gap in gaps), gaps
    assert 0.6 < (times[-1] - times[0]) / len(gaps) < 1.0, gaps
    assert all(e.skipped == 0 for e, _, _ in events)


def test_rtsp_restart_is_a_reconnect_not_the_end(pipe) -> None:
    with RtspServer(fps=FPS) as stream:
        assert stream.wait_ready(10)
        watch = pipe.watch(stream.url, "What?", every=0.5, window=1, read_timeout=1, **WATCH)
        recorder = Recorder(pipe, watch)
        events: list[tuple[Any, list[int], float]] = []
        restarted = 0
        for item in recorder.events():
            events.append(item)
            answers = [e for e, _, _ in events if e.kind == "answer"]
            if len(answers) == 2 and not restarted:
                restarted = stream.sent
                stream.stop()
                time.sleep(1.5)  # gone for a while: the reader loses it and retries
                stream.start()
            if restarted and len([n for n in recorder.seen if n[0] > restarted]) >= 2:
                break
    messages = [e.message for e, _, _ in events if e.kind == "source"]
    assert messages[0].startswith("lost: ") and "reconnecting" in messages[0]
    assert any(m.startswith("back after ") for m in messages)
    assert watch.reader.stats.reconnects == 1
    after = [n for e, n, _ in events if e.kind == "answer" and n and n[0] > restarted]
    assert len(after) >= 2  # the same watch goes on with the new frames
    stamps = [e.end for e, _, _ in events if e.kind == "answer"]
    assert stamps == sorted(stamps)  # the stream clock carries on across the reconnect


def test_a_source_gone_for_good_ends_the_watch(pipe) -> None:
    with UdpStream(fps=FPS) as stream:
        watch = pipe.watch(
            stream.url,
            "What?",
            every=0.5,
            read_timeout=0.5,
            open_timeout=0.5,
            reconnect_seconds=2,
            **WATCH,
        )
        events = []
        started = None
        for event in watch:
            events.append(event)
            if event.kind == "answer" and started is None:
                stream.stop()
                started = time.monotonic()
        assert started is not None and time.monotonic() - started < 8
    assert events[-1].kind == "source" and events[-1].message.startswith("ended: gone for")
    assert watch.reader.ended


@pytest.mark.parametrize("container", ["mpegts", "matroska"])
def test_a_file_still_being_written(pipe, tmp_path: Path, container: str) -> None:
    suffix = ".ts" if container == "mpegts" else ".mkv"
    with GrowingFile(tmp_path / f"growing{suffix}", fps=FPS, container=container) as stream:
        assert stream.wait_sent(10)
        watch = pipe.watch(stream.url, "What?", every=1, window=2, reconnect_seconds=1.5, **WATCH)
        recorder, events = Recorder(pipe, watch), []
        for item in recorder.events():  # one iteration: the writer stops after three answers
            events.append(item)
            if len(recorder.seen) == 3 and stream.running:
                stream.stop()
    check_windows(events[:3], stream, 2)
    assert events[-1][0].kind == "source"
    assert "has not grown for 1.5 s" in events[-1][0].message
