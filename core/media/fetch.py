"""Bounded downloads over http(s) with httpx.

- only http and https; a malformed URL is a one-line `SourceError`;
- each host is resolved once, checked (private, loopback and link-local addresses are refused
  while `block_private_addresses` is on), and the connection goes to that very address, with
  the name kept for the Host header and TLS (SNI and certificate): DNS rebinding cannot slip in;
- redirects are followed by hand, at most `max_redirects`, each new URL checked like the first;
- `download_seconds` is a wall-clock deadline over connecting, TLS, the headers and the body:
  every socket operation waits at most until it (a server that drips its headers byte by byte
  is cut off too); `connect_timeout` and `read_timeout` bound each step; `max_download_bytes`
  caps the size;
- a redirect to anything but http(s) (`data:`, `file:`, ...) and a web page where a media file
  was expected are one-line `SourceError`s that say what to give instead;
- a body shorter than its Content-Length is an error, never a partial file;
- credentials in a URL (`user:password@`) never appear in a message.

httpx is imported on the first download, not with vidtt.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from vidtt import limits as limits_module
from vidtt.errors import DecodeError, LimitError, SourceError
from vidtt.limits import Limits
from vidtt.urls import URL_SCHEMES, printable, redact

SPOOL_BYTES = 64 << 20  # kept in memory below this, in an unlinked temporary file above
_kept: contextvars.ContextVar[dict[str, IO[bytes]] | None] = contextvars.ContextVar(
    "vidtt_downloads_kept", default=None
)
REDIRECTS = (301, 302, 303, 307, 308)
HTML_TYPES = ("text/html", "application/xhtml+xml")
SNIFF_BYTES = 512  # the start of a body looked at to tell a web page
ALLOW_HINT = (
    "to allow it set block_private_addresses to false (vidtt.limits, a config's limits, or "
    "VIDTT_LIMIT_BLOCK_PRIVATE_ADDRESSES=0)"
)


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`address`) and what to call the host."""

    url: str  # as given, for messages (redacted on use)
    scheme: str
    host: str  # the name, for the Host header, SNI and the certificate
    port: int
    address: str  # the resolved IP address the connection goes to


def check_url_syntax(url: str) -> urllib.parse.SplitResult:
    """Parse an http(s) URL or raise a one-line `SourceError` saying what is wrong with it."""
    shown = redact(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SourceError(f"malformed URL '{shown}': {exc}") from None
    if parts.scheme.lower() not in URL_SCHEMES:
        raise SourceError(
            f"refused '{shown}': the scheme {printable(repr(parts.scheme))} is not allowed; use "
            "http or https"
        )
    if not parts.hostname:
        raise SourceError(f"malformed URL '{shown}': it names no host")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise SourceError(f"malformed URL '{shown}': it contains spaces or control characters")
    if port == 0:
        raise SourceError(f"malformed URL '{shown}': port 0")
    return parts


def resolve(url: str, limits: Limits) -> Target:
    """Check `url`, resolve its host once, and refuse private addresses when limits say so."""
    parts = check_url_syntax(url)
    host = parts.hostname or ""
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return Target(url, scheme, host, port, resolve_host(url, host, port, limits)[0])


def resolve_host(url: str, host: str, port: int, limits: Limits) -> list[str]:
    """The addresses of `url`'s `host`, resolved once; a one-line `SourceError` when it is not
    found, or when it is private, loopback or link-local and limits refuse those."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise SourceError(
            f"cannot fetch {redact(url)}: host {host!r} not found ({reason})"
        ) from None
    addresses = [str(info[4][0]).split("%")[0] for info in infos]
    if limits.block_private_addresses:
        for text in addresses:
            address = ipaddress.ip_address(text)
            if not public_address(address):
                raise SourceError(
                    f"refused {redact(url)}: {host} is a private, loopback or link-local "
                    f"address ({address}); {ALLOW_HINT}"
                )
    return addresses


def public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The address rule: whether `address` may be reached while private addresses are
    blocked (global unicast). Downloads and live sources both ask it."""
    return address.is_global and not address.is_multicast


class Deadline:
    """The wall-clock budget of one download (`download_seconds`)."""

    def __init__(self, url: str, limits: Limits) -> None:
        self.url, self.limits = url, limits
        self.ends = time.monotonic() + limits.download_seconds

    def left(self, slack: float = 0.0) -> float:
        """Seconds left; `LimitError` once (within `slack` of) the deadline passed."""
        left = self.ends - time.monotonic()
        if left <= slack:
            raise LimitError(
                f"downloading {redact(self.url)} took over {self.limits.download_seconds:g} s "
                "(download_seconds); download it yourself and pass the file"
            )
        return left

    def timeout(self) -> Any:
        """httpx timeouts: each step bounded by its own limit and by the time left."""
        import httpx

        left = self.left()
        return httpx.Timeout(
            connect=min(self.limits.connect_timeout, left),
            read=min(self.limits.read_timeout, left),
            write=min(self.limits.read_timeout, left),
            pool=min(self.limits.connect_timeout, left),
        )

    def bound(self, timeout: float | None) -> float:
        """A socket operation's timeout cut to the time left: a server that sends a byte now
        and then (each read on time) still cannot pass the deadline. Past it, the operation
        fails at once as a timeout, which `_get` reports as the deadline."""
        left = self.ends - time.monotonic()
        if left <= 0:
            import httpcore

            raise httpcore.ReadTimeout("download_seconds passed")
        return left if timeout is None else min(timeout, left)


def _deadline_backend(deadline: Deadline) -> Any:
    """httpcore's socket backend with every connect, TLS handshake, read and write bounded
    by `deadline` (httpx's own timeouts bound each of them, not their sum)."""
    import httpcore

    class Stream(httpcore.NetworkStream):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return bytes(self.inner.read(max_bytes, deadline.bound(timeout)))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.inner.write(buffer, deadline.bound(timeout))

        def close(self) -> None:
            self.inner.close()

        def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> Any:
            tls = self.inner.start_tls(ssl_context, server_hostname, deadline.bound(timeout))
            return Stream(tls)

        def get_extra_info(self, info: str) -> Any:
            return self.inner.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def __init__(self) -> None:
            self.inner = httpcore.SyncBackend()

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            stream = self.inner.connect_tcp(
                host, port, deadline.bound(timeout), local_address, socket_options
            )
            return Stream(stream)

        def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> Any:
            raise httpcore.UnsupportedProtocol("vidtt fetches over TCP only")

        def sleep(self, seconds: float) -> None:
            time.sleep(min(seconds, max(0.0, deadline.ends - time.monotonic())))

    return Backend()


def _transport(deadline: Deadline) -> Any:
    """An httpx transport (verified TLS, no proxies from the environment) whose sockets keep
    to `deadline`. Requests go straight to it: no client, so nothing follows or even reads a
    redirect's Location but `_fetch_into`."""
    import httpcore
    import httpx

    transport = httpx.HTTPTransport(verify=True, trust_env=False)
    transport._pool.close()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=True, trust_env=False),
        network_backend=_deadline_backend(deadline),
    )
    return transport


