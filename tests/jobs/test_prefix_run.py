"""The prefix cache in `vidtt run`'s summary and records: three questions about each of two
videos reuse each video's start (4 hits, 2 misses), `--no-prefix-cache` says off and answers
the same, a model that prefills whole says why; on Ray the generation actors' counts are
summed (`PrefixTally`), and a folder output counts the records that reused a start."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from commands import console, in_process
from tiny_models import job_config

import vidtt
from vidtt.engine.prefix import PrefixStats
from vidtt.jobs.local import plan_job, run_jobs
from vidtt.jobs.ray_actors import PrefixTally

QUESTIONS = ("What is shown?", "Describe the colours.", "What moves, and which way does it go?")
ON = re.compile(
    r"^vidtt: prefix cache: 4 hits, 2 misses, \d+\.\d MiB held in \d+ \w+ "
    r"\(limit 32 MiB\), 0 evicted$",
    re.MULTILINE,
)


@pytest.fixture
def job(llava_dir, videos, tmp_path) -> tuple[Path, Path]:
    """A config (the tiny model, 2 frames) and 2 videos x 3 questions."""
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32")))
    requests = tmp_path / "in.jsonl"
    lines = [
        {"id": f"{name}-{n}", "videos": [str(videos[name])], "question": question}
        for name in ("h264", "vp9")
        for n, question in enumerate(QUESTIONS)
    ]
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return config, requests


def records(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


def cached_by_video(found: dict[str, dict]) -> dict[str, list[int]]:
    """Each video's cached prompt tokens, smallest first."""
    out: dict[str, list[int]] = {}
    for rid, record in found.items():
        out.setdefault(rid.split("-")[0], []).append(record["usage"]["cached_tokens"])
    return {name: sorted(values) for name, values in out.items()}


@pytest.mark.slow
def test_the_summary_and_records_say_what_was_reused(job, tmp_path) -> None:
    """`vidtt run` (the console script): one line of prefix cache counts at the end; in each
    video's records one computed its start and two continued from it."""
    config, requests = job
    output = tmp_path / "on.jsonl"
    env = {"VIDTT_CACHE_DIR": str(tmp_path / "store")}
    args = ["--input", str(requests), "--output", str(output), "--quiet"]
    done = console("run", str(config), *args, "--prefix-cache-mb", "32", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ON.search(done.stderr), done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert lines[-2].startswith("vidtt: 6 answered, 0 failed") and ON.match(lines[-1])
    on = records(output)
    for name, values in cached_by_video(on).items():
        assert values[0] == 0 < values[1] <= values[2], (name, values)
        assert all(on[f"{name}-{n}"]["usage"]["prompt_tokens"] > values[2] for n in range(3))

    output = tmp_path / "off.jsonl"
    off = in_process("run", str(config), *args[:2], "--output", str(output), "--quiet",
                     "--no-prefix-cache", env=env)  # fmt: skip
    assert off.returncode == 0, off.stderr[-3000:]
    assert off.stderr.strip().splitlines()[-1] == "vidtt: prefix cache: off"
    found = records(output)
    assert {rid: r["usage"]["cached_tokens"] for rid, r in found.items()} == dict.fromkeys(on, 0)
    assert {rid: r["text"] for rid, r in found.items()} == {rid: r["text"] for rid, r in on.items()}


@pytest.mark.slow
def test_a_model_that_prefills_whole_says_why(qwen_dir, videos, tmp_path) -> None:
    """Qwen2.5-VL computes positions from the whole prompt: its run says the cache is off and
    why, and no record has cached tokens."""
    requests = tmp_path / "in.jsonl"
    lines = [{"videos": [str(videos["h264"])], "question": q} for q in QUESTIONS[:2]]
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    pipe = vidtt.Pipeline(job_config(qwen_dir, dtype="float32"))
    summary = run_jobs(pipe, plan_job(requests, tmp_path / "out.jsonl"), progress=False)
    assert summary.answered == 2
    assert summary.prefix == f"prefix cache: off ({pipe.engine.reuse_blocker})"
    assert "multimodal RoPE" in str(summary.prefix)
    assert [r["usage"]["cached_tokens"] for r in records(tmp_path / "out.jsonl").values()] == [0, 0]


def notes(actor: str, **counts: int) -> str:
    fields = {"hits": 0, "misses": 0, "evictions": 0, "blocks": 0, "bytes": 0, "limit": 0}
    return json.dumps({"actor": actor, **fields, **counts})


def test_the_actors_counts_are_summed() -> None:
    """The latest note of each actor counts, whatever order the batches arrive in."""
    pa = pytest.importorskip("pyarrow")
    tally = PrefixTally()
    mib = 1024 * 1024
    batches = [
        [notes("a", hits=3, misses=1, blocks=1, bytes=mib, limit=8 * mib)] * 2,
        [notes("b", hits=1, misses=2, blocks=2, bytes=2 * mib, limit=8 * mib, evictions=1)],
        [notes("a", hits=1, misses=1, blocks=1, bytes=mib, limit=8 * mib)],  # an older one
    ]
    for batch in batches:
        tally.note(pa.table({"record": ["{}"] * len(batch), "prefix": batch}))
    tally.note(pa.table({"record": ["{}"]}))  # a batch without notes
    summed = PrefixStats(hits=4, misses=3, evictions=1, blocks=3, bytes=3 * mib, limit=16 * mib)
    assert tally.line() == f"{summed.describe()} over 2 actors"
    off = PrefixTally()
    assert off.line() is None
    off.note(pa.table({"prefix": [json.dumps({"actor": "a", "off": ""})]}))
    assert off.line() == "prefix cache: off"
    off.note(pa.table({"prefix": [json.dumps({"actor": "b", "off": "an encoder-decoder model"})]}))
    assert off.line() == "prefix cache: off (an encoder-decoder model)"


@pytest.mark.slow
@pytest.mark.ray
def test_on_ray_the_summary_sums_the_actors(cluster, job, tmp_path) -> None:
    """`--ray`: the generation actor's counts reach the summary (a file output), and a folder
    output counts the answers that continued from a kept start."""
    from vidtt.jobs import ray as ray_run

    config, requests = job
    settings = {**json.loads(config.read_text()), "prefix_cache_mb": 32}
    summary = ray_run.run(settings, requests, tmp_path / "out.jsonl", progress=False)
    assert summary.answered == 6 and summary.prefix is not None
    assert ON.match(f"vidtt: {summary.prefix}"), summary.prefix
    found = records(tmp_path / "out.jsonl")
    assert [v[0] == 0 < v[1] <= v[2] for v in cached_by_video(found).values()] == [True, True]
    folder = ray_run.run(settings, requests, f"{tmp_path}/shards/", progress=False)
    assert folder.prefix is not None and folder.prefix.startswith(
        "prefix cache: 4 answers continued from a kept start ("
    ), folder.prefix
