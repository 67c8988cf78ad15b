"""URL fetching against real HTTP servers on 127.0.0.1: deadlines, short bodies, redirects,
credentials, and connecting to the address that was checked."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

import vidtt
from vidtt import LimitError, SourceError
from vidtt.media import fetch

BODY = b"0123456789" * 100


class Handler(BaseHTTPRequestHandler):
    """Routes by path; records the Host header of every request."""

    protocol_version = "HTTP/1.1"
    hosts: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers.get("Host", ""))
        route = getattr(self, "route_" + self.path.strip("/").split("?")[0].replace("-", "_"))
        route()

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", headers.pop("length", str(len(body))))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def route_ok(self) -> None:
        self.send(200, BODY)

    def route_trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        for byte in BODY:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.1)

    def route_slow_headers(self) -> None:
        time.sleep(3)
        self.send(200, BODY)

    def route_short(self) -> None:
        self.send(200, BODY[:300], length=str(len(BODY)))
        self.close_connection = True

    def route_loop_a(self) -> None:
        self.send(302, Location="/loop-b")

    def route_loop_b(self) -> None:
        self.send(302, Location="/loop-a")

    def route_chain(self) -> None:
        hops = int(self.path.split("?")[1]) if "?" in self.path else 0
        self.send(302, Location=f"/chain?{hops + 1}" if hops < 10 else "/ok")

    def route_to_other(self) -> None:
        port = self.server.server_address[1]
        self.send(302, Location=f"http://127.0.0.2:{port}/ok")

    def route_missing(self) -> None:
        self.send(404, b"no")

    def route_video(self) -> None:
        self.send(200, type(self).video)

    video: ClassVar[bytes] = b""


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (the point of several tests) is no error here


@pytest.fixture
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    Handler.hosts = []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def fetched(url: str, **limits: object) -> bytes:
    with vidtt.limits.use(block_private_addresses=False, **limits), fetch.download(url) as data:
        return data.read()


def one_line(error: pytest.ExceptionInfo, *words: str) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


def test_download(server) -> None:
    assert fetched(server + "/ok") == BODY


def test_trickling_server_is_cut_off_at_the_deadline(server) -> None:
    started = time.monotonic()
    with pytest.raises(LimitError) as error:
        fetched(server + "/trickle", download_seconds=1, read_timeout=5)
    assert time.monotonic() - started < 2.5
    one_line(error, "took over 1 s", "download_seconds")


def test_deadline_covers_waiting_for_headers(server) -> None:
    started = time.monotonic()
    with pytest.raises((LimitError, SourceError)):
        fetched(server + "/slow-headers", download_seconds=1, read_timeout=30)
    assert time.monotonic() - started < 2.5


def test_short_body_is_an_error(server) -> None:
    with pytest.raises(SourceError) as error:
        fetched(server + "/short")
    one_line(error, "300 of 1000 bytes")


def test_redirect_loop_is_one_line(server) -> None:
    with pytest.raises(SourceError) as error:
        fetched(server + "/loop-a")
    one_line(error, "redirect loop", "/loop-a -> ", "/loop-b")


def test_redirects_are_counted(server) -> None:
    with pytest.raises(SourceError) as error:
        fetched(server + "/chain", max_redirects=3)
    one_line(error, "redirected more than 3 times")
    assert fetched(server + "/chain", max_redirects=11) == BODY


def test_http_errors(server) -> None:
    with pytest.raises(SourceError) as error:
        fetched(server + "/missing")
    one_line(error, "HTTP 404")


@pytest.mark.parametrize(
    "url,words",
    [
        ("http://[::1", ["malformed URL"]),
        ("http://exa mple.com/v.mp4", ["malformed URL", "spaces"]),
        ("http://host:99999/v.mp4", ["malformed URL", "out of range"]),
        ("http:///v.mp4", ["names no host"]),
        ("file:///etc/passwd", ["scheme 'file' is not allowed"]),
    ],
)
def test_malformed_urls(url, words) -> None:
    with pytest.raises(SourceError) as error:
        fetched(url)
    one_line(error, *words)


def test_credentials_are_never_echoed(server) -> None:
    port = server.rsplit(":", 1)[1]
    for path in ("/missing", "/loop-a", "/short"):
        with pytest.raises(SourceError) as error:
            fetched(f"http://alice:s3cret@127.0.0.1:{port}{path}")
        assert "s3cret" not in str(error.value) and "alice" not in str(error.value)
        assert "***@127.0.0.1" in str(error.value)


def test_private_addresses_are_refused(server) -> None:
    limits = vidtt.limits.make(block_private_addresses=True)
    with pytest.raises(SourceError) as error, fetch.download(server + "/ok", limits):
        pass
    one_line(error, "private, loopback or link-local", "block_private_addresses")


def test_redirect_targets_are_checked_again(server, monkeypatch) -> None:
    # 127.0.0.1 counts as public here, 127.0.0.2 as private: the redirect must be refused
    real = ipaddress.ip_address

    class Address:
        def __init__(self, text: str) -> None:
            self.address = real(text)
            self.is_global = text != "127.0.0.2"
            self.is_multicast = False

        def __str__(self) -> str:
            return str(self.address)

    monkeypatch.setattr(fetch.ipaddress, "ip_address", Address)
    limits = vidtt.limits.make(block_private_addresses=True)
    with fetch.download(server + "/ok", limits) as data:
        assert data.read() == BODY
    with pytest.raises(SourceError) as error, fetch.download(server + "/to-other", limits):
        pass
    one_line(error, "127.0.0.2", "private")


def test_connects_to_the_address_that_was_checked(server, monkeypatch) -> None:
    """A name that resolves to another address on a second lookup (DNS rebinding) is fetched
    from the first answer, with the name in the Host header."""
    port = int(server.rsplit(":", 1)[1])
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "10.9.9.9", "10.9.9.9"])
    lookups = []

    def getaddrinfo(host, *args, **kwargs):
        if host == "video.example":
            lookups.append(host)
            return real(next(answers), *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert fetched(f"http://video.example:{port}/ok") == BODY
    assert lookups == ["video.example"]
    assert Handler.hosts == [f"video.example:{port}"]


def test_unresolvable_host() -> None:
    with pytest.raises(SourceError) as error:
        fetched("http://no-such-host.invalid/v.mp4")
    one_line(error, "not found")


def test_a_url_is_fetched_once_while_downloads_are_reused(server) -> None:
    with vidtt.limits.use(block_private_addresses=False):
        with fetch.downloads_reused():
            with fetch.download(f"{server}/ok") as first:
                assert first.read() == BODY
            with fetch.download(f"{server}/ok") as again:
                assert again.read() == BODY and again is first
        assert len(Handler.hosts) == 1 and first.closed
        assert fetched(f"{server}/ok") == fetched(f"{server}/ok") == BODY
    assert len(Handler.hosts) == 3  # outside, each download fetches


def test_a_budgeted_request_fetches_its_video_once(server, llava_dir, videos) -> None:
    Handler.video = videos["h264"].read_bytes()
    pipe = vidtt.Pipeline(
        model=str(llava_dir),
        backend="cpu",
        max_visual_tokens=100,
        generation={"max_new_tokens": 2},
        limits={"block_private_addresses": False},
    )
    answer = pipe.ask(f"{server}/video", "What?")  # probed for the budget, then sampled
    assert answer.videos[0].budget and len(Handler.hosts) == 1


# -- issue 27: a server that drips its headers, redirects to data:, or answers with a web page --
@pytest.fixture
def dripping() -> Iterator[str]:
    """A raw socket server on 127.0.0.1: the status line, then one header byte every 0.5 s
    (for at most 60 s), never the end of the headers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def client(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                ends = time.monotonic() + 60
                while not stop.wait(0.5) and time.monotonic() < ends:
                    conn.sendall(b"a")

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=client, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/video.mp4"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_deadline_covers_headers_dripped_byte_by_byte(dripping) -> None:
    started = time.monotonic()
    with pytest.raises(LimitError) as error:
        fetched(dripping, download_seconds=1.5, read_timeout=5)
    assert time.monotonic() - started < 3.5
    one_line(error, "took over 1.5 s", "download_seconds")
    started = time.monotonic()
    limits = vidtt.limits.use(block_private_addresses=False, download_seconds=1.5)
    with limits, pytest.raises(LimitError) as error:
        vidtt.sample(dripping, num_frames=2)
    assert time.monotonic() - started < 3.5
    one_line(error, "download_seconds")


def test_vidtt_sample_of_a_dripping_url_ends(dripping) -> None:
    env = {
        **os.environ,
        "VIDTT_LIMIT_BLOCK_PRIVATE_ADDRESSES": "0",
        "VIDTT_LIMIT_DOWNLOAD_SECONDS": "2",
    }
    started = time.monotonic()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("vidtt")), "sample", dripping],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "took over 2 s" in line and "download_seconds" in line, done.stderr


