"""Issue 27, the command line as users meet it: the frame rule `ask --json` reports, budgets on
`sample`, every problem in one error, "did you mean", the -o examples, Ctrl-C in `chat`, one
spelling of the config everywhere, a quiet Ray that ends with its driver, contact sheets, the
demo's first lines and the frame limit in force."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from commands import VIDTT, console, in_process, wait_for_input
from PIL import Image
from terminal import Terminal

import vidtt
from vidtt.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "VIDTT_BACKEND": "cpu"}


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("vidtt")]
    return line


# -- 1. the rule `vidtt ask --json` reports -----------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "rule", "run"),
    [
        (["--frames", "4"], "your settings (num_frames=4)", in_process),
        (["--every", "0.5"], "your settings (every=0.5)", in_process),
        (["--fps", "2", "--stream"], "your settings (fps=2.0)", console),
    ],
    ids=["frames", "every", "fps-stream"],
)
def test_ask_json_names_the_users_settings(llava_dir, videos, flags, rule, run) -> None:
    command = ["ask", str(videos["h264"]), str(videos["vp9"]), "-q", "What?", "--json"]
    done = run(*command, "--model", str(llava_dir), "--max-new-tokens", "2", *flags)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout[done.stdout.index("{") :])  # after the streamed text
    assert [v["rule"] for v in answer["videos"]] == [rule, rule]
    assert all(len(v["indices"]) == 4 for v in answer["videos"])


# -- 2. a budget on `vidtt sample` needs a model --------------------------------------------------
@pytest.mark.parametrize("flags", [["--fit-context"], ["--max-visual-tokens", "100"]])
def test_sample_budget_without_a_model_is_an_error(videos, flags) -> None:
    line = one_line_error(console("sample", str(videos["h264"]), *flags))
    assert "needs --model" in line


def test_sample_help_describes_its_own_budget_flags() -> None:
    parsers = commands()
    text = parsers["sample"].format_help()
    assert "--max-new-tokens" not in text and "question and" not in text
    assert text.count("with --model") >= 2
    assert "--max-new-tokens" in parsers["ask"].format_help()


@pytest.mark.slow
def test_sample_budget_with_a_model_chooses_the_frames(llava_dir, videos) -> None:
    command = ["sample", str(videos["h264"]), "--model", str(llava_dir)]
    done = console(*command, "--max-visual-tokens", "100")
    assert done.returncode == 0, done.stderr
    assert "frames chosen by: the visual-token budget" in done.stdout
    assert "took 6 frames" in done.stdout  # 16 tokens a frame


# -- 3. every problem in one error, before anything loads ---------------------------------------
def test_every_config_flag_video_and_question_problem_together(videos, tmp_path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        f"model: {tmp_path / 'no-model'}\ndtype: fp64\nsampler: nope\nformatter: nah\n"
    )
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00not a video" * 100)
    done = console(
        "ask", str(tmp_path / "missing.mp4"), str(corrupt), str(videos["h264"]), "-q", " ",
        "--config", str(config), "--top-p", "2",
    )  # fmt: skip
    line = one_line_error(done)
    assert line.startswith("vidtt: error: 7 problems: "), line
    for part in (
        "bad.yaml, line 2: dtype",
        "bad.yaml, line 3: unknown sampler 'nope'",
        "bad.yaml, line 4: unknown formatter 'nah'",
        "command-line options: generation.top_p",
        "video 1 (",
        "video 2 (",
        "is not a readable video",
        "the question is empty",
    ):
        assert part in line, part
    assert "video 3" not in line


def test_bad_flags_hide_no_other_problem(videos) -> None:
    done = console("ask", str(videos["h264"]), "-q", "?", "--dtype", "fp99", "--sampler", "nope")
    line = one_line_error(done)
    assert "2 problems" in line and "dtype" in line and "unknown sampler 'nope'" in line


def test_config_file_reports_every_problem_from_python(tmp_path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("dtype: fp64\nsampler: nope\nbackend: quantum\n")
    with pytest.raises(vidtt.ConfigError, match="3 problems") as caught:
        vidtt.load_config(config)
    assert "dtype" in str(caught.value) and "'nope'" in str(caught.value)
    assert "'quantum'" in str(caught.value)


@pytest.mark.slow
def test_every_video_that_fails_to_sample_is_named(llava_dir, videos) -> None:
    command = ["ask", str(videos["h264"]), str(videos["vp9"]), "-q", "?"]
    line = one_line_error(console(*command, "--model", str(llava_dir), "--every", "100"))
    assert "2 problems" in line and "video 1 (" in line and "video 2 (" in line


# -- 4. misspelled flags and commands ------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "usage", "hint"),
    [
        (["ask", "{video}", "-q", "?", "--frame", "8"], "vidtt ask", "did you mean --frames?"),
        (["ask", "{video}", "--qestion", "?"], "vidtt ask", "did you mean --question?"),
        (["sample", "{video}", "--frame=3"], "vidtt sample", "did you mean --frames?"),
        (["run", "pipe.yaml", "--inpt", "x"], "vidtt run", "did you mean --input?"),
        (["aks", "{video}"], "vidtt", "unknown command 'aks' (did you mean 'ask'?)"),
        (["--frames", "4", "ask"], "vidtt", "--frames belongs after the command"),
    ],
)
def test_misspellings_get_a_suggestion_and_their_usage(videos, words, usage, hint) -> None:
    done = console(*(w.format(video=videos["h264"]) for w in words))
    assert done.returncode == 2
    assert hint in done.stderr, done.stderr
    assert done.stderr.startswith(f"usage: {usage} "), done.stderr


# -- 5. every -o example in --help and docs/guide.md works ---------------------------------------
def commands() -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in build_parser()._actions if a.dest == "command"]
    return dict(action.choices)


EXAMPLE = re.compile(r"((?:--sampler \w+ )?-o (?:'[^']+'|[^\s,`)]+))")


def sampler_option_examples() -> list[str]:
    texts = [(ROOT / "docs" / "guide.md").read_text()]
    for parser in commands().values():
        texts += [action.help or "" for action in parser._actions]
    found = {example for text in texts for example in EXAMPLE.findall(text)}
    return sorted(e for e in found if "KEY=VALUE" not in e)


def test_the_examples_are_found() -> None:
    assert {"-o rule=linspace", "--sampler interval -o min_frames=4"} <= set(
        sampler_option_examples()
    )


@pytest.mark.parametrize("example", sampler_option_examples())
def test_each_sampler_option_example_parses_and_samples(example, videos) -> None:
    from vidtt.cli.settings import command_settings, sample_all

    words = shlex.split(example)
    args = build_parser().parse_args(["sample", str(videos["h264"]), *words])
    settings = command_settings(args, [args.video])
    key, value = args.sampler_option[0]
    assert settings.config.sampler_options[key] == value
    [clip] = sample_all(settings, [args.video])
    assert len(clip) >= 1


def test_lists_in_yaml_flow_style_are_read() -> None:
    from vidtt.cli.options import key_value

    assert key_value("size=[320, 240]") == ("size", [320, 240])
    assert key_value("size=[320,240]") == ("size", [320, 240])
    assert key_value("rule=yes") == ("rule", "yes")  # only lists and mappings, not YAML words
    with pytest.raises(argparse.ArgumentTypeError, match="write it as JSON"):
        key_value("size=[320, 240")


# -- 6. Ctrl-C and empty lines in `vidtt chat` ---------------------------------------------------
@pytest.mark.slow
def test_piped_chat_ends_at_an_empty_line(llava_dir, videos) -> None:
    command = ["chat", str(videos["h264"]), "--model", str(llava_dir), "--frames", "2"]
    command += ["--max-new-tokens", "3"]
    one = in_process(*command, stdin="What is it?\n")
    two = console(*command, stdin="What is it?\n\nAnd then?\n")  # through a real pipe
    assert one.returncode == two.returncode == 0, two.stderr
    assert one.stdout and two.stdout == one.stdout  # the line after the empty one is not asked


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_chat_stops_the_answer_then_ends(llava_dir, videos, tmp_path) -> None:
    config = tmp_path / "long.yaml"
    config.write_text(
        f"model: {llava_dir}\nsampler_options: {{num_frames: 2}}\n"
        "generation: {min_new_tokens: 900, max_new_tokens: 900}\n"
    )
    command = [VIDTT, "chat", str(videos["h264"]), "--config", str(config)]
    with Terminal(command, {**ENV, "VIDTT_CACHE_DIR": str(tmp_path)}) as terminal:
        process = terminal.process
        terminal.read_until(b"you> ")
        wait_for_input(process)  # a Ctrl-C before the wait is only seen after the next key
        process.send_signal(signal.SIGINT)  # at the prompt: a hint, and the chat goes on
        terminal.read_until(b"you> ", times=2, timeout=30)
        assert b"Ctrl-C again" in terminal.seen and process.poll() is None
        terminal.write(b"What is happening?\n")
        terminal.read_until(b"What is happening?\r\n", timeout=30)
        answer_starts = len(terminal.seen)
        while len(terminal.seen) < answer_starts + 4:  # the answer is printing
            assert terminal.read()
        started = time.monotonic()
        process.send_signal(signal.SIGINT)  # stops the answer: back at the prompt
        terminal.read_until(b"you> ", times=3, timeout=30)
        assert time.monotonic() - started < 15
        assert b"answer stopped" in terminal.seen and process.poll() is None
        wait_for_input(process)
        process.send_signal(signal.SIGINT)  # a second Ctrl-C in a row ends the chat
        process.wait(timeout=30)
    seen = terminal.seen
    assert process.returncode == 0, seen[-500:]
    assert b"Traceback" not in seen and b"terminate called" not in seen


# -- 7. the config file: --config on every command, CONFIG on run and serve ------------------------
def test_every_config_spelling_is_accepted(tmp_path) -> None:
    from vidtt.cli.settings import config_path

    config = str(tmp_path / "pipe.yaml")
    spellings = {
        "ask": [["v.mp4", "-q", "?", "--config", config]],
        "chat": [["v.mp4", "--config", config]],
        "sample": [["v.mp4", "--config", config]],
        "run": [[config, "--input", "i", "--output", "o"], ["--config", config, "--input", "i",
                "--output", "o"], [config, "--config", config, "--input", "i", "--output", "o"]],
        "serve": [[config], ["--config", config]],
    }  # fmt: skip
    for command, forms in spellings.items():
        for words in forms:
            assert config_path(build_parser().parse_args([command, *words])) == config, words
    run = ["run", config, "--config", "b.yaml", "--input", "i", "--output", "o"]
    with pytest.raises(vidtt.OptionsError, match="two config files"):
        config_path(build_parser().parse_args(run))


@pytest.mark.slow
def test_run_takes_config_as_a_flag(llava_dir, videos, tmp_path) -> None:
    config = tmp_path / "pipe.yaml"
    config.write_text(
        f"model: {llava_dir}\nsampler_options: {{num_frames: 2}}\n"
        "generation: {max_new_tokens: 2}\n"
    )
    requests = tmp_path / "in.jsonl"
    requests.write_text(json.dumps({"id": "a", "videos": [str(videos["h264"])], "question": "?"}))
    out = tmp_path / "out.jsonl"
    done = console("run", "--config", str(config), "--input", str(requests), "--output", str(out))
    assert done.returncode == 0, done.stderr
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["id"] == "a" and "error" not in record


# -- 8. Ray: quiet with --quiet, and a private cluster ends with its driver ---------------------
def ray_helpers(raylet: int, named: list[int]) -> list[int]:
    """Live (not zombie) processes of that cluster: the ones named, and the raylet's helpers."""
    from vidtt.jobs.ray_reaper import raylet_of, start_time

    alive = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and start_time(int(entry)) is not None:
            pid = int(entry)
            if pid in named or raylet_of(pid) == raylet:
                alive.append(pid)
    return alive


