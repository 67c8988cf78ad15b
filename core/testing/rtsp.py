"""A minimal RTSP server (RFC 2326) for tests: it serves one live H.264 stream over RTP.

Only what FFmpeg's (and most players') RTSP client needs: OPTIONS, DESCRIBE (an SDP with
`sprop-parameter-sets`), SETUP over TCP (`RTP/AVP/TCP;interleaved=0-1`) or UDP
(`client_port=a-b`, answered with `server_port`), PLAY, PAUSE, GET_PARAMETER and
SET_PARAMETER (keep-alives) and TEARDOWN. The caller hands it H.264 access units (Annex B
bytes, as libx264 makes them); it packs them into RTP (RFC 6184: single NAL units and FU-A
fragments) and sends them to every playing client. A client that starts playing gets
packets from the next keyframe on, so it can decode from its first packet.

Stdlib only (sockets and threads); `vidtt.testing.streams.RtspServer` feeds it frames.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import queue
import re
import socket
import struct
import threading
from dataclasses import dataclass, field

RTP_PAYLOAD_TYPE = 96
RTP_CLOCK = 90000
MAX_PAYLOAD = 1400
BACKLOG_SECONDS = 5.0  # a TCP client this far behind (not reading) is dropped
METHODS = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, GET_PARAMETER, SET_PARAMETER, TEARDOWN"


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes `00 00 01` / `00 00 00 01`)."""
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", data)]
    units = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        unit = data[start:end].rstrip(b"\x00") if i + 1 < len(starts) else data[start:end]
        if unit:
            units.append(unit)
    return units


def rtp_payloads(units: list[bytes], max_payload: int = MAX_PAYLOAD) -> list[bytes]:
    """RTP payloads for one access unit: small NAL units whole, big ones as FU-A fragments."""
    payloads = []
    for unit in units:
        if len(unit) <= max_payload:
            payloads.append(unit)
            continue
        indicator = (unit[0] & 0xE0) | 28
        kind = unit[0] & 0x1F
        body = unit[1:]
        step = max_payload - 2
        for offset in range(0, len(body), step):
            header = kind
            if offset == 0:
                header |= 0x80
            if offset + step >= len(body):
                header |= 0x40
            payloads.append(bytes((indicator, header)) + body[offset : offset + step])
    return payloads


