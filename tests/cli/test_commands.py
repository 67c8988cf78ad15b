"""The test helpers of tests/commands.py: `in_process` answers as the console script does, and
leaves the process as it found it."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import warnings
from pathlib import Path

import pytest
from commands import console, in_process

from vidtt import limits
from vidtt.cli import interrupt
from vidtt.cli import sample as sample_command


def same(done, twin) -> None:
    assert (twin.returncode, twin.stdout, twin.stderr) == (
        done.returncode,
        done.stdout,
        done.stderr,
    )


def test_the_twins_print_the_same(videos, tmp_path) -> None:
    args = ["sample", str(videos["h264"]), "--frames", "2", "--json"]
    done = console(*args)
    assert done.returncode == 0 and json.loads(done.stdout)["frames"], done.stderr
    same(done, in_process(*args))

    error = console("sample", str(videos["h264"]), "--frames", "500")  # a user error
    assert error.returncode == 2 and error.stderr.startswith("vidtt: error: video 1 (")
    same(error, in_process("sample", str(videos["h264"]), "--frames", "500"))
    usage = console("aks", str(videos["h264"]))  # argparse's: SystemExit(2), usage on stderr
    assert usage.returncode == 2 and "did you mean 'ask'?" in usage.stderr
    same(usage, in_process("aks", str(videos["h264"])))
    version = console("--version")  # SystemExit(0) after printing
    assert version.returncode == 0 and version.stdout.startswith("vidtt ")
    same(version, in_process("--version"))


def test_the_working_folder_and_environment_are_the_runs_own(videos, tmp_path) -> None:
    here, before = os.getcwd(), dict(os.environ)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    args = ["sample", str(videos["h264"]), "--frames", "2", "--sheet", "s.png"]
    done = console(*args, cwd=tmp_path / "a")
    twin = in_process(*args, cwd=tmp_path / "b")
    assert done.returncode == twin.returncode == 0, (done.stderr, twin.stderr)
    assert (tmp_path / "a" / "s.png").stat().st_size and (tmp_path / "b" / "s.png").stat().st_size
    assert twin.stderr == done.stderr.replace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert os.getcwd() == here and dict(os.environ) == before  # and vidtt set some (HF_*)

    # the limits a process reads from its environment when it starts, read for the run
    args = ["sample", str(videos["h264"]), "--frames", "500"]
    default = limits.process_default()
    done = console(*args, env={"VIDTT_LIMIT_MAX_FRAMES": "100"})
    assert "over the limit of 100 frames" in done.stderr, done.stderr
    same(done, in_process(*args, env={"VIDTT_LIMIT_MAX_FRAMES": "100"}))
    assert limits.process_default() is default and "VIDTT_LIMIT_MAX_FRAMES" not in os.environ


@pytest.fixture
def command(monkeypatch):
    """Make `vidtt sample` run the function given instead."""

    def replace(function) -> None:
        monkeypatch.setattr(sample_command, "cmd_sample", function)

    return replace


def test_stdin_is_a_pipe_of_the_text_given(command, videos) -> None:
    streams = sys.stdin, sys.stdout, sys.stderr
    command(lambda args: print(sys.stdin.isatty(), sys.stdin.read().upper(), end="") or 0)
    done = in_process("sample", str(videos["h264"]), stdin="one\ntwo\n")
    assert (done.returncode, done.stdout) == (0, "False ONE\nTWO\n")
    assert in_process("sample", str(videos["h264"])).stdout == "False "  # none given: empty
    assert (sys.stdin, sys.stdout, sys.stderr) == streams


def test_ctrl_c_in_a_run_gives_130_and_the_handlers_back(command, videos) -> None:
    handlers = [signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)]

    def stop(args):
        raise KeyboardInterrupt

    command(stop)
    done = in_process("sample", str(videos["h264"]), env={"VIDTT_X": "1"})
    assert done.returncode == 130 and done.stderr == "\nvidtt: interrupted\n", done.stderr
    # exit_interrupted made both signals leave at once (os._exit): they are as they were again
    assert [signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)] == handlers
    assert not interrupt.cancelled.is_set() and "VIDTT_X" not in os.environ


def test_an_uncaught_error_is_a_traceback_and_status_1(command, videos, tmp_path) -> None:
    here = os.getcwd()

    def fail(args):
        os.environ["VIDTT_LEFT"] = "1"
        raise RuntimeError("broken")

    command(fail)
    done = in_process("sample", str(videos["h264"]), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" in done.stderr
    assert done.stderr.endswith("RuntimeError: broken\n")
    assert os.getcwd() == here and "VIDTT_LEFT" not in os.environ

    def leave(args):
        raise SystemExit("a message")

    command(leave)
    done = in_process("sample", str(videos["h264"]))
    assert (done.returncode, done.stderr) == (1, "a message\n")


def test_warnings_and_logging_are_as_they_were(command, videos) -> None:
    showwarning, filters = warnings.showwarning, list(warnings.filters)
    root = list(logging.root.handlers), logging.root.level
    existing = logging.getLogger("vidtt.test-commands")
    existing.setLevel(logging.WARNING)

    def noisy(args):
        warnings.warn("careful", UserWarning, stacklevel=1)
        warnings.warn("old", DeprecationWarning, stacklevel=1)  # hidden, as in a new process
        made = logging.getLogger("vidtt.made-by-the-run")
        made.addHandler(logging.StreamHandler())  # on the run's stderr
        made.setLevel(logging.INFO)
        made.info("logged")
        existing.setLevel(logging.DEBUG)
        logging.root.setLevel(logging.DEBUG)
        return 0

    command(noisy)
    done = in_process("sample", str(videos["h264"]))
    assert done.stderr == "vidtt: warning: careful\nlogged\n", done.stderr
    assert warnings.showwarning is showwarning and warnings.filters == filters
    assert (list(logging.root.handlers), logging.root.level) == root
    assert existing.level == logging.WARNING
    existing.setLevel(logging.NOTSET)
    made = logging.getLogger("vidtt.made-by-the-run")
    assert made.level == logging.NOTSET and not made.handlers and made.propagate


def test_torch_random_state_is_as_it_was(command, videos) -> None:
    torch = pytest.importorskip("torch")
    state = torch.random.get_rng_state()
    command(lambda args: torch.manual_seed(3) and 0)  # what `--seed 3` does
    assert in_process("sample", str(videos["h264"])).returncode == 0
    assert torch.equal(torch.random.get_rng_state(), state)


def test_the_console_script_is_the_installed_one() -> None:
    done = console("--version")
    assert done.returncode == 0 and done.stdout.startswith("vidtt ")
    assert Path(done.args[0]) == Path(sys.executable).with_name("vidtt")


def test_a_model_loads_as_quietly_as_in_a_new_process(llava_dir, videos) -> None:
    """A new `vidtt` imports transformers after setting its verbosity and progress bar
    variables; here it was imported before: they are set for the run, and put back."""
    hf = pytest.importorskip("transformers.utils.logging")
    before = hf.get_verbosity(), hf.is_progress_bar_enabled()
    args = ["ask", str(videos["h264"]), "-q", "What?", "--model", str(llava_dir)]
    done = in_process(*args, "--frames", "2", "--max-new-tokens", "2", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["usage"]["generated_tokens"] <= 2
    assert done.stderr == ""  # no "Loading weights" bar, no advice
    assert (hf.get_verbosity(), hf.is_progress_bar_enabled()) == before
