"""`vidtt run --ray`: the local run's records on a Ray cluster (2 CPUs, started here), bad rows as
error records, reruns, plugin lists inside the workers, a folder of shards, the command line.

The cluster tests are marked `slow` and `ray`: `pytest -m "not ray"` leaves them out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import job_config

import vidtt
from vidtt.cli import main
from vidtt.errors import ConfigError, OptionsError
from vidtt.jobs import ray as ray_run
from vidtt.jobs import ray_cluster
from vidtt.jobs import shards as shard_files
from vidtt.jobs.local import plan_job, read_output, run_jobs
from vidtt.media.frame_cache import FrameCache

VIDTT = str(Path(sys.executable).with_name("vidtt"))
QUESTION = "What is happening in this video?"
on_ray = [pytest.mark.slow, pytest.mark.ray]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timings(record: dict) -> dict:
    """A record without what depends on how rows met in batches: its timings and peak memory,
    and the prompt tokens its prefix cache gave (which row of a video computed the start)."""
    kept = {k: v for k, v in record.items() if k not in ("timings", "peak_memory")}
    if "usage" in kept:
        kept["usage"] = {k: v for k, v in kept["usage"].items() if k != "cached_tokens"}
    return kept


def test_actors_counts_and_ranges() -> None:
    assert ray_run.parse_actors("4") == 4
    assert ray_run.parse_actors("2-8") == (2, 8)
    for bad in ("0", "x", "3-1", "2-", "-1"):
        with pytest.raises(OptionsError):
            ray_run.parse_actors(bad)
    assert ray_run.pool_size(3) == (3, 3) and ray_run.pool_size((1, 4)) == (1, 4)
    with pytest.raises(OptionsError):
        ray_run.pool_size((4, 1))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ray", "--actors", "two"], "argument --actors: expected a count (4) or a range"),
        (["--ray", "--actors", "5-2"], "MIN no larger than MAX"),
        (["--actors", "2"], "--actors needs --ray"),
        (["--ray", "127.0.0.1:9"], "--ray 127.0.0.1:9: cannot connect to a Ray cluster at"),
        (["--ray", "ray://"], "--ray ray://: expected local, auto, HOST:PORT"),
    ],
)
def test_command_line_mistakes_are_one_line(extra, message, llava_dir, videos, tmp_path, capsys):
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps({"model": str(llava_dir), "backend": "cpu"}))
    requests = tmp_path / "in.jsonl"
    requests.write_text(json.dumps({"videos": [str(videos["h264"])], "question": "Hm?"}) + "\n")
    args = ["run", str(config), "--input", str(requests), "--output", str(tmp_path / "o.jsonl")]
    code = 2
    try:
        code = main([*args, *extra])
    except SystemExit as exit:  # argparse
        code = int(exit.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.strip().splitlines()[-1].count("vidtt") == 1


def test_without_ray_installed(monkeypatch, llava_dir, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'vidtt\[ray\]'"):
        ray_cluster.import_ray()


def test_nothing_left_to_do_needs_no_cluster(monkeypatch, llava_dir, tmp_path) -> None:
    """Invalid lines only: error records, no Ray started (it may not even be installed)."""
    monkeypatch.setitem(sys.modules, "ray", None)
    requests = tmp_path / "in.jsonl"
    requests.write_text('{"id": "a", "question": "no video?"}\n{oops\n')
    config = {"model": str(llava_dir), "backend": "cpu"}
    summary = ray_run.run(config, requests, tmp_path / "out.jsonl", progress=False)
    assert (summary.answered, summary.failed) == (0, 2)
    assert set(read_output(tmp_path / "out.jsonl")) == {"a", "2"}
    folder = ray_run.run(config, requests, f"{tmp_path}/shards/", progress=False)
    assert folder.failed == 2 and len(shard_files.read_shards(tmp_path / "shards")) == 2


def test_importing_vidtt_does_not_import_ray() -> None:
    code = "import sys, vidtt, vidtt.cli.app, vidtt.jobs.ray; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_worker_that_cannot_start_is_one_line() -> None:
    """Ray keeps only the text of an error raised while an actor starts: its vidtt line."""
    text = (
        "The actor died because of an error raised in its creation task\nTraceback ...\n"
        "vidtt.errors.FormatterError: no formatter fits 'm'; tried: native-video (no videos=)\n"
    )
    with pytest.raises(ConfigError, match=r"^on a Ray worker: no formatter fits 'm'; tried"):
        ray_cluster.run_ray(lambda: (_ for _ in ()).throw(RuntimeError(text)))
    with pytest.raises(KeyError):
        ray_cluster.run_ray(lambda: {}["other errors pass through"])


# -- on a local cluster of 2 CPUs ----------------------------------------------------------
@pytest.fixture(scope="module")
def job(llava_dir, videos, tmp_path_factory):
    """A config, a requests file with good and bad lines, and where the answers go."""
    folder = tmp_path_factory.mktemp("ray-job")
    (folder / "clips").mkdir()
    shutil.copy(videos["h264"], folder / "clips" / "rel.mp4")
    config = job_config(llava_dir, dtype="float32")
    (folder / "pipe.json").write_text(json.dumps(config))
    content = [{"type": "video", "video": str(videos["vp9"])}, {"type": "text", "text": "Hi?"}]
    lines = [
        *(
            {"id": f"{name}-{q}", "videos": [str(videos[name])], "question": question}
            for name in ("h264", "vp9", "mpeg4")
            for q, question in enumerate((QUESTION, "Describe it in detail, please."))
        ),
        {"id": "late", "videos": [str(folder / "late.mp4")], "question": QUESTION},
        {"id": "typo", "videos": [str(videos["h264"])], "qestion": QUESTION},
        {"id": "token", "videos": [str(videos["h264"])], "question": "A <image> here?"},
        "{not json",
        {"id": "chat", "messages": [{"role": "user", "content": content}]},
        {"id": "short", "videos": [str(videos["vp9"])], "question": QUESTION, "max_new_tokens": 2},
        {"id": "relative", "videos": ["clips/rel.mp4"], "question": QUESTION, "num_frames": 3},
        {
            "id": "keyframes",
            "videos": [str(videos["h264_gop"])],
            "question": "Hm?",
            "sampler": "keyframe",
        },
        {"id": "every", "videos": [str(videos["vp9"])], "question": "Hm?", "every": 0.5},
        {"id": "h264-0", "videos": [str(videos["vp9"])], "question": "repeated id"},
    ]
    requests = folder / "requests.jsonl"
    requests.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return folder / "pipe.json", requests, folder


@pytest.fixture(scope="module")
def first_runs(cluster, job):
    """The same requests answered by the local run and on Ray (output files)."""
    config, requests, folder = job
    local = folder / "local.jsonl"
    pipe = vidtt.Pipeline(config, cache=FrameCache())
    local_summary = run_jobs(pipe, plan_job(requests, local), batch_size=4, progress=False)
    on_ray = folder / "ray" / "answers.jsonl"
    summary = ray_run.run(config, requests, on_ray, batch_size=4, progress=False)
    return local, local_summary, on_ray, summary


@pytest.mark.slow
@pytest.mark.ray
def test_answers_equal_the_local_run(first_runs) -> None:
    local, local_summary, on_ray, summary = first_runs
    assert (summary.answered, summary.failed, summary.skipped) == (11, 4, 0)
    assert (summary.answered, summary.failed) == (local_summary.answered, local_summary.failed)
    assert summary.duplicates == ["h264-0"]
    expected, got = records(local), records(on_ray)
    assert [r["id"] for r in got] == [r["id"] for r in expected]  # input order, one per id
    for mine, theirs in zip(got, expected):
        assert without_timings(mine) == without_timings(theirs)  # token_ids, frames, errors
    answered = [r for r in got if "error" not in r]
    assert all(r["token_ids"] for r in answered) and len(answered) == 11


@pytest.mark.slow
@pytest.mark.ray
def test_bad_rows_become_error_records(first_runs) -> None:
    got = {r["id"]: r for r in records(first_runs[2])}
    assert "video not found" in got["late"]["error"]
    assert "unknown key 'qestion' (did you mean 'question'?)" in got["typo"]["error"]
    assert "'<image>', the model's own media token" in got["token"]["error"]
    assert "line 10 is not JSON" in got[10]["error"]
    assert got["short"]["usage"]["generated_tokens"] == 2
    assert len(got["relative"]["videos"][0]["indices"]) == 3
    assert got["relative"]["videos"][0]["source"].endswith("clips/rel.mp4")
    assert got["keyframes"]["videos"][0]["sampler"] == "keyframe"
    assert got["h264-0"]["videos"][0]["source"].endswith("h264.mp4")  # the first line's


@pytest.mark.slow
@pytest.mark.ray
def test_rerun_skips_answered_and_retries_failed(first_runs, job, videos) -> None:
    config, requests, folder = job
    output = folder / "rerun" / "answers.jsonl"
    output.parent.mkdir()
    shutil.copy(first_runs[2], output)
    shutil.copy(videos["mpeg4"], folder / "late.mp4")
    try:
        summary = ray_run.run(config, requests, output, batch_size=4, progress=False)
    finally:
        (folder / "late.mp4").unlink()
    assert (summary.answered, summary.failed, summary.skipped) == (1, 3, 11)
    after = records(output)
    assert [r["id"] for r in after] == [r["id"] for r in records(first_runs[2])]
    assert "error" not in {r["id"]: r for r in after}["late"]

    quiet = ray_run.run(config, requests, output, retry_failed=False, progress=False)
    assert (quiet.answered, quiet.failed, quiet.skipped) == (0, 0, 15)
    assert records(output) == after


@pytest.mark.slow
@pytest.mark.ray
def test_the_command_line_joins_a_cluster_and_writes_shards(first_runs, job, tmp_path) -> None:
    """`--ray ADDRESS` (the test's cluster), `--output DIR/`, a config whose block list takes
    a sampler away from the workers, and the driver's VIDTT_* variables travelling with the
    job to workers that did not start with them."""
    config, requests, _ = job
    blocking = tmp_path / "blocking.json"
    blocking.write_text(
        json.dumps({**json.loads(config.read_text()), "disable_plugins": ["keyframe"]})
    )
    shards = tmp_path / "answers"
    args = ["--input", str(requests), "--output", f"{shards}/", "--batch-size", "4", "--quiet"]
    done = subprocess.run(
        [VIDTT, "run", str(blocking), *args, "--ray", cluster_address(), "--actors", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
        env={**os.environ, "VIDTT_DISABLE_PLUGINS": "interval"},
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "9 answered, 6 failed, 0 already done" in done.stderr, done.stderr[-3000:]
    assert "2 request line(s) are invalid" in done.stderr
    files = shard_files.shards(shards)
    assert len(files) >= 2 and any(f.name.endswith("-invalid.jsonl") for f in files)
    got = {r["id"]: r for f in files for r in records(f)}
    assert sum(len(records(f)) for f in files) == len(got) == 15
    assert "unknown sampler 'keyframe'" in got["keyframes"]["error"]  # the config's list
    assert "unknown sampler 'interval'" in got["every"]["error"]  # VIDTT_DISABLE_PLUGINS
    expected = {r["id"]: without_timings(r) for r in records(first_runs[2])}
    for rid, record in got.items():
        if rid not in ("keyframes", "every"):
            assert without_timings(record) == expected[rid]


@pytest.mark.slow
@pytest.mark.ray
def test_a_rerun_into_shards_leaves_one_record_per_id(first_runs, job, videos, tmp_path) -> None:
    config, requests, folder = job
    shards = tmp_path / "answers"
    shards.mkdir()
    earlier = [r for r in records(first_runs[2]) if r["id"] != "h264-1"]  # as if cut short
    (shards / "20000101T000000-old.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in earlier) + '{"id": "cut sh'
    )
    shutil.copy(videos["mpeg4"], folder / "late.mp4")
    try:
        summary = ray_run.run(config, requests, shards, batch_size=4, progress=False)
    finally:
        (folder / "late.mp4").unlink()
    assert (summary.answered, summary.failed, summary.skipped) == (2, 3, 10)
    kept = [r for f in shard_files.shards(shards) for r in records(f)]
    assert len(kept) == len({str(r["id"]) for r in kept}) == 15  # no old error, no cut line
    assert {"late", "h264-1"} <= {r["id"] for r in kept if "error" not in r}
    assert shard_files.read_shards(shards)["h264-1"]["token_ids"] == next(
        r["token_ids"] for r in records(first_runs[2]) if r["id"] == "h264-1"
    )


def cluster_address() -> str:
    import ray

    return str(ray.get_runtime_context().gcs_address)
