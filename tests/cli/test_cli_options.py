"""The shared command-line options: same flags on every command, help text, -o, --frames for
plugin samplers, checks before the model loads, output folders made first."""

from __future__ import annotations

import json
import os
import time

import pytest
from commands import console, in_process

from vidtt.cli import build_parser

pytestmark = pytest.mark.slow

SHARED = [
    "--frames",
    "--max-side",
    "--size",
    "--start",
    "--end",
    "--every",
    "--fps",
    "--sampler-option",
    "--sampler",
]
GENERATION = [
    "--formatter",
    "--timestamps",
    "--max-new-tokens",
    "--temperature",
    "--top-p",
    "--seed",
    "--stop",
]


def commands() -> dict:
    [action] = [a for a in build_parser()._actions if a.dest == "command"]
    return action.choices


def flags(parser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_one_set_of_options_on_every_command() -> None:
    subs = commands()
    for name in ("ask", "chat", "run"):
        assert flags(subs[name]) >= {*SHARED, *GENERATION, "-o", "--debug"}, name
    assert flags(subs["sample"]) >= {*SHARED, "-o", "--config", "--debug"}


def test_every_argument_has_help() -> None:
    for name, sub in commands().items():
        for action in sub._actions:
            assert action.help, f"vidtt {name} {action.option_strings or action.dest}"


def test_debug_is_accepted_after_the_command(videos) -> None:
    for args in (["--debug", "sample"], ["sample", "--debug"]):
        out = console(*args, str(videos["h264"]), "--frames", "500")
        assert out.returncode != 0 and "Traceback" in out.stderr
    out = console("sample", str(videos["h264"]), "--frames", "500")
    assert out.returncode == 2 and "Traceback" not in out.stderr


def sample_json(*args: str) -> dict:
    out = console("sample", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_sampling_flags_reach_the_sampler(videos, tmp_path) -> None:
    video = str(videos["h264"])  # 48 frames at 24 fps, 160x120
    data = sample_json(video, "--frames", "3", "--start", "0.5", "--end", "1.5")
    assert len(data["frames"]) == 3 and 0.5 <= data["frames"][0]["time"] < 1.5
    data = sample_json(video, "--fps", "2")
    assert data["sampler"] == "interval" and len(data["frames"]) == 4
    data = sample_json(video, "--every", "0.5", "-o", "max_frames=2")
    assert len(data["frames"]) == 2
    out = console(
        "sample", video, "--frames", "2", "--max-side", "80", "--out", str(tmp_path / "m")
    )
    assert "took 2 frames at 80x60" in out.stdout
    out = console("sample", video, "--frames", "2", "--size", "64x32")
    assert "at 64x32" in out.stdout


def test_sample_takes_a_config_and_flags_override_it(videos, tmp_path) -> None:
    config = tmp_path / "pipe.yaml"
    config.write_text("sampler: interval\nsampler_options: {every: 0.5, max_side: 80}\n")
    data = sample_json(str(videos["h264"]), "--config", str(config))
    assert data["sampler"] == "interval" and len(data["frames"]) == 4
    data = sample_json(str(videos["h264"]), "--config", str(config), "--fps", "1")
    assert len(data["frames"]) == 2


def test_frames_follows_the_samplers_count_option(plugin_dist, videos) -> None:
    site = plugin_dist(
        "first-dist",
        "first_mod",
        """
        import vidtt
        from pydantic import Field
        from vidtt.samplers.uniform import UniformSampler

        class FirstOptions(vidtt.SamplerOptions):
            count: int = Field(4, ge=1)

        class First(UniformSampler):
            name = "first"
            options_model = FirstOptions
            count_option = "count"

            def sample(self, source, options):
                return super().sample(source, UniformSampler().options(num_frames=options.count))

        class Fixed(First):
            name = "fixed"
            count_option = None

        @vidtt.hookimpl
        def register_samplers(register):
            register(First())
            register(Fixed())
        """,
    )
    env = {"PYTHONPATH": str(site)}
    out = console("sample", str(videos["h264"]), "--sampler", "first", "--frames", "3", env=env)
    assert out.returncode == 0, out.stderr
    assert "first took 3 frames" in out.stdout
    out = console("sample", str(videos["h264"]), "--sampler", "first", "-o", "count=2", env=env)
    assert "first took 2 frames" in out.stdout
    out = console("sample", str(videos["h264"]), "--sampler", "fixed", "--frames", "3", env=env)
    assert out.returncode == 2 and "has no frame-count option" in out.stderr
    assert "-o KEY=VALUE" in out.stderr


def test_bad_sampler_option_is_one_line(videos) -> None:
    out = console("sample", str(videos["h264"]), "-o", "wobble=3")
    assert out.returncode == 2 and "wobble: unknown option" in out.stderr
    out = console("sample", str(videos["h264"]), "-o", "novalue")
    assert out.returncode == 2 and "expected KEY=VALUE" in out.stderr


def test_every_problem_is_reported_before_the_model_loads(llava_dir, videos, tmp_path) -> None:
    unreadable = tmp_path / "locked.mp4"
    unreadable.write_bytes(videos["h264"].read_bytes())
    unreadable.chmod(0)
    started = time.monotonic()
    out = console(
        "ask",
        str(videos["h264"]),
        str(tmp_path / "missing.mp4"),
        "-q",
        " ",
        "--model",
        str(llava_dir),
        "--max-new-tokens",
        "0",
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    message = out.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith("vidtt: error: 3 problems: ")
    for part in ("max_new_tokens", "video 2", "question is empty"):
        assert part in message
    out = console(
        "ask", str(videos["h264"]), "-q", "hi", "--model", str(llava_dir), "--frames", "500"
    )
    assert out.returncode == 2 and "asked for 500 frames" in out.stderr
    if os.geteuid() != 0:  # root reads anything
        out = console("ask", str(unreadable), "-q", "hi", "--model", str(llava_dir))
        assert out.returncode == 2 and "permission denied" in out.stderr
    assert time.monotonic() - started < 20  # no model was loaded (each would take seconds)


def test_generation_flags_reach_the_model(llava_dir, videos) -> None:
    common = ["ask", str(videos["h264"]), "-q", "What?", "--model", str(llava_dir)]
    common += ["--frames", "2", "--json"]
    greedy = json.loads(in_process(*common, "--max-new-tokens", "6").stdout)
    assert greedy["usage"]["generated_tokens"] <= 6
    # the same seed gives the same tokens in a new process and in this one
    one = console(*common, "--max-new-tokens", "6", "--temperature", "1.5", "--seed", "3")
    two = in_process(*common, "--max-new-tokens", "6", "--temperature", "1.5", "--seed", "3")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["token_ids"] == json.loads(two.stdout)["token_ids"]
    out = in_process(*common, "--top-p", "2")
    assert out.returncode == 2 and "top_p" in out.stderr


def test_sheet_folder_is_made_or_refused_first(videos, tmp_path) -> None:
    sheet = tmp_path / "new" / "deeper" / "sheet.png"
    out = console("sample", str(videos["h264"]), "--frames", "2", "--sheet", str(sheet))
    assert out.returncode == 0 and sheet.exists()
    (tmp_path / "file").write_text("x")
    started = time.monotonic()
    out = console("sample", str(videos["h264"]), "--sheet", str(tmp_path / "file" / "s.png"))
    assert out.returncode == 2 and "--sheet: cannot create the folder" in out.stderr
    assert time.monotonic() - started < 10


def test_demo_says_where_its_files_are(tmp_path) -> None:
    first = console("demo", env={"VIDTT_CACHE_DIR": str(tmp_path)})
    assert first.returncode == 0, first.stderr
    assert "making" in first.stderr and str(tmp_path / "demo") in first.stderr
    assert str(tmp_path / "demo" / "tiny-llava") in first.stdout
    second = in_process("demo", env={"VIDTT_CACHE_DIR": str(tmp_path)})
    assert second.returncode == 0 and "making" not in second.stderr
    assert str(tmp_path / "demo" / "sample.mp4") in second.stdout
