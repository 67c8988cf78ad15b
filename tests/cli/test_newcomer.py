"""Issue 35, a newcomer's first hour: what the first commands say when the install, the hub, the
context or a spelling is not as expected. Each is one line naming what to do, through the
installed `vidtt` console script.

- a torchvision built for another torch: `vidtt demo` and `vidtt transcribe` say so in one
  line, with the exact command that fixes it, before any model is built;
- a prompt too long for the context names `--fit-context` and `--max-visual-tokens` with a
  budget that does fit;
- a Whisper model that cannot be had says how to point at a folder; offline mode is called
  offline mode; `-o num_frame=8` gets "did you mean"; the demo's cache folder is
  `VIDTT_CACHE_DIR` (the old `VIDTT_CACHE` still works, with one warning line).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

import vidtt
from vidtt.testing import make_video

VIDTT = str(Path(sys.executable).with_name("vidtt"))
QUESTION = "What is happening in this video?"


def run(*args: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> Any:
    """`vidtt ARGS` on the CPU, `env` laid over this environment, the names in `drop` unset."""
    full = {**os.environ, "VIDTT_BACKEND": "cpu", **(env or {})}
    for name in drop:
        full.pop(name, None)
    return subprocess.run(
        [VIDTT, *args], capture_output=True, text=True, env=full, timeout=300, check=False
    )


def one_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a command that failed as a user mistake (status 2)."""
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("vidtt: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("talk") / "talk.mp4", frames=48, audio=True)


# -- 12. a torchvision built for another torch ----------------------------------------------------
MISMATCHES = {  # what a torchvision built for another torch raises when it is imported
    "nms": 'raise RuntimeError("operator torchvision::nms does not exist")\n',
    "symbol": 'raise ImportError("/x/torchvision/_C.so: undefined symbol: _ZN3c10")\n',
}


def broken_torchvision(folder: Path, kind: str) -> dict[str, str]:
    """An environment whose `import torchvision` fails as a mismatched build does."""
    package = folder / "site" / "torchvision"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(MISMATCHES[kind])
    return {"PYTHONPATH": str(folder / "site")}


def the_fix() -> str:
    """The command the message must give: this torch, pinned, and its build's index."""
    import torch

    release, _, build = torch.__version__.partition("+")
    index = f" --index-url https://download.pytorch.org/whl/{build}" if build else ""
    return f"pip uninstall -y torchvision && pip install torch=={release} torchvision{index}"


@pytest.mark.parametrize("kind", sorted(MISMATCHES))
def test_demo_with_a_mismatched_torchvision_is_one_line_with_the_fix(tmp_path, kind) -> None:
    env = {**broken_torchvision(tmp_path, kind), "VIDTT_CACHE_DIR": str(tmp_path / "cache")}
    line = one_error(run("demo", env=env))
    assert "does not match torch" in line and line.endswith(f": {the_fix()}"), line
    assert not (tmp_path / "cache" / "demo").exists()  # nothing was built before the check


def test_transcribe_with_a_mismatched_torchvision_is_one_line_with_the_fix(tmp_path, talk) -> None:
    """With the default Whisper model, not downloaded: the check comes before the hub's."""
    env = {**broken_torchvision(tmp_path, "nms"), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    line = one_error(run("transcribe", str(talk), env=env))
    assert "torchvision::nms does not exist" in line and line.endswith(f": {the_fix()}"), line


def test_the_fix_names_the_index_of_the_torch_build() -> None:
    from vidtt.settings.packages import fix_command

    cpu = "https://download.pytorch.org/whl/cpu"
    assert fix_command("2.5.1+cpu") == (
        f"pip uninstall -y torchvision && pip install torch==2.5.1 torchvision --index-url {cpu}"
    )
    assert fix_command("2.6.0+cu124").endswith(
        "torch==2.6.0 torchvision --index-url https://download.pytorch.org/whl/cu124"
    )
    assert fix_command("2.5.1").endswith("pip install torch==2.5.1 torchvision")  # PyPI's
    assert fix_command("(unknown version)").endswith("pip install torch torchvision")


# -- 14. a prompt too long for the context ----------------------------------------------------
def test_a_prompt_too_long_names_the_options_that_fit_it(tmp_path, videos) -> None:
    """The numbers, `--fit-context` and `--max-visual-tokens N`; and N does fit."""
    from tiny_models import make_llava

    folder = str(make_llava(tmp_path / "small", context=100))
    pipe = vidtt.Pipeline(model=folder, backend="cpu", sampler_options={"num_frames": 8})
    with pytest.raises(vidtt.ContextOverflowError) as error:
        pipe.ask(videos["h264"], QUESTION, max_new_tokens=10)
    message = str(error.value)
    assert "128 for images and 8 video frames" in message and "context is 100" in message
    assert "--fit-context (fit: context)" in message and "(max_visual_tokens)" in message
    budget = int(re.search(r"--max-visual-tokens (\d+) ", message).group(1))  # type: ignore[union-attr]
    for settings in ({"max_visual_tokens": budget}, {"fit": "context"}):
        fitted = vidtt.Pipeline(model=folder, backend="cpu", **settings)
        answer = fitted.ask(videos["h264"], QUESTION, max_new_tokens=10)
        assert 0 < answer.usage.prompt_tokens + 10 <= 100, settings


def test_a_text_too_long_alone_does_not_suggest_fewer_frames() -> None:
    from vidtt.engine.generate import overflow_message

    said = overflow_message(prompt=200, visual=16, frames=2, new=10, limit=100)
    assert "200 tokens (16 for images and 2 video frames)" in said and "210 in all" in said
    assert "the text alone leaves no room" in said and "--fit-context" not in said
    assert "--max-visual-tokens N" in overflow_message(150, 0, 8, 10, 100)  # tokens unknown


# -- 15. the hub, options and the cache folder ----------------------------------------------------
def test_whisper_offline_says_offline_and_how_to_use_a_folder(tmp_path, talk) -> None:
    line = one_error(
        run("transcribe", str(talk), env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)})
    )
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in line and "cannot be reached" not in line
    assert "--transcriber-option model=FOLDER" in line, line


