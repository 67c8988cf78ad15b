"""Live sources under attack (issue 35): every address FFmpeg is told to open (a redirect, an
HLS playlist's variants, segments and keys, an RTSP redirect, an RTSP answer's `source=`) is
checked by the download rule; cameras are only cameras; a source that sends no frame gives up.

The rule is the real one with one change: `public_address` counts 127.0.0.1 as public, so the
streams of `vidtt.testing.streams` stand for public hosts, and 127.0.0.2 is the private host a
source must not reach (a server there records every request it gets)."""

from __future__ import annotations

import io
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from vidtt import limits
from vidtt.errors import SourceError
from vidtt.media import fetch
from vidtt.media.live.reader import Reader
from vidtt.media.live.sources import live_source
from vidtt.pipeline.watch import open_reader
from vidtt.testing.streams import HlsStream, RtspServer, free_port
from vidtt.types.watch import WatchOptions

PRIVATE = "127.0.0.2"
QUICK = WatchOptions(open_timeout=3, read_timeout=2, reconnect_seconds=4)


@pytest.fixture
def rule(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Private addresses blocked; the addresses in the yielded set count as public."""
    public = {"127.0.0.1"}
    monkeypatch.setattr(fetch, "public_address", lambda address: str(address) in public)
    with limits.use(limits.make(block_private_addresses=True)):
        yield public


class Site:
    """An HTTP server on `host` answering `routes[path]() -> (status, headers, body)` and
    recording each path asked for."""

    def __init__(self, host: str, routes: dict[str, Any]) -> None:
        self.asked: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.asked.append(self.path)
                status, headers, body = routes.get(self.path, lambda: (404, {}, b""))()
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def files(folder: Path) -> dict[str, Any]:
    """Routes serving an HLS folder's playlist and segments as they are now."""

    def serve(name: str) -> Any:
        return lambda: (200, {}, (folder / name).read_bytes())

    names = ["live.m3u8", *(f"live{n}.ts" for n in range(200))]
    return {f"/{name}": serve(name) for name in names}


@pytest.fixture
def hls(tmp_path: Path) -> Iterator[HlsStream]:
    with HlsStream(tmp_path / "hls", fps=10, segment_seconds=0.5) as stream:
        assert stream.wait_ready(10, segments=2)
        yield stream


@pytest.fixture
def private(hls: HlsStream) -> Iterator[Site]:
    """The private host: it serves the same stream, so a source that reaches it plays."""
    site = Site(PRIVATE, files(hls.folder))
    yield site
    site.close()


def playlist(hls: HlsStream, to: str) -> bytes:
    """The live playlist with its segments named as absolute URLs on `to`."""
    lines = hls.playlist.read_text().splitlines()
    return "\n".join(f"{to}/{x}" if x.endswith(".ts") else x for x in lines).encode() + b"\n"


def hostile_routes(hls: HlsStream, private: Site) -> dict[str, Any]:
    m3u8 = {"Content-Type": "application/vnd.apple.mpegurl"}
    key = f'#EXT-X-KEY:METHOD=AES-128,URI="{private.base}/key",IV=0x{"0" * 32}'
    return {
        "/redirect.m3u8": lambda: (302, {"Location": f"{private.base}/live.m3u8"}, b""),
        "/segments.m3u8": lambda: (200, m3u8, playlist(hls, private.base)),
        "/variant.m3u8": lambda: (
            200, m3u8, f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=90000\n{private.base}/live.m3u8\n"
            .encode(),
        ),
        "/key.m3u8": lambda: (
            200, m3u8, playlist(hls, f"http://127.0.0.1:{hls.port}").replace(
                b"#EXTINF", key.encode() + b"\n#EXTINF", 1),
        ),
    }  # fmt: skip


@pytest.mark.parametrize("path", ["/redirect.m3u8", "/segments.m3u8", "/variant.m3u8", "/key.m3u8"])
def test_an_http_source_never_reaches_a_private_host(rule, hls, private, path: str) -> None:
    public = Site("127.0.0.1", hostile_routes(hls, private))
    try:
        with pytest.raises(SourceError) as caught:
            open_reader(public.base + path, QUICK).stop()
    finally:
        public.close()
    assert private.asked == []  # not one request reached it
    message = str(caught.value)
    assert "\n" not in message
    assert "refused" in message and (PRIVATE in message or "EXT-X-KEY" in message)


def test_a_checked_hls_source_plays_and_is_cut_off_when_its_host_turns_private(rule, hls) -> None:
    reader = open_reader(hls.url, QUICK)  # 127.0.0.1 counts as public: through vidtt, it plays
    try:
        assert len(reader.ring) > 0
        rule.clear()  # now every address is private: the next segment is refused
        deadline = time.monotonic() + 15
        while reader.ended is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reader.ended is not None and "refused" in reader.ended
        assert reader.stats.reconnects == 0  # a refusal ends it: no reconnecting
    finally:
        reader.release()
    assert len(reader.ring) == 0 and reader.ring.nbytes == 0


# -- RTSP ---------------------------------------------------------------------------------------
class Rewriter:
    """A TCP proxy on 127.0.0.1 in front of `server` that edits what the server answers with
    `edit(text) -> text` (an RTSP server that redirects, or names another host)."""

    def __init__(self, port: int, edit: Any) -> None:
        self.port, self.edit = port, edit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"rtsp://127.0.0.1:{self.listener.getsockname()[1]}/live"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(server, client, self.edit), daemon=True
            ).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, edit: Any) -> None:
        try:
            while data := source.recv(65536):
                if edit is not None and data.startswith(b"RTSP/"):
                    data = edit(data.decode("latin-1")).encode("latin-1")
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def rtsp() -> Iterator[RtspServer]:
    with RtspServer(fps=10) as server:
        assert server.wait_ready(10)
        yield server


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, socket.socket, list[str]]]:
    """A TCP and a UDP socket on the private host, recording whatever reaches them."""
    tcp = socket.create_server((PRIVATE, 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((PRIVATE, tcp.getsockname()[1]))
    reached: list[str] = []

    def watch(sock: socket.socket, kind: str) -> None:
        try:
            (sock.accept if kind == "tcp" else lambda: sock.recvfrom(2048))()
            reached.append(kind)
        except OSError:
            pass

    for sock, kind in ((tcp, "tcp"), (udp, "udp")):
        threading.Thread(target=watch, args=(sock, kind), daemon=True).start()
    yield tcp, udp, reached
    tcp.close()
    udp.close()


def test_an_rtsp_redirect_is_refused(rule, rtsp, listener) -> None:
    port = listener[0].getsockname()[1]
    moved = f"RTSP/1.0 302 Moved\r\nLocation: rtsp://{PRIVATE}:{port}/live\r\n"

    def redirect(text: str) -> str:  # DESCRIBE is answered with a redirect
        return moved + text.split("\r\n", 1)[1] if "application/sdp" in text else text

    proxy = Rewriter(rtsp.port, redirect)
    try:
        with pytest.raises(SourceError) as caught:
            open_reader(proxy.url, QUICK).stop()
    finally:
        proxy.close()
    time.sleep(0.3)
    assert listener[2] == []  # FFmpeg did not connect to the private host
    assert "does not follow RTSP redirects" in str(caught.value)


def test_an_rtsp_answer_naming_another_host_over_udp_is_not_followed(rule, rtsp, listener) -> None:
    port = listener[1].getsockname()[1]

    def elsewhere(text: str) -> str:  # the SETUP answer names the private host as the source
        return text.replace("server_port=", f"source={PRIVATE};server_port={port}-{port + 1};x=")

    proxy = Rewriter(rtsp.port, elsewhere)
    options = QUICK.model_copy(update={"transport": "udp"})
    try:
        reader = open_reader(proxy.url, options)
        time.sleep(1.0)  # FFmpeg sends its first RTP and RTCP packets to the source
        reader.stop()
    except SourceError:
        pass  # the camera's real port was replaced: playing may fail, reaching it may not
    finally:
        proxy.close()
    assert listener[2] == []


def test_a_multicast_rtsp_answer_is_refused(rule, rtsp) -> None:
    def multicast(text: str) -> str:
        return text.replace("RTP/AVP;unicast", "RTP/AVP;multicast;destination=239.1.2.3")

    proxy = Rewriter(rtsp.port, multicast)
    options = QUICK.model_copy(update={"transport": "udp"})
    try:
        with pytest.raises(SourceError, match="multicast"):
            open_reader(proxy.url, options).stop()
    finally:
        proxy.close()


def test_an_rtsp_source_on_a_private_host_is_refused(rtsp) -> None:
    blocked = limits.make(block_private_addresses=True)
    with limits.use(blocked), pytest.raises(SourceError, match="private, loopback or link-l"):
        open_reader(rtsp.url, QUICK)
    assert rtsp.clients == 0


# -- cameras --------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["v4l2://", ""])
def test_a_camera_path_reveals_nothing_about_other_files(tmp_path: Path, scheme: str) -> None:
    existing, missing = tmp_path / "secret.txt", tmp_path / "missing.txt"
    existing.write_text("secret")
    link = tmp_path / "link"
    link.symlink_to(existing)
    paths = [str(existing), str(missing), str(link), "/etc/passwd", "/dev/video0/../../etc/passwd"]
    if not scheme:
        paths = ["/dev/video0/../../etc/passwd", "/dev/video0x", "/dev/videos/../null"]
    messages = []
    for path in paths:
        with pytest.raises(SourceError) as caught:
            live_source(scheme + path, limits.make())
        messages.append(str(caught.value).replace(path, "PATH"))
    assert len(set(messages)) == 1, messages
    assert "not a camera" in messages[0]


def test_only_character_devices_count_as_cameras(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a camera"):
        live_source("v4l2:///dev/null", limits.make())  # a device, but not a camera
    with pytest.raises(SourceError, match="no camera at /dev/video97"):
        live_source("v4l2:///dev/video97", limits.make())


# -- a source that sends no frame -----------------------------------------------------------------
def mpeg_ts(frames: int) -> bytes:
    """An MPEG-TS stream of `frames` black frames (10 a second)."""
    import av
    import numpy as np

    out_file = io.BytesIO()
    with av.open(out_file, "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return out_file.getvalue()


HEADER_ONLY = 188 * 4  # the first packets: it opens, with a video stream, and holds no frame
TS = {"Content-Type": "video/mp2t"}


def test_a_source_that_connects_but_sends_no_frame_gives_up(rule) -> None:
    body = mpeg_ts(5)[:HEADER_ONLY]
    site = Site("127.0.0.1", {"/live.ts": lambda: (200, TS, body)})
    options = QUICK.model_copy(update={"open_timeout": 1, "read_timeout": 1})
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match="sent no frame within 2 s") as caught:
            open_reader(site.base + "/live.ts", options).stop()
    finally:
        site.close()
    assert time.monotonic() - started < 8
    assert "\n" not in str(caught.value)
    assert 1 < len(site.asked) < 6  # retried, with backoff (0.5 s, 1 s...), not twice a second


def test_a_source_that_stops_sending_frames_ends_the_watch(rule) -> None:
    whole = mpeg_ts(20)
    bodies = iter([whole])  # the first connection plays; each after it sends no frame
    site = Site("127.0.0.1", {"/live.ts": lambda: (200, TS, next(bodies, whole[:HEADER_ONLY]))})
    reader = open_reader(site.base + "/live.ts", QUICK)  # reconnect_seconds 4
    try:
        deadline = time.monotonic() + 20
        while reader.ended is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reader.ended is not None and reader.ended.startswith("gone for")
        assert len(site.asked) < 8  # backoff: 0.5, 1, 2 s... (before: twice a second, forever)
        assert reader.stats.reconnects == 0  # no connection since the first sent a frame
    finally:
        reader.release()
        site.close()


def test_release_lets_go_of_the_frames(rule, hls) -> None:
    reader = open_reader(hls.url, QUICK)
    assert reader.ring.nbytes > 0
    reader.release()
    assert reader.stopped and len(reader.ring) == 0 and reader.ring.nbytes == 0
    assert isinstance(reader, Reader)


def test_the_test_rule_is_the_one_downloads_use(rule) -> None:
    assert fetch.public_address(ipaddress.ip_address("127.0.0.1"))
    assert not fetch.public_address(ipaddress.ip_address(PRIVATE))
    assert os.path.exists("/etc/passwd")  # the camera tests name a file that exists
    assert free_port() > 0
