"""`vidtt serve` watches end to end: a real server on 127.0.0.1 driven by httpx, watching MPEG-TS
files played in real time; events read as server-sent events."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving import error_of, grew, scrape, serving  # noqa: E402
from test_serve import red_png  # noqa: E402

from vidtt.testing.videos import make_video  # noqa: E402

pytestmark = pytest.mark.slow
KEY = "watch-key-123"
FPS = 10
THREADS = ("vidtt-watch", "vidtt-live-reader")
QUICK = {"window": 1, "reconnect_seconds": 1, "open_timeout": 5}


class Client:
    """One running server: its base URL, its app, and requests with the key."""

    def __init__(self, base: str, app: Any, key: str | None) -> None:
        self.base, self.app, self.key = base, app, key

    def headers(self, key: str | None = "") -> dict[str, str]:
        key = self.key if key == "" else key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def call(self, method: str, path: str, key: str | None = "", **kwargs: Any) -> Any:
        return httpx.request(
            method, self.base + path, headers=self.headers(key), timeout=30, **kwargs
        )

    def create(self, **body: Any) -> Any:
        return self.call("POST", "/v1/watches", json=body)

    def started(self, **body: Any) -> dict[str, Any]:
        response = self.create(**body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def events(
        self, url: str, headers: dict[str, str] | None = None, seconds: float = 20
    ) -> list[tuple[str | None, str, Any]]:
        """(id, event, data) until `end` (comments as (None, ':', text)), within `seconds`."""
        found: list[tuple[str | None, str, Any]] = []
        ends = time.monotonic() + seconds
        with httpx.stream(
            "GET", self.base + url, headers={**self.headers(), **(headers or {})}, timeout=seconds
        ) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                assert time.monotonic() < ends, f"no end within {seconds} s: {found}"
                if line.startswith(":"):
                    found.append((None, ":", line[1:].strip()))
                elif line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                elif fields:
                    data = json.loads(fields["data"])
                    found.append((fields.get("id"), fields.get("event", "message"), data))
                    fields = {}
                    if found[-1][1] == "end":
                        return found
        return found


def live_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in THREADS]


def no_threads_left(seconds: float = 8) -> None:
    ends = time.monotonic() + seconds
    while live_threads() and time.monotonic() < ends:
        time.sleep(0.05)
    assert not live_threads(), live_threads()


@contextlib.contextmanager
def running(pipeline: Any, key: str | None = KEY, **settings: Any) -> Iterator[Client]:
    """A server (watches stopped at shutdown); on leaving, it is stopped and no watch or
    reader thread may be left."""
    with serving(pipeline, api_key=key, **settings) as (base, app):
        yield Client(base, app, key)
    no_threads_left()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The allowed media folder: a 30 s MPEG-TS file, played at its own speed as a live source."""
    folder = tmp_path_factory.mktemp("watch-media")
    make_video(folder / "live.ts", frames=30 * FPS, fps=FPS, size=(160, 120), codec="libx264")
    return Path(os.path.realpath(folder))


def tiny(llava: Any, **limits: Any) -> Any:
    import vidtt

    return vidtt.Pipeline(
        model=llava.config.model,
        engine=llava.engine,
        sampler_options={"num_frames": 4},
        generation={"max_new_tokens": 3},
        **({"limits": limits} if limits else {}),
    )


@pytest.fixture(scope="module")
def pipe(llava: Any) -> Any:
    return tiny(llava)


@pytest.fixture(scope="module")
def served(pipe: Any, media: Path) -> Iterator[Client]:
    from vidtt.serve.protocol import ServeLimits

    with running(pipe, limits=ServeLimits(allowed_local_media_path=media)) as client:
        yield client


