"""`vidtt serve` end to end: a real server process on 127.0.0.1, driven by the official `openai`
client and httpx; plus an in-process server for the queue, the timeout and URL downloads."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving import error_of, http_files, serving, wait_healthy  # noqa: E402

from vidtt.testing.streams import free_port  # noqa: E402

pytestmark = pytest.mark.slow

VIDTT = str(Path(sys.executable).with_name("vidtt"))
KEY = "test-key-123"
QUESTION = "What is happening in this video?"
MAX_FRAMES = 16


class Served:
    def __init__(self, base: str, process: subprocess.Popen[Any], log: Path, media: Path) -> None:
        self.base, self.process, self.log, self.media = base, process, log, media
        self.client = openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0)

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.base}/health", timeout=5).json()  # type: ignore[no-any-return]

    def post(self, body: Any, key: str | None = KEY, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(
            f"{self.base}/v1/chat/completions", json=body, headers=headers, timeout=60, **kwargs
        )


@pytest.fixture(scope="module")
def media(videos, tmp_path_factory) -> Path:
    """The allowed media folder: two videos, an image, and a symlink that leads out."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("media")
    for name in ("h264", "vp9"):
        (folder / videos[name].name).write_bytes(videos[name].read_bytes())
    Image.new("RGB", (40, 30), (200, 30, 30)).save(folder / "red.png")
    secret = tmp_path_factory.mktemp("outside") / "secret.mp4"
    secret.write_bytes(videos["h264"].read_bytes())
    (folder / "escape.mp4").symlink_to(secret)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The tiny llava-interleave-like model with room for long answers (8192 tokens)."""
    from vidtt.testing.models import make_tiny_llava

    return make_tiny_llava(tmp_path_factory.mktemp("llava-8k"), context=8192)


@pytest.fixture(scope="module")
def server(model_dir, media, tmp_path_factory) -> Iterator[Served]:
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    args = [
        VIDTT, "serve", "--model", str(model_dir), "--frames", "4", "--max-new-tokens", "8",
        "--host", "127.0.0.1", "--port", str(port), "--allowed-local-media-path", str(media),
        "--max-frames", str(MAX_FRAMES), "--max-body-mb", "1", "--no-access-log",
    ]  # fmt: skip
    env = {**os.environ, "VIDTT_BACKEND": "cpu", "VIDTT_API_KEY": KEY}
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, log)
        yield Served(base, process, log, media)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        assert "Traceback" not in log.read_text(), log.read_text()


def video(url: str) -> dict[str, Any]:
    return {"type": "video_url", "video_url": {"url": url}}


def ask(*parts: dict[str, Any], question: str = QUESTION) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*parts, {"type": "text", "text": question}]}]


def data_url(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def create(served: Served, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
    kwargs.setdefault("max_tokens", 8)
    kwargs.setdefault("temperature", 0)
    return served.client.chat.completions.create(
        model=served.client.models.list().data[0].id, messages=messages, **kwargs
    )


def test_models_health_and_plain_answer(server, media) -> None:
    assert server.health()["status"] == "ok"
    [model] = server.client.models.list().data
    assert model.id and model.owned_by == "vidtt"
    answer = create(server, ask(video(f"file://{media / 'h264.mp4'}")))
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = answer.usage
    assert usage.completion_tokens <= 8 and usage.total_tokens == (
        usage.prompt_tokens + usage.completion_tokens
    )
    assert usage.model_extra["visual_tokens"] == 64  # 4 frames of 16 tokens
    assert len(answer.vidtt["videos"][0]["indices"]) == 4
    relative = create(server, ask({"type": "video", "video": "h264.mp4"}))
    assert relative.choices[0].message.content == choice.message.content


def test_stream_joins_to_the_plain_answer(server, media) -> None:
    messages = ask(video(f"file://{media / 'h264.mp4'}"))
    plain = create(server, messages, max_tokens=12)
    chunks = list(
        create(server, messages, max_tokens=12, stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finished] == [plain.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert len({c.id for c in chunks}) == 1
    raw = server.post({"messages": messages, "stream": True, "max_tokens": 3})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_two_videos_and_image_plus_video(server, media) -> None:
    two = create(server, ask(video(f"file://{media / 'h264.mp4'}"), video("vp9.webm")))
    assert [len(v["indices"]) for v in two.vidtt["videos"]] == [4, 4]
    assert two.usage.model_extra["visual_tokens"] == 128
    image = {"type": "image_url", "image_url": {"url": data_url(media / "red.png", "image/png")}}
    clip = video(data_url(media / "h264.mp4", "video/mp4"))
    mixed = create(server, ask(image, clip, question="Is the picture in the video?"))
    assert mixed.usage.model_extra["visual_tokens"] == 16 + 64
    assert mixed.choices[0].message.content


def test_per_request_sampling_fields(server) -> None:
    messages = ask({"type": "video", "video": "h264.mp4"})
    two = create(server, messages, extra_body={"num_frames": 2})
    assert len(two.vidtt["videos"][0]["indices"]) == 2
    assert two.usage.model_extra["visual_tokens"] == 32
    timed = create(server, messages, extra_body={"fps": 2, "start": 0.5, "end": 1.5})
    times = timed.vidtt["videos"][0]["timestamps"]
    assert times and all(0.5 <= t <= 1.5 for t in times) and len(times) <= 3
    small = create(server, messages, extra_body={"num_frames": 3, "max_side": 32})
    assert len(small.vidtt["videos"][0]["indices"]) == 3
    picked = create(server, messages, extra_body={"sampler": "interval", "every": 0.5})
    assert picked.vidtt["videos"][0]["sampler"] == "interval"
    assert picked.vidtt["videos"][0]["timestamps"] == [0.0, 0.5, 1.0, 1.5]


def test_client_mistakes_are_openai_errors(server, media) -> None:
    clip = video("h264.mp4")
    for url, words in [
        ("http://127.0.0.1:9/v.mp4", ("private",)),
        ("ftp://example.com/v.mp4", ("scheme",)),
        ("http://", ("malformed",)),
        ("data:video/mp4;base64,@@@", ("base64",)),
    ]:
        error_of(server.post({"messages": ask(video(url))}), 400, *words)
    error = error_of(
        server.post({"messages": ask({"type": "input_audio", "input_audio": {}})}),
        400,
        "input_audio",
    )
    assert error["param"] == "messages[0].content[0].type"
    error = error_of(server.post({"messages": ask(clip), "num_frames": 40}), 400, "limit")
    assert error["code"] == "too_many_frames"
    error = error_of(server.post({"messages": ask(clip), "fps": 24}), 400, "48 frames")
    assert error["code"] == "too_many_frames" and error["param"] == "messages"
    error = error_of(server.post({"messages": ask(clip), "sampler": "nope"}), 400, "nope")
    assert error["code"] == "unknown_name_error" and error["param"] == "sampler"
    for outside in ("/etc/passwd", "../outside/secret.mp4", "escape.mp4", "file:///etc/hosts"):
        error = error_of(server.post({"messages": ask(video(outside))}), 400, "outside")
        assert error["code"] == "local_path_not_allowed"
    error_of(server.post({"messages": ask(clip), "n": 2}), 400, "n=1")
    error_of(server.post({"messages": ask(clip), "max_tokens": 0}), 400, "max_tokens")
    error_of(server.post({"messages": ask(clip), "temperature": 3}), 400, "temperature")
    error_of(server.post({"messages": ask(clip), "num_frame": 3}), 400, "num_frames")
    error_of(server.post({"messages": ask(clip), "model": "gpt-4o"}), 404, "gpt-4o")
    error_of(server.post({"messages": ask(clip), "stream_options": {}}), 400, "stream")
    error_of(server.post({"messages": ask(clip), "sampler": "nope"}), 400, "nope")
    error_of(server.post({"messages": []}), 400, "messages")
    error_of(server.post({"messages": ask(clip, question=" ")}), 400, "text")
    error_of(server.post(None, content=b"{not json"), 400, "JSON")
    error_of(server.post(None, content=b"[" * 100_000), 400, "JSON")
    big = {"messages": ask(video("data:video/mp4;base64," + "A" * (1 << 20) + "="))}
    error_of(server.post(big), 413, "limit")
    error_of(server.post({"messages": ask(clip)}, key=None), 401, "Bearer")
    error_of(server.post({"messages": ask(clip)}, key="wrong"), 401, "incorrect")
    error_of(httpx.get(f"{server.base}/v1/models", timeout=5), 401)
    error_of(httpx.get(f"{server.base}/v1/nothing", timeout=5), 404)
    with pytest.raises(openai.BadRequestError):
        create(server, ask(clip), n=2)
    bad = openai.OpenAI(base_url=f"{server.base}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="m", messages=ask(clip))
    assert server.health()["status"] == "ok"


def test_concurrent_requests_are_batched_and_equal_sequential_answers(server) -> None:
    """32 requests from 8 clients: each answer is the greedy answer it gets alone."""
    questions = [QUESTION, "Which colours?", "Describe the motion in detail.", "Count things."]
    cases = [(name, q) for name in ("h264.mp4", "vp9.webm") for q in questions]

    def one(case: tuple[str, str]) -> str:
        answer = create(server, ask({"type": "video", "video": case[0]}, question=case[1]))
        return str(answer.choices[0].message.content)

    alone = {case: one(case) for case in cases}
    before = server.health()
    work = [cases[i % len(cases)] for i in range(32)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, work))
    assert answers == [alone[case] for case in work]
    after = server.health()
    assert after["answered"] - before["answered"] == 32
    assert after["batches"] - before["batches"] < 32  # some were generated together
    assert after["in_flight"] == 0 and after["failed"] == before["failed"]


def test_client_disconnect_stops_generation(server) -> None:
    long = {"messages": ask({"type": "video", "video": "h264.mp4"}), "max_tokens": 8000}
    long["min_tokens"] = 8000  # many seconds of generation if nothing stopped it
    before = server.health()
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream(
        "POST", f"{server.base}/v1/chat/completions", json={**long, "stream": True},
        headers=headers, timeout=30,
    ) as response:  # fmt: skip
        lines = response.iter_lines()
        got = [next(lines) for _ in range(6)]
        assert any('"content"' in line for line in got)
    with pytest.raises(httpx.ReadTimeout):  # a plain request whose client gives up
        httpx.post(f"{server.base}/v1/chat/completions", json=long, headers=headers, timeout=1.0)
    started = time.monotonic()
    answer = create(server, ask({"type": "video", "video": "h264.mp4"}))
    assert answer.choices[0].message.content and time.monotonic() - started < 5
    ends = time.monotonic() + 5
    while (health := server.health())["in_flight"] and time.monotonic() < ends:
        time.sleep(0.1)
    assert health["in_flight"] == 0
    assert health["cancelled"] - before["cancelled"] == 2


def test_greedy_answer_equals_vidtt_ask(server, model_dir, media) -> None:
    path = media / "vp9.webm"
    asked = subprocess.run(
        [VIDTT, "ask", str(path), "-q", QUESTION, "--model", str(model_dir), "--frames", "4",
         "--max-new-tokens", "10", "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "VIDTT_BACKEND": "cpu"},
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    expected = json.loads(asked.stdout)
    served = create(server, ask(video(f"file://{path}")), max_tokens=10)
    assert served.choices[0].message.content == expected["text"]
    assert served.usage.completion_tokens == expected["usage"]["generated_tokens"]
    assert served.vidtt["videos"][0]["indices"] == expected["videos"][0]["indices"]


def test_sigterm_finishes_in_flight_requests(server) -> None:
    """Last: stops the module's server."""
    body = {"messages": ask({"type": "video", "video": "h264.mp4"}), "max_tokens": 2000}
    body["min_tokens"] = 2000
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(server.post, body)
        ends = time.monotonic() + 10
        while server.health()["in_flight"] == 0 and time.monotonic() < ends:
            time.sleep(0.02)
        server.process.send_signal(signal.SIGTERM)
        response = pending.result(60)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 2000
    # uvicorn stops, then raises the signal it caught again: the exit status a shell expects
    assert server.process.wait(30) == 128 + signal.SIGTERM
    log = server.log.read_text()
    assert "Traceback" not in log and "vidtt: terminated" in log