class PageHandler(Handler):
    def route_to_data(self) -> None:
        self.send(302, Location="data:video/mp4;base64," + "A" * 200)

    def route_to_file(self) -> None:
        self.send(302, Location="file:///etc/passwd")

    def route_page(self) -> None:
        page = b"<!DOCTYPE html>\n<html><head><title>a video</title></head><body></body></html>"
        self.send(200, page * 20, Content_Type="text/html; charset=utf-8")

    def route_page_untyped(self) -> None:
        self.send(200, b"\n\n  <html><body>watch</body></html>", Content_Type="video/mp4")


@pytest.fixture
def pages(videos) -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), PageHandler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    PageHandler.video = videos["h264"].read_bytes()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def sampled_error(source: object, *words: str) -> str:
    with vidtt.limits.use(block_private_addresses=False), pytest.raises(vidtt.VidttError) as error:
        vidtt.sample(source, num_frames=2)
    return one_line(error, *words)


def test_redirect_to_a_data_or_file_url_is_one_clear_line(pages) -> None:
    message = sampled_error(pages + "/to-data", "redirects to a data: URL", "http(s)")
    assert "InvalidURL" not in message and "decoded" not in message
    assert len(message) < 300  # the data: URL is cut short
    sampled_error(pages + "/to-file", "redirects to a file: URL")


