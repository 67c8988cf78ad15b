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
import re
import stat
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal

from vidtt.errors import SourceError
from vidtt.limits import Limits
from vidtt.media.fetch import resolve_host
from vidtt.urls import printable, redact

LiveKind = Literal["rtsp", "http", "udp", "device", "file"]
PROTOCOLS = {  # what FFmpeg may open itself for each kind
    "rtsp": "rtsp,tcp,udp,rtp",  # to vidtt's relay on 127.0.0.1 (TLS is the relay's), RTP
    "http": "none",  # vidtt opens the source and all it names (`checked.Opener`)
    "udp": "udp,rtp",
}
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
PROBE = {"analyzeduration": "500000", "probesize": "1000000"}  # start within about a second
SCHEMES_HINT = "give rtsp://, rtsps://, http(s):// (HLS), udp://HOST:PORT, /dev/videoN or a file"
CAMERA = re.compile(r"/dev/video\d{1,3}")  # what a camera's path must resolve to


@dataclass(frozen=True)
class LiveSource:
    """A checked live source: what FFmpeg opens (`target`), how, and how messages name it."""

    kind: LiveKind
    target: str
    label: str  # credentials hidden, one line
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    address: str = ""  # a network source's checked address (what vidtt connects to)
    port: int = 0

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
        address, port = _check_host(text, scheme, limits)
        options = {"rtsp_transport": transport, "protocol_whitelist": PROTOCOLS["rtsp"]}
        return LiveSource("rtsp", text, redact(text), None, {**PROBE, **options}, address, port)
    if scheme in ("http", "https"):
        address, port = _check_host(text, scheme, limits)
        options = {"protocol_whitelist": PROTOCOLS["http"], "http_persistent": "0"}
        return LiveSource("http", text, redact(text), None, {**PROBE, **options}, address, port)
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


def _check_host(url: str, scheme: str, limits: Limits) -> tuple[str, int]:
    """The checked address and port of a network source's host (see `resolve_host`)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise SourceError(f"malformed URL '{redact(url)}': {exc}") from None
    if not parts.hostname:
        raise SourceError(f"malformed URL '{redact(url)}': it names no host")
    if any(c.isspace() for c in url):
        raise SourceError(f"malformed URL '{redact(url)}': it contains spaces")
    return resolve_host(url, parts.hostname, port, limits)[0], port


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
    """A camera: a path that is, or links to, a `/dev/videoN` character device. Any other
    path is refused with the same words whether it exists or not."""
    shown = printable(path)
    real = os.path.realpath(path)
    if not CAMERA.fullmatch(real):
        raise SourceError(
            f"{shown} is not a camera: give /dev/videoN (or v4l2:///dev/videoN), a "
            "video4linux2 device (ls /dev/video*)"
        )
    try:
        is_device = stat.S_ISCHR(os.stat(real).st_mode)
    except OSError:
        is_device = False
    if not is_device:
        raise SourceError(
            f"no camera at {shown}: check the device (ls /dev/video*) and that this "
            "user may read it (the video group)"
        )
    return LiveSource("device", real, shown, "v4l2", {})


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


class Connection:
    """One connection to a network, camera or UDP source: its PyAV `container`, and what vidtt
    opened for it (an HTTP opener, an RTSP relay), closed together. `refused` says why the
    download rule cut it off (a redirect, a private host), when it did: reconnecting would
    not help."""

    def __init__(self, source: LiveSource, limits: Limits, timeouts: tuple[float, float]) -> None:
        self.source, self.timeouts = source, timeouts
        self.guard = _guard(source, limits, timeouts)
        self.container: Any = None

    def open(self) -> Connection:
        """Open the container (a one-line `SourceError` when it cannot be); closed on failure."""
        try:
            self.container = _open(self.source, self.guard, self.timeouts)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def refused(self) -> str | None:
        return getattr(self.guard, "refused", None)

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
        if self.guard is not None:
            self.guard.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _guard(source: LiveSource, limits: Limits, timeouts: tuple[float, float]) -> Any:
    """What stands between FFmpeg and the network for `source`: the checked HTTP opener, the
    RTSP relay, or nothing (a camera, a UDP port)."""
    if source.kind == "http":
        from vidtt.media.live.checked import Opener

        return Opener(limits, *timeouts)
    if source.kind == "rtsp":
        from vidtt.media.live.relay import RtspRelay

        parts = urllib.parse.urlsplit(source.target)
        tls = parts.hostname if parts.scheme.lower() == "rtsps" else None
        return RtspRelay(source.label, source.address, source.port, tls, timeouts[0])
    return None


def _open(source: LiveSource, guard: Any, timeouts: tuple[float, float]) -> Any:
    """The PyAV container of `source`, through `guard`."""
    import av

    target, io_open = source.target, None
    if source.kind == "http":
        io_open = guard
    try:
        if source.kind == "rtsp":
            target = _relayed(source.target, guard.start().port)
        return av.open(
            target,
            mode="r",
            format=source.format,
            options=source.options,
            timeout=timeouts,
            metadata_errors="ignore",
            io_open=io_open,
        )
    except (av.error.FFmpegError, OSError) as exc:
        refused = getattr(guard, "refused", None)
        raise SourceError(refused or describe_failure(source, exc, timeouts[0])) from None


def _relayed(url: str, port: int) -> str:
    """`url` pointed at the relay on 127.0.0.1:`port` (credentials, path and query kept)."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urllib.parse.urlunsplit(("rtsp", netloc, parts.path, parts.query, ""))
