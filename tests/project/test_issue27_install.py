"""Issue 27, installing and running where things are not as they should be: the transformers
floor that is declared, documented and tested; a hub that cannot be reached (one line at once,
not minutes of retries); a torchvision built for another torch (one line naming both)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vidtt.errors import ModelLoadError

ROOT = Path(__file__).resolve().parents[2]
VIDTT = str(Path(sys.executable).with_name("vidtt"))
MISSING = "some-org/not-cached"
# Seconds a command may take to fail or to read the cache: its start-up (torch, transformers)
# and the hub probe (5 s), on two cores shared by two test processes. The waits these tests
# guard against are the hub's retries: 75 s and more.
AT_ONCE = 45


# -- 1. the transformers floor ------------------------------------------------------------------
def declared_floor() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    [floor] = re.findall(r'"transformers>=([0-9.]+)"', text)
    return floor


def test_the_floor_is_declared_documented_and_tested_in_ci() -> None:
    floor = declared_floor()
    ci = (ROOT / ".ci" / "run").read_text()
    assert f'"transformers=={floor}"' in ci  # the floor job installs exactly the floor
    readme = (ROOT / "README.md").read_text()
    assert f"transformers {floor} or newer" in readme


def test_the_installed_transformers_is_not_below_the_floor() -> None:
    import transformers
    from packaging.version import Version

    assert Version(transformers.__version__) >= Version(declared_floor())


# -- 2. a hub that cannot be reached ------------------------------------------------------------
@pytest.fixture(scope="module")
def silent_hub() -> Iterator[str]:
    """A hub endpoint that accepts connections and never answers (a firewall or a captive
    portal that swallows them: a TCP connection alone proves nothing)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for connection in held:
        connection.close()


def offline_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    home = tmp_path / "hf-home"
    home.mkdir(exist_ok=True)
    return {**env, "HF_HOME": str(home), "HF_ENDPOINT": endpoint, "VIDTT_BACKEND": "cpu"}


def one_quick_line(args: list[str], env: dict[str, str]) -> str:
    started = time.monotonic()
    done = subprocess.run([VIDTT, *args], capture_output=True, text=True, env=env, timeout=120)
    took = time.monotonic() - started
    assert took < AT_ONCE, f"took {took:.0f} s: {done.stderr[-2000:]}"
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "Retrying" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize("endpoint", ["refused", "silent"])
@pytest.mark.parametrize(
    "command",
    [
        ["ask", "{video}", "-q", "x"],
        ["ask", "{video}", "-q", "x", "--frames", "2"],
        ["sample", "{video}", "--explain"],
        ["serve", "--port", "18943"],
    ],
    ids=["ask", "ask-frames", "sample-explain", "serve"],
)
def test_an_uncached_hub_model_offline_is_one_line_at_once(
    videos, tmp_path, silent_hub, endpoint, command
) -> None:
    if command[0] == "serve":
        pytest.importorskip("fastapi")
    url = "http://127.0.0.1:9" if endpoint == "refused" else silent_hub
    args = [a.format(video=videos["h264"]) for a in command] + ["--model", MISSING]
    line = one_quick_line(args, offline_env(tmp_path, url))
    assert line.startswith(f"vidtt: error: cannot load {MISSING!r}: the model hub ({url})")
    assert "download it where there is network, or pass a local folder" in line


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_models_frame_rule_checks_the_hub_first(tmp_path, silent_hub) -> None:
    """The public `sampling_defaults_for_model` read the hub unchecked: minutes of retries,
    then "the model has no video processor" as if it had answered."""
    code = (
        "import time; from vidtt.settings.frame_rule import sampling_defaults_for_model\n"
        "t = time.monotonic()\n"
        f"try: sampling_defaults_for_model({MISSING!r})\n"
        "except Exception as e: print(type(e).__name__, round(time.monotonic() - t), e)\n"
    )
    done = run_python(code, offline_env(tmp_path, silent_hub))
    kind, seconds, said = done.stdout.split(" ", 2)
    assert kind == "ModelLoadError" and int(seconds) < 15, done
    assert f"cannot load {MISSING!r}: the model hub ({silent_hub}) cannot be reached" in said