def test_a_watch_streams_its_answers_and_replays_them(served: Client, media: Path) -> None:
    batches = served.call("GET", "/health").json()["batches"]
    before = scrape(served.base)
    card = served.started(
        source="live.ts", question="What is shown?", every=0.5, max_events=3, **QUICK
    )
    assert card["id"].startswith("watch-") and card["object"] == "watch"
    assert card["status"] == "running" and card["question"] == "What is shown?"
    assert card["source"] == str(media / "live.ts") and isinstance(card["created"], int)
    assert card["events_url"] == f"/v1/watches/{card['id']}/events"
    events = served.events(card["events_url"])
    answers = [data for _, kind, data in events if kind == "answer"]
    assert len(answers) == 3 and [e[1] for e in events][-1] == "end"
    assert [int(e[0]) for e in events if e[0]] == list(range(1, len(events)))
    numbers = [a["number"] for a in answers]
    assert numbers == sorted(set(numbers))
    for answer in answers:
        assert answer["start"] <= min(answer["frame_times"])
        assert max(answer["frame_times"]) <= answer["end"]
        assert answer["latency"] >= 0 and answer["answer"] and 1 <= len(answer["frame_times"]) <= 4
    end = events[-1][2]
    assert end["status"] == "ended" and "max_events" in end["reason"]
    metrics = scrape(served.base)
    for kind in {e[1] for e in events} - {"end"}:
        told = sum(e[1] == kind for e in events)
        assert grew(before, metrics, "vidtt_watch_events_total", kind=kind) == told, kind
    assert grew(before, metrics, "vidtt_watch_latency_seconds_count") == 3
    latency = grew(before, metrics, "vidtt_watch_latency_seconds_sum")
    assert latency == pytest.approx(sum(a["latency"] for a in answers), abs=1e-6)
    skipped = grew(before, metrics, "vidtt_watch_ticks_skipped_total")
    assert skipped == sum(a["skipped"] for a in answers)
    frames = grew(before, metrics, "vidtt_frames_sampled_total")
    assert frames == sum(len(a["frame_times"]) for a in answers)  # each tick's window, sampled

    replay = served.events(card["events_url"], {"Last-Event-ID": "1"}, seconds=5)
    assert [e[0] for e in replay] == ["2", "3", None] and replay[0][2] == answers[1]
    after = served.events(card["events_url"] + "?after=2", seconds=5)
    assert [e[0] for e in after] == ["3", None] and after[-1][1] == "end"
    error_of(served.call("GET", card["events_url"] + "?after=-2"), 400, "after")

    got = served.call("GET", f"/v1/watches/{card['id']}").json()
    assert got["status"] == "ended" and "max_events" in got["ended_reason"]
    assert got["events"] == got["answers"] == 3 and got["ticks_skipped"] >= 0
    assert got["frames_decoded"] >= got["frames_kept"] > 0
    assert got["reconnects"] == 0 and got["damaged_packets"] == 0
    listed = served.call("GET", "/v1/watches").json()
    assert listed["object"] == "list" and card["id"] in [w["id"] for w in listed["data"]]
    assert served.call("GET", "/health").json()["batches"] - batches >= 3  # by the batcher


def test_delete_stops_a_watch_and_closes_its_stream(served: Client) -> None:
    served.app.state.vidtt.watches.keep_alive = 0.3
    card = served.started(source="live.ts", question="What?", every=1.5, **QUICK)
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.extend(served.events(card["events_url"])))
    reader.start()
    ends = time.monotonic() + 15
    while not served.call("GET", f"/v1/watches/{card['id']}").json()["answers"]:
        assert time.monotonic() < ends, "no answer within 15 s"
        time.sleep(0.1)
    deleted = served.call("DELETE", f"/v1/watches/{card['id']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": card["id"], "object": "watch.deleted", "deleted": True}
    reader.join(10)
    assert not reader.is_alive(), "the event stream did not close"
    assert (None, ":", "keep-alive") in seen  # said while the first tick was awaited
    assert seen[-1][1] == "end" and seen[-1][2]["status"] == "stopped"
    got = served.call("GET", f"/v1/watches/{card['id']}").json()
    assert got["status"] == "stopped" and got["ended_reason"] == "stopped by request"
    assert got["answers"] >= 1
    assert served.call("DELETE", f"/v1/watches/{card['id']}").status_code == 200
    no_threads_left()
    for method, path in [("GET", ""), ("DELETE", ""), ("GET", "/events")]:
        error_of(served.call(method, f"/v1/watches/watch-nope{path}"), 404, "watch-nope")


