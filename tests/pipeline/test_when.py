"""Finding when, end to end with the tiny model made to answer a given text (a sequence bias):
the question asks for times, the answer's spans are read, narrowed by a denser second look,
streamed, printed by `vidtt ask --when` and returned by `vidtt serve`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from commands import console
from serving import serve_process

from vidtt.pipeline.request import parse_request
from vidtt.pipeline.when import WHEN, asking_when
from vidtt.testing import make_video

QUESTION = "When does the square move?"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 seconds at 24 frames a second."""
    return make_video(tmp_path_factory.mktemp("when") / "v.mp4", frames=96, fps=24)


def saying(tokenizer: Any, text: str) -> list[list[Any]]:
    """A sequence bias that makes greedy decoding write `text`, then end."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return [[ids[: k + 1], 1e4 * (k + 1)] for k in range(len(ids))]


def test_the_question_asks_for_times_once() -> None:
    asked = asking_when(parse_request({"videos": ["v.mp4"], "question": QUESTION}))
    assert asked.question == f"{QUESTION}\n{WHEN}"
    assert asking_when(asked).question == asked.question
    chat = parse_request(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "When?"}]}]}
    )
    assert asking_when(chat).messages[0].content[-1].text.endswith(WHEN)
    assert chat.messages[0].content[-1].text == "When?"  # the caller's request is not changed


def test_a_span_is_read_and_narrowed_by_a_denser_look(llava, clip) -> None:
    bias = saying(llava.processor.tokenizer, "1 - 2 seconds")
    answer = llava.ask(str(clip), QUESTION, spans=True, max_new_tokens=12, sequence_bias=bias)
    assert answer.text == "1 - 2 seconds"
    assert [(s.start, s.end, s.text) for s in answer.spans] == [(1.0, 2.0, "1 - 2 seconds")]
    [first] = [used.timestamps for used in answer.videos]
    [looked] = [used.timestamps for used in answer.narrowed]  # one pass, for the one span
    assert len(looked) == len(first) == 4
    assert looked[0] >= 0.0 and looked[-1] <= 3.0  # the span and a frame gap either side
    assert looked[1] - looked[0] < first[1] - first[0]  # denser than the first look
    assert answer.usage.generated_tokens == 2 * len(answer.token_ids)  # both looks counted
    plain = llava.ask(str(clip), QUESTION, max_new_tokens=12, sequence_bias=bias)
    assert plain.spans is None and plain.narrowed == []


def test_no_time_is_no_span_and_no_second_look(llava, clip) -> None:
    bias = saying(llava.processor.tokenizer, "a red square")
    answer = llava.ask(str(clip), QUESTION, spans=True, max_new_tokens=12, sequence_bias=bias)
    assert answer.spans == [] and answer.narrowed == []


def test_a_span_over_most_of_the_video_is_not_looked_at_again(llava, clip) -> None:
    bias = saying(llava.processor.tokenizer, "0 - 4 seconds")
    answer = llava.ask(str(clip), QUESTION, spans=True, max_new_tokens=12, sequence_bias=bias)
    assert [(s.start, s.end) for s in answer.spans] == [(0.0, 4.0)] and answer.narrowed == []


def test_a_long_video_is_narrowed_from_its_timeline(llava, tmp_path) -> None:
    """Strategy segments: the first answer comes from the notes alone (no frames in its
    prompt); the second look samples the video around the span, denser than the notes."""
    video = make_video(tmp_path / "long.mp4", frames=480, fps=24)  # 20 s
    bias = saying(llava.processor.tokenizer, "5 - 7 seconds")
    answer = llava.ask(
        str(video), QUESTION, spans=True, strategy="segments", max_new_tokens=12,
        sequence_bias=bias,
    )  # fmt: skip
    assert answer.strategy == "segments" and answer.videos == []
    assert [(s.start, s.end) for s in answer.spans] == [(5.0, 7.0)]
    [looked] = [used.timestamps for used in answer.narrowed]
    noted = [t for note in answer.segments for t in note.frames]
    assert looked[0] >= 0.0 and looked[-1] <= 7.0 + (noted[1] - noted[0])
    assert looked[1] - looked[0] < noted[1] - noted[0]


def test_a_stream_ends_with_its_spans(llava, clip) -> None:
    bias = saying(llava.processor.tokenizer, "1 - 2 seconds")
    stream = llava.ask(
        str(clip), QUESTION, spans=True, stream=True, max_new_tokens=12, sequence_bias=bias
    )
    assert "".join(stream) == "1 - 2 seconds"
    assert [(s.start, s.end) for s in stream.answer.spans] == [(1.0, 2.0)]
    assert len(stream.answer.narrowed) == 1


def _config(tmp_path: Path, llava_dir: Path, text: str) -> Path:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llava_dir)
    generation = {"max_new_tokens": 12, "sequence_bias": saying(tokenizer, text)}
    config = {"model": str(llava_dir), "backend": "cpu", "dtype": "float32",
              "sampler_options": {"num_frames": 4}, "generation": generation}  # fmt: skip
    path = tmp_path / "pipe.json"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.slow
def test_vidtt_ask_when_prints_the_spans(llava_dir, clip, tmp_path) -> None:
    config = str(_config(tmp_path, llava_dir, "1 - 2 seconds"))
    vtt = console("ask", str(clip), "-q", QUESTION, "--config", config, "--when", "vtt")
    assert vtt.returncode == 0, vtt.stderr
    assert vtt.stdout.startswith("WEBVTT") and "00:00:01.000 --> 00:00:02.000" in vtt.stdout
    lines = console("ask", str(clip), "-q", QUESTION, "--config", config, "--when")
    assert lines.stdout.strip().startswith("0:01.0 - 0:02.0")
    whole = console("ask", str(clip), "-q", QUESTION, "--config", config, "--when", "--json")
    answer = json.loads(whole.stdout)
    assert answer["spans"][0]["start"] == 1.0 and len(answer["narrowed"]) == 1
    silent = str(_config(tmp_path, llava_dir, "a red square"))
    none = console("ask", str(clip), "-q", QUESTION, "--config", silent, "--when", "json")
    assert none.returncode == 0 and none.stdout.strip() == "[]"
    assert "the answer names no time: a red square" in none.stderr
    two = console("ask", str(clip), str(clip), "-q", QUESTION, "--when")
    assert two.returncode == 2 and "--when finds times in one video" in two.stderr


@pytest.mark.slow
def test_vidtt_serve_returns_the_spans(llava_dir, clip, tmp_path) -> None:
    config = _config(tmp_path, llava_dir, "1 - 2 seconds")
    log = tmp_path / "server.log"
    media = ["--allowed-local-media-path", str(clip.parent)]
    with serve_process(llava_dir, log, "--config", str(config), *media) as base:
        content = [{"type": "video_url", "video_url": {"url": f"file://{clip}"}},
                   {"type": "text", "text": QUESTION}]  # fmt: skip
        body = {"model": str(llava_dir), "messages": [{"role": "user", "content": content}]}
        asked = httpx.post(f"{base}/v1/chat/completions", json={**body, "spans": True}, timeout=120)
        plain = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120)
    assert asked.status_code == 200, asked.text
    details = asked.json()["vidtt"]
    assert [(s["start"], s["end"]) for s in details["spans"]] == [(1.0, 2.0)]
    assert len(details["narrowed"]) == 1
    assert "spans" not in plain.json()["vidtt"]