@dataclass(eq=False)
class _Client:
    """One RTSP control connection (and the one track it may play)."""

    sock: socket.socket
    address: tuple[str, int]
    session: str
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    tcp: bool = True
    channel: int = 0
    rtp_port: int = 0
    rtcp_port: int = 0
    setup: bool = False
    playing: bool = False
    synced: bool = False  # got a keyframe since PLAY, so it may get the rest
    outbox: queue.Queue[bytes] = field(default_factory=queue.Queue)  # interleaved RTP
    closed: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class RtspEndpoint:
    """Listen on `host:port` (0: pick one, kept by `close()` then `open()`), serve `path`.

    `open()` binds and starts accepting; `set_parameter_sets(sps, pps)` completes the SDP
    (DESCRIBE waits up to `describe_wait` seconds for it); `send(units, timestamp,
    keyframe)` sends one access unit (its NAL units, `timestamp` in 90 kHz ticks);
    `close()` drops every client and frees the ports.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        path: str = "/live",
        fps: float = 10,
        size: tuple[int, int] = (320, 240),
        describe_wait: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.path = "/" + path.strip("/")
        self.fps = fps
        self.size = size
        self.describe_wait = describe_wait
        self._listener: socket.socket | None = None
        self._rtp: socket.socket | None = None
        self._rtcp: socket.socket | None = None
        self._clients: list[_Client] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._sdp_ready = threading.Event()
        self._sps = b""
        self._pps = b""
        self._seq = 0
        self._ssrc = 0x76696474  # "vidt"
        self._sessions = itertools.count(0x1234ABCD)

    @property
    def url(self) -> str:
        return f"rtsp://{self.host}:{self.port}{self.path}"

    @property
    def clients(self) -> int:
        """How many clients are connected now."""
        with self._lock:
            return len(self._clients)

    @property
    def playing(self) -> int:
        """How many clients are playing now."""
        with self._lock:
            return sum(client.playing for client in self._clients)

    def open(self) -> None:
        """Bind the RTSP port (the same one again after `close()`) and the RTP/RTCP ports."""
        self._closing.clear()
        self._sdp_ready.clear()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(16)
            listener.settimeout(0.1)
            self._rtp = _udp_socket(self.host)
            self._rtcp = _udp_socket(self.host)
        except OSError:
            listener.close()
            self._close_udp()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop, "rtsp-accept")
        self._spawn(self._drain_udp, "rtsp-udp")

    def set_parameter_sets(self, sps: bytes, pps: bytes) -> None:
        self._sps, self._pps = sps, pps
        self._sdp_ready.set()

    def sdp(self) -> str:
        sps = base64.b64encode(self._sps).decode()
        pps = base64.b64encode(self._pps).decode()
        profile = self._sps[1:4].hex().upper() if len(self._sps) >= 4 else "42C01E"
        width, height = self.size
        lines = [
            "v=0",
            f"o=- 0 0 IN IP4 {self.host}",
            "s=vidtt test stream",
            f"c=IN IP4 {self.host}",
            "t=0 0",
            "a=tool:vidtt.testing.rtsp",
            "a=control:*",
            f"m=video 0 RTP/AVP {RTP_PAYLOAD_TYPE}",
            f"a=rtpmap:{RTP_PAYLOAD_TYPE} H264/{RTP_CLOCK}",
            f"a=fmtp:{RTP_PAYLOAD_TYPE} packetization-mode=1;profile-level-id={profile};"
            f"sprop-parameter-sets={sps},{pps}",
            f"a=framerate:{self.fps:g}",
            f"a=x-dimensions:{width},{height}",
            "a=control:trackID=0",
        ]
        return "\r\n".join(lines) + "\r\n"

    def send(self, units: list[bytes], timestamp: int, keyframe: bool) -> None:
        """Send one access unit to every playing client (late joiners wait for a keyframe)."""
        payloads = rtp_payloads(units)
        if not payloads:
            return
        with self._lock:
            targets = []
            for client in self._clients:
                if client.playing and (client.synced or keyframe):
                    client.synced = True
                    targets.append(client)
            packets = []
            for i, payload in enumerate(payloads):
                marker = 0x80 if i == len(payloads) - 1 else 0
                header = struct.pack(
                    "!BBHII",
                    0x80,
                    marker | RTP_PAYLOAD_TYPE,
                    self._seq,
                    timestamp & 0xFFFFFFFF,
                    self._ssrc,
                )
                self._seq = (self._seq + 1) & 0xFFFF
                packets.append(header + payload)
        for client in targets:
            if client.tcp:
                self._send_tcp(client, packets)
            else:
                self._send_udp(client, packets)

    def close(self) -> None:
        """Drop every client (their reads fail at once), stop the threads, free the ports."""
        self._closing.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2)
        self._close_udp()

    # -- internals ---------------------------------------------------------------------

    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _close_udp(self) -> None:
        for sock in (self._rtp, self._rtcp):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._rtp = self._rtcp = None

    def _accept_loop(self) -> None:
        listener = self._listener
        while listener is not None and not self._closing.is_set():
            try:
                sock, address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(0.2)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(sock, address, session=f"{next(self._sessions):08X}")
            with self._lock:
                if self._closing.is_set():
                    client.close()
                    return
                self._clients.append(client)
            self._spawn(self._serve, "rtsp-client", client)
            self._spawn(self._write_loop, "rtsp-writer", client)

    def _drain_udp(self) -> None:
        """Read (and drop) what clients send to the server ports: NAT punches, RTCP reports."""
        import select

        while not self._closing.is_set():
            socks = [s for s in (self._rtp, self._rtcp) if s is not None]
            if not socks:
                return
            try:
                readable, _, _ = select.select(socks, [], [], 0.2)
                for sock in readable:
                    sock.recv(65536)
            except (OSError, ValueError):
                return

    def _serve(self, client: _Client) -> None:
        buffer = b""
        try:
            while not self._closing.is_set():
                request, buffer = _take_request(buffer)
                if request is None:
                    try:
                        chunk = client.sock.recv(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    buffer += chunk
                    if len(buffer) > 1 << 20:
                        break
                    continue
                if request == b"":  # an interleaved packet (RTCP receiver report)
                    continue
                if not self._answer(client, request):
                    break
        except OSError:
            pass
        finally:
            self._drop(client)

    def _answer(self, client: _Client, request: bytes) -> bool:
        """Reply to one request; False to close the connection."""
        head = request.decode("latin-1").split("\r\n")
        parts = head[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("RTSP/"):
            self._reply(client, "400 Bad Request", {})
            return False
        method, url = parts[0].upper(), parts[1]
        headers = {}
        for line in head[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        extra: dict[str, str] = {"CSeq": headers.get("cseq", "0")}
        anywhere = method in {"OPTIONS", "GET_PARAMETER", "SET_PARAMETER"}
        if not anywhere and not self._our_path(url):
            self._reply(client, "404 Not Found", extra)
            return True
        if method == "OPTIONS":
            extra["Public"] = METHODS
            self._reply(client, "200 OK", extra)
        elif method == "DESCRIBE":
            if not self._wait_sdp():
                self._reply(client, "503 Service Unavailable", extra)
                return True
            body = self.sdp().encode()
            extra["Content-Base"] = f"{self.url}/"
            extra["Content-Type"] = "application/sdp"
            self._reply(client, "200 OK", extra, body)
        elif method == "SETUP":
            transport = self._setup(client, headers.get("transport", ""))
            if transport is None:
                self._reply(client, "461 Unsupported Transport", extra)
                return True
            extra["Transport"] = transport
            extra["Session"] = f"{client.session};timeout=60"
            self._reply(client, "200 OK", extra)
        elif method in {"PLAY", "PAUSE"}:
            if not client.setup:
                self._reply(client, "455 Method Not Valid in This State", extra)
                return True
            extra["Session"] = client.session
            if method == "PLAY":
                extra["Range"] = "npt=0.000-"
            self._reply(client, "200 OK", extra)
            with self._lock:
                client.playing = method == "PLAY"
                client.synced = False
        elif method in {"GET_PARAMETER", "SET_PARAMETER"}:
            extra["Session"] = client.session
            self._reply(client, "200 OK", extra)
        elif method == "TEARDOWN":
            with self._lock:
                client.playing = False
            extra["Session"] = client.session
            self._reply(client, "200 OK", extra)
            return False
        else:
            extra["Public"] = METHODS
            self._reply(client, "501 Not Implemented", extra)
        return True

    def _wait_sdp(self) -> bool:
        import time

        deadline = time.monotonic() + self.describe_wait
        while not self._sdp_ready.wait(0.1):
            if self._closing.is_set() or time.monotonic() > deadline:
                return False
        return True

    def _our_path(self, url: str) -> bool:
        match = re.match(r"rtsp://[^/]+(/[^?]*)?", url)
        path = (match.group(1) if match else url) or "/"
        path = path.rstrip("/")
        return path == self.path or path.startswith(self.path + "/")

    def _setup(self, client: _Client, transport: str) -> str | None:
        """Take the first transport we can serve; the reply's Transport header, or None."""
        for option in transport.split(","):
            fields = [f.strip() for f in option.split(";")]
            spec = fields[0].upper()
            params = dict(f.partition("=")[::2] for f in fields[1:])
            if "multicast" in (f.lower() for f in fields[1:]):
                continue
            if spec == "RTP/AVP/TCP":
                channels = params.get("interleaved", "0-1")
                first = int(channels.split("-")[0] or 0)
                client.tcp, client.channel, client.setup = True, first, True
                return f"RTP/AVP/TCP;unicast;interleaved={first}-{first + 1}"
            if spec in {"RTP/AVP", "RTP/AVP/UDP"} and "client_port" in params:
                ports = params["client_port"].split("-")
                rtp = int(ports[0])
                rtcp = int(ports[1]) if len(ports) > 1 and ports[1] else rtp + 1
                if self._rtp is None or self._rtcp is None:
                    return None
                server_rtp = self._rtp.getsockname()[1]
                server_rtcp = self._rtcp.getsockname()[1]
                client.tcp, client.rtp_port, client.rtcp_port = False, rtp, rtcp
                client.setup = True
                return (
                    f"RTP/AVP;unicast;client_port={rtp}-{rtcp};"
                    f"server_port={server_rtp}-{server_rtcp};ssrc={self._ssrc:08X}"
                )
        return None

    def _reply(
        self, client: _Client, status: str, headers: dict[str, str], body: bytes = b""
    ) -> None:
        lines = [f"RTSP/1.0 {status}", *(f"{k}: {v}" for k, v in headers.items())]
        lines.append("Server: vidtt-test-rtsp")
        if body:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        with client.write_lock:
            _send_all(client.sock, data, client.closed)

    def _send_tcp(self, client: _Client, packets: list[bytes]) -> None:
        """Queue the packets for the client's writer (never blocks the caller)."""
        if client.outbox.qsize() > BACKLOG_SECONDS * self.fps + 10:
            self._drop(client)
            return
        client.outbox.put(
            b"".join(
                struct.pack("!BBH", 0x24, client.channel, len(packet)) + packet
                for packet in packets
            )
        )

    def _write_loop(self, client: _Client) -> None:
        """Write a TCP client's queued RTP while it reads; drop it when the socket fails."""
        while not client.closed.is_set():
            try:
                data = client.outbox.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                with client.write_lock:
                    _send_all(client.sock, data, client.closed)
            except OSError:
                self._drop(client)
                return

    def _drop(self, client: _Client) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        client.close()

    def _send_udp(self, client: _Client, packets: list[bytes]) -> None:
        sock = self._rtp
        if sock is None:
            return
        for packet in packets:
            with contextlib.suppress(OSError):
                sock.sendto(packet, (client.address[0], client.rtp_port))


def _udp_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    return sock


def _send_all(sock: socket.socket, data: bytes, closed: threading.Event) -> None:
    """`sendall` on a socket with a short timeout, which gives up once `closed` is set."""
    view = memoryview(data)
    while view:
        if closed.is_set():
            raise ConnectionAbortedError("connection closed")
        try:
            sent = sock.send(view)
        except TimeoutError:
            continue
        view = view[sent:]


def _take_request(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Split one request (head and body) or one interleaved packet (returned as b"") off."""
    if buffer.startswith(b"$"):
        if len(buffer) < 4:
            return None, buffer
        length = struct.unpack("!H", buffer[2:4])[0]
        if len(buffer) < 4 + length:
            return None, buffer
        return b"", buffer[4 + length :]
    buffer = buffer.lstrip(b"\r\n")
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None, buffer
    head = buffer[:end]
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(match.group(1)) if match else 0
    if len(buffer) < end + 4 + length:
        return None, buffer
    return head, buffer[end + 4 + length :]
