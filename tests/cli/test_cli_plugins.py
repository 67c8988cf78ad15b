"""`vidtt plugins`, `vidtt --version`, and a real third-party plugin installed with pip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vidtt

HERE = Path(__file__).parent
VIDTT = str(Path(sys.executable).with_name("vidtt"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VIDTT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"vidtt {vidtt.__version__}"


def test_plugins_json_lists_every_builtin() -> None:
    out = run("plugins", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    families = {"samplers", "formatters", "backends", "transcribers", "embedders"}
    assert set(report) == {*families, "errors"}
    assert {e["name"] for e in report["samplers"]} >= {"uniform", "keyframe", "interval"}
    assert {e["name"] for e in report["transcribers"]} >= {"whisper"}
    assert {e["name"] for e in report["embedders"]} >= {"clip"}
    assert {e["name"] for e in report["backends"]} >= {"cpu", "cuda", "xpu", "mps", "npu"}
    for entry in report["samplers"] + report["backends"]:
        assert {"name", "plugin", "distribution", "version"} <= set(entry)


def test_plugins_table() -> None:
    out = run("plugins")
    assert out.returncode == 0
    assert "samplers:" in out.stdout and "uniform" in out.stdout and "cuda" in out.stdout


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin package, pip-installed into its own folder."""
    target = tmp_path_factory.mktemp("example-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(HERE.parents[1] / "docs" / "examples" / "vidtt-example"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_third_party_sampler_shows_up(installed_example: Path) -> None:
    out = run("plugins", "--json", env={"PYTHONPATH": str(installed_example)})
    assert out.returncode == 0, out.stderr
    [entry] = [e for e in json.loads(out.stdout)["samplers"] if e["name"] == "first"]
    assert entry == {
        "name": "first",
        "plugin": "first-frames",
        "distribution": "vidtt-example",
        "version": "0.3.0",
        "description": "the first `count` frames",
    }


def test_third_party_sampler_samples(installed_example: Path, videos) -> None:
    code = (
        f"import vidtt; c = vidtt.sample({str(videos['h264'])!r}, 'first', count=3);"
        "print(c.indices)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(installed_example)},
        check=True,
    )
    assert out.stdout.strip() == "[0, 1, 2]"


def test_broken_plugin_cannot_stop_plugins_command(plugin_dist, installed_example) -> None:
    site = plugin_dist("broken-dist", "broken_mod", "raise SystemExit('bye')")
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(installed_example)])}
    out = run("plugins", "--json", env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert "first" in {e["name"] for e in report["samplers"]}
    [error] = report["errors"]
    assert error["plugin"] == "broken_mod" and error["distribution"] == "broken-dist"
    assert "SystemExit" in error["error"]
    assert out.stderr.count("warning:") == 1
    strict = run("plugins", env={**env, "VIDTT_STRICT_PLUGINS": "1"})
    assert strict.returncode == 2
    assert strict.stderr.startswith("vidtt: error: vidtt plugin 'broken_mod'")
    assert "Traceback" not in strict.stderr