def test_whisper_out_of_reach_says_how_to_use_a_folder(tmp_path, talk) -> None:
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path)}
    line = one_error(run("transcribe", str(talk), env=env, drop=("HF_HUB_OFFLINE",)))
    assert "(http://127.0.0.1:9) cannot be reached" in line
    assert "--transcriber-option model=FOLDER" in line, line


def test_the_model_offline_says_offline(tmp_path, videos) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    line = one_error(run("ask", str(videos["h264"]), "-q", QUESTION, env=env))
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in line and "unset HF_HUB_OFFLINE" in line


def test_a_misspelled_sampler_option_gets_the_closest(videos) -> None:
    video = str(videos["h264"])
    line = one_error(run("sample", video, "-o", "num_frame=8"))
    assert line.endswith("num_frame: unknown option (did you mean -o num_frames=...?)"), line
    line = one_error(run("sample", video, "-o", "wobble=3"))
    assert "wobble: unknown option (its options: " in line and "num_frames" in line
    line = one_error(run("sample", video, "-o", "max_sid=9", "--max-side", "-1"))
    assert line.startswith("vidtt: error: 2 problems: ")  # the others are still found
    assert "did you mean -o max_side=...?" in line and "greater than or equal to 1" in line


def test_the_cache_folder_variable_and_its_old_name(monkeypatch, tmp_path) -> None:
    from vidtt.cli.demo import cache_dir

    monkeypatch.setenv("VIDTT_CACHE_DIR", str(tmp_path / "new"))
    monkeypatch.delenv("VIDTT_CACHE", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache_dir() == tmp_path / "new"
    monkeypatch.setenv("VIDTT_CACHE", str(tmp_path / "old"))
    with pytest.warns(FutureWarning, match="VIDTT_CACHE is no longer read"):
        assert cache_dir() == tmp_path / "new"  # the new name wins
    monkeypatch.delenv("VIDTT_CACHE_DIR")
    with pytest.warns(FutureWarning, match="VIDTT_CACHE is deprecated: set VIDTT_CACHE_DIR"):
        assert cache_dir() == tmp_path / "old"


@pytest.mark.slow
def test_the_demo_under_the_old_variable_warns_in_one_line(tmp_path) -> None:
    done = run("demo", env={"VIDTT_CACHE": str(tmp_path)}, drop=("VIDTT_CACHE_DIR",))
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if line.startswith("vidtt: warning:")]
    assert warned == [
        f"vidtt: warning: VIDTT_CACHE is deprecated: set VIDTT_CACHE_DIR={tmp_path} instead "
        "(used this time)"
    ], done.stderr
    assert str(tmp_path / "demo" / "tiny-llava") in done.stdout
    assert "VIDTT_CACHE_DIR moves it" in done.stdout
