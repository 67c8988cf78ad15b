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
        ("dtype: float8\n", r"line 1: dtype: should be 'auto', .* \(got 'float8'\)"),
        ("model: x\nmodle: x\n", r"line 2: modle: unknown setting \(did you mean 'model'\?\)"),
        ("trust_remote_code: maybe\n", r"trust_remote_code"),
        ("- just\n- a list\n", r"top level must be a mapping"),
        ("model: [unclosed\n", r"line 2: cannot parse YAML"),
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


def test_yaml_errors_give_the_line_of_each_setting(tmp_path) -> None:
    path = tmp_path / "pipe.yaml"
    path.write_text(
        "model: some/model\n"
        "sampler_options:\n"
        "  num_frames: 0\n"
        "  end: 2\n"
        "  start: 5\n"
        "formatter: nope\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith("2 problems: ") and "\n" not in message
    assert f"{path}, line 3: sampler 'uniform': num_frames: should be greater" in message
    assert f"{path}, line 6: unknown formatter 'nope'" in message


def test_messages_in_plain_words(tmp_path) -> None:
    path = tmp_path / "pipe.yaml"
    path.write_text("sampler_options: {start: 5, end: 2}\ngeneration: {max_new_tokens: x}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    path.write_text("sampler_options: {start: 5, end: 2}\n")
    with pytest.raises(ConfigError) as second:
        load_config(path)
    for message in (str(info.value), str(second.value)):
        for jargon in ("Value error", "Input should", "type=", "pydantic", "Field required"):
            assert jargon not in message, message
    assert "end (2.0) must be after start (5.0)" in str(second.value)


def test_pipeline_from_a_file_names_the_file(tmp_path) -> None:
    import vidtt

    path = tmp_path / "pipe.yaml"
    path.write_text("model: some/model\nsampler: fancy\n")
    with pytest.raises(ConfigError, match=rf"{path}, line 2: unknown sampler 'fancy'"):
        vidtt.Pipeline(path)
    path.write_text("model: some/model\nsampler_options: {num_frames: 5000}\n")
    with pytest.raises(ConfigError, match=rf"{path}, line 2: num_frames=5000 is over the limit"):
        vidtt.Pipeline(str(path))


BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")),
        "model: *i",
    ]
)


def test_yaml_alias_bomb_is_refused_fast(tmp_path) -> None:
    import time

    import psutil

    import vidtt

    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 700
    before = psutil.Process().memory_info().rss
    for load in (load_config, vidtt.Pipeline):
        started = time.perf_counter()
        with pytest.raises(ConfigError, match=r"bomb.yaml, line \d+: the YAML aliases expand"):
            load(path)
        assert time.perf_counter() - started < 0.5
    assert psutil.Process().memory_info().rss - before < 50 << 20


def test_yaml_aliases_within_reason_and_loops(tmp_path) -> None:
    path = tmp_path / "pipe.yaml"
    path.write_text("defaults: &opts {num_frames: 4, max_side: 64}\nsampler_options: *opts\n")
    with pytest.raises(ConfigError, match="line 1: defaults: unknown setting"):
        load_config(path)
    path.write_text("sampler_options: &o {num_frames: 4, max_side: 64}\nplugins: []\n")
    assert load_config(path).sampler_options == {"num_frames": 4, "max_side": 64}
    path.write_text("plugins: &loop [a, *loop]\n")
    with pytest.raises(ConfigError, match="line 1: a YAML alias refers to a value that contains"):
        load_config(path)


def test_unreadable_and_huge_files(tmp_path) -> None:
    path = tmp_path / "pipe.yaml"
    path.write_bytes(b"model: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)
    path.write_text("# " + "x" * (2 << 20))
    with pytest.raises(ConfigError, match="is over 1 MiB"):
        load_config(path)
