"""Live sources: what `vidtt watch` opens, checked as downloads are, and opened with timeouts.

- `rtsp://` and `rtsps://` cameras and servers (transport TCP or UDP);
- `http(s)://` live streams: HLS playlists (`.m3u8`), MPEG-TS or MJPEG over HTTP;
- `udp://HOST:PORT`: MPEG-TS pushed to this machine (vidtt listens there);
- `/dev/videoN` (or `v4l2:///dev/videoN`): a webcam, through video4linux2;
- a path: a file that may still be being written (read as it grows, at its own speed).

Network hosts are resolved and refused when private, loopback or link-local unless limits
allow them (`block_private_addresses`), as downloads are; credentials in a URL never appear in
a message. FFmpeg may open only the protocols a kind of source needs.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal

from vidtt.errors import SourceError
from vidtt.limits import Limits
from vidtt.media.fetch import resolve_host
from vidtt.urls import printable, redact

LiveKind = Literal["rtsp", "http", "udp", "device", "file"]
PROTOCOLS = {  # what FFmpeg may open for each kind (an HLS playlist opens its segments)
    "rtsp": "rtsp,rtsps,tcp,udp,rtp,tls,srtp",
    "http": "http,https,tcp,tls,crypto,hls",
    "udp": "udp,rtp",
}
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
PROBE = {"analyzeduration": "500000", "probesize": "1000000"}  # start within about a second
SCHEMES_HINT = "give rtsp://, rtsps://, http(s):// (HLS), udp://HOST:PORT, /dev/videoN or a file"


@dataclass(frozen=True)
class LiveSource:
    """A checked live source: what FFmpeg opens (`target`), how, and how messages name it."""

    kind: LiveKind
    target: str
    label: str  # credentials hidden, one line
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        """Whether it reads this machine's files, devices or ports (a server allows those only
        where it allows local paths)."""
        return self.kind in ("udp", "device", "file")


def live_source(text: str, limits: Limits, transport: str = "tcp") -> LiveSource:
    """Check `text` and say how to open it; a one-line `SourceError` when it cannot be."""
    if not isinstance(text, str) or not text.strip():
        raise SourceError(f"no live source given: {SCHEMES_HINT}")
    if "\x00" in text or any(c in text for c in "\r\n"):
        raise SourceError(f"the source '{printable(text)}' contains control characters")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("rtsp", "rtsps"):
        _check_host(text, scheme, limits)
        options = {"rtsp_transport": transport, "protocol_whitelist": PROTOCOLS["rtsp"]}
        return LiveSource("rtsp", text, redact(text), None, {**PROBE, **options})
    if scheme in ("http", "https"):
        _check_host(text, scheme, limits)
        return LiveSource(
            "http", text, redact(text), None, {**PROBE, "protocol_whitelist": PROTOCOLS["http"]}
        )
    if scheme == "udp":
        _udp_address(text)
        options = {"protocol_whitelist": PROTOCOLS["udp"], "overrun_nonfatal": "1"}
        return LiveSource("udp", text, redact(text), "mpegts", {**PROBE, **options})
    if scheme == "v4l2":
        return _device(text.split("://", 1)[1])
    if scheme:
        raise SourceError(
            f"the scheme {printable(repr(scheme))} of '{redact(text)}' cannot be watched: "
            f"{SCHEMES_HINT}"
        )
    if text.startswith("/dev/video"):
        return _device(text)
    return _file(text)


def _check_host(url: str, scheme: str, limits: Limits) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise SourceError(f"malformed URL '{redact(url)}': {exc}") from None
    if not parts.hostname:
        raise SourceError(f"malformed URL '{redact(url)}': it names no host")
    if any(c.isspace() for c in url):
        raise SourceError(f"malformed URL '{redact(url)}': it contains spaces")
    resolve_host(url, parts.hostname, port, limits)


def _udp_address(url: str) -> None:
    """A `udp://HOST:PORT` URL names the address to listen on, with a port."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SourceError(f"malformed URL '{redact(url)}': {exc}") from None
    if not port:
        raise SourceError(
            f"'{redact(url)}' names no port: give udp://HOST:PORT, the address the stream is "
            "sent to (udp://0.0.0.0:PORT listens on every interface)"
        )


def _device(path: str) -> LiveSource:
    if not os.path.exists(path):
        raise SourceError(
            f"no camera at {printable(path)}: check the device (ls /dev/video*) and that this "
            "user may read it (the video group)"
        )
    return LiveSource("device", path, printable(path), "v4l2", {})


def _file(path: str) -> LiveSource:
    shown = printable(path)
    full = os.path.expanduser(path)
    if os.path.isdir(full):
        raise SourceError(f"{shown} is a directory: pass a video file inside it")
    if not os.path.exists(full):
        raise SourceError(f"video not found: {shown} (check the path, or start its writer first)")
    if not os.access(full, os.R_OK):
        raise SourceError(f"permission denied reading {shown}")
    return LiveSource("file", full, shown)


def describe_failure(source: LiveSource, exc: BaseException, timeout: float) -> str:
    """What went wrong opening or reading `source`, in one line that says what to check."""
    import av

    if isinstance(exc, (ConnectionRefusedError, av.error.ConnectionRefusedError)):
        return f"cannot connect to {source.label}: connection refused (is the source running?)"
    if isinstance(exc, (av.error.ExitError, av.error.TimeoutError, TimeoutError)):
        return f"{source.label} sent nothing within {timeout:g} s (is the source running?)"
    if isinstance(exc, av.error.HTTPNotFoundError):
        return f"{source.label}: not found (HTTP 404): check the path"
    if isinstance(exc, (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError)):
        return f"{source.label}: access refused: check the credentials"
    if isinstance(exc, av.error.PermissionError):
        return f"{source.label} names a protocol or file vidtt does not open for live sources"
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot read {source.label}: {redact(str(reason))}"


def open_container(source: LiveSource, open_timeout: float, read_timeout: float) -> Any:
    """A PyAV container reading `source` (not a file: see `follow.FollowFile` for those)."""
    import av

    try:
        return av.open(
            source.target,
            mode="r",
            format=source.format,
            options=source.options,
            timeout=(open_timeout, read_timeout),
            metadata_errors="ignore",
        )
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(describe_failure(source, exc, open_timeout)) from None
