"""PipelineConfig from YAML, TOML, JSON and dicts, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidtt import ConfigError, PipelineConfig, load_config

SETTINGS = {
    "model": "some/model",
    "backend": "cpu",
    "dtype": "bf16",
    "sampler": "interval",
    "sampler_options": {"every": 2.0, "max_frames": 16},
    "generation": {"max_new_tokens": 32},
}
YAML = """
model: some/model
backend: cpu
dtype: bf16
sampler: interval
sampler_options: {every: 2.0, max_frames: 16}
generation:
  max_new_tokens: 32
"""
TOML = """
model = "some/model"
backend = "cpu"
dtype = "bf16"
sampler = "interval"
sampler_options = { every = 2.0, max_frames = 16 }

[generation]
max_new_tokens = 32
"""


@pytest.mark.parametrize(
    "suffix,text", [(".yaml", YAML), (".toml", TOML), (".json", json.dumps(SETTINGS))]
)
def test_each_format_gives_the_same_config(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"pipeline{suffix}"
    path.write_text(text)
    config = load_config(path)
    assert config == load_config(SETTINGS)
    assert config.dtype == "bfloat16" and config.generation.max_new_tokens == 32
    assert config.sampler_options == {"every": 2.0, "max_frames": 16}


def test_defaults_are_safe() -> None:
    config = PipelineConfig()
    assert config.model == "llava-hf/llava-interleave-qwen-0.5b-hf"
    assert (config.backend, config.formatter, config.dtype) == ("auto", "auto", "auto")
    assert config.trust_remote_code is False and config.generation.do_sample is False


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "generation:\n  max_new_tokens: 0\n",
            r"generation\.max_new_tokens: .*greater than or equal",
        ),
        ("dtype: float8\n", r"dtype: Input should be"),
        ("modle: x\n", r"modle: unknown option"),
        ("trust_remote_code: maybe\n", r"trust_remote_code"),
        ("- just\n- a list\n", r"top level must be a mapping"),
        ("model: [unclosed\n", r"cannot parse YAML"),
    ],
)
def test_field_errors_name_the_field_and_the_file(tmp_path, text, expected) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "settings,expected",
    [
        ({"sampler": "fancy"}, r"unknown sampler 'fancy'; known samplers: .*uniform"),
        ({"backend": "tpu"}, r"unknown backend 'tpu'; known backends: .*cpu"),
        ({"formatter": "nope"}, r"unknown formatter 'nope'"),
        ({"sampler_options": {"num_frames": -1}}, r"sampler 'uniform': num_frames"),
        ({"sampler_options": {"every": 1}}, r"every: unknown option"),
    ],
)
def test_unknown_names_and_bad_sampler_options_fail_at_load(tmp_path, settings, expected) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(settings)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match=rf"{path}: .*"):
        load_config(path)


def test_missing_and_odd_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    (tmp_path / "c.ini").write_text("x=1")
    with pytest.raises(ConfigError, match="unknown extension '.ini'"):
        load_config(tmp_path / "c.ini")
    (tmp_path / "c.toml").write_text("model = ")
    with pytest.raises(ConfigError, match="cannot parse TOML"):
        load_config(tmp_path / "c.toml")


def test_plugin_lists_in_config_select_a_private_registry(plugin_dist) -> None:
    plugin_dist(
        "extra-dist",
        "extra_mod",
        """
        import vidtt
        from vidtt.samplers.uniform import UniformSampler

        class Extra(UniformSampler):
            name = "extra"

        @vidtt.hookimpl
        def register_samplers(register):
            register(Extra())
    """,
    )
    assert load_config({"sampler": "extra", "plugins": ["extra-dist"]}).sampler == "extra"
    with pytest.raises(ConfigError, match="unknown sampler 'extra'"):
        load_config({"sampler": "extra", "plugins": []})
    with pytest.raises(ConfigError, match="unknown sampler 'extra'"):
        load_config({"sampler": "extra", "disable_plugins": ["extra_mod"]})
