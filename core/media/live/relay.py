"""An RTSP source's control connection, relayed by vidtt so that FFmpeg reaches no other host.

FFmpeg is pointed at a listener on 127.0.0.1 that takes one connection and joins it to the
checked address of the camera (`rtsps`: over TLS, certificate verified, from here). What the
client sends goes through as it is; what the server sends is read message by message
(interleaved `$` packets pass through) and refused, ending the relay, when it would send FFmpeg
elsewhere: a redirect (a 3xx answer, a `REDIRECT` request) or, over UDP, a multicast transport
(a unicast `destination=` names this machine, and FFmpeg does not use it). A `source=` in an
answer's Transport is replaced by the checked address, so RTP and RTCP go to the checked host.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading

from vidtt.urls import printable

MAX_MESSAGE = 1 << 20  # bytes of one RTSP message (head and body) from the server
ACCEPT_SECONDS = 30.0


class RtspRelay:
    """Relays one connection from 127.0.0.1:`port` to (`address`, `server_port`)."""

    def __init__(
        self, label: str, address: str, server_port: int, tls_host: str | None, timeout: float
    ) -> None:
        self.label, self.address, self.server_port = label, address, server_port
        self.tls_host, self.timeout = tls_host, timeout
        self.refused: str | None = None  # why the relay cut the connection, once it did
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()

    def start(self) -> RtspRelay:
        """Connect to the server (an `OSError` when it cannot be), then listen for FFmpeg."""
        server = self._connect()
        self._sockets.append(server)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sockets.append(listener)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(ACCEPT_SECONDS)
        self.port = int(listener.getsockname()[1])
        threading.Thread(
            target=self._serve, args=(listener, server), name="vidtt-rtsp-relay", daemon=True
        ).start()
        return self

    def close(self) -> None:
        """Close the listener and both sides of the relayed connection."""
        self._closed.set()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _serve(self, listener: socket.socket, server: socket.socket) -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            self.close()
            return
        finally:
            with contextlib.suppress(OSError):
                listener.close()  # one connection: nothing else reaches the camera
        self._sockets.append(client)
        for pump, args in ((self._pump, (client, server)), (self._answers, (server, client))):
            threading.Thread(target=pump, args=args, daemon=True).start()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.address, self.server_port), self.timeout)
        try:
            if self.tls_host is not None:
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self.tls_host)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return sock

    def _fail(self, why: str) -> None:
        if self.refused is None:
            self.refused = why
        self.close()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """What FFmpeg sends, passed on as it is."""
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        self.close()

    def _answers(self, server: socket.socket, client: socket.socket) -> None:
        """What the server sends, a message at a time, each checked."""
        buffer = b""
        try:
            while True:
                message, buffer = _take(buffer)
                if message is None:
                    chunk = server.recv(65536)
                    if not chunk:
                        break
                    buffer += chunk
                    if len(buffer) > MAX_MESSAGE:
                        self._fail(f"{self.label} sent an RTSP message over 1 MiB")
                        return
                    continue
                why = self._check(message)
                if why is not None:
                    self._fail(why)
                    return
                client.sendall(self._rewrite(message))
        except OSError:
            pass
        self.close()

    def _check(self, message: bytes) -> str | None:
        """Why `message` from the server is refused, or None."""
        if message.startswith(b"$"):
            return None
        head = message.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        first = head.split("\r\n", 1)[0]
        status = re.match(r"RTSP/\d\.\d\s+(\d{3})", first)
        redirect = (status and status[1].startswith("3")) or first.upper().startswith("REDIRECT ")
        if redirect:
            where = re.search(r"(?im)^location:\s*(.*)$", head)
            target = printable(where[1].strip()[:80]) if where else "elsewhere"
            return (
                f"{self.label} redirects to {target}: vidtt does not follow RTSP redirects "
                "(give the final URL)"
            )
        transport = re.search(r"(?im)^transport:\s*(.*)$", head)
        if transport and re.search(r"(?i)\bmulticast\b", transport[1]):
            return (
                f"{self.label} answered with a multicast transport, which vidtt does not "
                "join: use --transport tcp"
            )
        return None

    def _rewrite(self, message: bytes) -> bytes:
        """`message` with any `source=` of its Transport set to the checked address."""
        if message.startswith(b"$") or b"source" not in message.lower():
            return message
        head, sep, body = message.partition(b"\r\n\r\n")
        pinned = re.sub(
            rb"(?im)^(transport:.*?;\s*source\s*=\s*)[^;\r\n]*",
            lambda m: m[1] + self.address.encode(),
            head,
        )
        return pinned + sep + body


def _take(buffer: bytes) -> tuple[bytes | None, bytes]:
    """The first whole message in `buffer` (an interleaved packet, or a head and its body)
    and the rest; None while it is incomplete."""
    if buffer.startswith(b"$"):
        if len(buffer) < 4:
            return None, buffer
        end = 4 + int.from_bytes(buffer[2:4], "big")
        return (buffer[:end], buffer[end:]) if len(buffer) >= end else (None, buffer)
    split = buffer.find(b"\r\n\r\n")
    if split < 0:
        return None, buffer
    length = re.search(rb"(?im)^content-length:\s*(\d+)", buffer[:split])
    end = split + 4 + (int(length[1]) if length else 0)
    return (buffer[:end], buffer[end:]) if len(buffer) >= end else (None, buffer)
