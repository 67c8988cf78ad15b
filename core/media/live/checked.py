"""HTTP(S) live sources read through vidtt, never by FFmpeg's own network code.

FFmpeg is given `Opener` as its `io_open`: the source itself and everything it names (an HLS
playlist's variants, segments, keys and init sections) are opened by it. Each URL is checked as
a download is (`vidtt.media.fetch`): http(s) only, its host resolved once and refused when
private while limits block those, the connection pinned to the checked address (the name kept
for the Host header and TLS, whose certificate is verified), redirects followed by hand and each
target checked like the first. What a source names is capped by `max_download_bytes`, any
playlist by `PLAYLIST_BYTES`; a stream itself has no end. A URL that is refused is remembered
(`refused`): the reader ends the watch with it rather than reconnecting.
"""

from __future__ import annotations

import io
import threading
import urllib.parse
from typing import Any

from vidtt.errors import LimitError, SourceError
from vidtt.limits import Limits
from vidtt.media.fetch import ALLOW_HINT, REDIRECTS, check_redirect, pinned_request, resolve
from vidtt.urls import printable, redact

PLAYLIST_BYTES = 16 << 20  # an HLS playlist is text: more than this is not one
ENCRYPTED_HINT = "encrypted HLS (EXT-X-KEY) is not supported for live sources"


class Opener:
    """FFmpeg's `io_open` for one connection: checked GETs over one pooled transport."""

    def __init__(self, limits: Limits, open_timeout: float, read_timeout: float) -> None:
        import httpx

        self.limits = limits
        self.timeout = {
            "connect": open_timeout,
            "read": read_timeout,
            "write": read_timeout,
            "pool": open_timeout,
        }
        self.transport = httpx.HTTPTransport(verify=True, trust_env=False)
        self.refused: str | None = None  # the first URL refused by the rule, as a message
        self.opened: list[HttpBody] = []
        self._lock = threading.Lock()
        self.first = True  # the source itself comes first; what it names after

    def __call__(self, url: str, flags: int, options: dict[str, str]) -> HttpBody:
        """Open `url` for FFmpeg (reading only); what it names is capped by
        `max_download_bytes`, the source itself is not (a live stream has no end)."""
        first, self.first = self.first, False
        body = self.open(self.checked(url), None if first else self.limits.max_download_bytes)
        with self._lock:
            self.opened.append(body)
        return body

    def open(self, url: str, limit: int | None) -> HttpBody:
        """A checked GET of `url`, redirects followed by hand (each checked)."""
        import httpx

        seen = [url]
        while True:
            target = self.checked(seen[-1], resolve)
            try:
                response = self.transport.handle_request(pinned_request(target, self.timeout))
            except httpx.TimeoutException:
                raise SourceError(f"{redact(url)} sent nothing in time") from None
            except (httpx.HTTPError, OSError, ValueError) as exc:
                raise SourceError(f"cannot read {redact(url)}: {_short(exc)}") from None
            status = response.status_code
            if status in REDIRECTS and "location" in response.headers:
                response.close()
                location = urllib.parse.urljoin(seen[-1], response.headers["location"])
                self.checked(location, lambda u, lim: check_redirect(seen, u, lim))
                continue
            if status >= 400:
                response.close()
                phrase = printable(response.reason_phrase or "")
                raise SourceError(f"cannot read {redact(seen[-1])}: HTTP {status} {phrase}")
            return HttpBody(response, seen[-1], limit)

    def checked(self, url: str, check: Any = None) -> Any:
        """`check(url, limits)` (default: only http(s) URLs pass); a refusal by the rule (a
        private address, a scheme, a redirect) is remembered in `refused`."""
        try:
            return (check or _plain)(url, self.limits)
        except SourceError as exc:
            if check is not resolve or ALLOW_HINT in str(exc):
                self.refused = self.refused or str(exc)
            raise

    def close(self) -> None:
        """Close every body opened and the transport (FFmpeg does not close a custom source)."""
        with self._lock:
            opened, self.opened = self.opened, []
        for body in opened:
            body.close()
        self.transport.close()


class HttpBody(io.RawIOBase):
    """A response's body, read as it arrives (each read waits at most the read timeout)."""

    def __init__(self, response: Any, url: str, limit: int | None) -> None:
        self.response, self.name, self.limit = response, url, limit
        self._chunks = response.iter_raw()
        self._left = b""
        self.received = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        import httpx

        if not self._left:
            try:
                self._left = next(self._chunks, b"")
            except httpx.TimeoutException:
                raise TimeoutError(f"{redact(self.name)} stalled") from None
            except (httpx.HTTPError, OSError) as exc:
                raise OSError(f"{redact(self.name)}: {_short(exc)}") from None
            if not self.received and self._left.lstrip(b"\xef\xbb\xbf").startswith(b"#EXTM3U"):
                self.limit = min(self.limit or PLAYLIST_BYTES, PLAYLIST_BYTES)  # a playlist
            self.received += len(self._left)
            if self.limit is not None and self.received > self.limit:
                what = (
                    "playlist limit"
                    if self.limit == PLAYLIST_BYTES
                    else "limit (max_download_bytes)"
                )
                raise LimitError(f"{redact(self.name)} is larger than the {self.limit} byte {what}")
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count

    def close(self) -> None:
        if not self.closed:
            self.response.close()
        super().close()


def _plain(url: str, _limits: Limits) -> str:
    """The http(s) URL FFmpeg asks for; anything else (a `crypto+` segment, `file:`,
    `data:`, another protocol) is refused."""
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("crypto"):
        raise SourceError(f"{redact(url)}: {ENCRYPTED_HINT}; refused")
    if scheme not in ("http", "https"):
        shown = redact(url if len(url) <= 80 else url[:77] + "...")
        raise SourceError(f"refused {shown}: a live source may name only http(s) URLs")
    return url


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0] if text else type(exc).__name__)
