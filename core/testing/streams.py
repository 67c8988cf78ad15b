"""Live test streams on 127.0.0.1: HLS over HTTP, MPEG-TS over UDP, RTSP, a growing file.

Every source sends the frames of `vidtt.testing.videos.frame_pattern` in real time from a
background daemon thread (frame `n` at start + n / fps, paced on `time.monotonic`; a source
that falls behind catches up and never skips a number), so a reader can tell exactly which
frames it got with `read_frame_number`. H.264 (libx264, ultrafast, zerolatency, yuv420p,
no B-frames, a keyframe every 0.5 s, SPS/PPS repeated before every keyframe).

Each source is a context manager with `start()`, `stop()` (prompt, idempotent: joins its
threads, frees its ports), `restart()` (stop, then serve again at the same URL, frame
numbers going on), and the attributes `url` (what a reader opens), `fps`, `size` (w, h),
`gop` (frames between keyframes), `sent` (frames sent so far, which is also the number the
next frame gets), `sent_times` (frame number -> `time.monotonic()` just after it was sent;
copy it with `dict(...)` before iterating) and `error` (what stopped the sending thread).
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
import socket
import threading
import time
from fractions import Fraction
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from .rtsp import RtspEndpoint, split_annexb
from .videos import frame_pattern

KEYFRAME_SECONDS = 0.5
HOST = "127.0.0.1"

__all__ = ["GrowingFile", "HlsStream", "RtspServer", "UdpStream", "free_port"]

_Source = TypeVar("_Source", bound="_PacedSource")


def free_port(kind: str = "tcp") -> int:
    """A port on 127.0.0.1 that nothing is bound to now (`kind` "tcp" or "udp")."""
    if kind not in {"tcp", "udp"}:
        raise ValueError(f"kind must be 'tcp' or 'udp', not {kind!r}")
    family = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, family) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class _PacedSource:
    """Sends frame n at start + (n - first) / fps from a daemon thread; see the module doc."""

    def __init__(self, fps: float = 10, size: tuple[int, int] = (320, 240)) -> None:
        width, height = int(size[0]), int(size[1])
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"size must be positive and even, not {size!r}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, not {fps!r}")
        self.fps = float(fps)
        self.size = (width, height)
        self.rate = Fraction(fps).limit_denominator(1001)
        self.gop = max(1, round(self.fps * KEYFRAME_SECONDS))
        self.sent = 0
        self.sent_times: dict[int, float] = {}
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._opened = False
        self._run_first = 0  # the first frame number of the current run

    # -- public ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """What a reader opens."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """True while the sending thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def last_sent(self) -> int:
        """The number of the last frame sent (-1 before the first)."""
        return self.sent - 1

    def start(self: _Source) -> _Source:
        """Open the output and start sending (no-op while running). Returns self."""
        if self._thread is not None:
            return self
        self.error = None
        self._halt.clear()
        self._run_first = self.sent
        self._open()
        self._opened = True
        self._thread = threading.Thread(
            target=self._run, name=f"{type(self).__name__}-sender", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending, close the output, free the ports (idempotent)."""
        self._halt.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        if self._opened:
            self._opened = False
            self._close()

    def restart(self) -> None:
        """Stop, then start again at the same URL; frame numbers go on from `sent`."""
        self.stop()
        self.start()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until a reader can open `url` (here: the first frame is out); False if not."""
        return self.wait_sent(self._run_first + 1, timeout)

    def wait_sent(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` frames in all have been sent; False on timeout or error."""
        deadline = time.monotonic() + timeout
        while self.sent < count:
            if self.error is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def __enter__(self: _Source) -> _Source:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- for subclasses ----------------------------------------------------------------

    def _open(self) -> None:
        """Open the output (called by `start()`, in the caller's thread)."""

    def _send(self, index: int, rgb: Any) -> None:
        """Send frame `index` (called from the sending thread)."""
        raise NotImplementedError

    def _close(self) -> None:
        """Close the output (called by `stop()` once the sending thread has ended)."""

    def _run(self) -> None:
        width, height = self.size
        first = self._run_first
        began = time.monotonic()
        try:
            while not self._halt.is_set():
                index = self.sent
                delay = began + (index - first) / self.fps - time.monotonic()
                if delay > 0 and self._halt.wait(delay):
                    break
                self._send(index, frame_pattern(index, width, height))
                self.sent_times[index] = time.monotonic()
                self.sent = index + 1
        except Exception as error:  # the reader sees the stream end; the test sees `error`
            self.error = error

    # -- encoding helpers --------------------------------------------------------------

    def _x264_options(self) -> dict[str, str]:
        return {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={self.gop}:min-keyint={self.gop}:scenecut=0:"
            "repeat-headers=1:bframes=0",
        }

    def _video_frame(self, index: int, rgb: Any, pts: int | None = None) -> Any:
        import av

        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = index if pts is None else pts
        frame.time_base = 1 / self.rate
        return frame

    def _add_stream(self, container: Any) -> Any:
        stream = container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = self.size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = self.gop
        stream.codec_context.max_b_frames = 0
        stream.codec_context.options = self._x264_options()
        return stream


class _MuxedSource(_PacedSource):
    """A source that writes through one PyAV output container (opened by `_open`)."""

    def __init__(self, fps: float, size: tuple[int, int]) -> None:
        super().__init__(fps, size)
        self._container: Any = None
        self._stream: Any = None

    def _open_container(self, target: str, format: str, options: dict[str, str]) -> None:
        import av

        self._container = av.open(target, "w", format=format, options=options)
        try:
            self._stream = self._add_stream(self._container)
        except Exception:
            self._container.close()
            self._container = None
            raise

    def _send(self, index: int, rgb: Any) -> None:
        for packet in self._stream.encode(self._video_frame(index, rgb, self._pts(index))):
            self._container.mux(packet)

    def _pts(self, index: int) -> int:
        return index

    def _close(self) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        try:
            if self.error is None:
                for packet in self._stream.encode():
                    container.mux(packet)
        finally:
            with contextlib.suppress(Exception):
                container.close()
            self._stream = None


class _HlsHandler(SimpleHTTPRequestHandler):
    """Serves the HLS folder: no caching, HLS media types, no log lines."""

    extensions_map = {  # noqa: RUF012 (the base class's attribute, extended)
        **SimpleHTTPRequestHandler.extensions_map,
        ".m3u8": "application/vnd.apple.mpegurl",
        ".ts": "video/mp2t",
    }

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HlsStream(_MuxedSource):
    """A live HLS stream: `live.m3u8` and `liveN.ts` segments in `folder`, over HTTP.

    PyAV's "hls" muxer writes segments of `segment_seconds` (cut at keyframes), keeps
    `list_size` of them in the playlist and deletes older ones; the playlist has no
    EXT-X-ENDLIST until `stop()` (which writes it). A `ThreadingHTTPServer` on 127.0.0.1
    serves the folder at `port` (0 picks a free one at once, so `url` is known before
    `start()`); `url` is `http://127.0.0.1:PORT/live.m3u8`. The playlist appears once the
    first segment is complete (`wait_ready()`; a reader opening earlier gets a 404), and
    readers lag the live edge by at least a segment (FFmpeg's HLS reader starts 3 segments
    from the end unless told `live_start_index`). `restart()` keeps the port and writes a new
    playlist whose segments (and media sequence) are numbered on.
    """

    PLAYLIST = "live.m3u8"

    def __init__(
        self,
        folder: str | Path,
        fps: float = 10,
        size: tuple[int, int] = (320, 240),
        segment_seconds: float = 1.0,
        list_size: int = 6,
        port: int = 0,
    ) -> None:
        super().__init__(fps, size)
        self.folder = Path(folder)
        self.segment_seconds = float(segment_seconds)
        self.list_size = int(list_size)
        self.port = int(port) or free_port("tcp")
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._next_segment = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/{self.PLAYLIST}"

    @property
    def playlist(self) -> Path:
        return self.folder / self.PLAYLIST

    def segments(self) -> list[Path]:
        """The segment files on disk now, in order."""
        found = []
        for path in self.folder.glob("live*.ts"):
            match = re.fullmatch(r"live(\d+)\.ts", path.name)
            if match:
                found.append((int(match.group(1)), path))
        return [path for _, path in sorted(found)]

    def wait_ready(self, timeout: float = 10.0, segments: int = 1) -> bool:
        """Wait until the playlist lists `segments` segments; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.error is None:
            with contextlib.suppress(OSError):
                if self.playlist.read_text().count("#EXTINF") >= segments:
                    return True
            time.sleep(0.05)
        return False

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.stem[4:]) for p in self.segments()]
        self._next_segment = max([self._next_segment - 1, *numbers]) + 1
        for stale in [self.playlist, *self.segments(), *self.folder.glob("live*.tmp")]:
            with contextlib.suppress(OSError):
                stale.unlink()
        handler = functools.partial(_HlsHandler, directory=str(self.folder))
        self._http = ThreadingHTTPServer((HOST, self.port), handler)
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])
        self._http_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="HlsStream-http",
            daemon=True,
        )
        self._http_thread.start()
        options = {
            "hls_time": f"{self.segment_seconds:g}",
            "hls_list_size": str(self.list_size),
            "hls_flags": "delete_segments+temp_file",
            "hls_segment_filename": str(self.folder / "live%d.ts"),
            "start_number": str(self._next_segment),
        }
        try:
            self._open_container(str(self.playlist), "hls", options)
        except Exception:
            self._close_http()
            raise

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._close_http()
            numbers = [int(p.stem[4:]) for p in self.segments()]
            self._next_segment = max([self._next_segment - 1, *numbers]) + 1

    def _close_http(self) -> None:
        server, self._http = self._http, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._http_thread is not None:
            self._http_thread.join(timeout=5)
            self._http_thread = None


