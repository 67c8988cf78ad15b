"""`Request`: one model for batch, run and server requests; every mistake named, nothing guessed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidtt.errors import OptionsError
from vidtt.media.frame_cache import FrameCache, source_key
from vidtt.pipeline.request import Request, parse_line, parse_request
from vidtt.types import Clip, TextPart, VideoInfo, VideoPart, VideoSource


def test_top_level_options_go_to_their_sections() -> None:
    request = parse_request(
        {
            "id": "q",
            "video": "a.mp4",
            "question": "What?",
            "num_frames": 4,
            "max_side": 224,
            "max_new_tokens": 7,
            "generation": {"temperature": 0.5, "do_sample": True},
            "sampler_options": {"start": 1.0},
        }
    )
    assert request.videos == ["a.mp4"]
    assert request.sampler_options == {"start": 1.0, "num_frames": 4, "max_side": 224}
    assert request.generation == {"temperature": 0.5, "do_sample": True, "max_new_tokens": 7}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"videos": ["a.mp4"], "qestion": "What?"},
            "unknown key 'qestion' (did you mean 'question'?)",
        ),
        ({"videos": ["a.mp4"], "zzz": 1}, "unknown key 'zzz'; known keys:"),
        ({"question": "What?"}, 'the request has no videos: add "videos"'),
        ({"videos": ["a.mp4"]}, 'the request has no question: add "question"'),
        ({"videos": ["a.mp4"], "question": "  "}, "the request has no question"),
        ({"video": "a", "videos": ["b"], "question": "q"}, 'give "video" or "videos", not both'),
        ({"videos": ["a.mp4"], "question": 5}, "question"),
        ({"videos": ["a.mp4"], "question": "q", "generation": 3}, "generation must be an object"),
        (
            {"videos": ["a"], "question": "q", "messages": [{"role": "user", "content": "hi"}]},
            "give messages, or videos and a question, not both",
        ),
        ({"messages": []}, "the conversation is empty"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video", "video": "a"}]}]},
            "the conversation has no text",
        ),
        (
            {
                "videos": ["a.mp4"],
                "question": "q",
                "nest": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
            },
            "nested more than 32 levels deep",
        ),
    ],
)
def test_mistakes_are_named(data: dict, message: str) -> None:
    with pytest.raises(OptionsError) as caught:
        parse_request(data).conversation()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_messages_requests_become_the_conversation() -> None:
    content = [{"type": "video", "video": "a.mp4"}, {"type": "text", "text": "And then?"}]
    request = parse_request({"messages": [{"role": "user", "content": content}]})
    [message] = request.conversation()
    assert isinstance(message.content[0], VideoPart) and isinstance(message.content[1], TextPart)


def test_relative_paths_resolve_against_a_base(tmp_path: Path) -> None:
    request = parse_request(
        {"videos": ["clips/a.mp4", "/abs/b.mp4", "http://example.com/c.mp4"], "question": "q"}
    )
    rebased = request.with_base(tmp_path)
    assert rebased.videos == [
        str(tmp_path / "clips/a.mp4"),
        "/abs/b.mp4",
        "http://example.com/c.mp4",
    ]
    content = [{"type": "image", "image": "x.png"}, {"type": "text", "text": "q"}]
    chat = parse_request({"messages": [{"role": "user", "content": content}]}).with_base(tmp_path)
    assert chat.messages[0].content[0].image == str(tmp_path / "x.png")


@pytest.mark.parametrize(
    ("line", "rid", "message"),
    [
        ("not json", 3, "line 3 is not JSON"),
        ("[1, 2]", 3, "line 3 must be a JSON object"),
        ("[" * 100_000 + "]" * 100_000, 3, "line 3 is nested too deeply"),
        ('{"id": [1], "videos": ["a"], "question": "q"}', 3, "id must be a string or an integer"),
        ('{"id": "x", "videos": ["a"], "qestion": "q"}', "x", "did you mean 'question'"),
    ],
)
def test_lines_give_an_id_and_an_error(line: str, rid: object, message: str) -> None:
    got_id, got = parse_line(line, 3)
    assert got_id == rid and isinstance(got, str) and message in got


def test_a_good_line() -> None:
    rid, request = parse_line(json.dumps({"id": 7, "videos": "a.mp4", "question": "q"}), 1)
    assert rid == 7 and isinstance(request, Request) and request.videos == ["a.mp4"]


def clip(n: int, size: int = 10) -> Clip:
    import numpy as np

    info = VideoInfo(width=size, height=size)
    array = np.zeros((n, size, size, 3), np.uint8)
    return Clip(array=array, indices=range(n), timestamps=range(n), info=info)


def test_frame_cache_bounds_its_bytes_and_shares_one_decode() -> None:
    import threading

    cache = FrameCache(max_bytes=2 * clip(1).nbytes)
    calls: list[str] = []
    started = threading.Event()

    def make(key: str) -> Clip:
        calls.append(key)
        started.wait(1)
        return clip(1)

    threads = [threading.Thread(target=cache.get, args=("a", lambda: make("a"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.set()
    for thread in threads:
        thread.join()
    assert calls == ["a"] and cache.misses == 1 and cache.hits == 3
    cache.get("b", lambda: clip(1))
    cache.get("c", lambda: clip(1))  # evicts "a", the least recently used
    assert len(cache) == 2 and cache.nbytes == 2 * clip(1).nbytes
    cache.get("a", lambda: make("a"))
    assert calls == ["a", "a"]
    cache.get("big", lambda: clip(3))  # larger than the whole cache: not kept
    assert "big" not in cache._clips


def test_frame_cache_errors_reach_every_waiter_and_are_not_kept() -> None:
    cache = FrameCache()

    def fail() -> Clip:
        raise OptionsError("broken")

    for _ in range(2):
        with pytest.raises(OptionsError):
            cache.get("k", fail)
    assert len(cache) == 0 and cache.misses == 2


def test_source_keys_follow_content(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(b"one")
    first = source_key(VideoSource.of(path))
    path.write_bytes(b"other")
    assert source_key(VideoSource.of(path)) != first  # size changed
    assert source_key(VideoSource.of(b"abc")) == source_key(VideoSource.of(b"abc"))
    assert source_key(VideoSource.of(tmp_path / "missing.mp4")) is None
    assert source_key(VideoSource.from_frames([clip(1).frames[0]])) is None
