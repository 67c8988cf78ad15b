"""`vidtt serve` with `strategy: "segments"` (docs/serve.md, Long videos): a streamed request
sees the progress of its segment notes before its answer, and a client that goes away stops
the notes at the next batch."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from vidtt.testing import make_video

openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")

from serving import tiny_pipeline  # noqa: E402
from test_serve import running  # noqa: E402

pytestmark = pytest.mark.usefixtures("cache_dir")  # each test its own empty cache
QUESTION = "What happens?"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 seconds at 2 fps."""
    return make_video(tmp_path_factory.mktemp("serve-long") / "twenty.mp4", frames=40, fps=2)


class Slow:
    """Wraps `pipe.answer`: each call (a batch of notes) waits `seconds` first; counts them."""

    def __init__(self, pipe: Any, seconds: float) -> None:
        self.real, self.seconds, self.calls = pipe.answer, seconds, 0
        self.lock = threading.Lock()
        pipe.answer = self

    def __call__(self, prepared: list[Any], stops: Any = None) -> Any:
        time.sleep(self.seconds)
        with self.lock:
            self.calls += 1
        return self.real(prepared, stops)


def body(video: Path, segment_seconds: float) -> dict[str, Any]:
    content = [
        {"type": "video_url", "video_url": {"url": f"file://{video}"}},
        {"type": "text", "text": QUESTION},
    ]
    return {
        "messages": [{"role": "user", "content": content}],
        "extra_body": {
            "strategy": "segments",
            "segment_options": {
                "segment_seconds": segment_seconds,
                "batch_size": 1,
                "segment_frames": 2,
                "note_tokens": 4,
                "shots": False,
            },
        },
    }


def serve(llava: Any, video: Path) -> Any:
    from vidtt.serve.protocol import ServeLimits

    pipe = tiny_pipeline(llava, frames=2)
    limits = ServeLimits(allowed_local_media_path=video.parent.resolve())
    return pipe, running(pipe, limits=limits)


def client(base: str) -> Any:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0, timeout=60)


def progress_of(chunk: Any) -> dict[str, Any] | None:
    extra = chunk.model_extra or {}
    return (extra.get("vidtt") or {}).get("progress")


def test_a_stream_shows_the_notes_progress_then_the_answer(llava, video) -> None:
    pipe, server = serve(llava, video)
    Slow(pipe, 0.6)  # a report after each batch (they are 0.5 s apart at most)
    with server as base:
        api = client(base)
        stream = api.chat.completions.create(model=pipe.config.model, stream=True, **body(video, 5))
        reports: list[dict[str, Any]] = []
        pieces: list[str] = []
        last: Any = None
        for chunk in stream:
            report = progress_of(chunk)
            if report is not None:
                assert not pieces, "progress after the answer began"
                assert chunk.choices[0].delta.content in ("", None)
                reports.append(report)
            elif chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            last = chunk
        plain = api.chat.completions.create(model=pipe.config.model, **body(video, 5))
    assert [r["total"] for r in reports] == [4] * len(reports)
    assert [r["done"] for r in reports] == [0, 1, 2, 3, 4]
    assert all(r["stage"] == "segments" for r in reports)
    seconds = [r["seconds"] for r in reports]
    assert seconds == sorted(seconds)
    assert pieces and "".join(pieces) == plain.choices[0].message.content
    for details in (last.model_extra["vidtt"], plain.model_extra["vidtt"]):
        assert details["strategy"] == "segments"
        assert [(s["start"], s["end"]) for s in details["segments"]] == [
            (0.0, 5.0),
            (5.0, 10.0),
            (10.0, 15.0),
            (15.0, 20.0),
        ]
    assert all(s["cached"] for s in plain.model_extra["vidtt"]["segments"])  # notes reused


def test_a_client_that_goes_away_stops_the_notes(llava, video) -> None:
    pipe, server = serve(llava, video)
    slow = Slow(pipe, 0.5)
    with server as base:
        api = client(base)
        stream = api.chat.completions.create(model=pipe.config.model, stream=True, **body(video, 1))
        for chunk in stream:
            report = progress_of(chunk)
            if report is not None and report["done"] >= 1:
                break
        stream.close()
        gone = time.monotonic()
        health = client_health(base)
        while health["in_flight"] and time.monotonic() - gone < 10:
            time.sleep(0.1)
            health = client_health(base)
        stopped = time.monotonic() - gone
        calls = slow.calls
        time.sleep(1.2)
        assert slow.calls == calls, "the notes went on"
        assert health["in_flight"] == 0 and health["cancelled"] == 1
        assert stopped < 5
        assert calls < 20
        # the notes made so far were kept: a second request starts from them
        again = api.chat.completions.create(model=pipe.config.model, stream=True, **body(video, 1))
        first = next(r for r in map(progress_of, again) if r is not None)
        again.close()
    assert first["total"] == 20 and first["done"] >= 1


def client_health(base: str) -> dict[str, Any]:
    import httpx

    return dict(httpx.get(f"{base}/health", timeout=10).json())


def not_a_folder(path: Path) -> Path:
    path.write_text("not a folder")
    return path


def test_the_server_answers_a_long_request_without_a_usable_cache(
    llava: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openai")
    pytest.importorskip("uvicorn")
    from types import SimpleNamespace

    from vidtt.media import store

    said: list[type] = []  # the store's warnings (counted where they are made: a server's
    # threads and catch_warnings, which is process-wide, do not mix)
    record = SimpleNamespace(warn=lambda message, category, **_: said.append(category))
    monkeypatch.setattr(store, "warnings", record)
    video = make_video(tmp_path / "eight.mp4", frames=16, fps=2)
    monkeypatch.setenv("VIDTT_CACHE_DIR", str(not_a_folder(tmp_path / "afile")))
    pipe, server = serve(llava, video)
    with server as base:
        answer = client(base).chat.completions.create(model=pipe.config.model, **body(video, 4))
    assert answer.choices[0].message.content is not None
    assert answer.model_extra["vidtt"]["strategy"] == "segments"
    assert said == [store.CacheWarning]  # one warning, and the answer
