"""Settings are resolved once: the model's frame rule is chosen once, from its video processor,
and every entry point reports the same rule in the same words (never the model's rule as the
user's own)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from commands import VIDTT, console, in_process

import vidtt
from vidtt.settings.resolve import Settings, resolve

MODEL_RULE = "the model's Qwen2VLVideoProcessor: fps=2, max_frames=3"


@pytest.fixture(scope="module")
def qwen_at_2fps(qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("qwen-2fps-settings") / "model"
    shutil.copytree(qwen_dir, folder)
    config = folder / "processor_config.json"
    settings = json.loads(config.read_text())
    settings["video_processor"].update(fps=2.0, min_frames=2, max_frames=3)
    config.write_text(json.dumps(settings))
    return folder


def test_a_frame_rule_once_chosen_stays() -> None:
    settings = resolve(model="m", backend="cpu")
    assert isinstance(settings, Settings) and settings.needs_video_processor
    first = settings.with_video_processor(SimpleNamespace(fps=2, max_frames=5))
    assert first.sampler.name == "interval" and first.sampler_values == {
        "fps": 2.0,
        "max_frames": 5,
    }
    assert first.rule == "the model's SimpleNamespace: fps=2, max_frames=5 (interval sampler)"
    again = first.with_video_processor(SimpleNamespace(num_frames=9))
    assert again is first  # a second read changes nothing, and never calls it the user's
    assert "sampler_options" not in first.config.model_fields_set


def test_the_users_options_decide_without_a_processor() -> None:
    settings = resolve(sampler_options={"num_frames": 3})
    assert not settings.needs_video_processor
    assert settings.rule == "your settings (num_frames=3)"
    with pytest.raises(vidtt.ConfigError, match="unknown sampler 'nope'"):
        resolve(sampler="nope")


def test_python_pipeline_takes_resolved_settings(qwen_at_2fps: Path, videos) -> None:
    settings = resolve(model=str(qwen_at_2fps), backend="cpu", generation={"max_new_tokens": 2})
    pipe = vidtt.Pipeline(settings)
    assert pipe.settings.config is settings.config and pipe.registry is settings.registry
    [used] = pipe.ask(videos["h264"], "What?").videos
    assert used.rule.startswith(MODEL_RULE) and len(used.indices) == 3
    with pytest.raises(vidtt.OptionsError, match="not beside them"):
        vidtt.Pipeline(settings, backend="cpu")


def test_vidtt_ask_reports_the_models_rule(qwen_at_2fps: Path, videos) -> None:
    command = ["ask", str(videos["h264"]), "-q", "What?", "--model", str(qwen_at_2fps)]
    command += ["--backend", "cpu", "--max-new-tokens", "2", "--json"]
    done = console(*command)
    assert done.returncode == 0, done.stderr
    [used] = json.loads(done.stdout)["videos"]
    assert used["rule"].startswith(MODEL_RULE) and len(used["indices"]) == 3
    done = in_process(*command, "--frames", "2")
    assert done.returncode == 0, done.stderr
    [used] = json.loads(done.stdout)["videos"]
    assert used["rule"] == "your settings (num_frames=2)" and len(used["indices"]) == 2


def test_vidtt_run_reports_the_models_rule(qwen_at_2fps: Path, videos, tmp_path: Path) -> None:
    config = tmp_path / "pipe.yaml"
    config.write_text(f"model: {qwen_at_2fps}\nbackend: cpu\ngeneration: {{max_new_tokens: 2}}\n")
    requests = tmp_path / "in.jsonl"
    requests.write_text(json.dumps({"id": "a", "videos": [str(videos["h264"])], "question": "?"}))
    out = tmp_path / "out.jsonl"
    done = console("run", str(config), "--input", str(requests), "--output", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["videos"][0]["rule"].startswith(MODEL_RULE), record


def test_ray_sampling_actors_take_the_rule_they_are_given(qwen_at_2fps: Path) -> None:
    """The driver's rule travels to the workers as it is; they do not choose one of their own."""
    from vidtt.jobs.ray_actors import SampleActor

    config = {"model": str(qwen_at_2fps), "backend": "cpu"}
    shipped = {"sampler": "uniform", "options": {"num_frames": 2}, "rule": "the driver's rule"}
    given = SampleActor(config, False, shipped).pipe
    assert given.frames_rule == "the driver's rule" and given.sampler.name == "uniform"
    assert given.sampler_options.num_frames == 2
    assert SampleActor(config, False).pipe.frames_rule.startswith(MODEL_RULE)


@pytest.mark.slow
@pytest.mark.ray
def test_vidtt_run_on_ray_reports_the_models_rule(qwen_at_2fps: Path, videos, tmp_path) -> None:
    pytest.importorskip("ray")
    from vidtt.jobs import ray as ray_run

    config = {"model": str(qwen_at_2fps), "backend": "cpu", "generation": {"max_new_tokens": 2}}
    requests = tmp_path / "in.jsonl"
    requests.write_text(json.dumps({"id": "a", "videos": [str(videos["h264"])], "question": "?"}))
    summary = ray_run.run(config, requests, tmp_path / "out.jsonl", num_cpus=2, progress=False)
    assert summary.answered == 1
    [record] = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert record["videos"][0]["rule"].startswith(MODEL_RULE), record
    assert len(record["videos"][0]["indices"]) == 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_vidtt_serve_reports_the_models_rule_not_yours(
    qwen_at_2fps: Path, videos, tmp_path
) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    command = [VIDTT, "serve", "--model", str(qwen_at_2fps), "--max-new-tokens", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    env = {**os.environ, "VIDTT_BACKEND": "cpu"}
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        ends = time.monotonic() + 180
        while time.monotonic() < ends and process.poll() is None:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        data = base64.b64encode(videos["h264"].read_bytes()).decode()
        part = {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{data}"}}
        body = {"messages": [{"role": "user", "content": [part, {"type": "text", "text": "?"}]}]}
        reply = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120)
        assert reply.status_code == 200, (reply.text, log.read_text())
        [used] = reply.json()["vidtt"]["videos"]
        assert used["rule"].startswith(MODEL_RULE) and len(used["indices"]) == 3
    finally:
        process.kill()
        process.wait(30)