# -- in process: a full queue, the timeout, http(s) downloads --------------------------------
@contextlib.contextmanager
def running(pipeline: Any, **settings: Any) -> Iterator[str]:
    with serving(pipeline, **settings) as (base, _):
        yield base


@pytest.fixture(scope="module")
def local_pipeline(llava):
    """The shared tiny model, allowed to fetch from 127.0.0.1."""
    import vidtt

    return vidtt.Pipeline(
        model=llava.config.model,
        engine=llava.engine,
        sampler_options={"num_frames": 4},
        generation={"max_new_tokens": 4},
        limits={"block_private_addresses": False},
    )


def test_full_queue_is_503_and_slow_requests_time_out(local_pipeline) -> None:
    body = {"messages": ask({"type": "video", "video": "file:///nonexistent"})}
    with running(local_pipeline, max_queue=1, request_timeout=1.5) as base:
        url = f"{base}/v1/chat/completions"
        clip = {"messages": ask({"type": "image_url", "image_url": {"url": red_png()}})}
        engine_lock = local_pipeline.engine._lock
        with engine_lock, ThreadPoolExecutor(1) as pool:  # the engine is busy
            waiting = pool.submit(httpx.post, url, json=clip, timeout=30)
            ends = time.monotonic() + 10
            while httpx.get(f"{base}/health").json()["in_flight"] == 0:
                assert time.monotonic() < ends
                time.sleep(0.02)
            busy = httpx.post(url, json=body, timeout=30)
            error_of(busy, 503, "busy")
            assert busy.headers["retry-after"] == "1"
            error_of(waiting.result(30), 504, "1.5 s")
        answer = httpx.post(url, json=clip, timeout=30)
        assert answer.status_code == 200, answer.text
        health = httpx.get(f"{base}/health").json()
        assert health["refused"] == 1 and health["timed_out"] == 1 and health["in_flight"] == 0


def red_png() -> str:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (255, 0, 0)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_http_urls_are_fetched(local_pipeline, media) -> None:
    with http_files(media) as files, running(local_pipeline) as base:
        body = {
            "messages": ask(
                video(f"{files}/h264.mp4"),
                {"type": "image_url", "image_url": {"url": f"{files}/red.png"}},
            ),
            "max_tokens": 4,
        }
        answer = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["usage"]["visual_tokens"] == 64 + 16
        missing = {"messages": ask(video(f"{files}/missing.mp4"))}
        error_of(httpx.post(f"{base}/v1/chat/completions", json=missing, timeout=60), 400, "404")


@pytest.mark.parametrize(
    ("hidden", "named"),
    [(["fastapi"], "fastapi"), (["prometheus_client", "uvicorn"], "uvicorn, prometheus_client")],
)
def test_missing_serve_extra_is_one_line(hidden: list[str], named: str) -> None:
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({hidden!r}))\n"
        "from vidtt.cli import main; sys.exit(main(['serve']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"vidtt: error: vidtt serve needs the serve extra ({named} not installed): "
        "pip install 'vidtt[serve]'"
    )
