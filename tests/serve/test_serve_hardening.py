"""`vidtt serve` under attack (issue 35): a `when` pattern built to backtrack does not freeze the
server, an ended watch lets go of its frames, a request answered 504 stops its work (segment
notes, transcription), a stalled upload blocks no other, a still image is refused at upload,
and a tick interval too small is refused. Real servers on 127.0.0.1, driven by httpx."""

from __future__ import annotations

import gc
import os
import socket
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving import error_of, serving, tiny_pipeline  # noqa: E402

from vidtt.testing.videos import make_video  # noqa: E402

pytestmark = pytest.mark.slow
FPS = 10
QUICK = {"window": 1, "reconnect_seconds": 1, "open_timeout": 5}
EVIL = r"(?s)(.|.)*$x"  # Python's re: 2^n steps on an n-character answer; never matches


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The allowed media folder: a 30 s MPEG-TS file (a live source) and a 20 s MP4."""
    folder = tmp_path_factory.mktemp("hardening-media")
    make_video(folder / "live.ts", frames=30 * FPS, fps=FPS, size=(160, 120), codec="libx264")
    make_video(folder / "twenty.mp4", frames=40, fps=2)
    return Path(os.path.realpath(folder))


@pytest.fixture(scope="module")
def watching(llava: Any, media: Path) -> Iterator[tuple[str, Any]]:
    from vidtt.serve.protocol import ServeLimits

    pipe = tiny_pipeline(llava)
    with serving(pipe, limits=ServeLimits(allowed_local_media_path=media)) as served:
        yield served


def post(base: str, path: str, timeout: float = 30, **body: Any) -> Any:
    return httpx.post(base + path, json=body, timeout=timeout)


def test_a_backtracking_when_pattern_does_not_freeze_the_server(watching) -> None:
    base, _ = watching
    batches = httpx.get(f"{base}/health", timeout=5).json()["batches"]
    card = post(
        base, "/v1/watches", source="live.ts", question="What?", when=EVIL, every=0.5,
        duration=4, max_new_tokens=24, **QUICK,
    ).json()  # fmt: skip
    assert card["status"] == "running", card
    ends, slowest = time.monotonic() + 6, 0.0
    while time.monotonic() < ends:
        asked = time.monotonic()
        assert httpx.get(f"{base}/health", timeout=3).status_code == 200
        slowest = max(slowest, time.monotonic() - asked)
        time.sleep(0.2)
    assert slowest < 1.5, slowest
    assert httpx.get(f"{base}/health", timeout=5).json()["batches"] - batches >= 2  # ticks ran
    got = httpx.get(f"{base}/v1/watches/{card['id']}", timeout=5).json()
    assert got["answers"] == 0  # asked, matched against the pattern, never counted

    for pattern in (r"(?<=a)b", r"(a)\1", "(", "a" * 1001):
        refused = post(base, "/v1/watches", source="live.ts", question="What?", when=pattern)
        assert error_of(refused, 400, "when")["param"] == "when"


def test_an_ended_watch_lets_go_of_its_reader_and_frames(watching) -> None:
    base, app = watching
    card = post(
        base, "/v1/watches", source="live.ts", question="What?", every=0.5, max_events=2, **QUICK
    ).json()
    live = app.state.vidtt.watches.watches[card["id"]]
    reader = live.reader
    ring, frames = weakref.ref(reader.ring), reader.ring.window()
    watched = weakref.ref(reader)
    del reader
    ends = time.monotonic() + 20
    while httpx.get(f"{base}/v1/watches/{card['id']}", timeout=5).json()["status"] == "running":
        assert time.monotonic() < ends, "the watch did not end"
        time.sleep(0.1)
    arrays = [weakref.ref(f.array) for f in frames if hasattr(f.array, "__weakref__")]
    del frames
    ends = time.monotonic() + 5
    while (watched() is not None or ring() is not None) and time.monotonic() < ends:
        gc.collect()
        time.sleep(0.1)
    assert watched() is None and ring() is None, "the ended watch still holds its frames"
    assert all(a() is None for a in arrays)
    got = httpx.get(f"{base}/v1/watches/{card['id']}", timeout=5).json()
    assert got["status"] == "ended" and got["answers"] == 2  # the events and figures stay
    assert got["frames_decoded"] >= got["frames_kept"] > 0 and got["source"].endswith("live.ts")
    events = httpx.get(base + card["events_url"], timeout=10).text
    assert events.count("event: answer") == 2 and "event: end" in events


def test_a_tick_interval_too_small_is_refused(watching) -> None:
    base, _ = watching
    refused = post(base, "/v1/watches", source="live.ts", question="What?", every=0.001)
    error = error_of(refused, 400, "every", "0.1")
    assert error["param"] == "every"


# -- work after a 504 ---------------------------------------------------------------------
class Slow:
    """Wraps `pipe.answer`: each batch of notes waits `seconds` first; counts them."""

    def __init__(self, pipe: Any, seconds: float) -> None:
        self.real, self.seconds, self.calls = pipe.answer, seconds, 0
        pipe.answer = self

    def __call__(self, prepared: list[Any], stops: Any = None) -> Any:
        time.sleep(self.seconds)
        self.calls += 1
        return self.real(prepared, stops)


def chat(video: Path, **extra: Any) -> dict[str, Any]:
    content = [
        {"type": "video_url", "video_url": {"url": f"file://{video}"}},
        {"type": "text", "text": "What happens?"},
    ]
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 2, **extra}


SEGMENTS = {
    "strategy": "segments",
    "segment_options": {
        "segment_seconds": 1, "batch_size": 1, "segment_frames": 2, "note_tokens": 2,
        "shots": False,
    },
}  # fmt: skip


@pytest.mark.usefixtures("cache_dir")
def test_a_segments_request_answered_504_stops_making_notes(llava, media: Path) -> None:
    from vidtt.serve.protocol import ServeLimits

    pipe = tiny_pipeline(llava, frames=2)
    slow = Slow(pipe, 0.4)  # 20 notes: 8 s of work
    limits = ServeLimits(allowed_local_media_path=media)
    with serving(pipe, limits=limits, workers=1, request_timeout=2) as (base, _):
        late = post(base, "/v1/chat/completions", **chat(media / "twenty.mp4", **SEGMENTS))
        assert error_of(late, 504, "limit")["code"] == "timeout"
        time.sleep(0.6)  # the note being made when the timeout came
        calls = slow.calls
        time.sleep(1.5)
        assert slow.calls == calls, "the notes went on after the 504"
        assert calls < 10
        answered = post(base, "/v1/chat/completions", **chat(media / "twenty.mp4"))
        assert answered.status_code == 200, answered.text  # the one worker is free again


class Talker:
    """A transcriber that takes 0.1 s a window of audio (40 windows), reporting each as the
    built-in ones do; counts the windows it transcribed."""

    def __new__(cls) -> Any:
        from vidtt.interfaces import Transcriber
        from vidtt.types import Transcript

        class Stub(Transcriber):
            name = "stub"
            windows = 0

            def transcribe(self, source: Any, options: Any, progress: Any = None) -> Any:
                for n in range(40):
                    time.sleep(0.1)
                    self.windows += 1
                    if progress is not None:
                        progress(float(n + 1), 40.0)
                return Transcript(segments=[], transcriber=self.name)

        return Stub()


def test_transcription_stops_when_its_request_times_out(llava, media: Path) -> None:
    from vidtt.pipeline.speech import Speech
    from vidtt.serve.protocol import ServeLimits

    pipe = tiny_pipeline(llava, frames=2)
    talker = Talker()
    pipe._speech = Speech(talker, {}, "cpu", "float32")
    limits = ServeLimits(allowed_local_media_path=media)
    with serving(pipe, limits=limits, workers=1, request_timeout=1.5) as (base, _):
        late = post(base, "/v1/chat/completions", **chat(media / "twenty.mp4", transcript="on"))
        assert error_of(late, 504, "limit")["code"] == "timeout"
        time.sleep(0.3)
        windows = talker.windows
        time.sleep(0.5)
        assert talker.windows == windows < 40, "the transcription went on after the 504"
        answered = post(base, "/v1/chat/completions", **chat(media / "twenty.mp4"))
        assert answered.status_code == 200, answered.text


# -- uploads ------------------------------------------------------------------------------
def stalled_body(base: str, path: str, declared: int, sent: bytes, kind: str) -> socket.socket:
    """A request whose body stops after `sent` (of `declared` bytes): the open socket."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def answer_of(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    try:
        return sock.recv(4096)
    except (TimeoutError, OSError):
        return b""


