"""`vidtt serve` for operators: Prometheus metrics at /metrics, /ready while serving (503 once
draining), and `--log-format json` (every stderr line a JSON object), on a real server on
127.0.0.1 driven by httpx."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from serving import Samples, grew, scrape, serving, value, wait_healthy  # noqa: E402
from test_serve import red_png  # noqa: E402

from vidtt.testing.streams import free_port  # noqa: E402

pytestmark = pytest.mark.slow
VIDTT = str(Path(sys.executable).with_name("vidtt"))
KEY = "metrics-key-123"
CHAT = "/v1/chat/completions"
COUNTED = ("frames_sampled", "prompt_tokens", "visual_tokens", "generation_tokens")


class Client:
    """One running server: its base URL and app; requests with the key."""

    def __init__(self, base: str, app: Any) -> None:
        self.base, self.app = base, app

    def post(self, body: Any = None, key: str | None = KEY, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(self.base + CHAT, json=body, headers=headers, timeout=60, **kwargs)

    def scrape(self) -> Samples:
        return scrape(self.base)


@contextlib.contextmanager
def running(pipeline: Any, **settings: Any) -> Iterator[Client]:
    """A server with the key; once stopped, it must be draining."""
    with serving(pipeline, api_key=KEY, **settings) as (base, app):
        yield Client(base, app)
    assert app.state.vidtt.readiness() == (503, {"status": "draining"})


@pytest.fixture(scope="module")
def media(videos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("metrics-media")
    (folder / "clip.mp4").write_bytes(videos["h264"].read_bytes())
    return Path(os.path.realpath(folder))


@pytest.fixture(scope="module")
def served(llava: Any, media: Path) -> Iterator[Client]:
    import vidtt
    from vidtt.serve.protocol import ServeLimits

    pipe = vidtt.Pipeline(
        model=llava.config.model,
        engine=llava.engine,
        sampler_options={"num_frames": 4},
        generation={"max_new_tokens": 4},
    )
    with running(pipe, limits=ServeLimits(allowed_local_media_path=media)) as client:
        yield client


def ask(question: str = "What happens?") -> list[dict[str, Any]]:
    clip = {"type": "video", "video": "clip.mp4"}
    return [{"role": "user", "content": [clip, {"type": "text", "text": question}]}]


def streamed(client: Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks of a streamed answer."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    response = client.post(body)
    assert response.status_code == 200, response.text
    lines = [x.removeprefix("data: ") for x in response.text.splitlines() if x.startswith("data")]
    assert lines[-1] == "[DONE]"
    return [json.loads(x) for x in lines[:-1]]


def test_metrics_count_requests_tokens_frames_and_errors(served: Client) -> None:
    before = served.scrape()
    plain = served.post({"messages": ask(), "max_tokens": 4})
    assert plain.status_code == 200, plain.text
    chunks = streamed(served, {"messages": ask("Which colours?"), "max_tokens": 3})
    final = next(c for c in chunks if c.get("vidtt"))
    usages = [plain.json()["usage"], chunks[-1]["usage"]]
    frames = [len(v["indices"]) for b in (plain.json(), final) for v in b["vidtt"]["videos"]]
    assert served.post(content=b"{not json").status_code == 400
    assert served.post({"messages": ask()}, key=None).status_code == 401
    assert served.post({"messages": ask(), "model": "gpt-4o"}).status_code == 404
    assert httpx.get(f"{served.base}/v1/watches/w-123", timeout=5).status_code == 401
    assert httpx.get(f"{served.base}/nowhere/42", timeout=5).status_code == 404
    after = served.scrape()

    def by(name: str, **labels: str) -> float:
        return grew(before, after, name, **labels)

    for status, count in {"200": 2, "400": 1, "401": 1, "404": 1}.items():
        assert by("vidtt_requests_total", route=CHAT, status=status) == count, status
    assert by("vidtt_requests_total", route="/v1/watches/{watch_id}", status="401") == 1
    assert by("vidtt_requests_total", route="unmatched", status="404") == 1
    assert by("vidtt_requests_total", route="/metrics", status="200") == 1  # the first scrape
    assert not [key for key in after if "w-123" in str(key) or "nowhere" in str(key)]
    assert by("vidtt_request_duration_seconds_count", route=CHAT) == 5
    assert by("vidtt_request_duration_seconds_sum", route=CHAT) > 0
    assert by("vidtt_time_to_first_token_seconds_count") == 2
    assert (
        0
        < by("vidtt_time_to_first_token_seconds_sum")
        < by("vidtt_request_duration_seconds_sum", route=CHAT)
    )
    assert by("vidtt_prompt_tokens_total") == sum(u["prompt_tokens"] for u in usages)
    assert by("vidtt_generation_tokens_total") == sum(u["completion_tokens"] for u in usages)
    assert by("vidtt_visual_tokens_total") == sum(u["visual_tokens"] for u in usages)
    for name, field in (("prompt", "prompt_tokens"), ("generation", "completion_tokens")):
        histogram = f"vidtt_request_{name}_tokens"
        assert by(f"{histogram}_count") == 2  # one an answer
        assert by(f"{histogram}_sum") == sum(u[field] for u in usages)
    assert by("vidtt_request_generation_tokens_bucket", le="5.0") == 2  # at most 4 and 3
    assert by("vidtt_request_prompt_tokens_bucket", le="1.0") == 0
    assert by("vidtt_request_prompt_tokens_bucket", le="+Inf") == 2
    assert by("vidtt_frames_sampled_total") == sum(frames) == 8
    assert by("vidtt_sampling_duration_seconds_count") == 2
    assert by("vidtt_batch_size_count") == 1 and by("vidtt_batch_size_sum") == 1
    assert by("vidtt_batch_size_bucket", le="1.0") == 1
    assert by("vidtt_request_queue_seconds_count") == 1  # the plain request's row
    assert 0 <= by("vidtt_request_queue_seconds_sum") < by("vidtt_time_to_first_token_seconds_sum")
    reasons = [plain.json()["choices"][0]["finish_reason"], final["choices"][0]["finish_reason"]]
    for reason in set(reasons):
        assert by("vidtt_request_success_total", finished_reason=reason) == reasons.count(reason)
    errors = {
        ("invalid_request_error", "400"): 1,
        ("invalid_api_key", "401"): 2,
        ("model_not_found", "404"): 1,
        ("not_found", "404"): 1,
    }
    for (kind, status), count in errors.items():
        assert by("vidtt_errors_total", status=status, **{"class": kind}) == count, kind
    model = served.app.state.vidtt.pipeline.config.model
    [info] = [labels for name, labels in after if name == "vidtt_model_info"]
    assert dict(info)["model"] == model and dict(info)["backend"] == "cpu"
    assert {"dtype", "version", "device"} <= dict(info).keys()
    for gauge in ("vidtt_queue_depth", "vidtt_requests_waiting", "vidtt_requests_running"):
        assert value(after, gauge) == 0, gauge
    assert value(after, "vidtt_watches_running") == 0 and value(after, "vidtt_ready") == 1


def test_the_grafana_dashboard_reads_metrics_the_server_has(served: Client) -> None:
    """docs/grafana-dashboard.json: every metric its queries name is one a server exposes (so
    a renamed metric breaks this test, not an operator's dashboard), histogram quantiles of
    buckets only, panels with their own ids and places, queries of the chosen data source."""
    path = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
    dashboard = json.loads(path.read_text())
    assert served.post({"messages": ask(), "max_tokens": 2}).status_code == 200
    assert served.post({"messages": ask()}, key=None).status_code == 401  # an error's series
    exposed = {name for name, _ in served.scrape()}
    panels = dashboard["panels"]
    queries = [target["expr"] for panel in panels for target in panel["targets"]]
    named = set(re.findall(r"\bvidtt_[a-z_]+", " ".join(queries)))
    assert len(named) >= 15 and not named - exposed, sorted(named - exposed)
    import promql_parser as promql  # (the dev extra)

    grafana = {"$__rate_interval": "5m", "$__range": "1h", "$job": ".*"}  # as Grafana fills in
    for query in queries:
        promql.parse(re.sub(r"\$\w+", lambda m: grafana[m[0]], query))  # (a ValueError if not)
    for query in queries:
        for inner in re.findall(r"histogram_quantile\([0-9.]+, sum by \(le\) \(rate\((\w+)", query):
            assert inner.endswith("_bucket"), query
    assert len({panel["id"] for panel in panels}) == len(panels)
    places = {tuple(panel["gridPos"].values()) for panel in panels}
    assert len(places) == len(panels) and all(
        p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in panels
    )
    [source] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    for panel in panels:
        assert panel["datasource"]["uid"] == f"${{{source['name']}}}", panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    assert "grafana-dashboard.json" in (path.parent / "serve.md").read_text()


@pytest.mark.usefixtures("cache_dir")
def test_segment_notes_count_their_tokens_and_frames_once(served: Client) -> None:
    plain = served.post({"messages": ask(), "max_tokens": 2}).json()
    per_frame = plain["usage"]["visual_tokens"] / len(plain["vidtt"]["videos"][0]["indices"])
    notes = {"segment_seconds": 0.5, "segment_frames": 2, "note_tokens": 3, "shots": False}
    body = {"messages": ask(), "max_tokens": 2, "strategy": "segments", "segment_options": notes}
    spent = []
    for _ in range(2):  # the second finds the notes stored: nothing is spent on them again
        before = served.scrape()
        response = served.post(body)
        assert response.status_code == 200, response.text
        answer, after = response.json(), served.scrape()
        spent.append({n: grew(before, after, f"vidtt_{n}_total") for n in COUNTED})
        spent[-1]["answer"] = answer["usage"]
        spent[-1]["segments"] = len(answer["vidtt"]["segments"])
    made, stored = spent
    assert made["segments"] == stored["segments"] == 4  # 2 s in 0.5 s windows
    assert made["frames_sampled"] == 4 * 2
    assert made["visual_tokens"] == 4 * 2 * per_frame
    assert made["prompt_tokens"] >= made["answer"]["prompt_tokens"] + made["visual_tokens"]
    assert made["answer"]["completion_tokens"] <= made["generation_tokens"]
    assert made["generation_tokens"] <= made["answer"]["completion_tokens"] + 4 * 3
    assert stored["frames_sampled"] == stored["visual_tokens"] == 0
    assert stored["prompt_tokens"] == stored["answer"]["prompt_tokens"]
    assert stored["generation_tokens"] == stored["answer"]["completion_tokens"]


def test_an_error_inside_a_stream_is_counted(served: Client) -> None:
    server = served.app.state.vidtt
    before = served.scrape()
    server.settings.request_timeout, timeout = 1.0, server.settings.request_timeout
    try:  # the engine is busy: the stream opens, and its time is up before the first token
        with server.pipeline.engine._lock:
            response = served.post({"messages": ask(), "stream": True})
    finally:
        server.settings.request_timeout = timeout
    after = served.scrape()
    assert response.status_code == 200 and '"code": "timeout"' in response.text, response.text
    assert grew(before, after, "vidtt_errors_total", status="504", **{"class": "timeout"}) == 1
    assert grew(before, after, "vidtt_requests_total", route=CHAT, status="200") == 1


def test_ready_while_serving_and_503_while_draining(served: Client, llava: Any) -> None:
    from vidtt.serve.server import Server, ServeSettings

    ready = httpx.get(f"{served.base}/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert Server(llava, ServeSettings()).readiness() == (503, {"status": "starting"})
    server = served.app.state.vidtt
    server.drain()
    try:
        draining = httpx.get(f"{served.base}/ready", timeout=5)
        assert draining.status_code == 503 and draining.json() == {"status": "draining"}
        assert httpx.get(f"{served.base}/health", timeout=5).status_code == 200  # still alive
        assert value(served.scrape(), "vidtt_ready") == 0
    finally:
        server.state = "ready"
    assert httpx.get(f"{served.base}/ready", timeout=5).status_code == 200


def test_json_log_lines(llava_dir: Path, tmp_path: Path) -> None:
    """`vidtt serve --log-format json`: every line on stderr is a JSON object, an access line
    for each request among them, from loading to the SIGTERM that stops it."""
    port = free_port()
    log = tmp_path / "stderr.log"
    args = [
        VIDTT, "serve", "--model", str(llava_dir), "--max-new-tokens", "2", "--host",
        "127.0.0.1", "--port", str(port), "--log-format", "json",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "VIDTT_API_KEY"}
    env["VIDTT_BACKEND"] = "cpu"
    with log.open("w") as err:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, log)
        image = {"type": "image_url", "image_url": {"url": red_png()}}
        body = {"messages": [{"role": "user", "content": [image, {"type": "text", "text": "?"}]}]}
        assert httpx.post(base + CHAT, json=body, timeout=60).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert process.stdout is not None and process.stdout.read() == b""
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every one JSON
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
        assert line["time"].endswith("Z") and datetime.fromisoformat(line["time"][:-1])
    access = [x for x in lines if x["logger"] == "vidtt.serve.access"]
    [chat] = [x for x in access if x["path"] == CHAT]
    assert chat["method"] == "POST" and chat["status"] == 200 and chat["level"] == "INFO"
    assert chat["client"].startswith("127.0.0.1:") and chat["duration_ms"] > 0
    assert any(x["path"] == "/health" and x["status"] == 200 for x in access)
    messages = [x["message"] for x in lines]
    assert any(m.startswith("serving ") for m in messages), messages
    assert any("Application startup complete" in m for m in messages), messages
    assert messages[-1] == "terminated", messages


def test_json_formatter_keeps_a_traceback_on_one_line() -> None:
    from vidtt.serve.logs import JSONFormatter

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("vidtt.serve", logging.ERROR, __file__, 1, "failed %s", ("x",),
                                   sys.exc_info())  # fmt: skip
    line = JSONFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "failed x" and data["level"] == "ERROR"
    assert "ValueError: boom" in data["exception"]


def test_serve_help_lists_the_operator_flags() -> None:
    done = subprocess.run([VIDTT, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for flag in ("--log-format", "--no-ui", "--no-access-log", "--log-level"):
        assert flag in done.stdout, flag
    assert "json" in done.stdout