DRIVER = """
import json, sys, time
from vidtt.jobs.ray_cluster import cluster
with cluster("local", 1, progress=False) as ray:
    node = ray._private.worker._global_node
    pids = [i.process.pid for infos in node.all_processes.values() for i in infos]
    raylet = node.all_processes["raylet"][0].process.pid
    print(json.dumps({"pids": pids, "raylet": raylet}), flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_private_cluster_dies_with_its_killed_driver() -> None:
    pytest.importorskip("ray")
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    try:
        started = json.loads(driver.stdout.readline())
        raylet, named = started["raylet"], started["pids"]
        time.sleep(1)
        helpers = set(ray_helpers(raylet, named)) - set(named)
        assert helpers, "the raylet started no helpers: nothing to check"
    finally:
        driver.kill()  # SIGKILL: nothing of the driver runs after it
        driver.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while ray_helpers(raylet, named) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = ray_helpers(raylet, named)
    for pid in left:  # do not leave them to the other tests
        os.kill(pid, signal.SIGKILL)
    assert not left, [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in left]


@pytest.mark.slow
@pytest.mark.ray
def test_quiet_ray_run_prints_only_its_summary(llava_dir, videos, tmp_path) -> None:
    pytest.importorskip("ray")
    config = tmp_path / "pipe.yaml"
    config.write_text(
        f"model: {llava_dir}\nbackend: cpu\nsampler_options: {{num_frames: 2}}\n"
        "generation: {max_new_tokens: 2}\n"
    )
    requests = tmp_path / "in.jsonl"
    requests.write_text(json.dumps({"id": "a", "videos": [str(videos["h264"])], "question": "?"}))
    out = tmp_path / "out.jsonl"
    command = ["run", str(config), "--input", str(requests), "--output", str(out)]
    done = console(*command, "--ray", "--quiet")
    assert done.returncode == 0, done.stderr
    summary, prefix = done.stderr.splitlines()  # the summary's two lines, nothing else
    assert summary == f"vidtt: 1 answered, 0 failed, 0 already done; answers in {out}"
    assert prefix.startswith("vidtt: prefix cache: 0 hits, 1 misses"), done.stderr


# -- 9. contact sheets, files written, the demo's first line, the frame limit in force ----------
def test_contact_sheet_cells_take_the_frames_shape() -> None:
    from vidtt.media.sheet import LABEL_HEIGHT, contact_sheet

    wide = contact_sheet(vidtt.sample(np.zeros((5, 272, 640, 3), dtype=np.uint8), num_frames=5))
    assert wide.size == (3 * 240, 2 * (102 + LABEL_HEIGHT))  # no black band under the frames
    tall = contact_sheet(vidtt.sample(np.zeros((4, 640, 272, 3), dtype=np.uint8), num_frames=4))
    assert tall.size == (2 * 102, 2 * (240 + LABEL_HEIGHT))
    square = contact_sheet(vidtt.sample(np.zeros((4, 32, 32, 3), dtype=np.uint8), num_frames=4))
    assert square.size == (2 * 240, 2 * (240 + LABEL_HEIGHT))


def test_sample_says_each_file_it_writes(videos, tmp_path) -> None:
    sheet, frames = tmp_path / "sheet.png", tmp_path / "frames"
    command = ["sample", str(videos["h264"]), "--frames", "3", "--out", str(frames)]
    done = console(*command, "--sheet", str(sheet), "--json")
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)  # stdout stays JSON
    wrote = [line.removeprefix("vidtt: wrote ") for line in done.stderr.splitlines()]
    assert sorted(wrote) == sorted([*map(str, frames.iterdir()), str(sheet)])
    assert Image.open(sheet).size == (2 * 240, 2 * (180 + 14))


@pytest.mark.slow
def test_demo_output_starts_with_its_report(tmp_path) -> None:
    done = console("demo", "--backend", "cpu", env={"VIDTT_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("video:    "), done.stdout[:80]


@pytest.mark.parametrize(
    ("flags", "env", "limit"),
    [
        (["--frames", "20000"], {}, 2048),  # over the sampler's own cap too
        (["--frames", "5000"], {}, 2048),
        (["--sampler", "keyframe", "--frames", "20000"], {}, 2048),
        (["--frames", "500"], {"VIDTT_LIMIT_MAX_FRAMES": "100"}, 100),
    ],
)
def test_a_frame_count_over_the_limit_names_the_limit_in_force(videos, flags, env, limit) -> None:
    line = one_line_error(console("sample", str(videos["h264"]), *flags, env=env))
    assert f"over the limit of {limit} frames" in line and "10000" not in line, line
