"""`answer_on_server`: a `vidtt run` job answered by a running server, as `vidtt eval --server`
uses it: a real `vidtt serve` process on 127.0.0.1 with the tiny llava model (uploads, data:
URLs, resumption, the key, an unreachable URL), and a small OpenAI-compatible server written
here that records what it gets (what a server other than vidtt is sent, retries after 429, a
500 and a dropped connection as error records, the refusals made before anything is sent)."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving import http_server, serve_process  # noqa: E402

from vidtt.errors import RemoteServerError  # noqa: E402
from vidtt.eval import server as remote  # noqa: E402
from vidtt.eval.server import answer_on_server  # noqa: E402
from vidtt.jobs.local import plan_job, read_output  # noqa: E402
from vidtt.testing import make_video  # noqa: E402
from vidtt.testing.streams import free_port  # noqa: E402

pytestmark = pytest.mark.slow
KEY = "sesame"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("server-eval-clips")
    make_video(folder / "a.mp4", frames=24)
    make_video(folder / "b.mp4", frames=48, size=(96, 64))
    return folder


@pytest.fixture(scope="module")
def vidtt_server(llava_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`vidtt serve` with the tiny model behind an API key: 2 frames, 8 new tokens."""
    log = tmp_path_factory.mktemp("server-eval-log") / "server.log"
    args = ["--frames", "2", "--max-new-tokens", "8", "--api-key", KEY]
    with serve_process(llava_dir, log, *args) as base:
        yield base


def write_requests(folder: Path, rows: list[dict[str, Any]]) -> Path:
    path = folder / "requests.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def data_url(path: Path) -> str:
    return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()


def asked_directly(base: str, path: Path, question: str, **extra: Any) -> dict[str, Any]:
    """The server's own answer to a chat request about `path`, sent by hand."""
    clip = {"type": "video_url", "video_url": {"url": data_url(path)}}
    body = {
        "messages": [{"role": "user", "content": [clip, {"type": "text", "text": question}]}],
        "temperature": 0,
        **extra,
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    response = httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


ROWS: list[dict[str, Any]] = [
    {"id": "q1", "video": "a.mp4", "question": "What is shown?", "max_new_tokens": 4},
    {"id": "q2", "video": "a.mp4", "question": "And here?", "start": 0.25, "end": 0.75},
    {"id": "q3", "video": "b.mp4", "question": "What moves?", "num_frames": 3},
    {"id": "bad", "video": "a.mp4"},  # no question: an error record, sent nowhere
]
DIRECT: dict[str, tuple[str, str, dict[str, Any]]] = {
    "q1": ("a.mp4", "What is shown?", {"max_tokens": 4}),
    "q2": ("a.mp4", "And here?", {"start": 0.25, "end": 0.75, "max_tokens": 6}),
    "q3": ("b.mp4", "What moves?", {"num_frames": 3, "max_tokens": 6}),
}


def check_answers(base: str, clips: Path, records: dict[str, dict[str, Any]]) -> None:
    """Each record says what the server says to the same request sent by hand."""
    for rid, (name, question, extra) in DIRECT.items():
        record, direct = records[rid], asked_directly(base, clips / name, question, **extra)
        assert record["text"] == direct["choices"][0]["message"]["content"], rid
        assert record["finish_reason"] == direct["choices"][0]["finish_reason"]
        assert record["usage"]["visual_tokens"] == direct["usage"]["visual_tokens"] > 0
        assert record["usage"]["prompt_tokens"] == direct["usage"]["prompt_tokens"]
        assert record["usage"]["generated_tokens"] == direct["usage"]["completion_tokens"]
        times = [video["timestamps"] for video in record["videos"]]
        assert times == [video["timestamps"] for video in direct["vidtt"]["videos"]]
        assert set(record["timings"]) == {"sampling", "preprocessing", "prefill", "decode"}
        assert record["peak_memory"] > 0  # the server's batch peak
        assert record["latency"] > 0 and record["model"] == direct["model"]
    assert len(records["q3"]["videos"][0]["timestamps"]) == 3
    assert all(0.25 <= t <= 0.75 for t in records["q2"]["videos"][0]["timestamps"])
    assert "question" in records["bad"]["error"]


def test_a_job_is_answered_by_vidtt_serve_with_uploads_and_resumes(
    vidtt_server: str, clips: Path, tmp_path: Path
) -> None:
    requests, output = write_requests(clips, ROWS), tmp_path / "answers.jsonl"
    job = plan_job(requests, output)
    fields = {"max_new_tokens": 6}  # under each request's own (q1 keeps its 4)
    summary = answer_on_server(vidtt_server, job, api_key=KEY, fields=fields, progress=False)
    assert (summary.answered, summary.failed, summary.skipped) == (3, 1, 0)
    records = read_output(output)
    check_answers(vidtt_server, clips, records)
    sources = {v["source"] for r in records.values() for v in r.get("videos", [])}
    assert all(source.startswith("upload:") for source in sources), sources
    assert len(sources) == 2  # one upload per file, though a.mp4 has two questions
    metrics = httpx.get(f"{vidtt_server}/metrics", timeout=10).text
    assert "\nvidtt_uploads 0.0" in metrics  # each deleted after its last question
    lines = output.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["q1", "q2", "q3", "bad"]

    again = answer_on_server(vidtt_server, plan_job(requests, output), progress=False)
    assert (again.answered, again.skipped) == (0, 3)  # only the bad line, still bad
    assert output.read_text().splitlines() == lines


def test_data_urls_give_the_same_answers(vidtt_server: str, clips: Path, tmp_path: Path) -> None:
    requests, output = write_requests(tmp_path, ROWS), tmp_path / "answers.jsonl"
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).symlink_to(clips / name)
    job = plan_job(requests, output)
    fields = {"max_tokens": 6}
    answer_on_server(
        vidtt_server, job, api_key=KEY, fields=fields, media="data", progress=False, concurrency=2
    )
    records = read_output(output)
    check_answers(vidtt_server, tmp_path, records)
    assert not any(v["source"].startswith("upload:") for v in records["q1"]["videos"])


