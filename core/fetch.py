"""Bounded downloads over http(s): only http/https, redirects counted and re-checked, private
addresses refused unless allowed, timeouts, a size cap, and nothing left on disk."""

from __future__ import annotations

import ipaddress
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from . import limits as limits_module
from .errors import DecodeError, LimitError, SourceError
from .limits import Limits
from .types import URL_SCHEMES

CHUNK = 1 << 20
SPOOL_BYTES = 64 << 20  # kept in memory below this, in an unlinked temporary file above


def check_url(url: str, limits: Limits) -> None:
    """Refuse schemes other than http(s) and, when limits say so, private addresses."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in URL_SCHEMES or not parts.hostname:
        raise SourceError(f"refused {url!r}: only http and https URLs with a host are allowed")
    if not limits.block_private_addresses:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceError(
            f"cannot fetch {url}: host {parts.hostname!r} not found ({exc})"
        ) from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global or address.is_multicast:
            raise SourceError(
                f"refused {url}: {parts.hostname} is a private, loopback or link-local address "
                f"({address}); to allow it set block_private_addresses to false (vidtt.limits, "
                "a config's limits, or VIDTT_LIMIT_BLOCK_PRIVATE_ADDRESSES=0)"
            )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow at most `max_redirects` redirects, checking each new URL like the first."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.followed = 0

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        self.followed += 1
        if self.followed > self.limits.max_redirects:
            raise SourceError(
                f"{req.full_url} redirected more than "
                f"{self.limits.max_redirects} times; pass the final URL"
            )
        check_url(newurl, self.limits)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@contextmanager
def download(url: str, limits: Limits | None = None) -> Iterator[IO[bytes]]:
    """Fetch `url` into a spooled temporary file (memory first, an unlinked file after)."""
    limits = limits or limits_module.current()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        _fetch_into(url, spool, limits)
        spool.seek(0)
        yield spool
    finally:
        spool.close()


def _fetch_into(url: str, out: IO[bytes], limits: Limits) -> None:
    check_url(url, limits)
    opener = urllib.request.build_opener(_CheckedRedirects(limits))
    request = urllib.request.Request(url, headers={"User-Agent": "vidtt"})
    started = time.monotonic()
    received = 0
    try:
        with opener.open(request, timeout=limits.connect_timeout) as response:
            _set_read_timeout(response, limits.read_timeout)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_download_bytes:
                raise LimitError(_too_big(url, limits, int(declared)))
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > limits.max_download_bytes:
                    raise LimitError(_too_big(url, limits, received))
                if time.monotonic() - started > limits.download_seconds:
                    raise LimitError(
                        f"downloading {url} took over {limits.download_seconds:g} "
                        "s; download it yourself and pass the file"
                    )
                out.write(chunk)
    except (SourceError, LimitError):
        raise
    except urllib.error.HTTPError as exc:
        raise SourceError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(exc, TimeoutError) or "timed out" in str(reason):
            reason = "no answer in time (see vidtt.limits connect_timeout and read_timeout)"
        raise SourceError(f"cannot fetch {url}: {reason}") from None
    if received == 0:
        raise DecodeError(f"{url} returned no data")


def _set_read_timeout(response: Any, seconds: float) -> None:
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _too_big(url: str, limits: Limits, size: int) -> str:
    return (
        f"{url} is larger than the {limits.max_download_bytes} byte limit ({size} bytes "
        "seen); download it yourself or raise vidtt.limits max_download_bytes"
    )