def test_a_cached_model_is_read_from_the_cache_at_once(tmp_path, silent_hub) -> None:
    """Cached, with a hub that does not answer: the cache alone, not minutes of waiting."""
    env = offline_env(tmp_path, silent_hub)
    snapshot = Path(env["HF_HOME"]) / "hub" / "models--org--tiny" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    config = {"model_type": "llama", "hidden_size": 16, "num_attention_heads": 2}
    (snapshot / "config.json").write_text(json.dumps(config))
    code = (
        "import time; t = time.monotonic()\n"
        "from vidtt.engine.loading import auto_config\n"
        "from vidtt.settings.hub import hub_keywords\n"
        "options = hub_keywords('org/tiny', None, False)\n"
        "config = auto_config('org/tiny', options)\n"
        "print(options.get('local_files_only'), config.hidden_size, round(time.monotonic() - t))"
    )
    done = run_python(code, env)
    cache_only, hidden, seconds = done.stdout.split()
    assert cache_only == "True" and hidden == "16" and int(seconds) < AT_ONCE, done


def test_the_hub_is_asked_once_per_model(monkeypatch) -> None:
    from huggingface_hub import constants

    from vidtt.settings import hub

    asked: list[str] = []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://hub.invalid")
    monkeypatch.setattr(hub, "is_cached", lambda model, revision: True)
    monkeypatch.setattr(hub, "reachable", lambda url, timeout=5.0: asked.append(url) or True)
    hub.forget()
    for _ in range(3):
        assert hub.hub_keywords("org/model", None, False) == {
            "revision": None,
            "trust_remote_code": False,
        }
    assert asked == ["http://hub.invalid"]
    hub.forget()


def test_only_an_answer_counts_as_reachable(silent_hub) -> None:
    from vidtt.settings.hub import reachable

    started = time.monotonic()
    assert not reachable(silent_hub, timeout=1.0)  # connects, never answers
    assert not reachable("http://127.0.0.1:9", timeout=1.0)  # refused
    assert time.monotonic() - started < 4


# -- 3. a torchvision built for another torch ---------------------------------------------------
@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


@pytest.mark.parametrize(
    "command",
    [["ask", "{video}", "-q", "x"], ["sample", "{video}"]],
    ids=["ask", "sample"],
)
def test_a_torchvision_that_does_not_match_torch_is_one_line(
    videos, tmp_path, model_folder, command
) -> None:
    """What a torchvision built for another torch raises when transformers imports it."""
    fake = tmp_path / "site" / "torchvision"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        'raise RuntimeError("operator torchvision::nms does not exist")\n'
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "VIDTT_BACKEND": "cpu"}
    args = [a.format(video=videos["h264"]) for a in command] + ["--model", str(model_folder)]
    done = subprocess.run([VIDTT, *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    from importlib.metadata import version

    assert re.fullmatch(
        r"vidtt: error: torchvision (\S+) does not match torch (\S+) \(operator "
        r"torchvision::nms does not exist\): install the torchvision built for this torch: "
        r"pip uninstall -y torchvision && pip install torch==[0-9.]+ torchvision"
        r"( --index-url https://download\.pytorch\.org/whl/\S+)?",
        line,
    ), line
    assert f"torchvision {version('torchvision')} " in line and f"torch {version('torch')}" in line


def test_a_torchvision_that_fails_to_import_is_named(monkeypatch) -> None:
    from vidtt.settings.packages import check_torchvision

    monkeypatch.setitem(sys.modules, "torchvision", None)  # import raises ImportError
    with pytest.raises(ModelLoadError, match=r"^torchvision \S+ does not match torch \S+ \("):
        check_torchvision()