def test_a_web_page_given_as_a_video_says_so(pages) -> None:
    for path in ("/page", "/page-untyped"):
        message = sampled_error(pages + path, "is a web page", "direct link")
        assert "not a readable video" not in message
    sampled_error(pages + "/page", "(text/html)")
    with vidtt.limits.use(block_private_addresses=False):
        assert len(vidtt.sample(pages + "/video", num_frames=2)) == 2


def test_a_saved_web_page_given_as_a_video_says_so(tmp_path) -> None:
    page = b"\xef\xbb\xbf\n<!DOCTYPE html><html><body><video src='v.mp4'></video></body></html>"
    (tmp_path / "saved.mp4").write_bytes(page)
    for source in (tmp_path / "saved.mp4", page):
        message = sampled_error(source, "is a web page (HTML), not a video")
        assert "not a readable video" not in message


def test_nul_bytes_and_newlines_in_sources_are_one_line(tmp_path) -> None:
    message = sampled_error(str(tmp_path / "a\x00b.mp4"), "NUL")
    assert "embedded null byte" not in message
    sampled_error(str(tmp_path / "no\nsuch.mp4"), "video not found", "\\n")
    sampled_error("http://127.0.0.1:9/v.mp4\nHost: evil", "malformed URL", "\\n")
    sampled_error("ftp://x/v\n.mp4", "not allowed", "\\n")
    sampled_error("http://127.0.0.1:9/v\u2028.mp4", "malformed URL")