@contextmanager
def download(url: str, limits: Limits | None = None) -> Iterator[IO[bytes]]:
    """Fetch `url` into a spooled temporary file (memory first, an unlinked file after).
    Inside `downloads_reused()` a URL fetched before is not fetched again."""
    kept = _kept.get()
    if kept is not None and url in kept:
        kept[url].seek(0)
        yield kept[url]
        return
    limits = limits or limits_module.current()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        _fetch_into(url, spool, limits)
    except BaseException:
        spool.close()
        raise
    if kept is not None:  # closed when the reuse ends
        kept[url] = spool
    try:
        spool.seek(0)
        yield spool
    finally:
        if kept is None:
            spool.close()


@contextmanager
def downloads_reused() -> Iterator[None]:
    """Within (on this thread), each URL is downloaded once: a video probed and then sampled
    is fetched once. The files are released on leaving."""
    if _kept.get() is not None:
        yield
        return
    kept: dict[str, IO[bytes]] = {}
    token = _kept.set(kept)
    try:
        yield
    finally:
        _kept.reset(token)
        for spool in kept.values():
            spool.close()


def _fetch_into(url: str, out: IO[bytes], limits: Limits) -> None:
    deadline = Deadline(url, limits)
    seen = [url]
    with _transport(deadline) as transport:
        while True:
            target = resolve(seen[-1], limits)
            location = _get(transport, target, out, deadline, limits)
            if location is None:
                return
            check_redirect(seen, location, limits)


def check_redirect(seen: list[str], location: str, limits: Limits) -> None:
    """Add the redirect target to `seen`, or refuse a loop, one redirect too many, or a
    target that is not an http(s) URL."""
    first = redact(seen[0])
    scheme = location.split(":", 1)[0].lower() if re.match(r"[A-Za-z][\w+.-]*:", location) else ""
    if scheme not in URL_SCHEMES:
        shown = redact(location if len(location) <= 80 else location[:77] + "...")
        kind = f"a {scheme}: URL" if scheme else "something that is not a URL"
        raise SourceError(
            f"cannot fetch {first}: it redirects to {kind} ({shown}), which is not allowed: "
            "vidtt follows redirects only to http(s) URLs; give the final media URL"
        )
    if location in seen:
        chain = " -> ".join(redact(u) for u in [*seen[seen.index(location) :], location])
        raise SourceError(f"cannot fetch {first}: a redirect loop ({chain})")
    if len(seen) > limits.max_redirects:
        raise SourceError(
            f"cannot fetch {first}: it redirected more than {limits.max_redirects} times "
            "(max_redirects); pass the final URL"
        )
    seen.append(location)


