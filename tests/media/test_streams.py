"""The live test sources (vidtt.testing.streams): each one plays in PyAV, live, and comes back.

Every read runs in a thread with PyAV's timeouts and a bounded join, so no test can hang.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from vidtt.testing.streams import GrowingFile, HlsStream, RtspServer, UdpStream, free_port
from vidtt.testing.videos import read_frame_number

av = pytest.importorskip("av")

pytestmark = pytest.mark.slow

FAST_OPEN = {"analyzeduration": "500000"}  # FFmpeg probes 5 s of a live stream otherwise
OUR_THREADS = ("HlsStream", "UdpStream", "RtspServer", "GrowingFile", "rtsp-")


class Reader(threading.Thread):
    """Decode `url` in the background; each frame as (its number, source.last_sent, time)."""

    def __init__(
        self,
        url: str,
        source: Any,
        seconds: float | None = None,
        options: dict[str, str] | None = None,
        format: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.source, self.seconds = url, source, seconds
        self.options, self.format, self.timeout = options or {}, format, timeout
        self.frames: list[tuple[int, int, float]] = []
        self.error: BaseException | None = None
        self.ended: float | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            with av.open(
                self.url,
                format=self.format,
                options=self.options,
                timeout=(self.timeout, self.timeout),
            ) as container:
                deadline = time.monotonic() + self.seconds if self.seconds else None
                for frame in container.decode(video=0):
                    number = read_frame_number(frame.to_ndarray(format="rgb24"))
                    now = time.monotonic()
                    self.frames.append((number, self.source.last_sent, now))
                    if self.halt.is_set() or (deadline is not None and now > deadline):
                        break
        except Exception as error:
            self.error = error
        finally:
            self.ended = time.monotonic()

    @property
    def numbers(self) -> list[int]:
        return [number for number, _, _ in self.frames]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.frames) >= count

    def finish(self, timeout: float = 15.0) -> Reader:
        self.join(timeout)
        assert not self.is_alive(), f"reader of {self.url} still running after {timeout} s"
        return self


def read(url: str, source: Any, seconds: float, **kwargs: Any) -> Reader:
    reader = Reader(url, source, seconds, **kwargs)
    reader.start()
    return reader.finish(seconds + 15)


def check_live(reader: Reader, source: Any, lag: float, after: int = -1) -> None:
    """Frames came in order, were all sent, and the last one was at most `lag` seconds old."""
    numbers = reader.numbers
    assert len(numbers) >= 5, (reader.error, numbers)
    assert all(b > a for a, b in itertools.pairwise(numbers)), numbers
    assert all(n in source.sent_times for n in numbers), numbers
    assert numbers[0] > after, (after, numbers)
    number, last_sent, _ = reader.frames[-1]
    assert last_sent - number <= lag * source.fps, reader.frames[-5:]


def wait_ended(reader: Reader, since: float, within: float) -> None:
    reader.finish(within + 10)
    assert reader.ended is not None
    assert reader.ended - since <= within, (reader.ended - since, reader.error)


def refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            return True
    return False


def no_threads_left() -> bool:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith(OUR_THREADS)]:
            return True
        time.sleep(0.05)
    return False


def test_free_port() -> None:
    for kind, family in (("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)):
        port = free_port(kind)
        with socket.socket(socket.AF_INET, family) as sock:
            sock.bind(("127.0.0.1", port))
    with pytest.raises(ValueError):
        free_port("sctp")


def test_sources_check_their_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        UdpStream(size=(321, 240))
    with pytest.raises(ValueError):
        RtspServer(fps=0)
    with pytest.raises(ValueError):
        GrowingFile(tmp_path / "x.avi", container="avi")


def test_hls_plays_live_restarts_and_stops(tmp_path: Path) -> None:
    with HlsStream(tmp_path / "hls", segment_seconds=0.5, list_size=4) as hls:
        assert hls.url.startswith("http://127.0.0.1:") and hls.url.endswith("/live.m3u8")
        assert hls.wait_ready(10)
        assert "#EXT-X-ENDLIST" not in hls.playlist.read_text()
        reader = read(hls.url, hls, 2.5)
        check_live(reader, hls, lag=3 * 0.5 + 1.5)

        url, before = hls.url, hls.last_sent
        hls.restart()
        assert hls.url == url
        assert hls.wait_ready(10)
        reader = Reader(hls.url, hls)
        reader.start()
        assert reader.wait_for(8), (reader.error, reader.frames)
        check_live(reader, hls, lag=3 * 0.5 + 1.5, after=before)
        assert int(hls.playlist.read_text().split("MEDIA-SEQUENCE:")[1].split()[0]) > 0

        stopped = time.monotonic()
        hls.stop()
        hls.stop()  # idempotent
        wait_ended(reader, stopped, within=6)
        assert refused(hls.port)
        assert "#EXT-X-ENDLIST" in hls.playlist.read_text()
        assert hls.error is None
    assert no_threads_left()


def test_udp_plays_live_across_a_restart_and_stops() -> None:
    with UdpStream() as udp:
        assert udp.url == f"udp://127.0.0.1:{udp.port}"
        time.sleep(0.3)  # the sender runs before anyone listens
        reader = Reader(f"{udp.url}?timeout=2000000", udp, options=FAST_OPEN)
        reader.start()
        assert reader.wait_for(15), (reader.error, reader.frames)
        check_live(reader, udp, lag=1.0)

        before = udp.last_sent
        udp.restart()  # the same port: the reader, still listening, goes on
        assert udp.wait_sent(before + 10)
        assert reader.wait_for(len(reader.frames) + 8), (reader.error, reader.frames)
        assert reader.numbers[-1] > before
        check_live(reader, udp, lag=1.0)

        stopped = time.monotonic()
        udp.stop()
        wait_ended(reader, stopped, within=2 + 3)  # the reader's own UDP timeout: 2 s
        assert not udp.running and udp.error is None
    assert no_threads_left()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_plays_live_restarts_and_stops(transport: str) -> None:
    options = {"rtsp_transport": transport, **FAST_OPEN}
    with RtspServer() as rtsp:
        assert rtsp.url == f"rtsp://127.0.0.1:{rtsp.port}/live"
        time.sleep(0.3)  # joins mid-stream: gets packets from the next keyframe
        first = Reader(rtsp.url, rtsp, options=options)
        first.start()
        assert first.wait_for(15), (first.error, first.frames)
        check_live(first, rtsp, lag=1.0)
        assert rtsp.clients == 1

        port, before = rtsp.port, rtsp.last_sent
        restarted = time.monotonic()
        rtsp.restart()  # drops the client
        wait_ended(first, restarted, within=3)
        assert rtsp.port == port
        second = Reader(rtsp.url, rtsp, options=options)
        second.start()
        assert second.wait_for(8), (second.error, second.frames)
        check_live(second, rtsp, lag=1.0, after=before)

        stopped = time.monotonic()
        rtsp.stop()
        wait_ended(second, stopped, within=3)
        assert refused(port)
        assert rtsp.clients == 0 and rtsp.error is None
    assert no_threads_left()


def rtsp_request(sock: socket.socket, request: str) -> str:
    sock.sendall(request.encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        assert chunk, reply
        reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    lengths = [int(x[15:]) for x in head.split(b"\r\n") if x.lower().startswith(b"content-length:")]
    while lengths and len(body) < lengths[-1]:
        body += sock.recv(4096)
    return (head + b"\r\n\r\n" + body).decode()


def test_rtsp_answers_the_protocol() -> None:
    with RtspServer() as rtsp, socket.create_connection(("127.0.0.1", rtsp.port), 5) as sock:
        reply = rtsp_request(sock, f"OPTIONS {rtsp.url} RTSP/1.0\r\nCSeq: 7\r\n\r\n")
        assert reply.startswith("RTSP/1.0 200 OK") and "CSeq: 7" in reply
        assert "DESCRIBE" in reply and "GET_PARAMETER" in reply
        reply = rtsp_request(sock, f"DESCRIBE {rtsp.url} RTSP/1.0\r\nCSeq: 8\r\n\r\n")
        assert "CSeq: 8" in reply and "application/sdp" in reply
        assert "H264/90000" in reply and "sprop-parameter-sets=" in reply
        missing = rtsp.url.replace("/live", "/nothing")
        reply = rtsp_request(sock, f"DESCRIBE {missing} RTSP/1.0\r\nCSeq: 9\r\n\r\n")
        assert reply.startswith("RTSP/1.0 404")
        reply = rtsp_request(
            sock,
            f"SETUP {rtsp.url}/trackID=0 RTSP/1.0\r\nCSeq: 10\r\n"
            "Transport: RTP/AVP;multicast\r\n\r\n",
        )
        assert reply.startswith("RTSP/1.0 461")
        reply = rtsp_request(
            sock,
            f"SETUP {rtsp.url}/trackID=0 RTSP/1.0\r\nCSeq: 11\r\n"
            "Transport: RTP/AVP;unicast;client_port=40000-40001\r\n\r\n",
        )
        assert "server_port=" in reply and "Session: " in reply
        reply = rtsp_request(sock, f"TEARDOWN {rtsp.url} RTSP/1.0\r\nCSeq: 12\r\n\r\n")
        assert reply.startswith("RTSP/1.0 200 OK") and "CSeq: 12" in reply


@pytest.mark.parametrize("container", ["mpegts", "matroska"])
def test_growing_file_is_readable_while_written(tmp_path: Path, container: str) -> None:
    path = tmp_path / ("growing.ts" if container == "mpegts" else "growing.mkv")
    with GrowingFile(path, container=container) as growing:
        assert growing.url == str(path)
        time.sleep(0.7)
        assert path.stat().st_size > 1000
        # follow=1 reads on at the end; seekable=0 stops the probe seeking to the end (and
        # waiting there for the timeout) to guess the duration
        options = {"follow": "1", "seekable": "0", **FAST_OPEN}
        reader = read(growing.url, growing, 1.5, options=options, format=container)
        check_live(reader, growing, lag=1.0)
        assert reader.numbers[0] == 0
        with pytest.raises(NotImplementedError):
            growing.restart()
    sent = growing.sent
    with av.open(str(path)) as done:
        numbers = [read_frame_number(f.to_ndarray(format="rgb24")) for f in done.decode(video=0)]
    assert numbers == list(range(sent))
    assert no_threads_left()