class UdpStream(_MuxedSource):
    """MPEG-TS over UDP, pushed to `udp://127.0.0.1:PORT` (a reader listens there).

    `port` None picks a free one (kept by `restart()`). Sending starts whether or not anyone
    listens; a reader that joins syncs on the next keyframe (PAT/PMT go out every 0.1 s), and
    one that keeps listening across `restart()` goes on getting frames. Readers: FFmpeg's
    `udp://...?timeout=MICROSECONDS` makes a read fail once nothing comes (there is no end
    of stream over UDP), and `analyzeduration` (e.g. "500000") shortens the 2 s or so that
    probing a live stream takes by default.
    """

    def __init__(
        self, port: int | None = None, fps: float = 10, size: tuple[int, int] = (320, 240)
    ) -> None:
        super().__init__(fps, size)
        self.port = free_port("udp") if port is None else int(port)

    @property
    def url(self) -> str:
        return f"udp://{HOST}:{self.port}"

    def _open(self) -> None:
        self._open_container(
            f"udp://{HOST}:{self.port}?pkt_size=1316",
            "mpegts",
            {"flush_packets": "1"},
        )


class GrowingFile(_MuxedSource):
    """A video file written in real time: readers see each frame at once (flushed per packet).

    `container` "mpegts" (".ts", the default) or "matroska" (".mkv": a cluster per keyframe,
    so a reader sees data every 0.5 s). `url` is the path. `stop()` ends the file cleanly
    (trailer); the file is written once, so `restart()` is not supported. Readers of the
    growing file need FFmpeg's file options `follow=1` (wait at the end for more) and
    `seekable=0` (otherwise probing seeks to the end to guess the duration, and waits there
    for the timeout); with `follow=1` a reader never sees the end, only its own timeout.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float = 10,
        size: tuple[int, int] = (320, 240),
        container: str = "mpegts",
    ) -> None:
        if container not in {"mpegts", "matroska"}:
            raise ValueError(f"container must be 'mpegts' or 'matroska', not {container!r}")
        super().__init__(fps, size)
        self.path = Path(path)
        self.container = container
        self._written = False

    @property
    def url(self) -> str:
        return str(self.path)

    def restart(self) -> None:
        raise NotImplementedError("a GrowingFile is written once; make a new one")

    def _open(self) -> None:
        if self._written:
            raise RuntimeError("a GrowingFile is written once; make a new one")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        options = {"flush_packets": "1"}
        if self.container == "matroska":
            options["cluster_time_limit"] = str(round(KEYFRAME_SECONDS * 1000))
        self._open_container(str(self.path), self.container, options)
        self._written = True

    def _pts(self, index: int) -> int:
        return index - self._run_first


class RtspServer(_PacedSource):
    """A live RTSP server at `rtsp://127.0.0.1:PORT/live` (see `vidtt.testing.rtsp`).

    Plays over TCP (interleaved) and UDP; H.264 over RTP, SPS/PPS in the SDP and before every
    keyframe, and a client gets packets from the first keyframe after its PLAY. `port` 0
    picks a free one at once (so `url` is known before `start()`; `restart()`, which drops
    every client, keeps it). `clients` is how many are
    connected. `stop()` closes every connection, so clients' reads fail at once. A TCP
    client that stops reading for about 5 s is dropped; it never slows the others. FFmpeg
    clients probe about 3 s before `av.open` returns unless given `analyzeduration`.
    """

    def __init__(
        self,
        fps: float = 10,
        size: tuple[int, int] = (320, 240),
        port: int = 0,
        path: str = "live",
    ) -> None:
        super().__init__(fps, size)
        port = int(port) or free_port("tcp")
        self._endpoint = RtspEndpoint(port=port, host=HOST, path=path, fps=self.fps, size=size)
        self._encoder: Any = None
        self._parameter_sets = False
        self._rtp_base = random.randrange(1, 1 << 31)  # RTP timestamps start at random

    @property
    def url(self) -> str:
        return self._endpoint.url

    @property
    def port(self) -> int:
        return self._endpoint.port

    @property
    def clients(self) -> int:
        """How many RTSP connections are open now."""
        return self._endpoint.clients

    @property
    def playing(self) -> int:
        """How many clients are playing now."""
        return self._endpoint.playing

    def _open(self) -> None:
        import av

        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = self.size
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = 1 / self.rate
        encoder.framerate = self.rate
        encoder.gop_size = self.gop
        encoder.max_b_frames = 0
        encoder.options = self._x264_options()
        self._encoder = encoder
        self._parameter_sets = False
        self._endpoint.open()

    def _send(self, index: int, rgb: Any) -> None:
        for packet in self._encoder.encode(self._video_frame(index, rgb)):
            units = split_annexb(bytes(packet))
            if not self._parameter_sets:
                sps = next((u for u in units if u[0] & 0x1F == 7), None)
                pps = next((u for u in units if u[0] & 0x1F == 8), None)
                if sps is None or pps is None:
                    continue  # nothing is decodable before the first keyframe's headers
                self._endpoint.set_parameter_sets(sps, pps)
                self._parameter_sets = True
            timestamp = self._rtp_base + round(index * 90000 / self.fps)
            self._endpoint.send(units, timestamp, bool(packet.is_keyframe))

    def _close(self) -> None:
        self._endpoint.close()
        self._encoder = None
