"""Bounded downloads over http(s): timeouts, a size cap, and nothing left on disk."""

from __future__ import annotations

import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from .errors import DecodeError, SourceError

CHUNK = 1 << 20


@dataclass(frozen=True)
class UrlLimits:
    """Bounds on fetching a video from a URL."""

    max_bytes: int = 2 << 30
    timeout: float = 10.0  # seconds, for connecting and for each read
    deadline: float = 300.0  # seconds for the whole download
    spool_bytes: int = 64 << 20  # kept in memory below this, in an unlinked temp file above


@contextmanager
def download(url: str, limits: UrlLimits) -> Iterator[IO[bytes]]:
    """Fetch `url` into a spooled temporary file (memory first, an unlinked file after)."""
    spool = tempfile.SpooledTemporaryFile(max_size=limits.spool_bytes)
    try:
        _fetch_into(url, spool, limits)
        spool.seek(0)
        yield spool
    finally:
        spool.close()


def _fetch_into(url: str, out: IO[bytes], limits: UrlLimits) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "vidtt"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=limits.timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise SourceError(_too_big(url, limits, int(declared)))
            received = 0
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > limits.max_bytes:
                    raise SourceError(_too_big(url, limits, received))
                if time.monotonic() - started > limits.deadline:
                    raise SourceError(
                        f"downloading {url} took over {limits.deadline:g} s; "
                        "download it yourself and pass the file"
                    )
                out.write(chunk)
    except SourceError:
        raise
    except urllib.error.HTTPError as exc:
        raise SourceError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(exc, TimeoutError) or "timed out" in str(reason):
            reason = f"no answer within {limits.timeout:g} s"
        raise SourceError(f"cannot fetch {url}: {reason}") from None
    if received == 0:
        raise DecodeError(f"{url} returned no data")


def _too_big(url: str, limits: UrlLimits, size: int) -> str:
    return (
        f"{url} is larger than the {limits.max_bytes} byte limit ({size} bytes seen); "
        "download it yourself or raise the limit"
    )
