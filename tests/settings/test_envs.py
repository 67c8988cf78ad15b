"""One configuration surface: every environment variable in `vidtt.envs`'s table, the table in
docs/environment.md, one cache folder variable, and `vidtt config` naming where each setting
in force came from (default, FILE:LINE, environment, flag)."""

from __future__ import annotations

import io
import json
import re
import tokenize
import warnings
from pathlib import Path

import pytest
from commands import console

from vidtt import envs
from vidtt.errors import ConfigError, OptionsError

ROOT = Path(__file__).resolve().parents[2]
CODE = ("core", "samplers", "formatters", "backends", "transcribers")
NAME = re.compile(r"VIDTT_[A-Z0-9_]+")
TEXT = {tokenize.STRING, tokenize.COMMENT, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def names_in(path: Path) -> set[str]:
    """The `VIDTT_...` words in a file's strings and comments (a Python file's identifiers,
    such as a constant `VIDTT_FIELDS`, are names in the code, not variables)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return set(NAME.findall(text))
    found: set[str] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in TEXT:
            found |= set(NAME.findall(token.string))
    return found


def declared(name: str) -> bool:
    """`name` is in the table; a prefix (`VIDTT_LIMIT_`, `VIDTT_`) starts a declared one."""
    rows = envs.VARIABLES
    if name.endswith("_"):
        return any(row.name.startswith(name) for row in rows)
    return any(row.matches(name) for row in rows)


def test_every_vidtt_variable_in_the_code_is_declared() -> None:
    seen: dict[str, str] = {}
    for folder in CODE:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".js", ".html") and "__pycache__" not in path.parts:
                for name in names_in(path):
                    seen.setdefault(name, str(path.relative_to(ROOT)))
    assert {"VIDTT_BACKEND", "VIDTT_CACHE_DIR", "VIDTT_API_KEY"} <= seen.keys()
    assert "VIDTT_FIELDS" not in seen  # a constant in serve.protocol, not a variable
    missing = {name: where for name, where in seen.items() if not declared(name)}
    assert not missing, f"read or named in the code, not in vidtt.envs.VARIABLES: {missing}"


def test_an_undeclared_name_is_caught() -> None:
    assert declared("VIDTT_LIMIT_MAX_FRAMES") and declared("VIDTT_LIMIT_")
    assert not declared("VIDTT_CACHEDIR") and not declared("VIDTT_NOPE_")
    with pytest.raises(KeyError, match="VIDTT_NOPE"):
        envs.get("VIDTT_NOPE")


def test_the_docs_page_is_the_table() -> None:
    page = (ROOT / "docs" / "environment.md").read_text(encoding="utf-8")
    assert envs.markdown_table() in page, (
        "docs/environment.md's table differs from vidtt.envs.VARIABLES: paste in "
        "python -c 'from vidtt import envs; print(envs.markdown_table())'"
    )
    rows = re.findall(r"^\| `([^`]+)` \|", page, re.M)
    assert rows == [row.name for row in envs.VARIABLES]
    for linked in ("README.md", "docs/guide.md"):
        assert "environment.md" in (ROOT / linked).read_text(encoding="utf-8"), linked


def test_values_are_read_when_asked_and_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VIDTT_BACKEND", "VIDTT_PLUGINS", "VIDTT_PLUGIN_TIMEOUT", "VIDTT_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    assert envs.VIDTT_BACKEND == "auto" and envs.get("VIDTT_PLUGINS") is None
    assert envs.get("VIDTT_PLUGIN_TIMEOUT") == 10.0 and envs.get("VIDTT_STRICT_PLUGINS") is False
    monkeypatch.setenv("VIDTT_BACKEND", " cpu ")
    monkeypatch.setenv("VIDTT_PLUGINS", "")
    monkeypatch.setenv("VIDTT_STRICT_PLUGINS", "Yes")
    monkeypatch.setenv("VIDTT_PLUGIN_TIMEOUT", "0.5")
    assert envs.VIDTT_BACKEND == "cpu" and envs.get("VIDTT_PLUGINS") == []
    assert envs.get("VIDTT_STRICT_PLUGINS") is True and envs.get("VIDTT_PLUGIN_TIMEOUT") == 0.5
    monkeypatch.setenv("VIDTT_PLUGIN_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="VIDTT_PLUGIN_TIMEOUT must be a number"):
        envs.get("VIDTT_PLUGIN_TIMEOUT")
    monkeypatch.setenv("VIDTT_CACHE_MAX_BYTES", "lots")
    with pytest.raises(OptionsError, match="VIDTT_CACHE_MAX_BYTES must be bytes"):
        envs.get("VIDTT_CACHE_MAX_BYTES")


def test_limits_ask_envs_for_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidtt.limits import from_environment

    monkeypatch.setenv("VIDTT_LIMIT_MAX_FRAMES", "12")
    monkeypatch.setattr(envs, "limit_values", lambda fields: {"max_frames": "7"})
    assert from_environment().max_frames == 7


def test_one_cache_folder_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("VIDTT_CACHE_DIR", "VIDTT_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(envs, "_warned", set())
    assert envs.cache_dir() == Path.home() / ".cache" / "vidtt"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert envs.cache_dir() == tmp_path / "xdg" / "vidtt"
    monkeypatch.setenv("VIDTT_CACHE", str(tmp_path / "old"))
    with pytest.warns(
        FutureWarning, match="VIDTT_CACHE is deprecated: set VIDTT_CACHE_DIR="
    ) as said:
        assert envs.cache_dir() == tmp_path / "old"
    assert len(said) == 1 and "\n" not in str(said[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once a process
        assert envs.cache_dir() == tmp_path / "old"
    monkeypatch.setenv("VIDTT_CACHE_DIR", str(tmp_path / "new"))
    with pytest.warns(FutureWarning, match="VIDTT_CACHE is no longer read"):
        assert envs.cache_dir() == tmp_path / "new"
    from vidtt.cli.demo import cache_dir as demo_dir
    from vidtt.media.store import cache_dir as store_dir

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once already
        assert demo_dir() == store_dir() == tmp_path / "new"  # the demo's folder is the store's


def test_ray_jobs_get_the_variables_the_table_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidtt.jobs.ray_cluster import forwarded_env

    monkeypatch.setenv("VIDTT_LIMIT_MAX_FRAMES", "9")
    monkeypatch.setenv("VIDTT_BACKEND", "cpu")
    monkeypatch.setenv("VIDTT_API_KEY", "secret")
    monkeypatch.setenv("VIDTT_CACHE_DIR", "/somewhere")
    sent = forwarded_env()
    assert sent["VIDTT_LIMIT_MAX_FRAMES"] == "9" and sent["VIDTT_BACKEND"] == "cpu"
    assert "VIDTT_API_KEY" not in sent and "VIDTT_CACHE_DIR" not in sent


CONFIG = """\
model: some/model
sampler: uniform
sampler_options:
  num_frames: 6
  rule: linspace
generation:
  max_new_tokens: 32
limits:
  max_frames: 100
"""


def test_vidtt_config_names_where_each_setting_came_from(tmp_path: Path) -> None:
    config = tmp_path / "pipe.yaml"
    config.write_text(CONFIG)
    env = {"VIDTT_BACKEND": "cpu", "VIDTT_LIMIT_MAX_PIXELS": "1000000", "VIDTT_TYPO": "1"}
    args = ("config", "--config", str(config), "--frames", "4", "--seed", "3")
    done = console(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    settings, limits = report["settings"], report["limits"]
    assert report["config"] == str(config)
    assert settings["model"] == {"value": "some/model", "source": f"{config}:1"}
    assert settings["sampler_options.rule"] == {"value": "linspace", "source": f"{config}:5"}
    assert settings["sampler_options.num_frames"] == {"value": 4, "source": "flag (--frames)"}
    assert settings["generation.seed"] == {"value": 3, "source": "flag (--seed)"}
    assert settings["generation.max_new_tokens"]["source"] == f"{config}:7"
    assert settings["backend"] == {"value": "cpu", "source": "environment (VIDTT_BACKEND)"}
    assert settings["dtype"] == {"value": "auto", "source": "default"}
    assert settings["strategy"] == {"value": "direct", "source": "default"}
    assert limits["max_frames"] == {"value": 100, "source": f"{config}:9"}
    assert limits["max_pixels"]["source"] == "environment (VIDTT_LIMIT_MAX_PIXELS)"
    assert limits["max_pixels"]["value"] == 1000000
    assert limits["decode_seconds"]["source"] == "default"
    assert report["unknown_environment"] == ["VIDTT_TYPO"]
    text = console(*args, env=env)
    assert text.returncode == 0, text.stderr
    assert re.search(r"^sampler_options\.num_frames +4 +flag \(--frames\)$", text.stdout, re.M)
    assert re.search(rf"^model +some/model +{re.escape(str(config))}:1$", text.stdout, re.M)
    assert re.search(
        r"^max_pixels +1000000 +environment \(VIDTT_LIMIT_MAX_PIXELS\)$", text.stdout, re.M
    )
    assert "VIDTT_TYPO is set but vidtt reads no such variable" in text.stdout


def test_vidtt_config_reports_problems_as_ask_does(tmp_path: Path) -> None:
    config = tmp_path / "pipe.yaml"
    config.write_text("sampler: unifrom\n")
    done = console("config", "--config", str(config), "--json")
    assert done.returncode == 2 and not done.stdout
    assert f"{config}, line 1" in done.stderr and "unifrom" in done.stderr
