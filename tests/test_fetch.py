"""URL fetching against real HTTP servers on 127.0.0.1: deadlines, short bodies, redirects,
credentials, and connecting to the address that was checked."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
