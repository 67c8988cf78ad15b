"""`vidtt run`: one record per request id after any number of reruns, per-request failures,
answers equal to one-by-one asks, and nothing lost when a run is interrupted."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from commands import console, in_process
from tiny_models import job_config

import vidtt
from vidtt.jobs.local import plan_job, read_output, run_jobs
from vidtt.media.frame_cache import FrameCache

QUESTION = "What is happening in this video?"


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.fixture
def job_files(llava_dir, videos, tmp_path):
    folder = tmp_path / "job"
    (folder / "clips").mkdir(parents=True)
    shutil.copy(videos["h264"], folder / "clips" / "rel.mp4")
    config = folder / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir)))
    late = folder / "late.mp4"
    content = [{"type": "video", "video": str(videos["vp9"])}, {"type": "text", "text": "Hi?"}]
    lines = [
        {"id": "good", "videos": [str(videos["h264"])], "question": QUESTION},
        {"id": "late", "videos": [str(late)], "question": QUESTION},
        {"id": "typo", "videos": [str(videos["h264"])], "qestion": QUESTION},
        {"id": "token", "videos": [str(videos["h264"])], "question": "A <image> here?"},
        "[" * 50_000 + "]" * 50_000,
        {"id": "chat", "messages": [{"role": "user", "content": content}]},
        {"id": "short", "videos": [str(videos["vp9"])], "question": QUESTION, "max_new_tokens": 2},
        {"id": "relative", "videos": ["clips/rel.mp4"], "question": QUESTION, "num_frames": 3},
        {"id": "novideo", "question": QUESTION},
        {"id": "good", "videos": [str(videos["vp9"])], "question": "repeated id"},
    ]
    return config, write_jsonl(folder / "requests.jsonl", lines), folder / "out" / "answers.jsonl"


def run(
    config: Path, requests: Path, output: Path, *extra: str, through=console
) -> subprocess.CompletedProcess:
    """`vidtt run` through the console script (or `through=in_process`), away from the
    JSONL file: relative paths resolve against the JSONL file's folder, not the working one."""
    command = ["run", str(config), "--input", str(requests), "--output", str(output), *extra]
    return through(*command, cwd="/")


def test_reruns_keep_one_record_per_id_and_retry_failures(job_files, videos) -> None:
    config, requests, output = job_files
    first = run(config, requests, output, "--batch-size", "3", "--workers", "2")
    assert first.returncode == 1, first.stderr
    assert "3 request line(s) are invalid" in first.stderr  # before the model loaded
    assert "ids on more than one line (the first is answered): good" in first.stderr
    got = {r["id"]: r for r in records(output)}
    ids = ["good", "late", "typo", "token", 5, "chat", "short", "relative", "novideo"]
    assert [r["id"] for r in records(output)] == ids
    assert got["good"]["usage"]["generated_tokens"] == 4
    assert "video not found" in got["late"]["error"]
    assert "unknown key 'qestion' (did you mean 'question'?)" in got["typo"]["error"]
    assert "'<image>', the model's own media token" in got["token"]["error"]
    assert "nested too deeply" in got[5]["error"]
    assert got["chat"]["text"] is not None and "error" not in got["chat"]
    assert got["short"]["usage"]["generated_tokens"] == 2
    assert len(got["relative"]["videos"][0]["indices"]) == 3
    assert got["relative"]["videos"][0]["source"].endswith("job/clips/rel.mp4")
    assert 'the request has no videos: add "videos"' in got["novideo"]["error"]
    assert "4 answered, 5 failed" in first.stderr, first.stderr[-600:]
    assert "vidtt run" in first.stderr  # the progress bar

    shutil.copy(videos["mpeg4"], output.parent.parent / "late.mp4")
    second = run(config, requests, output, through=in_process)
    assert "1 answered, 4 failed, 4 already done" in second.stderr
    assert [r["id"] for r in records(output)] == ids  # errors replaced, not appended
    assert "error" not in {r["id"]: r for r in records(output)}["late"]

    third = run(config, requests, output, "--no-retry-failed", through=in_process)
    assert third.returncode == 0 and "0 answered, 0 failed, 9 already done" in third.stderr
    assert len(records(output)) == len(ids)


def test_run_answers_equal_one_by_one_asks(llava, videos, tmp_path) -> None:
    lines = [
        {"id": f"{name}-{q}", "videos": [str(videos[name])], "question": question}
        for name in ("h264", "vp9", "mpeg4")
        for q, question in enumerate((QUESTION, "Describe it in detail, please."))
    ]
    requests = write_jsonl(tmp_path / "in.jsonl", lines)
    pipe = vidtt.Pipeline(llava.config, engine=llava.engine, cache=FrameCache())
    summary = run_jobs(pipe, plan_job(requests, tmp_path / "out.jsonl"), batch_size=4)
    assert (summary.answered, summary.failed) == (6, 0)
    assert (pipe.cache.misses, pipe.cache.hits) == (3, 3)  # each video decoded once
    for line, record in zip(lines, records(tmp_path / "out.jsonl")):
        alone = llava.ask(line["videos"], line["question"])
        assert record["id"] == line["id"] and record["token_ids"] == alone.token_ids


class Interrupting:
    """A pipeline that is interrupted (Ctrl-C) while generating its second batch."""

    def __init__(self, pipe) -> None:
        self.pipe, self.calls = pipe, 0

    def prepare(self, *args, **kwargs):
        return self.pipe.prepare(*args, **kwargs)

    def answer_each(self, prepared):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return self.pipe.answer_each(prepared)


def test_an_interrupted_run_keeps_its_answers(llava, videos, tmp_path) -> None:
    lines = [{"id": n, "videos": [str(videos["h264"])], "question": f"Q{n}?"} for n in range(4)]
    requests = write_jsonl(tmp_path / "in.jsonl", lines)
    output = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_jobs(Interrupting(llava), plan_job(requests, output), batch_size=1, workers=1)
    assert [r["id"] for r in records(output)] == [0]
    assert not list(tmp_path.glob(".out.jsonl.*"))  # no temporary file left
    summary = run_jobs(llava, plan_job(requests, output), batch_size=2)
    assert (summary.answered, summary.skipped) == (3, 1)
    assert [r["id"] for r in records(output)] == [0, 1, 2, 3]


def test_compaction_keeps_other_ids_and_drops_a_torn_line(tmp_path) -> None:
    output = tmp_path / "out.jsonl"
    old = [
        {"id": "gone", "text": "from an older input"},
        {"id": "a", "error": "first try failed"},
        {"id": "a", "text": "answered"},
        {"id": "a", "error": "a later failure does not replace an answer"},
    ]
    output.write_text("".join(json.dumps(r) + "\n" for r in old) + '{"id": "b", "te')
    assert read_output(output) == {"gone": old[0], "a": old[2]}
    requests = write_jsonl(tmp_path / "in.jsonl", ['{"id": "a", "bad": 1}', '{"id": "z"}'])
    job = plan_job(requests, output)
    assert not job.needs_model and [rid for rid, _ in job.todo] == ["z"]
    run_jobs(None, job, progress=False)
    assert [r["id"] for r in records(output)] == ["a", "z", "gone"]
