"""Bounded downloads over http(s) with httpx.

- only http and https; a malformed URL is a one-line `SourceError`;
- each host is resolved once, checked (private, loopback and link-local addresses are refused
  while `block_private_addresses` is on), and the connection goes to that very address, with
  the name kept for the Host header and TLS (SNI and certificate): DNS rebinding cannot slip in;
- redirects are followed by hand, at most `max_redirects`, each new URL checked like the first;
- `download_seconds` is a wall-clock deadline over connecting, the headers and the body;
  `connect_timeout` and `read_timeout` bound each step; `max_download_bytes` caps the size;
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from vidtt import limits as limits_module
from vidtt.errors import DecodeError, LimitError, SourceError
from vidtt.limits import Limits
from vidtt.urls import URL_SCHEMES, redact

SPOOL_BYTES = 64 << 20  # kept in memory below this, in an unlinked temporary file above
_kept: contextvars.ContextVar[dict[str, IO[bytes]] | None] = contextvars.ContextVar(
    "vidtt_downloads_kept", default=None
)
REDIRECTS = (301, 302, 303, 307, 308)
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
        raise SourceError(f"malformed URL {shown!r}: {exc}") from None
    if parts.scheme.lower() not in URL_SCHEMES:
        raise SourceError(
            f"refused {shown!r}: the scheme {parts.scheme!r} is not allowed; use http or https"
        )
    if not parts.hostname:
        raise SourceError(f"malformed URL {shown!r}: it names no host")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise SourceError(f"malformed URL {shown!r}: it contains spaces or control characters")
    if port == 0:
        raise SourceError(f"malformed URL {shown!r}: port 0")
    return parts


def resolve(url: str, limits: Limits) -> Target:
    """Check `url`, resolve its host once, and refuse private addresses when limits say so."""
    parts = check_url_syntax(url)
    host = parts.hostname or ""
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
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
            if not address.is_global or address.is_multicast:
                raise SourceError(
                    f"refused {redact(url)}: {host} is a private, loopback or link-local "
                    f"address ({address}); {ALLOW_HINT}"
                )
    return Target(url, scheme, host, port, addresses[0])


def check_url(url: str, limits: Limits) -> None:
    """Refuse malformed and non-http(s) URLs and, when limits say so, private addresses."""
    resolve(url, limits)


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
    import httpx

    deadline = Deadline(url, limits)
    seen = [url]
    with httpx.Client(trust_env=False, follow_redirects=False, verify=True) as client:
        while True:
            target = resolve(seen[-1], limits)
            location = _get(client, target, out, deadline, limits)
            if location is None:
                return
            _check_redirect(seen, location, limits)


def _check_redirect(seen: list[str], location: str, limits: Limits) -> None:
    """Add the redirect target to `seen`, or refuse a loop or one redirect too many."""
    first = redact(seen[0])
    if location in seen:
        chain = " -> ".join(redact(u) for u in [*seen[seen.index(location) :], location])
        raise SourceError(f"cannot fetch {first}: a redirect loop ({chain})")
    if len(seen) > limits.max_redirects:
        raise SourceError(
            f"cannot fetch {first}: it redirected more than {limits.max_redirects} times "
            "(max_redirects); pass the final URL"
        )
    seen.append(location)


def _get(client: Any, target: Target, out: IO[bytes], deadline: Deadline, limits: Limits) -> Any:
    """One GET to the checked address; the redirect's absolute URL, or None once written."""
    import httpx

    request = _pinned_request(client, target, deadline)
    shown = redact(target.url)
    try:
        response = client.send(request, stream=True)
        try:
            if response.status_code in REDIRECTS and "location" in response.headers:
                return urllib.parse.urljoin(target.url, response.headers["location"])
            if response.status_code >= 400:
                phrase = response.reason_phrase or ""
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
    except httpx.RemoteProtocolError as exc:
        raise SourceError(f"cannot fetch {shown}: {_short(exc)}") from None
    except (httpx.HTTPError, OSError, ValueError) as exc:
        raise SourceError(f"cannot fetch {shown}: {_short(exc)}") from None
    return None


def _pinned_request(client: Any, target: Target, deadline: Deadline) -> Any:
    """A request to the resolved address that names the host in the Host header and TLS."""
    import httpx

    url = httpx.URL(target.url)
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if url.port is not None:
        host_header += f":{url.port}"
    return client.build_request(
        "GET",
        url.copy_with(host=target.address),
        headers={"Host": host_header, "User-Agent": "vidtt", "Accept-Encoding": "identity"},
        timeout=deadline.timeout(),
        extensions={"sni_hostname": target.host},
    )


def _write_body(
    response: Any, out: IO[bytes], target: Target, deadline: Deadline, limits: Limits
) -> None:
    shown = redact(target.url)
    declared = response.headers.get("content-length", "")
    expected = int(declared) if declared.isdigit() else None
    if expected is not None and expected > limits.max_download_bytes:
        raise LimitError(_too_big(shown, limits, expected))
    received = 0
    for chunk in response.iter_raw():
        deadline.left()
        received += len(chunk)
        if received > limits.max_download_bytes:
            raise LimitError(_too_big(shown, limits, received))
        out.write(chunk)
    deadline.left()
    if expected is not None and received < expected:
        raise SourceError(_cut_short(shown, received, expected))
    if received == 0:
        raise DecodeError(f"{shown} returned no data")


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
