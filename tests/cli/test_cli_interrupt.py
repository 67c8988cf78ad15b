"""Ctrl-C and closed pipes, sent to the installed `vidtt` in a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from commands import VIDTT, wait_for_input
from terminal import Terminal

pytestmark = pytest.mark.slow

ENV = {**os.environ, "VIDTT_BACKEND": "cpu"}


def long_config(tmp_path: Path, model: Path) -> Path:
    """A config whose answers run for many seconds (at least 900 tokens)."""
    path = tmp_path / "long.yaml"
    path.write_text(
        f"model: {model}\nsampler_options: {{num_frames: 2}}\n"
        "generation: {min_new_tokens: 900, max_new_tokens: 900}\n"
    )
    return path


def start(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [VIDTT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**ENV, "VIDTT_CACHE_DIR": kwargs.pop("cache", os.environ.get("VIDTT_CACHE_DIR", ""))},
        **kwargs,
    )


def interrupted(process: subprocess.Popen) -> str:
    """Send SIGINT; the process must exit 130 within seconds, without traceback or abort."""
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    text = err.decode(errors="replace")
    assert process.returncode == 130, text
    assert "Traceback" not in text and "terminate called" not in text, text
    assert "vidtt: interrupted" in text
    return text


def test_ctrl_c_while_the_answer_streams(llava_dir, videos, tmp_path) -> None:
    config = long_config(tmp_path, llava_dir)
    process = start("ask", str(videos["h264"]), "-q", "What?", "--config", str(config), "--stream")
    assert process.stdout.read(1)  # the answer has started
    started = time.monotonic()
    interrupted(process)
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("delay", [0.5, 2.0, 3.5])
def test_ctrl_c_while_loading_or_sampling(llava_dir, videos, tmp_path, delay) -> None:
    config = long_config(tmp_path, llava_dir)
    process = start("ask", str(videos["h264"]), "-q", "What?", "--config", str(config))
    time.sleep(delay)
    assert process.poll() is None  # still at work (imports, sampling, loading or generating)
    interrupted(process)


def test_ctrl_c_in_chat_waiting_and_answering(llava_dir, videos, tmp_path) -> None:
    config = long_config(tmp_path, llava_dir)
    command = ["chat", str(videos["h264"]), "--config", str(config)]
    waiting = start(*command, stdin=subprocess.PIPE)  # both start at once: they load together
    answering = start(*command, stdin=subprocess.PIPE)
    try:
        wait_for_input(waiting, otherwise=6)  # loaded, waiting for a question on stdin
        interrupted(waiting)

        answering.stdin.write(b"What is happening?\n")
        answering.stdin.flush()
        assert answering.stdout.read(1)  # answering
        interrupted(answering)
    finally:
        for process in (waiting, answering):
            if process.poll() is None:
                process.kill()
                process.communicate()


def test_chat_at_a_terminal_has_line_editing_and_history(llava_dir, videos, tmp_path) -> None:
    command = [VIDTT, "chat", str(videos["h264"]), "--model", str(llava_dir), "--frames", "2"]
    command += ["--max-new-tokens", "2"]
    with Terminal(command, {**ENV, "VIDTT_CACHE_DIR": str(tmp_path)}) as terminal:
        terminal.read_until(b"you> ")
        terminal.write(b"What is hapening?" + b"\x1b[D" * 6 + b"p\n")  # 6 x left, a fix
        terminal.read_until(b"you> ", times=2)
        terminal.write(b"\x04")  # Ctrl-D ends the chat
        terminal.process.wait(timeout=30)
    assert terminal.process.returncode == 0, terminal.seen[-500:]
    assert b"^[[D" not in terminal.seen
    history = (tmp_path / "chat_history").read_text()
    assert "What is happening?" in history


def test_closed_pipe_is_quiet() -> None:
    process = subprocess.Popen(
        [VIDTT, "plugins", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    process.stdout.close()  # the reader is gone before anything is written
    _, err = process.communicate(timeout=60)
    assert err == b"", err
    assert process.returncode in (0, 141)


def test_closed_pipe_after_partial_output(videos) -> None:
    shell = f"{VIDTT} sample {videos['h264']} --frames 40 | head -n 1"
    out = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, env=ENV
    )
    assert out.stderr == "" and len(out.stdout.splitlines()) == 1


def test_cancel_stops_generation_at_the_next_token(llava_dir, videos) -> None:
    import vidtt
    from vidtt.cli import interrupt

    pipe = vidtt.Pipeline(model=str(llava_dir), backend="cpu", sampler_options={"num_frames": 2})
    interrupt.make_cancellable(pipe.model)
    stream = pipe.ask(videos["h264"], "What?", stream=True, min_new_tokens=900, max_new_tokens=900)
    try:
        reader = iter(stream)
        next(reader)
        assert interrupt.cancel(timeout=10)  # every thread ended
        rest = list(reader)
    finally:
        interrupt.cancelled.clear()
    assert stream.answer.usage.generated_tokens < 900 and len(rest) < 900
    assert pipe.ask(videos["h264"], "What?", max_new_tokens=3).usage.generated_tokens <= 3


def test_sigterm_while_the_answer_streams(llava_dir, videos, tmp_path) -> None:
    config = long_config(tmp_path, llava_dir)
    process = start("ask", str(videos["h264"]), "-q", "What?", "--config", str(config), "--stream")
    assert process.stdout.read(1)  # the answer has started
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    text = err.decode(errors="replace")
    assert process.returncode == 143, text
    assert "vidtt: terminated" in text and "Traceback" not in text, text


def test_sigterm_during_a_run_keeps_the_finished_answers(llava_dir, videos, tmp_path) -> None:
    import json

    quick = {"max_new_tokens": 2}
    long = {"min_new_tokens": 900, "max_new_tokens": 900}
    lines = [
        {
            "id": n,
            "videos": [str(videos["h264"])],
            "question": f"Q{n}?",
            **(quick if n < 1 else long),
        }
        for n in range(7)
    ]
    requests = tmp_path / "in.jsonl"
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = tmp_path / "out.jsonl"
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {llava_dir}\nsampler_options: {{num_frames: 2}}\n")
    process = start(
        "run", str(config), "--input", str(requests), "--output", str(output),
        "--batch-size", "1", "--quiet",
    )  # fmt: skip
    ends = time.monotonic() + 120
    while not (output.exists() and output.read_text().count("\n")) and time.monotonic() < ends:
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    assert process.poll() is None  # six long requests are left
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    text = err.decode(errors="replace")
    assert process.returncode == 143, text
    assert "vidtt: terminated" in text and "Traceback" not in text, text
    kept = [json.loads(line) for line in output.read_text().splitlines()]
    ids = [record["id"] for record in kept]
    assert ids[0] == 0 and kept[0]["text"] and len(ids) < 7, kept  # the rest were cut off
    assert not list(tmp_path.glob(".out.jsonl.*"))
