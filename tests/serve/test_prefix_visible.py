"""The prefix cache as a `vidtt serve` client and operator see it: `usage.prompt_tokens_details
.cached_tokens` in chat completions (streamed or not), and the `vidtt_prefix_cache_*` metrics,
on real server processes on 127.0.0.1 (the cache on, and `--no-prefix-cache`)."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from serving import Samples, scrape, serve_process, value  # noqa: E402

pytestmark = pytest.mark.slow
CHAT = "/v1/chat/completions"
MIB = 1024 * 1024
SHORT, LONGER = "What is shown?", "What is shown in this video, and what colours are there?"


class Server:
    """A running `vidtt serve`: chat requests about its media folder's videos, its metrics."""

    def __init__(self, base: str, media: Path) -> None:
        self.base, self.media = base, media

    def ask(self, name: str, question: str, **extra: Any) -> dict[str, Any]:
        body = {"messages": messages(self.media / name, question), "temperature": 0, **extra}
        response = httpx.post(self.base + CHAT, json=body, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def stream(self, name: str, question: str) -> list[dict[str, Any]]:
        """The chunks of a streamed answer with `stream_options.include_usage`."""
        body = {
            "messages": messages(self.media / name, question),
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        chunks = []
        with httpx.stream("POST", self.base + CHAT, json=body, timeout=120) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunks.append(json.loads(line[len("data: ") :]))
        return chunks

    def scrape(self) -> Samples:
        return scrape(self.base)


def messages(path: Path, question: str) -> list[dict[str, Any]]:
    clip = {"type": "video_url", "video_url": {"url": f"file://{path}"}}
    return [{"role": "user", "content": [clip, {"type": "text", "text": question}]}]


def cached(body: dict[str, Any]) -> int:
    return int(body["usage"]["prompt_tokens_details"]["cached_tokens"])


@pytest.fixture(scope="module")
def media(videos, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("prefix-media")
    for name in ("h264", "vp9", "mpeg4", "h264_gop"):
        shutil.copy(videos[name], folder / videos[name].name)
    return folder


@contextlib.contextmanager
def started(model: Path, media: Path, log: Path, *extra: str) -> Iterator[Server]:
    args = ["--frames", "2", "--max-new-tokens", "4", "--allowed-local-media-path", str(media)]
    with serve_process(model, log, *args, *extra) as base:
        yield Server(base, media)


@pytest.fixture(scope="module")
def on(llava_dir, media, tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("prefix-on") / "server.log"
    with started(llava_dir, media, log, "--prefix-cache-mb", "64") as server:
        yield server


@pytest.fixture(scope="module")
def off(llava_dir, media, tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("prefix-off") / "server.log"
    with started(llava_dir, media, log, "--no-prefix-cache") as server:
        yield server


def test_a_second_question_continues_from_the_first(on) -> None:
    """Two questions about one video: the first computes its start (a miss, nothing cached),
    the second continues from it (a hit): every visual token is reused, and only the part of
    its question that differs is new."""
    before = on.scrape()
    first = on.ask("h264.mp4", SHORT)
    second = on.ask("h264.mp4", LONGER)
    assert cached(first) == 0
    start = cached(second)
    usage = second["usage"]
    assert usage["visual_tokens"] <= start < usage["prompt_tokens"]
    # what was reused is a start both prompts share: the longer question's own part is longer
    tail = first["usage"]["prompt_tokens"] - start
    assert 0 < tail < usage["prompt_tokens"] - start
    after = on.scrape()
    grown = {
        name: value(after, name) - value(before, name)
        for name in (
            "vidtt_prefix_cache_hits_total",
            "vidtt_prefix_cache_misses_total",
            "vidtt_prefix_cache_evictions_total",
            "vidtt_prompt_tokens_cached_total",
        )
    }
    assert grown == {
        "vidtt_prefix_cache_hits_total": 1,
        "vidtt_prefix_cache_misses_total": 1,
        "vidtt_prefix_cache_evictions_total": 0,
        "vidtt_prompt_tokens_cached_total": start,
    }
    for name in ("vidtt_prefix_cache_bytes", "vidtt_prefix_cache_blocks"):
        assert value(after, name) > value(before, name), name
    assert value(after, "vidtt_prefix_cache_limit_bytes") == 64 * MIB  # --prefix-cache-mb 64


def test_the_openai_client_reads_cached_tokens(on) -> None:
    client = openai.OpenAI(base_url=f"{on.base}/v1", api_key="none", max_retries=0)
    asked = [
        client.chat.completions.create(
            model=client.models.list().data[0].id,
            messages=messages(on.media / "gop.mp4", question),  # type: ignore[arg-type]
            temperature=0,
        )
        for question in (SHORT, LONGER)
    ]
    details = [answer.usage.prompt_tokens_details for answer in asked]  # type: ignore[union-attr]
    assert details[0].cached_tokens == 0 and details[1].cached_tokens > 0  # type: ignore[union-attr]


def test_streamed_usage_says_what_was_cached(on) -> None:
    """With `include_usage`, the usage chunk (and the finishing one) carries cached_tokens."""
    first = on.ask("vp9.webm", SHORT)
    chunks = on.stream("vp9.webm", LONGER)
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and usage["prompt_tokens_details"]["cached_tokens"] > 0
    finishing = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishing[-1]["usage"] == usage
    assert cached(first) == 0 and usage["prompt_tokens"] > first["usage"]["prompt_tokens"]
    # the first question again, streamed: continued from what the first answer kept
    again = on.stream("vp9.webm", SHORT)[-1]["usage"]
    assert 0 < again["prompt_tokens_details"]["cached_tokens"] < again["prompt_tokens"]


def test_no_prefix_cache_caches_nothing_and_answers_the_same(on, off) -> None:
    """`--no-prefix-cache`: no token cached, no prefix cache metrics (they are absent, not 0),
    and greedy answers equal to those of a server continuing from kept starts."""
    texts = {}
    for name, server in (("on", on), ("off", off)):
        answers = [server.ask("mpeg4.avi", q) for q in (SHORT, LONGER, SHORT)]
        texts[name] = [a["choices"][0]["message"]["content"] for a in answers]
        usages = [a["usage"] for a in answers]
        if name == "off":
            assert [u["prompt_tokens_details"]["cached_tokens"] for u in usages] == [0, 0, 0]
        else:
            assert [cached(a) > 0 for a in answers] == [False, True, True]
    assert texts["on"] == texts["off"]
    found = off.scrape()
    assert not [n for n, _ in found if n.startswith("vidtt_prefix_cache")]
    assert value(found, "vidtt_prompt_tokens_cached_total") == 0
    assert value(found, "vidtt_prompt_tokens_total") > 0