def _get(transport: Any, target: Target, out: IO[bytes], deadline: Deadline, limits: Limits) -> Any:
    """One GET to the checked address; the redirect's absolute URL, or None once written."""
    import httpx

    shown = redact(target.url)
    try:
        request = pinned_request(target, deadline.timeout().as_dict())
        response = transport.handle_request(request)
        try:
            if response.status_code in REDIRECTS and "location" in response.headers:
                return urllib.parse.urljoin(target.url, response.headers["location"])
            if response.status_code >= 400:
                phrase = printable(response.reason_phrase or "")
                raise SourceError(f"cannot fetch {shown}: HTTP {response.status_code} {phrase}")
            _write_body(response, out, target, deadline, limits)
        finally:
            response.close()
    except (SourceError, LimitError, DecodeError):
        raise
    except httpx.TimeoutException:
        deadline.left(slack=0.1)  # the deadline, if that is what ran out
        raise SourceError(
            f"cannot fetch {shown}: no answer in time (connect_timeout "
            f"{limits.connect_timeout:g} s, read_timeout {limits.read_timeout:g} s)"
        ) from None
    except httpx.InvalidURL as exc:
        raise SourceError(f"malformed URL '{shown}': {_short(exc)}") from None
    except (httpx.HTTPError, OSError, ValueError, UnicodeError) as exc:
        raise SourceError(f"cannot fetch {shown}: {_short(exc)}") from None
    return None


def pinned_request(target: Target, timeout: Mapping[str, float | None]) -> Any:
    """A GET to the resolved address that names the host in the Host header and TLS."""
    import httpx

    url = httpx.URL(target.url)
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if url.port is not None:
        host_header += f":{url.port}"
    return httpx.Request(
        "GET",
        url.copy_with(host=target.address),
        headers={"Host": host_header, "User-Agent": "vidtt", "Accept-Encoding": "identity"},
        extensions={"timeout": timeout, "sni_hostname": target.host},
    )


def _write_body(
    response: Any, out: IO[bytes], target: Target, deadline: Deadline, limits: Limits
) -> None:
    shown = redact(target.url)
    declared = response.headers.get("content-length", "")
    expected = int(declared) if declared.isdigit() else None
    if expected is not None and expected > limits.max_download_bytes:
        raise LimitError(_too_big(shown, limits, expected))
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    received, head = 0, b""
    for chunk in response.iter_raw():
        deadline.left()
        received += len(chunk)
        if received > limits.max_download_bytes:
            raise LimitError(_too_big(shown, limits, received))
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) == SNIFF_BYTES:
                _check_not_a_page(shown, kind, head)
        out.write(chunk)
    deadline.left()
    if expected is not None and received < expected:
        raise SourceError(_cut_short(shown, received, expected))
    if received == 0:
        raise DecodeError(f"{shown} returned no data")
    if len(head) < SNIFF_BYTES:
        _check_not_a_page(shown, kind, head)


def _check_not_a_page(shown: str, kind: str, head: bytes) -> None:
    """Refuse a web page where a media file was expected: the server calls it HTML and it
    starts like markup, or it opens like an HTML document whatever the server calls it. (No
    video or image format starts with '<'; SVG is not served as HTML.)"""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
    markup = start.startswith(b"<")
    document = start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))
    if (markup and kind in HTML_TYPES) or document:
        named = kind if kind in HTML_TYPES else "text/html"
        raise SourceError(
            f"{shown} is a web page ({named}), not a media file: give a direct link to the "
            "video or image file itself"
        )


def _cut_short(shown: str, received: int, expected: int) -> str:
    return (
        f"cannot fetch {shown}: the connection closed after {received} of {expected} bytes "
        "(Content-Length); try again"
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    match = re.search(r"received (\d+) bytes, expected (\d+)", text)
    if match:
        return f"the connection closed after {match[1]} of {match[2]} bytes (Content-Length)"
    return redact(text.splitlines()[0] if text else type(exc).__name__)


def _too_big(shown: str, limits: Limits, size: int) -> str:
    return (
        f"{shown} is larger than the {limits.max_download_bytes} byte limit ({size} bytes "
        "seen); download it yourself or raise vidtt.limits max_download_bytes"
    )