def test_the_server_must_answer_with_the_key(
    vidtt_server: str, clips: Path, tmp_path: Path
) -> None:
    job = plan_job(write_requests(clips, ROWS[:1]), tmp_path / "answers.jsonl")
    with pytest.raises(RemoteServerError, match="refused the API key.*--api-key") as wrong:
        answer_on_server(vidtt_server, job, api_key="wrong", progress=False)
    assert vidtt_server in str(wrong.value) and "\n" not in str(wrong.value)
    with pytest.raises(RemoteServerError, match="needs an API key"):
        answer_on_server(vidtt_server + "/v1/", job, progress=False)
    with pytest.raises(RemoteServerError, match="serves no local files.*allowed-local-media"):
        answer_on_server(vidtt_server, job, api_key=KEY, media="file", progress=False)
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RemoteServerError, match="cannot reach the server at") as gone:
        answer_on_server(nowhere, job, progress=False)
    assert nowhere in str(gone.value) and "vidtt serve" in str(gone.value)
    assert not (tmp_path / "answers.jsonl").exists()  # nothing written when refused


# -- a server other than vidtt ------------------------------------------------------------------
class Fake(BaseHTTPRequestHandler):
    """An OpenAI-compatible server: records what it gets; its answer depends on the question
    ("busy": 429 the first time, "boom": 500, "drop": the connection closed unanswered)."""

    protocol_version = "HTTP/1.1"
    got: ClassVar[list[tuple[float, str, dict[str, Any]]]] = []
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: dict[str, Any], **headers: str) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        card = {"id": "fake-model", "object": "model", "owned_by": "someone"}
        self.reply(200, {"object": "list", "data": [card]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
        with self.lock:
            self.got.append((time.monotonic(), self.path, body))
            tries = sum(1 for _, _, b in self.got if b == body)
        question = body["messages"][-1]["content"][-1]["text"]
        if question == "hang":
            time.sleep(20)  # (until the client goes)
            self.close_connection = True
        elif question == "drop":
            self.close_connection = True
        elif question == "boom":
            self.reply(500, {"error": {"message": "the model fell over", "code": None}})
        elif question == "busy" and tries == 1:
            self.reply(429, {"error": {"message": "slow down"}}, **{"Retry-After": "1"})
        else:
            message = {"role": "assistant", "content": f"echo: {question}"}
            usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            self.reply(200, {"object": "chat.completion", "choices": [choice], "usage": usage})


@pytest.fixture
def fake() -> Iterator[tuple[str, list[tuple[float, str, dict[str, Any]]]]]:
    Fake.got = []
    with http_server(Fake) as base:
        yield base, Fake.got


def test_another_server_gets_openai_fields_and_data_urls(fake, clips: Path, tmp_path) -> None:
    base, got = fake
    rows: list[dict[str, Any]] = [
        {"id": q, "video": "a.mp4", "question": q} for q in ("plain", "busy", "boom", "drop")
    ]
    rows[0].update(temperature=0.5, do_sample=True)
    video, text = {"type": "video", "video": "a.mp4"}, {"type": "text", "text": "chat"}
    system = {"role": "system", "content": "Be brief."}
    rows.append({"id": "chat", "messages": [system, {"role": "user", "content": [video, text]}]})
    requests = write_requests(tmp_path, rows)
    (tmp_path / "a.mp4").symlink_to(clips / "a.mp4")
    output = tmp_path / "answers.jsonl"
    fields = {"max_new_tokens": 5, "seed": 7}
    summary = answer_on_server(base, plan_job(requests, output), fields=fields, progress=False)
    assert (summary.answered, summary.failed) == (3, 2)
    assert {path for _, path, _ in got} == {"/v1/chat/completions"}  # no upload
    bodies = {b["messages"][-1]["content"][-1]["text"]: b for _, _, b in got}
    plain = bodies["plain"]
    assert plain["model"] == "fake-model" and plain["max_tokens"] == 5 and plain["seed"] == 7
    assert plain["temperature"] == 0.5 and bodies["busy"]["temperature"] == 0
    assert not set(plain) & {"num_frames", "max_new_tokens", "do_sample", "start", "end"}
    url = plain["messages"][0]["content"][0]["video_url"]["url"]
    assert url == data_url(tmp_path / "a.mp4")
    chat = bodies["chat"]["messages"]
    assert [m["role"] for m in chat] == ["system", "user"]
    assert chat[0]["content"] == [{"type": "text", "text": "Be brief."}]
    assert chat[1]["content"][0] == {"type": "video_url", "video_url": {"url": url}}
    busy = [at for at, _, b in got if b == bodies["busy"]]
    assert len(busy) == 2 and busy[1] - busy[0] >= 0.9  # after Retry-After: 1
    records = read_output(output)
    assert records["plain"]["text"] == "echo: plain" and records["busy"]["text"] == "echo: busy"
    assert records["plain"]["usage"]["visual_tokens"] is None
    assert records["plain"]["timings"] == {} and records["plain"]["videos"] == []
    assert records["plain"]["latency"] > 0
    assert records["boom"]["error"] == "the server answered 500: the model fell over"
    assert records["drop"]["error"].startswith(f"lost the server at {base}")


def test_another_server_is_refused_what_it_would_ignore(
    fake, clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, got = fake
    rows: list[dict[str, Any]] = [
        {"id": "whole", "video": str(clips / "a.mp4"), "question": "Q?"},
        {"id": "clip", "video": str(clips / "a.mp4"), "question": "Q?", "start": 1, "end": 2},
    ]
    output = tmp_path / "answers.jsonl"
    job = plan_job(write_requests(tmp_path, rows), output)
    message = r"1 of 2 questions need vidtt's own fields \(end, start\).*not a vidtt server"
    with pytest.raises(RemoteServerError, match=message):
        answer_on_server(base, job, progress=False)
    with pytest.raises(RemoteServerError, match="2 of 2 questions .*num_frames"):
        answer_on_server(base, plan_job(job.input_path, output), fields={"num_frames": 8})
    job = plan_job(write_requests(tmp_path, rows[:1]), output)
    with pytest.raises(RemoteServerError, match="media 'upload' needs a vidtt server"):
        answer_on_server(base, job, media="upload", progress=False)
    monkeypatch.setattr(remote, "DATA_LIMIT", 1000)
    with pytest.raises(RemoteServerError, match=r"1 media file\(s\) are larger than.*a.mp4"):
        answer_on_server(base, job, progress=False)
    assert got == [] and not output.exists()  # nothing sent, nothing written


def test_ctrl_c_keeps_what_was_answered(fake, clips: Path, tmp_path: Path) -> None:
    """Interrupted while a request hangs: the answers so far stay, the output is compacted (the
    old error of an id answered now is gone), and it stops at once."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Ctrl-C reaches asyncio.run only in the main thread")
    base, _ = fake
    rows: list[dict[str, Any]] = [
        {"id": q, "video": str(clips / "a.mp4"), "question": q} for q in ("plain", "hang")
    ]
    output = tmp_path / "answers.jsonl"
    output.write_text(json.dumps({"id": "plain", "error": "an earlier try failed"}) + "\n")
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        ends = time.monotonic() + 20
        while "echo" not in output.read_text() and time.monotonic() < ends:
            time.sleep(0.05)
        time.sleep(0.2)
        signal.pthread_kill(main, signal.SIGINT)  # as Ctrl-C: the main thread gets it

    job = plan_job(write_requests(tmp_path, rows), output)
    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        answer_on_server(base, job, progress=False)
    assert time.monotonic() - started < 10
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["id"], r["text"]) for r in lines] == [("plain", "echo: plain")]


def test_an_upload_the_server_lost_is_sent_again(
    vidtt_server: str, clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload, made = remote.Uploads.upload, []

    async def upload_then_lose(self: remote.Uploads, path: Path) -> str:
        url = await upload(self, path)
        made.append(url)
        if len(made) == 1:  # the server loses the first (as if it expired)
            await self.run.send("DELETE", "/v1/uploads/" + url.removeprefix("upload:"))
        return url

    monkeypatch.setattr(remote.Uploads, "upload", upload_then_lose)
    output = tmp_path / "answers.jsonl"
    job = plan_job(write_requests(clips, ROWS[:1]), output)
    summary = answer_on_server(vidtt_server, job, api_key=KEY, progress=False)
    assert (summary.answered, summary.failed) == (1, 0), read_output(output)
    assert len(made) == 2 and made[0] != made[1]
    assert read_output(output)["q1"]["videos"][0]["source"] == made[1]


# --- `vidtt eval --server` on the command line ---------------------------------------------


def test_eval_on_the_server_scores_what_eval_here_scores(
    vidtt_server: str, llava_dir: Path, tmp_path: Path
) -> None:
    """The same set, the same settings: asked of `vidtt serve` or of the model here, the same
    predictions (the config evaluated is the config deployed)."""
    from commands import console
    from test_eval_command import _lines, _write_set
    from tiny_models import job_config

    questions = _write_set(tmp_path)
    there, here = tmp_path / "there", tmp_path / "here"
    served = console(
        "eval", str(questions), "--server", vidtt_server, "--api-key", KEY,
        "--output", str(there), "--quiet", "--concurrency", "2",
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    assert "5 answered, 0 failed" in served.stderr and "accuracy" in served.stdout
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32")))
    local = console(
        "eval", str(questions), str(config), "--frames", "2", "--max-new-tokens", "8",
        "--output", str(here), "--quiet",
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    remote_lines = {p["id"]: p for p in _lines(there / "predictions.jsonl")}
    local_lines = {p["id"]: p for p in _lines(here / "predictions.jsonl")}
    for qid, line in local_lines.items():
        assert remote_lines[qid]["prediction"] == line["prediction"], qid
        assert remote_lines[qid]["frame_times"] == line["frame_times"], qid
        assert remote_lines[qid]["visual_tokens"] == line["visual_tokens"], qid
    assert (there / "scores.json").read_text() == (here / "scores.json").read_text()


def test_eval_on_a_server_refuses_the_servers_own_settings(tmp_path: Path) -> None:
    from commands import console
    from test_eval_command import _write_set

    questions = _write_set(tmp_path)
    done = console(
        "eval", str(questions), "--server", "http://127.0.0.1:9", "--dtype", "float32",
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--server: the server chooses dtype;" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