def test_a_stalled_upload_is_cut_off_and_blocks_no_other(llava, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", frames=10, fps=5, size=(64, 48))
    room = 1 << 20
    settings = {"max_upload_bytes": room, "body_timeout": 1.0}
    with serving(tiny_pipeline(llava), **settings) as (base, app):
        stalled = stalled_body(base, "/v1/uploads", room, b"\0" * (room - 1000), "video/mp4")
        try:
            time.sleep(0.3)  # its bytes hold the uploads' room
            started = time.monotonic()
            while True:
                sent = httpx.post(
                    f"{base}/v1/uploads", content=video.read_bytes(), timeout=10,
                    headers={"Content-Type": "video/mp4"},
                )  # fmt: skip
                if sent.status_code == 201 or time.monotonic() - started > 8:
                    break
                assert sent.status_code == 503, sent.text
                time.sleep(0.2)
            assert sent.status_code == 201, sent.text
            assert time.monotonic() - started < 5
            assert answer_of(stalled, 5).startswith(b"HTTP/1.1 408")
        finally:
            stalled.close()
        assert app.state.vidtt.uploads.usage() == (1, video.stat().st_size)

        body = b'{"messages": [{"role": "user", "content": "hi"}'
        stalled = stalled_body(base, "/v1/chat/completions", 500, body, "application/json")
        try:
            assert answer_of(stalled, 5).startswith(b"HTTP/1.1 408")
        finally:
            stalled.close()
        assert httpx.get(f"{base}/health", timeout=5).json()["in_flight"] == 0


def test_a_still_image_is_refused_at_upload(llava, tmp_path: Path) -> None:
    import io

    from PIL import Image

    with serving(tiny_pipeline(llava)) as (base, app):
        for kind in ("PNG", "JPEG"):
            buffer = io.BytesIO()
            Image.new("RGB", (32, 24), (255, 0, 0)).save(buffer, kind)
            sent = httpx.post(
                f"{base}/v1/uploads", content=buffer.getvalue(), timeout=10,
                headers={"Content-Type": "application/octet-stream"},
            )  # fmt: skip
            error_of(sent, 400, "image, not a video")
        assert app.state.vidtt.uploads.usage() == (0, 0)
        folder = app.state.vidtt.uploads.folder
        assert folder is None or not any(folder.iterdir())
