"""Issue 27, the server's side: huge text refused before tokenizing, every number in its range,
fetches that end on time, one-line media errors, a warning for an open server without a key,
and frame times to the millisecond. A real `vidtt serve` on 127.0.0.1 where a server is
involved."""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving import error_of, http_server, wait_healthy  # noqa: E402
from test_serve import VIDTT, ask, video  # noqa: E402

import vidtt  # noqa: E402
from vidtt.testing.streams import free_port  # noqa: E402

pytestmark = pytest.mark.slow
CONTEXT = 8192  # the tiny model's context: text over 32 characters a token is refused


class Served:
    def __init__(self, base: str, process: subprocess.Popen[Any], log: Path) -> None:
        self.base, self.process, self.log = base, process, log

    def post(self, body: Any = None, raw: str | None = None, timeout: float = 60) -> Any:
        content = raw if raw is not None else json.dumps(body, allow_nan=True)
        return httpx.post(
            f"{self.base}/v1/chat/completions",
            content=content,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from vidtt.testing import make_video

    media = tmp_path_factory.mktemp("media27")
    make_video(media / "clip.mp4", frames=48)
    return media


@pytest.fixture(scope="module")
def server(folder, tmp_path_factory) -> Iterator[Served]:
    from vidtt.testing.models import make_tiny_llava

    model = make_tiny_llava(tmp_path_factory.mktemp("llava-27"), context=CONTEXT)
    port = free_port()
    log = tmp_path_factory.mktemp("serve27") / "server.log"
    args = [
        VIDTT, "serve", "--model", str(model), "--frames", "4", "--max-new-tokens", "4",
        "--host", "127.0.0.1", "--port", str(port), "--allowed-local-media-path", str(folder),
        "--no-access-log",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "VIDTT_API_KEY"}
    env.update(
        VIDTT_BACKEND="cpu",
        VIDTT_LIMIT_BLOCK_PRIVATE_ADDRESSES="0",
        VIDTT_LIMIT_DOWNLOAD_SECONDS="2",
    )
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, log)
        yield Served(base, process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        text = log.read_text()
        assert "Traceback" not in text, text
        assert "warning" not in text.lower(), text  # 127.0.0.1: nothing to warn about


def clip() -> dict[str, Any]:
    return {"type": "video", "video": "clip.mp4"}


# -- 1. huge text ------------------------------------------------------------------------------
def test_huge_text_is_refused_before_tokenizing_and_the_server_stays_up(server) -> None:
    assert server.post({"messages": ask(clip(), question="Warm up?")}).status_code == 200
    before = server.rss()
    for size in (4_000_000, 8_000_000, 400_000):
        started = time.monotonic()
        response = server.post({"messages": ask(clip(), question="x" * size)})
        took = time.monotonic() - started
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "context_length_exceeded"
        assert took < 2.0, f"{size} characters took {took:.1f} s"
        error_of(response, 400, f"{size} characters", f"{CONTEXT} tokens", "shorten")
    grown = (server.rss() - before) >> 20
    assert grown < 200, f"the server grew by {grown} MB"
    started = time.monotonic()
    response = server.post({"messages": ask(clip(), question="What happens?")})
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 10


def test_huge_text_is_refused_in_python_and_batches(llava, videos) -> None:
    context = llava.engine.context_size()
    started = time.monotonic()
    with pytest.raises(vidtt.ContextOverflowError) as error:
        llava.ask(videos["h264"], "x" * (context * 32 + 1))
    message = str(error.value)
    assert "\n" not in message and f"{context} tokens" in message and "shorten" in message
    [found] = llava.batch(
        [{"videos": [videos["h264"]], "question": "y" * (context * 40)}], errors="return"
    )
    assert isinstance(found, vidtt.ContextOverflowError)
    assert time.monotonic() - started < 5
    assert llava.ask(videos["h264"], "What?", max_new_tokens=2).text is not None


# -- 2. every number in its range --------------------------------------------------------------
HUGE = 2**80
BAD_NUMBERS: list[tuple[str, Any]] = [
    *[("seed", v) for v in (HUGE, 2**64, -1, -HUGE, 1.5, math.nan, "7")],
    *[
        (field, v)
        for field in ("temperature", "top_p", "repetition_penalty")
        for v in (10**400, -1, math.nan, math.inf, -math.inf)
    ],
    ("temperature", HUGE),
    ("top_p", HUGE),
    *[("top_k", v) for v in (0, -HUGE, math.nan, math.inf, 2.5)],
    *[
        (field, v)
        for field in ("max_tokens", "max_completion_tokens", "min_tokens")
        for v in (HUGE, 10**400, 2**63, -1, -HUGE, math.nan, math.inf)
    ],
    ("max_tokens", 0),
    *[("n", v) for v in (HUGE, -1, 0, math.nan, math.inf)],
    *[
        (field, v)
        for field in ("num_frames", "fps", "every", "start", "end", "size", "max_side")
        for v in (HUGE, 10**400, -HUGE, math.nan, math.inf, -math.inf)
    ],
    *[(field, v) for field in ("num_frames", "fps", "end", "size", "max_side") for v in (0, -1)],
    *[("max_visual_tokens", v) for v in (0, -1, math.nan, 1.5)],
]


def body_with(field: str, value: Any) -> str:
    """The request as JSON text: NaN and infinities as Python's json writes them, and integers
    too large for a float written out in full."""
    body = json.dumps({"messages": ask(clip(), question="What?")})
    return body[:-1] + f', "{field}": {json.dumps(value, allow_nan=True)}}}'


def test_bad_numbers_are_400_naming_the_field(server) -> None:
    wrong = []
    for field, value in BAD_NUMBERS:
        response = server.post(raw=body_with(field, value))
        error = response.json().get("error") if response.status_code != 200 else None
        if response.status_code != 400 or not error or error["param"] != field:
            wrong.append((field, str(value)[:24], response.status_code, response.text[:160]))
    assert wrong == []
    messages = json.dumps(ask(clip()))
    nested = f'{{"sampler_options": {{"num_frames": {HUGE}}}, "messages": {messages}}}'
    assert server.post(raw=nested).json()["error"]["param"] == "sampler_options.num_frames"
    nested = nested.replace(str(HUGE), "-3")
    assert server.post(raw=nested).json()["error"]["param"] == "sampler_options.num_frames"
    long_number = body_with("seed", 0).replace(": 0}", ": " + "9" * 5000 + "}")
    error_of(server.post(raw=long_number), 400, "not valid JSON")  # past Python's int limit
    assert server.post({"messages": ask(clip()), "seed": 2**64 - 1}).status_code == 200
    assert server.post({"messages": ask(clip()), "seed": 0, "temperature": 1}).status_code == 200
    assert "Traceback" not in server.log.read_text()


def test_generation_options_ranges_in_python() -> None:
    for changes in (
        {"seed": 2**64},
        {"seed": -1},
        {"temperature": math.inf},
        {"top_p": math.nan},
        {"repetition_penalty": math.inf},
        {"num_beams": 10**6},
        {"min_new_tokens": 10**9},
    ):
        with pytest.raises(ValueError):
            vidtt.GenerationOptions(**changes)
    assert vidtt.GenerationOptions(seed=2**64 - 1).seed == 2**64 - 1


# -- 3. and 5. URLs: dripped headers, redirects to data:, web pages, NUL bytes, newlines ----------
class Pages(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/to-data":
            self.reply(302, Location="data:video/mp4;base64,AAAAIGZ0eXBpc29t")
        elif self.path == "/page":
            page = b"<!doctype html><html><body><video src='v.mp4'></video></body></html>"
            self.reply(200, page, Content_Type="text/html; charset=utf-8")
        elif self.path == "/drip":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            self.wfile.flush()
            ends = time.monotonic() + 20
            with contextlib.suppress(OSError):
                while time.monotonic() < ends:
                    time.sleep(0.5)
                    self.wfile.write(b"a")
                    self.wfile.flush()
            self.close_connection = True
        else:
            self.reply(404)


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    with http_server(Pages) as base:
        yield base


def test_media_url_mistakes_are_one_line_400s(server, pages) -> None:
    cases = [
        (video(f"{pages}/to-data"), ("redirects to a data: URL", "http(s)")),
        (video(f"{pages}/page"), ("is a web page (text/html)", "direct link")),
        (video(f"{pages}/v.mp4\nHost: x"), ("malformed URL", "\\n")),
        ({"type": "video", "video": "clip\x00.mp4"}, ("NUL byte",)),
        (video("file:///clip%00.mp4"), ("NUL byte",)),
    ]
    for part, words in cases:
        error = error_of(server.post({"messages": ask(part)}), 400, *words)
        assert "\n" not in error["message"] and "InvalidURL" not in error["message"]
        assert "not a readable video" not in error["message"]
    assert error["param"] == "messages[0].content[0].video_url.url"
    started = time.monotonic()
    error = error_of(server.post({"messages": ask(video(f"{pages}/drip"))}), 400, "took over 2 s")
    assert error["code"] == "limit_exceeded" and time.monotonic() - started < 6
    assert server.post({"messages": ask(clip())}).status_code == 200


# -- 4. an open server without a key -----------------------------------------------------------
def test_open_to_all_rule() -> None:
    from vidtt.serve.app import open_to_all

    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert open_to_all(host, None) is None
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.com"):
        warning = open_to_all(host, None)
        assert warning and host in warning and "API key" in warning and "\n" not in warning
        assert open_to_all(host, "key") is None


def test_serving_on_all_addresses_without_a_key_warns(tmp_path) -> None:
    from vidtt.testing.models import make_tiny_llava

    model = make_tiny_llava(tmp_path / "model")
    env = {k: v for k, v in os.environ.items() if k != "VIDTT_API_KEY"}
    env["VIDTT_BACKEND"] = "cpu"
    args = [VIDTT, "serve", "--model", str(model), "--host", "0.0.0.0", "--port", str(free_port())]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env=env)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in process.stderr], daemon=True)
    reader.start()
    seen, warning = [], None
    try:
        ends = time.monotonic() + 180
        while warning is None and time.monotonic() < ends and process.poll() is None:
            with contextlib.suppress(queue.Empty):
                line = lines.get(timeout=0.5)
                seen.append(line)
                if "warning" in line:
                    warning = line
    finally:
        process.terminate()
        process.wait(30)
    assert warning is not None, "".join(seen)
    assert warning.startswith("vidtt: warning: listening on 0.0.0.0 without an API key")
    assert "--api-key" in warning and warning.count("\n") == 1


# -- 6. frame times to the millisecond ---------------------------------------------------------
def test_timestamps_are_rounded_to_milliseconds(server) -> None:
    body = {"messages": ask(clip()), "fps": 3, "max_tokens": 2}  # frames 1/3 s apart
    response = server.post(body)
    assert response.status_code == 200, response.text
    details = response.json()["vidtt"]
    times = details["videos"][0]["timestamps"]
    assert times == [0.0, 0.333, 0.667, 1.0, 1.333, 1.667]
    assert all(v == round(v, 6) for v in details["timings"].values())
    stream = server.post({**body, "stream": True})
    last = [json.loads(x[6:]) for x in stream.text.splitlines() if x.startswith("data: {")][-1]
    assert last["vidtt"]["videos"][0]["timestamps"] == times