def test_every_watch_route_needs_the_key(served: Client) -> None:
    routes = [
        ("POST", "/v1/watches"),
        ("GET", "/v1/watches"),
        ("GET", "/v1/watches/watch-x"),
        ("DELETE", "/v1/watches/watch-x"),
        ("GET", "/v1/watches/watch-x/events"),
    ]
    body = {"source": "live.ts", "question": "What?"}
    for method, path in routes:
        error_of(served.call(method, path, key=None, json=body), 401, "Bearer")
        error_of(served.call(method, path, key="wrong", json=body), 401, "incorrect")
    assert served.call("GET", "/v1/watches").json()["object"] == "list"


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"every": -1}, 400, "every", ("every", "greater than 0")),
        ({"evry": 1}, 400, "evry", ("evry", "every")),
        ({"window": 0}, 400, "window", ("window",)),
        ({"max_events": 0}, 400, "max_events", ("max_events",)),
        ({"when": "("}, 400, "when", ("regular expression",)),
        ({"sampler": "nope"}, 400, "sampler", ("nope",)),
        ({"question": " "}, 400, "question", ("question",)),
        ({"source": 3}, 400, "source", ("source",)),
        ({"source": "/etc/passwd"}, 400, "source", ("outside",)),
        ({"source": "../x.ts"}, 400, "source", ("outside",)),
        ({"source": "missing.ts"}, 400, "source", ("no such file",)),
        ({"source": "ftp://example.com/x"}, 400, "source", ("scheme",)),
        ({"source": "rtsp://127.0.0.1:9/x"}, 400, "source", ("private", "127.0.0.1")),
    ],
)
def test_bad_watches_are_400_naming_the_field(
    served: Client, body: dict[str, Any], status: int, param: str | None, words: tuple[str, ...]
) -> None:
    sent = {"source": "live.ts", "question": "What?", **QUICK, **body}
    error = error_of(served.create(**sent), status, *words)
    if param is not None:
        assert error["param"] == param, error
    if "outside" in words:
        assert error["code"] == "local_path_not_allowed"
    watches = served.call("GET", "/v1/watches").json()["data"]
    assert not [w for w in watches if w["status"] == "running"]


def test_a_chat_request_while_a_watch_runs(served: Client) -> None:
    card = served.started(source="live.ts", question="What?", every=0.3, **QUICK)
    try:
        url = served.base + card["events_url"]
        with httpx.stream("GET", url, headers=served.headers(), timeout=10) as gone:
            assert next(gone.iter_lines()).startswith(("id:", ":"))  # then it goes away
        image = {"type": "image_url", "image_url": {"url": red_png()}}
        body = {
            "messages": [{"role": "user", "content": [image, {"type": "text", "text": "Red?"}]}],
            "max_tokens": 4,
        }
        for _ in range(3):
            answer = served.call("POST", "/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"]
        ends = time.monotonic() + 10
        while served.call("GET", card["events_url"][:-7]).json()["answers"] < 2:
            assert time.monotonic() < ends, "the watch gave no answers beside the requests"
            time.sleep(0.1)
        assert served.call("GET", card["events_url"][:-7]).json()["status"] == "running"
        assert served.call("GET", "/health").json()["watches"] == 1
    finally:
        served.call("DELETE", card["events_url"][:-7])


def test_max_watches_watches_off_and_shutdown(pipe: Any, media: Path) -> None:
    from vidtt.serve.protocol import ServeLimits

    allowed = ServeLimits(allowed_local_media_path=media)
    seen: list[Any] = []
    with running(pipe, max_watches=1, limits=allowed) as client:
        first = client.started(source="live.ts", question="What?", every=2, **QUICK)
        busy = client.create(source="live.ts", question="What?", **QUICK)
        assert error_of(busy, 429, "at most 1")["code"] == "too_many_watches"
        assert busy.headers["retry-after"]
        client.call("DELETE", f"/v1/watches/{first['id']}")
        second = client.started(source="live.ts", question="What?", every=2, **QUICK)
        reader = threading.Thread(target=lambda: seen.extend(client.events(second["events_url"])))
        reader.start()
        time.sleep(0.3)
        stopping = time.monotonic()
    reader.join(5)
    assert time.monotonic() - stopping < 10  # the open event stream did not hold the shutdown
    assert seen and seen[-1][1] == "end"
    assert seen[-1][2] == {"status": "stopped", "reason": "the server is shutting down"}

    with running(pipe, max_watches=0, limits=allowed) as client:
        off = client.create(source="live.ts", question="What?")
        assert error_of(off, 403, "off")["code"] == "watches_disabled"


def test_sources_a_server_does_not_allow(pipe: Any, llava: Any, media: Path) -> None:
    with running(pipe, key=None) as client:  # no local media allowed
        for source in (str(media / "live.ts"), "live.ts", "udp://127.0.0.1:5004", "/dev/video0"):
            refused = client.create(source=source, question="What?", **QUICK)
            assert error_of(refused, 400, "on this machine")["code"] == "local_path_not_allowed"
    with running(tiny(llava, block_private_addresses=False), key=None) as client:
        started = time.monotonic()
        refused = client.create(
            source="rtsp://127.0.0.1:9/x", question="What?", open_timeout=2, reconnect_seconds=1
        )
        error_of(refused, 400, "connection refused")
        assert time.monotonic() - started < 5
